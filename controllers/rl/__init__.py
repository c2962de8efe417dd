"""A loaded reinforcement-learning policy: encoding (shared with training), ONNX loading, controller."""

from controllers.rl import controller
from controllers.rl.encoding import Encoder, Options, Spec, action_to_setpoints, build_spec
from controllers.rl.policy import DEFAULT_POLICY, OnnxPolicy

__all__ = ["DEFAULT_POLICY", "Encoder", "OnnxPolicy", "Options", "Spec", "action_to_setpoints",
           "build_spec", "controller"]

"""``rl``: a loaded reinforcement-learning policy (ONNX, run by onnxruntime).

Per step: encode the observation (``controllers.rl.encoding``), run the policy, map its
action to setpoints. The safety layer clamps it like any other controller.
"""

from __future__ import annotations

from pathlib import Path

from controllers.base import register
from controllers.rl.encoding import PHASES, ActionMapper, Encoder, build_spec
from controllers.rl.policy import DEFAULT_POLICY, OnnxPolicy
from twin.config import SiteConfig
from twin.forecast import ControlContext
from twin.types import Setpoints, SiteObservation


@register("rl", "loaded RL policy (ONNX; controller_params.policy, default: the shipped PPO policy)")
class RlController:
    """Runs an ONNX policy trained on the twin (see ``twin train``).

    Parameters
    ----------
    site : the site the policy drives (its spec must match the policy's).
    policy : path of the ``.onnx`` file (default: the shipped Iquitos policy).
    """

    name = "rl"
    phases = PHASES

    def __init__(self, site: SiteConfig, policy: str | Path | None = None) -> None:
        self.policy = OnnxPolicy(policy if policy is not None else DEFAULT_POLICY)
        self.spec = build_spec(site, self.policy.spec.options)
        self.policy.check_spec(self.spec)
        self.encoder = Encoder(self.spec)
        self.to_setpoints = ActionMapper(self.spec)

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the forecaster (a policy is stateless)."""
        self.encoder.prepare(None)

    def prepare(self, context: ControlContext) -> None:
        """Use the run's forecaster for the look-ahead features."""
        self.encoder.prepare(context.forecaster, context.n_steps, context.dt_s)

    def decide(self, obs: SiteObservation) -> Setpoints:
        """Encode, infer, map to setpoints."""
        return self.to_setpoints(self.policy.act(self.encoder.encode(obs)), obs)

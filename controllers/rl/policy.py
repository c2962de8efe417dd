"""Loading an ONNX policy with onnxruntime (no torch, no pickle at run time).

An ONNX policy file has one float32 input ``obs`` of shape ``[batch, n_obs]`` and one
float32 output ``action`` of shape ``[batch, n_act]`` (values in [0, 1]; clipped anyway),
and carries in its metadata the encoding spec it was trained with (``pvbess.spec``, JSON)
and that spec's hash (``pvbess.spec_hash``). Anything else — a missing file, a file that
is not ONNX, a Stable-Baselines3 ``.zip`` (unpickling executes code), a policy without
the metadata or built for another spec — is a ``ConfigError`` naming the file and the fix.

onnxruntime allocates from one memory arena per process, capped at
:data:`MAX_POLICY_MEMORY_BYTES`: a policy that asks for more (a hostile or broken file) fails
that step with a ``ConfigError`` instead of exhausting the machine's memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from controllers.rl.encoding import F32, META_HASH, META_SPEC, Spec
from twin.errors import ConfigError

#: The policy shipped with the project (``twin run scenarios/annual.yaml --controller rl``).
DEFAULT_POLICY = Path(__file__).resolve().parent / "policies" / "iquitos_ppo.onnx"

#: Memory cap of the onnxruntime CPU arena, shared by every policy of the process [bytes]
#: (the shipped MLP policies need well under 1 MiB per step).
MAX_POLICY_MEMORY_BYTES = 256 * 2**20

_arena_ready = False

_RETRAIN = "train one for this site with 'twin train SCENARIO --out DIR' and pass DIR/policy.onnx"


def _capped_arena() -> None:
    """Register the process-wide CPU arena, capped at :data:`MAX_POLICY_MEMORY_BYTES` (once)."""
    global _arena_ready
    if _arena_ready:
        return
    import onnxruntime as ort

    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(info, ort.OrtArenaCfg({"max_mem": MAX_POLICY_MEMORY_BYTES}))
    _arena_ready = True


class OnnxPolicy:
    """An ONNX policy, run by onnxruntime on one CPU thread.

    Parameters
    ----------
    path : the ``.onnx`` file.

    Attributes
    ----------
    spec : the encoding spec stored in the file.
    spec_hash : the hash stored in the file.
    metadata : all metadata properties of the file.
    """

    def __init__(self, path: Path | str) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        p = self.path
        if p.suffix.lower() == ".zip":
            raise ConfigError(
                f"{p}: a Stable-Baselines3 .zip is not loaded (its loader unpickles code); "
                f"give the ONNX file 'twin train' exports ({_RETRAIN})")
        if not p.is_file():
            raise ConfigError(f"{p}: policy file not found (field 'controller_params.policy'); "
                              f"give an existing .onnx file or {_RETRAIN}")
        _capped_arena()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4  # fatal only: a failing step is reported as a ConfigError
        opts.add_session_config_entry("session.use_env_allocators", "1")  # the capped arena
        try:
            sess = ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... kinds
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{p}: not a readable ONNX model ({first}); "
                              f"re-export it or {_RETRAIN}") from None
        meta: dict[str, str] = dict(sess.get_modelmeta().custom_metadata_map)
        self.metadata = meta
        if META_SPEC not in meta or META_HASH not in meta:
            raise ConfigError(f"{p}: the ONNX file has no '{META_SPEC}'/'{META_HASH}' metadata, so its "
                              f"observation/action spec is unknown; {_RETRAIN}")
        try:
            spec = Spec.from_json(meta[META_SPEC])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{p}: metadata '{META_SPEC}' is not a valid spec ({exc}); "
                              f"{_RETRAIN}") from None
        self.spec = spec
        self.spec_hash = meta[META_HASH]
        if spec.hash != self.spec_hash:
            raise ConfigError(f"{p}: metadata '{META_HASH}' = {self.spec_hash} does not match the spec it "
                              f"carries (hash {spec.hash}): the file was edited; {_RETRAIN}")
        ins, outs = sess.get_inputs(), sess.get_outputs()
        if len(ins) != 1 or len(outs) < 1:
            raise ConfigError(f"{p}: a policy has one input and one output, this model has "
                              f"{len(ins)} inputs and {len(outs)} outputs; {_RETRAIN}")
        n_in = ins[0].shape[-1] if ins[0].shape else None
        n_out = outs[0].shape[-1] if outs[0].shape else None
        if n_in != spec.n_obs or n_out != spec.n_act:
            raise ConfigError(f"{p}: the model maps {n_in} inputs to {n_out} outputs but its spec says "
                              f"{spec.n_obs} -> {spec.n_act}; {_RETRAIN}")
        self._sess = sess
        self._in = ins[0].name
        self._out = [outs[0].name]

    def check_spec(self, expected: Spec) -> None:
        """Raise ``ConfigError`` unless the policy's spec hash equals ``expected``'s."""
        if expected.hash == self.spec_hash:
            return
        why = "; ".join(expected.diff(self.spec)) or "spec differs"
        raise ConfigError(
            f"{self.path}: policy spec hash {self.spec_hash} does not match this site's observation/"
            f"action spec {expected.hash} ({why}); {_RETRAIN}")

    def _run(self, obs: F32) -> Any:
        try:
            return self._sess.run(self._out, {self._in: obs})[0]
        except Exception as exc:  # onnxruntime's Fail / RuntimeException kinds, e.g. out of arena
            text = str(exc).strip()
            why = "it asked for more memory than the cap" if "Available memory" in text else (
                text.splitlines()[-1][:200] if text else type(exc).__name__)
            raise ConfigError(
                f"{self.path}: the policy failed to compute an action ({why}; a policy may use at "
                f"most {MAX_POLICY_MEMORY_BYTES // 2**20} MiB); {_RETRAIN}") from None

    def act(self, obs_vec: F32) -> F32:
        """Action for one observation vector (float32 ``[n_obs]`` -> ``[n_act]``)."""
        out = self._run(obs_vec.reshape(1, -1))
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def act_batch(self, obs: F32) -> F32:
        """Actions for a batch of observation vectors (``[batch, n_obs]``)."""
        out = self._run(np.asarray(obs, np.float32))
        return np.asarray(out, dtype=np.float32)


__all__ = ["DEFAULT_POLICY", "MAX_POLICY_MEMORY_BYTES", "OnnxPolicy"]

"""Writing policies as ONNX files: a multilayer perceptron from its weights, plus the spec.

Built with the ``onnx`` package's helper API from plain numpy weights, so training code
hands over arrays (no torch exporter, no pickle) and the file always has the same shape:
input ``obs`` ``[batch, n_obs]`` → Gemm/activation layers → ``Clip(0, 1)`` → output
``action`` ``[batch, n_act]``, with the spec and its hash in the metadata.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from controllers.rl.encoding import META_HASH, META_SPEC, Spec

#: Opset of the files written (Gemm, Tanh, Relu, Clip are stable across opsets >= 13).
OPSET = 17
#: IR version readable by every onnxruntime of the last years.
IR_VERSION = 8


def mlp_to_onnx(weights: Sequence[npt.NDArray[np.floating]], biases: Sequence[npt.NDArray[np.floating]],
                spec: Spec, activation: str = "tanh",
                extra_metadata: Mapping[str, str] | None = None) -> Any:
    """An ONNX ``ModelProto`` for ``action = clip(W_L·act(... act(W_1·obs + b_1)) + b_L, 0, 1)``.

    Parameters
    ----------
    weights : one matrix per layer, shape ``[n_out, n_in]`` (torch ``Linear`` layout).
    biases : one vector per layer, shape ``[n_out]``.
    spec : the encoding spec (its hash goes into the metadata).
    activation : ``tanh`` or ``relu`` between layers (none after the last).
    extra_metadata : more metadata properties (e.g. the training command).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(weights) != len(biases) or not weights:
        raise ValueError("need one bias per weight matrix and at least one layer")
    if weights[0].shape[1] != spec.n_obs or weights[-1].shape[0] != spec.n_act:
        raise ValueError(f"layers map {weights[0].shape[1]} -> {weights[-1].shape[0]} values; the spec "
                         f"needs {spec.n_obs} -> {spec.n_act}")
    act_op = {"tanh": "Tanh", "relu": "Relu"}[activation]
    nodes = []
    inits = []
    x = "obs"
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        wn, bn, y = f"W{i}", f"B{i}", f"h{i}"
        inits.append(numpy_helper.from_array(np.asarray(w, np.float32), wn))
        inits.append(numpy_helper.from_array(np.asarray(b, np.float32).reshape(-1), bn))
        nodes.append(helper.make_node("Gemm", [x, wn, bn], [y], transB=1))
        x = y
        if i < len(weights) - 1:
            nodes.append(helper.make_node(act_op, [x], [f"a{i}"]))
            x = f"a{i}"
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "lo"))
    inits.append(numpy_helper.from_array(np.array(1.0, np.float32), "hi"))
    nodes.append(helper.make_node("Clip", [x, "lo", "hi"], ["action"]))
    graph = helper.make_graph(
        nodes, "pvbess_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", spec.n_obs])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", spec.n_act])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="pvbess-twin")
    model.ir_version = IR_VERSION
    meta = {META_SPEC: spec.to_json(), META_HASH: spec.hash, **(extra_metadata or {})}
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


def save_model(model: Any, path: Path | str) -> Path:
    """Write ``model`` to ``path`` atomically (temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


__all__ = ["IR_VERSION", "OPSET", "mlp_to_onnx", "save_model"]

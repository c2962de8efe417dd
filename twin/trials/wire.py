"""What crosses a process boundary in a Dask trial, without pickle.

A task travels as the scenario's JSON (``Scenario.model_dump_json``) plus plain fields; a
seed's inputs travel once as ``.npz`` bytes (``numpy.savez``, loaded with
``allow_pickle=False``); a run comes back as a JSON-ready record. Only Dask's references
to the two task functions are its own business.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np

from twin.config import Scenario
from twin.inputs import PlantInputs, SessionTable

_NONE = "__none__"


def _put(arrays: dict[str, np.ndarray], name: str, value: Any) -> None:
    if value is None:
        arrays[f"{_NONE}{name}"] = np.zeros(0)
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"inputs field {name!r}: object arrays cannot cross without pickle")
        arrays[name] = value
    elif isinstance(value, bool | int | float | np.number):
        arrays[name] = np.asarray(value)
    else:
        raise TypeError(f"inputs field {name!r}: cannot encode a {type(value).__name__}")


def encode_inputs(inputs: PlantInputs) -> bytes:
    """``inputs`` as ``.npz`` bytes (the time index is rebuilt from the scenario)."""
    arrays: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(inputs):
        v = getattr(inputs, f.name)
        if f.name == "index":
            arrays["index_n"] = np.asarray(len(v))
        elif f.name == "sessions":
            if v is None:
                arrays[f"{_NONE}sessions"] = np.zeros(0)
            else:
                for g in dataclasses.fields(v):
                    _put(arrays, f"sessions.{g.name}", getattr(v, g.name))
        else:
            _put(arrays, f.name, v)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _get(z: Any, name: str) -> Any:
    if f"{_NONE}{name}" in z.files:
        return None
    a = z[name]
    return a.item() if a.ndim == 0 else a


def decode_inputs(data: bytes, scn: Scenario) -> PlantInputs:
    """The inverse of :func:`encode_inputs` for the scenario the inputs were built from."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        index = scn.index
        if int(z["index_n"]) != len(index):
            raise ValueError("inputs do not belong to this scenario (step count differs)")
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(PlantInputs):
            if f.name == "index":
                kw["index"] = index
            elif f.name == "sessions":
                kw["sessions"] = None if f"{_NONE}sessions" in z.files else SessionTable(
                    **{g.name: _get(z, f"sessions.{g.name}") for g in dataclasses.fields(SessionTable)})
            else:
                kw[f.name] = _get(z, f.name)
    return PlantInputs(**kw)


__all__ = ["decode_inputs", "encode_inputs"]

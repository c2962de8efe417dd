"""Inputs and tasks cross Dask processes as .npz bytes and JSON, bit for bit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.components.inputs import build_inputs
from twin.config import Scenario, load_scenario
from twin.trials.runner import RunTask, dask_inputs, dask_run, run_record, task_json
from twin.trials.wire import decode_inputs, encode_inputs


def _same(a: Any, b: Any) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x):
            _same(x, y)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        elif isinstance(x, pd.Index):
            assert x.equals(y) and x.dtype == y.dtype, f.name
        else:
            assert x == y, f.name


def test_inputs_round_trip_exactly(make_scenario: Any) -> None:
    scn = load_scenario(Path(make_scenario(duration="1d", dt="15min", seed=5)))
    inputs = build_inputs(scn)
    _same(inputs, decode_inputs(encode_inputs(inputs), scn))
    again = Scenario.model_validate_json(scn.model_dump_json())
    assert again == scn


def test_a_run_through_the_wire_equals_the_in_process_run(make_scenario: Any) -> None:
    scn = load_scenario(Path(make_scenario(duration="1d", dt="1h", seed=2)))
    task = RunTask("k", scn, "six_phase", "ik", {"bess.e_capacity_kwh": 2000})
    local = run_record(task, build_inputs(scn))
    remote = dask_run(task_json(task), dask_inputs(scn.model_dump_json()))
    json.dumps(remote)  # JSON-ready
    for rec in (local, remote):
        rec.pop("wall_s")
        for k in ("sim_wall_s", "inputs_wall_s", "ticks_per_s", "events_per_s", "decide_median_us",
                  "decide_p99_us"):
            rec["kpis"].pop(k, None)
    assert remote == local

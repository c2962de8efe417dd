"""What crosses a process boundary in a trial is JSON, and a run through it is the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twin.components.inputs import build_inputs
from twin.config import Scenario, load_scenario
from twin.trials.runner import RunTask, dask_unit, hand_result, run_record, unit_json

_WALL = ("sim_wall_s", "inputs_wall_s", "ticks_per_s", "events_per_s", "decide_median_us", "decide_p99_us")


def _strip(rec: dict[str, Any]) -> dict[str, Any]:
    rec = dict(rec, kpis=dict(rec["kpis"]))
    rec.pop("wall_s")
    for k in _WALL:
        rec["kpis"].pop(k, None)
    return rec


def test_a_scenario_round_trips_through_json(make_scenario: Any) -> None:
    scn = load_scenario(Path(make_scenario(duration="1d", dt="15min", seed=5)))
    assert Scenario.model_validate_json(scn.model_dump_json()) == scn


def test_a_unit_through_json_equals_the_in_process_runs(make_scenario: Any) -> None:
    scn = load_scenario(Path(make_scenario(duration="1d", dt="1h", seed=2)))
    unit = [RunTask(f"k-{c}", scn, c, "ik", {"bess.e_capacity_kwh": 2000}) for c in ("six_phase", "no_bess")]
    inputs = build_inputs(scn)
    local = {t.key: run_record(t, inputs) for t in unit}
    texts = json.loads(dask_unit(unit_json(unit)))  # what a Dask worker returns: JSON strings
    remote: dict[str, dict[str, Any]] = {}
    by_key = {t.key: t for t in unit}
    for text in texts:
        hand_result(text, by_key, lambda r: remote.__setitem__(r["key"], r),
                    lambda t, e: (_ for _ in ()).throw(e))
    assert by_key == {}
    assert {k: _strip(v) for k, v in remote.items()} == {k: _strip(v) for k, v in local.items()}


def test_a_failed_run_crosses_as_its_type_and_message(make_scenario: Any) -> None:
    scn = load_scenario(Path(make_scenario(duration="1d", dt="1h", seed=2)))
    unit = [RunTask("bad", scn, "no_such_controller", "ik"), RunTask("good", scn, "no_bess", "ik")]
    texts = json.loads(dask_unit(unit_json(unit)))
    errors: list[str] = []
    recs: list[str] = []
    by_key = {t.key: t for t in unit}
    for text in texts:
        hand_result(text, by_key, lambda r: recs.append(r["key"]),
                    lambda t, e: errors.append(f"{t.key} {type(e).__name__}: {e}"))
    assert recs == ["good"]
    assert len(errors) == 1 and errors[0].startswith("bad ConfigError: ")
    assert "no_such_controller" in errors[0]

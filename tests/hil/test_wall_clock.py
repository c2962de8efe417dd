"""``twin hil --devices FILE --clock wall`` against a simulator started on its own in real
time: no simulator clock device, no results file — the record is what the adapters read."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.app.cli import main
from twin.config import load_scenario, parse_set
from twin.engine import simulate
from twin.engine.results import build_results

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "hil.yaml"
SETS = ["duration=2h", "start=2024-03-04T10:00:00"]
SPEED = 600.0


@pytest.fixture
def realtime_simulator() -> Iterator[dict[str, Any]]:
    cmd = [sys.executable, "-m", "simulators", "--scenario", str(SCENARIO), "--clock",
           "realtime", "--speed", str(SPEED), "--port", "0"]
    for s in SETS:
        cmd += ["--set", s]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())  # blocks until the READY line (an event)
        assert ready["ready"] and ready["mode"] == "realtime"
        yield ready
    finally:
        proc.terminate()
        proc.wait(30)


def test_wall_clock_against_a_separately_started_realtime_simulator(
        realtime_simulator: dict[str, Any], tmp_path: Path) -> None:
    ports = realtime_simulator["ports"]
    devices = {"devices": {d: {"host": "127.0.0.1", "port": ports[d], "unit": 1, "map": d}
                           for d in ("bess", "chargers", "pv_inverter", "site_meter")}}
    dev_file = tmp_path / "devices.yaml"
    dev_file.write_text(yaml.safe_dump(devices))
    out = tmp_path / "wall"
    args = ["hil", str(SCENARIO), "--devices", str(dev_file), "--clock", "wall", "--speed",
            str(SPEED), "--out", str(out), "-q", "--timeout", "1", "--csv"]
    for s in SETS:
        args += ["--set", s]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["steps_done"] == 8 and not s["interrupted"] and s["clock"] == "wall"
    assert s["hil"]["mode"] == "wall" and s["hil"]["fault"] is None
    assert "sim_clock_server" not in s["hil"]  # nothing from inside the simulator
    for f in ("timeseries.parquet", "timeseries.csv", "sessions.parquet", "daily_profile.csv",
              "summary.json", "hil_steps.csv"):
        assert (out / f).exists(), f
    ref = build_results(simulate(load_scenario(SCENARIO, parse_set(SETS)))).summary
    # the two clocks drift a little (the simulator started before the twin): a few %
    for k in ("pv_kwh", "mall_kwh", "load_kwh", "grid_import_kwh", "cost_grid_import_soles"):
        assert s[k] == pytest.approx(ref[k], rel=0.05), k
    assert s["ev_kwh"] == pytest.approx(ref["ev_kwh"], rel=0.15)
    assert s["hil"]["steps_bess_invalid"] == 0 and s["hil"]["steps_sockets_invalid"] == 0

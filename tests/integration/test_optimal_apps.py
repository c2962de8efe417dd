"""``optimal`` and ``mpc`` run like any controller in ``twin live`` and ``twin hil``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SCENARIOS
from twin.app.cli import main


@pytest.mark.parametrize("name", ["optimal", "mpc"])
def test_live_runs_a_planning_controller(tmp_path: Path, name: str) -> None:
    out = tmp_path / "live"
    p = subprocess.run(
        [sys.executable, "-m", "twin", "live", str(SCENARIOS / "hil.yaml"), "--controller", name,
         "--speed", "1000000", "--metrics-addr", "127.0.0.1:0", "--out", str(out),
         "--log-format", "json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["controller"] == name and s["steps_done"] == s["n_steps"]
    assert s["safety_clamps_total"] == 0
    key = "lp" if name == "optimal" else "mpc"
    assert key in s


@pytest.mark.parametrize("name", ["optimal", "mpc"])
def test_hil_lockstep_runs_a_planning_controller(tmp_path: Path, name: str) -> None:
    out = tmp_path / "hil"
    ref = tmp_path / "ref"
    assert main(["hil", str(SCENARIOS / "hil.yaml"), "--controller", name, "--out", str(out),
                 "-q"]) == 0
    assert main(["run", str(SCENARIOS / "hil.yaml"), "--controller", name, "--out", str(ref),
                 "-q"]) == 0
    s = json.loads((out / "summary.json").read_text())
    r = json.loads((ref / "summary.json").read_text())
    assert s["controller"] == name and s["steps_done"] == s["n_steps"]
    # the same plan through Modbus: the same grid cost as the in-process run
    assert s["cost_grid_import_soles"] == pytest.approx(r["cost_grid_import_soles"], rel=1e-3)

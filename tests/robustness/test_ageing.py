"""Red-team cases of the battery ageing parameters (issue 19, point 2).

Each bad value exits 2 with one line naming the field and its bound, no traceback and no
run folder; extreme but allowed values run and keep the capacity physical.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from .conftest import day_scenario
from .test_bounds import twin

BAD = [
    (["bess.hvac_setpoint_c=100"], "bess.hvac_setpoint_c", "45"),
    (["bess.hvac_setpoint_c=-inf"], "bess.hvac_setpoint_c", "finite"),
    (["bess.hvac_coupling_frac=1.5"], "bess.hvac_coupling_frac", "1"),
    (["bess.hvac_coupling_frac=-0.1"], "bess.hvac_coupling_frac", "0"),
    (["bess.container_tau_h=nan"], "bess.container_tau_h", "finite"),
    (["bess.container_tau_h=1000"], "bess.container_tau_h", "168"),
    (["bess.ageing_model=weibull"], "bess.ageing_model", "'blast' or 'linear'"),
    (["bess.hvac_coupling_frac=inf"], "bess.hvac_coupling_frac", "finite"),
]


@pytest.mark.parametrize(("sets", "field", "bound"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_ageing_parameters_exit_2(tmp_path: Path, sets: list[str], field: str,
                                      bound: str) -> None:
    scn = day_scenario(tmp_path)
    out = tmp_path / "run"
    args = ["run", str(scn), "--out", str(out), "-q"]
    for s in sets:
        args += ["--set", s]
    r = twin(args, tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert field in r.stderr and bound in r.stderr, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("sets", [
    # the hottest allowed container, cells following a 20-45 °C ambient, full SOC window
    ["bess.hvac_setpoint_c=45", "bess.hvac_coupling_frac=1", "bess.container_tau_h=0",
     "pv.cloudiness.t_amb_min_c=20", "pv.cloudiness.t_amb_max_c=45", "bess.soc_min_frac=0",
     "bess.soc_initial_frac=1"],
    # the coldest allowed setpoint with an ideal HVAC
    ["bess.hvac_setpoint_c=0", "bess.hvac_coupling_frac=0", "bess.container_tau_h=168"],
    # no battery at all
    ["bess.e_capacity_kwh=0"],
], ids=["hot", "cold", "no-battery"])
def test_extreme_containers_keep_the_capacity_physical(tmp_path: Path, sets: list[str]) -> None:
    """Two years at 1-h ticks: the capacity stays in [0, nominal] and falls monotonically."""
    scn = day_scenario(tmp_path, duration="730d", controller="six_phase")
    out = tmp_path / "run"
    args = ["run", str(scn), "--out", str(out), "-q"]
    for s in sets:
        args += ["--set", s]
    r = twin(args, tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    cap0 = s["capacity_kwh"]
    assert 0.0 <= s["capacity_end_kwh"] <= cap0
    assert 0.0 <= s["capacity_fade_percent"] <= 100.0 or cap0 == 0.0
    if cap0 > 0:
        assert s["capacity_fade_percent"] > 0.0
        cap = pd.read_parquet(out / "timeseries.parquet")["capacity_kwh"].to_numpy()
        assert (cap[1:] <= cap[:-1] + 1e-12).all() and (cap >= 0).all()

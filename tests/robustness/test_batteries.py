"""Red-team cases of the battery list (``bess:`` as a list): bad site files give one clear
error and exit 2; the split and the safety layer never let a battery out of its envelope."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.robustness.conftest import SITE
from twin.app.cli import main
from twin.components.bess import (
    aggregate_state,
    allowed_charge_kw,
    allowed_discharge_kw,
    split_power_kw,
)
from twin.engine.safety import SafetyLayer
from twin.types import BessState, Setpoints, SiteObservation, SocketArrays, TariffState

GOOD = {"name": "a", "e_capacity_kwh": 500}


def _run_site(tmp_path: Path, bess: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    site = yaml.safe_load(SITE.read_text())
    site["bess"] = bess
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(
        {"name": "t", "site": "site.yaml", "start": "2024-03-04T00:00:00", "duration": "1d",
         "dt": "1h", "seed": 1}))
    rc = main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "run"), "-q"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(("bess", "needle"), [
    ([], "field 'bess': an empty list"),
    ([GOOD, {**GOOD}], "duplicate battery name 'a'"),
    ([GOOD, 3], "each entry of a list of batteries is a mapping"),
    ([GOOD, {"e_capacity_kwh": 100}], "needs a 'name'"),
    ([GOOD, {"name": "b", "e_capacity_kwh": 0}], "e_capacity_kwh must be > 0"),
    ([GOOD, {"name": "b", "soc_min_frac": 0.9, "soc_max_frac": 0.5}], "field 'bess.1'"),
    ([GOOD, {"name": "b c"}], "field 'bess.1.name'"),
    ([GOOD, {"name": "b", "p_charge_kw": 1}], "field 'bess.1.p_charge_kw': unknown key"),
])
def test_bad_battery_lists_are_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               bess: Any, needle: str) -> None:
    rc, err = _run_site(tmp_path, bess, capsys)
    assert rc == 2
    assert needle in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def _state(cap: float, e: float, p_ch: float, p_dis: float, lo: float = 0.1, hi: float = 0.95,
           eta: float = 0.95, valid: bool = True) -> BessState:
    return BessState(e / cap, e, cap, p_ch, p_dis, lo, hi, eta, eta, 0.0, valid)


states_st = st.lists(st.builds(
    lambda cap, f, pc, pd_: _state(cap, cap * (0.1 + 0.85 * f), pc, pd_),
    st.floats(10.0, 5000.0), st.floats(0.0, 1.0), st.floats(0.0, 500.0), st.floats(0.0, 500.0)),
    min_size=2, max_size=5)


@given(states=states_st, p=st.floats(-3000.0, 3000.0), dt_h=st.sampled_from([0.25, 1.0]))
def test_the_split_keeps_each_battery_in_its_envelope(states: list[BessState], p: float,
                                                      dt_h: float) -> None:
    parts = split_power_kw(p, tuple(states), dt_h)
    assert len(parts) == len(states)
    for b, q in zip(states, parts, strict=True):
        assert -allowed_charge_kw(b, dt_h) - 1e-9 <= q <= allowed_discharge_kw(b, dt_h) + 1e-9
        assert q == 0.0 or math.copysign(1.0, q) == math.copysign(1.0, p)
    cap = math.fsum(allowed_discharge_kw(b, dt_h) if p > 0 else allowed_charge_kw(b, dt_h)
                    for b in states)
    if abs(p) <= cap:  # inside the site envelope: nothing lost
        assert math.isclose(math.fsum(parts), p, rel_tol=1e-9, abs_tol=1e-9)


def _obs(states: tuple[BessState, ...], p_pv: float = 0.0, p_mall: float = 1000.0) -> SiteObservation:
    z = np.zeros(1)
    sockets = SocketArrays(np.zeros(1, dtype=np.int64), np.ones(1), np.zeros(1, dtype=bool), z,
                           z, np.full(1, np.inf))
    from datetime import UTC, datetime
    return SiteObservation(0, 0.0, 3600.0, datetime(2024, 1, 1, tzinfo=UTC), "UTC", 0.0, 0,
                           p_pv, p_mall, 0.0, 0.0, True, aggregate_state(states), sockets,
                           TariffState(0.5, False), 0, True, states)


def test_safety_clamps_each_battery_and_the_total() -> None:
    big = _state(1200.0, 600.0, 250.0, 250.0)
    small = _state(800.0, 100.0, 150.0, 150.0)  # 20 kWh above its 10 % floor
    obs = _obs((big, small))
    saf = SafetyLayer()
    sock = np.zeros(1)
    # a total beyond both ratings: cut to the sum of what each may give
    p, _ = saf.clamp(Setpoints(1000.0, sock), obs)
    want = allowed_discharge_kw(big, 1.0) + allowed_discharge_kw(small, 1.0)
    assert math.isclose(p, want, rel_tol=1e-12)
    assert saf.split_kw[1] <= allowed_discharge_kw(small, 1.0) + 1e-9
    assert math.isclose(sum(saf.split_kw), p, rel_tol=1e-12)
    # a per-battery request: each clamped against its own envelope
    p, _ = saf.clamp(Setpoints(0.0, sock, 0, (300.0, -400.0)), obs)
    assert saf.split_kw == (250.0, -150.0)
    assert p == 100.0
    assert {"bess_discharge_limit", "bess_charge_limit"} <= set(saf.log.by_reason)
    assert any(c.device == "bess[1]" for c in saf.log.first)
    # an invalid battery gets nothing; the other still works
    bad = obs._replace(batteries=(big, small._replace(valid=False)))
    p, _ = saf.clamp(Setpoints(200.0, sock), bad)
    assert saf.split_kw[1] == 0.0
    assert math.isclose(p, 200.0) and math.isclose(saf.split_kw[0], 200.0)


def test_no_reverse_flow_cuts_the_given_split_together() -> None:
    big = _state(1200.0, 600.0, 250.0, 250.0)
    small = _state(800.0, 400.0, 150.0, 150.0)
    saf = SafetyLayer()
    p, _ = saf.clamp(Setpoints(0.0, np.zeros(1), 0, (200.0, 100.0)), _obs((big, small),
                                                                        p_mall=150.0))
    assert math.isclose(p, 150.0)
    assert math.isclose(saf.split_kw[0], 100.0) and math.isclose(saf.split_kw[1], 50.0)


def test_set_names_one_battery_of_a_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = yaml.safe_load(SITE.read_text())
    site["bess"] = [GOOD, {"name": "b", "e_capacity_kwh": 300}]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    scn = tmp_path / "s.yaml"
    scn.write_text(yaml.safe_dump({"name": "t", "site": "site.yaml", "start": "2024-03-04T00:00:00",
                                   "duration": "1d", "dt": "1h", "seed": 1}))
    # a key of the list as if it were one battery: one clear error naming the entries
    rc = main(["run", str(scn), "--set", "bess.e_capacity_kwh=900", "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert rc == 2 and "'bess' is a list; name an entry (a, b)" in err and "Traceback" not in err
    # one battery by name
    assert main(["run", str(scn), "--set", "bess.b.e_capacity_kwh=900", "--out",
                 str(tmp_path / "b"), "-q"]) == 0
    import json
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert [u["capacity_kwh"] for u in s["batteries"]] == [500.0, 900.0]
    assert s["capacity_kwh"] == 1400.0

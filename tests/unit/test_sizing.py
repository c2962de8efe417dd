"""The seeds' sizing formulas (docs/spec.md §6, seed 003) on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from twin.sizing import SizingParams, deficit_stats, size_bess


def _two_days() -> tuple[np.ndarray, np.ndarray]:
    """Day 1: PV 100 kWh/h at 10-14 h, EV 60 at 12-15 h; day 2: PV 50, EV 80 (same hours)."""
    pv = np.zeros((2, 24))
    ev = np.zeros((2, 24))
    pv[0, 10:15], ev[0, 12:16] = 100.0, 60.0
    pv[1, 10:15], ev[1, 12:16] = 50.0, 80.0
    return pv, ev


def test_deficit_and_surplus_by_hand() -> None:
    st = deficit_stats(*_two_days())
    # day 1 deficit: only 15 h (60); day 2: 12-14 h 30 each + 15 h 80 = 170
    assert (st.deficit_mean_kwh, st.deficit_max_kwh, st.peak_deficit_kw) == (115.0, 170.0, 80.0)
    # surplus: day 1 100 + 100 + 3 × 40 = 320; day 2 50 + 50 = 100
    assert (st.surplus_mean_kwh, st.surplus_max_kwh) == (210.0, 320.0)


def test_every_mode_by_hand() -> None:
    res = size_bess(*_two_days())  # DoD 0.8 × η 0.95 = 0.76; ×1.2; C 0.36; ≥ 1.1 × 80 kW
    m = res.modes
    assert m["ev_open_hours"].raw_kwh == pytest.approx(170 / 0.76)  # 223.68
    assert m["ev_open_hours"].rounded_kwh == 230.0
    assert m["ev_open_hours"].capacity_kwh == pytest.approx(276.0)
    assert m["ev_open_hours"].power_kw == pytest.approx(276.0 * 0.36)  # 99.36 > 88
    same = ("raw_kwh", "rounded_kwh", "capacity_kwh", "power_kw")
    assert [getattr(m["ev_deficit_100"], f) for f in same] == [getattr(m["ev_open_hours"], f) for f in same]
    assert m["surplus_only"].raw_kwh == pytest.approx(210 / 0.76)  # 276.3 → 280 → 336
    assert m["surplus_only"].capacity_kwh == pytest.approx(336.0)
    assert m["autonomy"].raw_kwh == pytest.approx(80 * 4 / 0.76)  # 421.05 → 430 → 516
    assert m["autonomy"].capacity_kwh == pytest.approx(516.0)
    assert m["autonomy"].power_kw == pytest.approx(516.0 * 0.36)
    assert m["max"].capacity_kwh == pytest.approx(516.0)


def test_seed_003_worked_example() -> None:
    """Seed 003: max deficit 708 kWh/d, peak 156 kW, surplus 22,149 kWh/d → 931 → 940 → 1,128 kWh, 406 kW."""
    ev = np.zeros((1, 24))
    pv = np.zeros((1, 24))
    ev[0, 17:22] = [156.0, 150.0, 140.0, 132.0, 130.0]  # Σ 708, peak 156
    pv[0, 6:17] = 22149.0 / 11
    res = size_bess(pv, ev)
    m = res.modes["ev_open_hours"]
    assert m.raw_kwh == pytest.approx(931.578947, rel=1e-6)
    assert (m.rounded_kwh, m.capacity_kwh) == (940.0, pytest.approx(1128.0))
    assert m.power_kw == pytest.approx(406.08)
    assert res.modes["autonomy"].raw_kwh == pytest.approx(821.052631, rel=1e-6)
    assert res.modes["surplus_only"].raw_kwh == pytest.approx(29143.42, rel=1e-6)


def test_power_floor_is_peak_margin() -> None:
    """A tall, short deficit: C-rate power is below 1.1 × the peak, so the floor wins."""
    ev = np.zeros((1, 24))
    ev[0, 19] = 300.0
    res = size_bess(np.zeros((1, 24)), ev, SizingParams(c_rate_per_h=0.1))
    m = res.modes["ev_open_hours"]
    assert m.power_kw == pytest.approx(330.0)
    assert m.capacity_kwh == pytest.approx(400.0 * 1.2)  # 394.7 → 400


def test_bad_shapes() -> None:
    with pytest.raises(ValueError):
        size_bess(np.zeros((2, 24)), np.zeros((3, 24)))

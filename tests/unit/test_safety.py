"""The safety layer bends what is outside the envelope, and reports every bend."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from twin.engine.safety import SafetyLayer
from twin.types import BessState, Setpoints, SiteObservation, SocketArrays, TariffState

N = 4
RATING = np.array([3.7, 3.7, 7.4, 7.4])


def obs(soc: float = 0.5, pv: float = 0.0, mall: float = 1000.0, demand: float = 0.0,
        valid: bool = True, sockets_valid: bool = True, dt_s: float = 900.0) -> SiteObservation:
    b = BessState(soc_frac=soc, e_kwh=soc * 2000.0, e_capacity_kwh=2000.0, p_charge_max_kw=400.0,
                  p_discharge_max_kw=400.0, soc_min_frac=0.2, soc_max_frac=1.0,
                  eta_charge=0.97, eta_discharge=0.97, valid=valid)
    pd_kw = np.full(N, demand)
    s = SocketArrays(np.array([0, 0, 1, 1]), RATING, pd_kw > 0, pd_kw, pd_kw, np.full(N, math.inf),
                     n_occupied=int((pd_kw > 0).sum()), p_demand_total_kw=float(pd_kw.sum()),
                     valid=sockets_valid)
    return SiteObservation(0, 0.0, dt_s, datetime(2024, 1, 1, tzinfo=UTC), "America/Lima", 12.0, 0,
                           pv, mall, float(pd_kw.sum()), 0.0, True, b, s, TariffState(0.28, False))


def test_power_limits_and_reasons() -> None:
    sl = SafetyLayer()
    p, _ = sl.clamp(Setpoints(900.0, RATING), obs())
    assert p == 400.0 and sl.log.by_reason == {"bess_discharge_limit": 1}
    p, _ = sl.clamp(Setpoints(-900.0, RATING), obs(pv=2000.0))
    assert p == -400.0 and sl.log.by_reason["bess_charge_limit"] == 1


def test_soc_window_over_the_step() -> None:
    sl = SafetyLayer()
    # 21 % SOC: only 20 kWh above the floor; over 15 min that is ~77.6 kW
    p, _ = sl.clamp(Setpoints(400.0, RATING), obs(soc=0.21))
    assert p == pytest.approx(20.0 * 0.97 / 0.25)
    assert "bess_soc_min" in sl.log.by_reason
    p, _ = sl.clamp(Setpoints(-400.0, RATING), obs(soc=0.995, pv=3000.0))
    assert p == pytest.approx(-(10.0 / 0.97) / 0.25)
    assert "bess_soc_max" in sl.log.by_reason


def test_no_reverse_flow() -> None:
    sl = SafetyLayer(export_limit_kw=0.0)
    p, _ = sl.clamp(Setpoints(300.0, RATING), obs(pv=900.0, mall=1000.0))
    assert p == pytest.approx(100.0)
    assert sl.log.by_reason == {"no_reverse_flow": 1}


def test_sockets_clipped_and_nan() -> None:
    sl = SafetyLayer()
    _, ps = sl.clamp(Setpoints(0.0, np.array([10.0, -1.0, np.nan, 7.4])), obs())
    assert np.array_equal(ps, np.array([3.7, 0.0, 0.0, 7.4]))
    assert set(sl.log.by_reason) == {"socket_rating", "socket_negative", "socket_not_finite"}
    p, _ = sl.clamp(Setpoints(float("nan"), RATING), obs())
    assert p == 0.0 and "bess_not_finite" in sl.log.by_reason


def test_invalid_telemetry_gives_safe_setpoints() -> None:
    sl = SafetyLayer(socket_failsafe_kw=1.0)
    p, ps = sl.clamp(Setpoints(200.0, RATING), obs(valid=False, sockets_valid=False))
    assert p == 0.0
    assert np.array_equal(ps, np.full(N, 1.0))
    assert {"bess_telemetry_invalid", "sockets_telemetry_invalid"} <= set(sl.log.by_reason)


def test_grid_import_limit_cuts_charging_then_sockets() -> None:
    sl = SafetyLayer(import_limit_kw=1100.0)
    p, _ps = sl.clamp(Setpoints(-300.0, RATING), obs(mall=1000.0, demand=3.0))
    # load 1,012 kW: charging may take only 88 kW
    assert p == pytest.approx(-88.0)
    sl2 = SafetyLayer(import_limit_kw=1005.0)
    _p2, ps2 = sl2.clamp(Setpoints(0.0, RATING), obs(mall=1000.0, demand=3.0))
    assert float(ps2.sum()) == pytest.approx(5.0)


def test_wrong_socket_count_is_a_controller_bug() -> None:
    with pytest.raises(ValueError, match="socket setpoints"):
        SafetyLayer().clamp(Setpoints(0.0, np.zeros(3)), obs())


def test_invalid_meters_use_last_valid_values_with_a_margin_and_are_counted() -> None:
    sl = SafetyLayer(meter_margin_frac=0.2)
    # first step: no valid meter reading yet -> no discharge at all
    p, _ = sl.clamp(Setpoints(300.0, RATING), obs(pv=0.0, mall=1000.0)._replace(meters_valid=False))
    assert p == 0.0 and sl.log.by_reason["meters_invalid"] == 1
    # a valid reading: mall 500 kW, PV 200 kW -> net load 300 kW
    p, _ = sl.clamp(Setpoints(300.0, RATING), obs(pv=200.0, mall=500.0))
    assert p == 300.0
    # meters invalid now (garbage 0 kW mall would forbid everything; a frozen high mall would
    # allow reverse flow): the last valid values with the margin on the safe side
    bad = obs(pv=0.0, mall=9999.0)._replace(meters_valid=False)
    p, _ = sl.clamp(Setpoints(300.0, RATING), bad)
    assert p == pytest.approx(500.0 * 0.8 - 200.0 * 1.2)  # 160 kW: no reverse flow
    assert sl.log.by_reason["meters_invalid"] == 2 and sl.log.by_reason["no_reverse_flow"] == 2


def test_invalid_meters_import_limit_on_the_high_side() -> None:
    sl = SafetyLayer(import_limit_kw=700.0, meter_margin_frac=0.2)
    sl.clamp(Setpoints(0.0, RATING), obs(pv=0.0, mall=500.0))
    # charging 300 kW on top of a 500 kW mall is 800 kW; with the margin 900 kW -> cut 200
    p, _ = sl.clamp(Setpoints(-300.0, RATING), obs(pv=0.0, mall=0.0)._replace(meters_valid=False))
    assert p == pytest.approx(-100.0)
    assert sl.log.by_reason["grid_import_limit"] == 1

"""Vehicles that charge like vehicles (issue 19, point 3): the CC-CV taper in closed form,
the fleet's settlement with it, and the session draws (charger powers, SOC, dwell stays)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import simpy

from twin.components.fleet import Fleet
from twin.components.sessions import draw_sessions
from twin.components.taper import energy_kwh, energy_kwh_vec, taper_params, time_to_full_h, time_to_full_h_vec
from twin.config import EvConfig
from twin.engine.clocks import run_step_events
from twin.inputs import SessionTable, SocketSpec

# a 5 kWh moto battery at 10 % SOC asking 4.5 kWh (to 100 %), 3.0 kW charger, taper from 80 %
CAP, SOC0, EREQ, TSOC, FLOOR, VMAX = 5.0, 0.1, 4.5, 0.8, 0.2, 3.0


def _ode_energy(erem: float, p: float, tau_h: float, n: int = 200_000) -> float:
    """Reference: the power limit integrated by small explicit steps (independent code)."""
    h = tau_h / n
    soc = SOC0 + (EREQ - erem) / CAP
    e = 0.0
    for _ in range(n):
        g = VMAX if soc <= TSOC else VMAX - (VMAX - FLOOR * VMAX) * (soc - TSOC) / (1 - TSOC)
        de = min(p, g) * h
        de = min(de, erem - e)
        e += de
        soc += de / CAP
    return e


@pytest.mark.parametrize("limit_kw", [10.0, 2.0, 0.5])
def test_taper_energy_matches_the_integrated_power_limit(limit_kw: float) -> None:
    e_t, kap = taper_params(CAP, SOC0, EREQ, TSOC, FLOOR, VMAX)
    p = min(limit_kw, VMAX)
    for tau in (0.5, 1.2, 2.0, 3.0):
        ref = _ode_energy(EREQ, p, tau)
        assert energy_kwh(EREQ, p, VMAX, e_t, kap, tau) == pytest.approx(ref, rel=2e-4, abs=1e-6)


def test_taper_is_exponential_in_time_and_slower_than_constant_power() -> None:
    e_t, kap = taper_params(CAP, SOC0, EREQ, TSOC, FLOOR, VMAX)
    t_cc = (TSOC - SOC0) * CAP / VMAX  # constant current up to the taper SOC
    t_full = time_to_full_h(EREQ, VMAX, VMAX, e_t, kap)
    # CV phase: g falls from VMAX to FLOOR·VMAX; dg/dt = −κ g → τ = ln(1/FLOOR) / κ
    assert t_full == pytest.approx(t_cc + math.log(1.0 / FLOOR) / kap, rel=1e-12)
    assert t_full > EREQ / VMAX * 1.1
    # the energy at the time to full is the request; a moment earlier it is not
    assert energy_kwh(EREQ, VMAX, VMAX, e_t, kap, t_full) == pytest.approx(EREQ, rel=1e-12)
    assert energy_kwh(EREQ, VMAX, VMAX, e_t, kap, t_full * 0.99) < EREQ - 1e-3


def test_taper_composes_over_steps_and_vector_equals_scalar() -> None:
    e_t, kap = taper_params(CAP, SOC0, EREQ, TSOC, FLOOR, VMAX)
    erem, done = EREQ, 0.0
    for _ in range(40):  # 40 steps of 3 min = the whole 2 h in one go
        de = energy_kwh(erem, VMAX, VMAX, e_t, kap, 0.05)
        done += de
        erem -= de
    assert done == pytest.approx(energy_kwh(EREQ, VMAX, VMAX, e_t, kap, 2.0), rel=1e-12)
    rng = np.random.default_rng(3)
    er = rng.uniform(0.0, 4.5, 50)
    p = rng.uniform(0.0, 3.0, 50)
    et = np.where(rng.random(50) < 0.3, -np.inf, rng.uniform(-1, 4, 50))
    # physical: the power at 100 % SOC (erem 0) stays above 0, g(0) = 3 − κ e_t > 0
    kp = np.where(np.isfinite(et), rng.uniform(0.1, 0.9, 50) * 3.0 / np.maximum(et, 1.0), 0.0)
    tau = rng.uniform(0.0, 2.0, 50)
    vec = energy_kwh_vec(er, p, np.full(50, 3.0), et, kp, tau)
    sca = [energy_kwh(a, b, 3.0, c, d, t) for a, b, c, d, t in zip(er, p, et, kp, tau, strict=True)]
    assert np.allclose(vec, sca, rtol=1e-13, atol=1e-15)
    ttf = time_to_full_h_vec(er, p, np.full(50, 3.0), et, kp)
    assert np.all(ttf >= er / np.maximum(p, 1e-300) * (1 - 1e-12))


def _taper_table(rows: list[tuple[float, float, float, float]]) -> SessionTable:
    """Sessions (arrival [s], departure [s], asked [kWh], charger [kW]) with the taper."""
    a = np.array(rows, dtype=float)
    n = len(rows)
    return SessionTable(a[:, 0], a[:, 1], np.zeros(n, dtype=np.int64), a[:, 2], a[:, 3],
                        np.full(n, 3600.0), battery_kwh=np.full(n, CAP),
                        soc_arrival=1.0 - a[:, 2] / CAP, taper_soc=np.full(n, TSOC),
                        taper_floor_frac=np.full(n, FLOOR))


def _play(s: SessionTable, dt: float, n_sock: int, hours: float, limit_kw: float = 100.0
          ) -> tuple[Fleet, float]:
    env = simpy.Environment()
    fleet = Fleet(env, s, SocketSpec(np.zeros(n_sock, dtype=np.int64), np.full(n_sock, 3.7)),
                  dt)
    e = np.zeros(n_sock)
    total = 0.0
    for _ in range(int(hours * 3600 / dt)):
        fleet.observe()
        fleet.begin_step(np.full(n_sock, limit_kw))
        run_step_events(env, dt)
        total += fleet.end_step(e)
    fleet.finish()
    return fleet, total


def test_fleet_taper_settlement_does_not_depend_on_the_tick() -> None:
    rows = [(0.0, 9000.0, 4.5, 3.0), (130.0, 4000.0, 3.3, 3.7), (700.0, 9900.0, 1.7, 2.0),
            (1000.0, 2500.0, 4.0, 3.7),  # leaves mid-taper? no: mid-CC, short
            (4100.0, 11000.0, 4.8, 3.7)]  # waits for a socket, tapers to full
    s = _taper_table(rows)
    got = {dt: _play(s, dt, 4, 4.0) for dt in (60.0, 900.0, 3600.0)}
    ref = got[60.0][0].e_del_kwh
    for dt, (f, total) in got.items():
        assert np.allclose(f.e_del_kwh, ref, rtol=1e-9, atol=0.0), dt
        assert total == pytest.approx(f.e_del_kwh.sum(), rel=1e-12), dt
    # the taper binds: session 0 (4.5 kWh, CC then CV) is full later than 4.5 / 3.0 h
    e_t, kap = taper_params(CAP, SOC0, EREQ, TSOC, FLOOR, VMAX)
    assert ref[0] == pytest.approx(4.5)
    t_full = time_to_full_h(4.5, 3.0, 3.0, e_t, kap)
    assert t_full > 1.7
    # session 3 leaves at 2500 s, still short: exactly the closed-form energy of its stay
    e_t3, kap3 = taper_params(CAP, 1 - 4.0 / CAP, 4.0, TSOC, FLOOR, 3.7)
    assert ref[3] == pytest.approx(energy_kwh(4.0, 3.7, 3.7, e_t3, kap3, 1500 / 3600), rel=1e-12)


def test_fleet_demand_shows_the_taper() -> None:
    # a vehicle at 90 % SOC (in its taper) asks less than its charger over the next step
    s = _taper_table([(0.0, 7200.0, 0.5, 3.0)])
    env = simpy.Environment()
    fleet = Fleet(env, s, SocketSpec(np.zeros(1, dtype=np.int64), np.full(1, 3.7)), 60.0)
    fleet.begin_step(np.full(1, 100.0))
    run_step_events(env, 60.0)
    fleet.end_step(np.zeros(1))
    obs = fleet.observe()
    g_now = VMAX - VMAX * (1 - FLOOR) * (1.0 - 0.5 / CAP + 0.0 - TSOC) / (1 - TSOC)
    assert obs.p_demand_kw[0] < g_now  # tapering, so below the power at the SOC of arrival
    assert obs.p_demand_kw[0] < VMAX * 0.9


def test_draws_charger_powers_soc_and_dwell_independent_of_charge_time() -> None:
    ev = EvConfig()
    start = pd.Timestamp("2024-03-04", tz="America/Lima")
    s = draw_sessions(ev, start, 14 * 86400.0, np.random.default_rng(4))
    moto = s.type_code == 0
    vc = ev.vehicles["moto"]
    assert vc.charger_kw is not None and s.soc_arrival is not None
    assert set(np.unique(s.p_max_kw[moto])) == set(vc.charger_kw)
    assert s.soc_arrival[moto].min() >= 0.0 and s.soc_arrival[moto].max() <= vc.soc_arrival_max
    assert s.e_req_orig_kwh is not None
    assert np.allclose(s.e_req_orig_kwh[moto], 5.0 * (1.0 - s.soc_arrival[moto]))
    cut = s.e_req_orig_kwh > s.e_req_kwh
    assert cut.any() and ((s.arrival_s[cut] % 86400) / 3600 > 19.0).all()  # late riders only
    # dwell stays: not correlated with the energy asked (the linger model would be ~1)
    ok = (s.departure_s > s.arrival_s) & ~cut & moto
    stay = s.departure_s[ok] - s.arrival_s[ok]
    assert abs(np.corrcoef(stay, s.e_req_kwh[ok])[0, 1]) < 0.1
    # gamma mean stay_h_mean (clipped; closing cuts the evening's stays a little)
    assert 0.85 * vc.stay_h_mean < np.mean(stay) / 3600.0 < 1.1 * vc.stay_h_mean

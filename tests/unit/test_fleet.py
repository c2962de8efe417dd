"""EV fleet as discrete events: plug-in, charging under a limit, departures, waiting, patience."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from twin.components.fleet import STATUS_DONE, STATUS_TURNED_AWAY, Fleet
from twin.components.sessions import draw_sessions
from twin.config import EvConfig
from twin.engine.clocks import run_step_events
from twin.inputs import SessionTable, SocketSpec

DT = 900.0


def table(rows: list[tuple[float, float, int, float, float, float]]) -> SessionTable:
    a = np.array(rows, dtype=float)
    return SessionTable(a[:, 0], a[:, 1], a[:, 2].astype(np.int64), a[:, 3], a[:, 4], a[:, 5])


def run(sessions: SessionTable, n_moto: int = 1, limit_kw: float = 100.0, steps: int = 16
        ) -> tuple[Fleet, np.ndarray]:
    env = simpy.Environment()
    spec = SocketSpec(np.array([0] * n_moto, dtype=np.int64), np.full(n_moto, 3.7))
    fleet = Fleet(env, sessions, spec, DT)
    e = np.zeros((steps, n_moto))

    for k in range(steps):  # the engine's step: events up to the step end, then settle
        fleet.observe()
        fleet.begin_step(np.full(n_moto, limit_kw))
        run_step_events(env, DT)
        fleet.end_step(e[k])
    fleet.finish()
    return fleet, e


def test_full_charge_then_idle_until_departure() -> None:
    # arrives 0 s, leaves 2 h, wants 3.7 kWh at 3.7 kW → exactly 1 h of charging
    f, e = run(table([(0.0, 7200.0, 0, 3.7, 3.7, 600.0)]))
    assert e.sum() == pytest.approx(3.7)
    assert e[:4].sum() == pytest.approx(3.7) and e[4:].sum() == 0.0
    assert f.status[0] == STATUS_DONE and f.e_del_kwh[0] == pytest.approx(3.7)


def test_mid_step_plug_in_and_departure() -> None:
    # arrives 450 s (mid step 0), leaves 2250 s (mid step 2): charges 1800 s at 3.7 kW
    f, e = run(table([(450.0, 2250.0, 0, 10.0, 3.7, 600.0)]))
    assert e.sum() == pytest.approx(3.7 * 0.5)
    assert e[0, 0] == pytest.approx(3.7 * 450 / 3600)
    assert e[2, 0] == pytest.approx(3.7 * 450 / 3600)
    assert f.e_del_kwh[0] == pytest.approx(3.7 * 0.5)


def test_limit_respected() -> None:
    _f, e = run(table([(0.0, 3600.0, 0, 10.0, 3.7, 600.0)]), limit_kw=1.0)
    assert e.sum() == pytest.approx(1.0)


def test_waiting_queue_and_patience() -> None:
    rows = [
        (0.0, 1800.0, 0, 1.0, 3.7, 600.0),    # takes the only socket until 1800 s
        (100.0, 5000.0, 0, 1.0, 3.7, 1800.0),  # waits 1700 s < patience → plugs at 1800 s
        (200.0, 5000.0, 0, 1.0, 3.7, 600.0),   # patience ends at 800 s → turned away
    ]
    f, _ = run(table(rows))
    assert list(f.status) == [STATUS_DONE, STATUS_DONE, STATUS_TURNED_AWAY]
    assert f.plug_s[1] == pytest.approx(1800.0)
    assert f.leave_s[2] == pytest.approx(800.0)
    assert f.e_del_kwh[1] == pytest.approx(1.0)


def test_draw_sessions_deterministic_and_in_opening_hours() -> None:
    import pandas as pd

    ev = EvConfig()
    start = pd.Timestamp("2024-03-04", tz="America/Lima")
    a = draw_sessions(ev, start, 7 * 86400.0, np.random.default_rng(5))
    b = draw_sessions(ev, start, 7 * 86400.0, np.random.default_rng(5))
    c = draw_sessions(ev, start, 7 * 86400.0, np.random.default_rng(6))
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert not np.array_equal(a.arrival_s[:50], c.arrival_s[:50])
    hours = (a.arrival_s % 86400.0) / 3600.0
    assert hours.min() >= ev.open_hour and hours.max() < ev.close_hour
    assert ((a.departure_s % 86400.0) / 3600.0).max() <= ev.close_hour + 1e-9
    per_day = a.n / 7
    assert 270 + 39 - 40 < per_day < 270 + 39 + 40
    assert (np.diff(a.arrival_s) >= 0).all()


def test_full_at_its_own_instant_inside_a_step() -> None:
    # 1 kWh at 3.7 kW: full after 973 s, inside step 1; the step energy is exact
    f, e = run(table([(0.0, 7200.0, 0, 1.0, 3.7, 600.0)]))
    assert e[0, 0] == pytest.approx(3.7 * 900 / 3600)
    assert e[1, 0] == pytest.approx(1.0 - 3.7 * 900 / 3600)
    assert e[2:].sum() == 0.0
    assert f.e_del_kwh[0] == 1.0 and f.n_full_events == 1


def _run_at(sessions: SessionTable, dt: float, n_sock: int, hours: float
            ) -> tuple[np.ndarray, float]:
    """Play ``sessions`` on ``n_sock`` moto sockets at tick ``dt``; (delivered, Σ steps)."""
    env = simpy.Environment()
    fleet = Fleet(env, sessions, SocketSpec(np.zeros(n_sock, dtype=np.int64),
                                            np.full(n_sock, 3.7)), dt)
    steps = int(hours * 3600 / dt)
    e = np.zeros(n_sock)
    total = 0.0
    for _ in range(steps):
        fleet.observe()
        fleet.begin_step(np.full(n_sock, 100.0))
        run_step_events(env, dt)
        total += fleet.end_step(e)
    fleet.finish()
    return fleet.e_del_kwh, total


def test_same_energy_at_any_tick() -> None:
    rows = [(0.0, 5400.0, 0, 2.0, 3.7, 600.0), (130.0, 4000.0, 0, 3.3, 3.7, 900.0),
            (700.0, 9000.0, 0, 1.7, 3.7, 4000.0)]  # waits for a socket until 4000 s
    got = [_run_at(table(rows), dt, 2, 4.0) for dt in (60.0, 900.0, 3600.0)]
    for e_del, total in got:
        assert np.allclose(e_del, got[0][0], rtol=0, atol=1e-12)
        assert total == pytest.approx(e_del.sum(), rel=1e-12)
    assert np.allclose(got[0][0], [2.0, 3.3, 1.7])  # 3 vehicles, 2 sockets, all full


def test_refused_at_the_gate_and_wait_shifts_departure() -> None:
    from twin.components.fleet import STATUS_REFUSED_CLOSING

    rows = [(0.0, 0.0, 0, 0.5, 3.7, 600.0),        # departure == arrival: refused at the gate
            (10.0, 1810.0, 0, 1.0, 3.7, 600.0),    # takes the socket until 1810 s
            (100.0, 1100.0, 0, 1.0, 3.7, 1800.0)]  # stay 1000 s from plug-in at 1810 s
    a = np.array(rows, dtype=float)
    s = SessionTable(a[:, 0], a[:, 1], a[:, 2].astype(np.int64), a[:, 3], a[:, 4], a[:, 5],
                     latest_departure_s=np.full(3, 2500.0))
    f, _ = run(s)
    assert f.status[0] == STATUS_REFUSED_CLOSING and f.n_refused_closing == 1
    assert f.socket_of[0] == -1 and f.e_del_kwh[0] == 0.0
    assert f.plug_s[2] == pytest.approx(1810.0)
    assert f.leave_s[2] == pytest.approx(2500.0)  # 1810 + 1000 = 2810, capped at closing
    assert f.e_del_kwh[2] == pytest.approx(3.7 * 690 / 3600)


def test_charge_time_stay_model() -> None:
    import pandas as pd

    ev = EvConfig(stay_model="charge_time")
    start = pd.Timestamp("2024-03-04", tz="America/Lima")
    s = draw_sessions(ev, start, 7 * 86400.0, np.random.default_rng(2))
    ok = s.departure_s > s.arrival_s
    stay_h = (s.departure_s - s.arrival_s)[ok] / 3600.0
    from twin.components.taper import taper_params, time_to_full_h

    p_eff = np.minimum(s.p_max_kw, np.where(s.type_code == 0, 3.7, 7.4))
    assert s.battery_kwh is not None and s.soc_arrival is not None and s.taper_soc is not None
    assert s.taper_floor_frac is not None
    charge_h = np.array([time_to_full_h(e, p, p, *taper_params(c, s0, e, ts, tf, p))
                         for e, p, c, s0, ts, tf in zip(s.e_req_kwh, p_eff, s.battery_kwh,
                                                        s.soc_arrival, s.taper_soc,
                                                        s.taper_floor_frac, strict=True)])[ok]
    assert (stay_h >= charge_h - 1e-9).all()  # every rider can finish (CC-CV, vehicle power)
    closing = ((s.departure_s[ok] % 86400.0) / 3600.0) >= ev.close_hour - 1e-9
    assert (stay_h[~closing] <= charge_h[~closing] * 4.0).all()  # and lingers a little
    assert 1.1 < np.median(stay_h[~closing] / charge_h[~closing]) < 1.4
    assert (~ok).sum() > 0 and ((s.arrival_s[~ok] % 86400.0) / 3600.0 > 21.5).all()
    assert s.latest_departure_s is not None


# ---- EV events inside the tick: "full" computed, arrivals/departures on the fleet's queue


def _run_limits(sessions: SessionTable, limits_kw: list[float]) -> tuple[Fleet, np.ndarray]:
    """One moto socket (3.7 kW); the controller's limit changes every step."""
    env = simpy.Environment()
    fleet = Fleet(env, sessions, SocketSpec(np.zeros(1, dtype=np.int64), np.full(1, 3.7)), DT)
    e = np.zeros((len(limits_kw), 1))
    for k, lim in enumerate(limits_kw):
        fleet.observe()
        fleet.begin_step(np.full(1, lim))
        run_step_events(env, DT)
        fleet.end_step(e[k])
    fleet.finish()
    return fleet, e


def _integrate_1s(arr_s: float, dep_s: float, e_req: float, p_max: float,
                  limits_kw: list[float]) -> np.ndarray:
    """Reference: the same charge integrated second by second (no full instant computed)."""
    out = np.zeros(len(limits_kw))
    e_left = e_req
    for k, lim in enumerate(limits_kw):
        for t in range(int(k * DT), int((k + 1) * DT)):
            if arr_s <= t < dep_s:
                de = min(max(min(lim, p_max, 3.7), 0.0) / 3600.0, e_left)
                out[k] += de
                e_left -= de
    return out


LIMITS = [1.2, 3.7, 0.0, 2.5, 3.7, 0.7, 3.7, 3.7]  # full at 4350 s (step 4) if it stays


# leaves after it is full / inside the step it would be full in, just before / a step before
@pytest.mark.parametrize("dep_s", [7000.0, 4300.0, 2950.0])
def test_full_instant_matches_integration_under_changing_limits(dep_s: float) -> None:
    # plugs mid step 0 under the limit in force, the limit changes every step (0 kW in
    # step 2): the computed "full" instant and each step's energy match a second-by-second
    # integration
    arr, e_req, p_max = 300.0, 2.2, 3.0
    f, e = _run_limits(table([(arr, dep_s, 0, e_req, p_max, 600.0)]), LIMITS)
    ref = _integrate_1s(arr, dep_s, e_req, p_max, LIMITS)
    assert np.allclose(e[:, 0], ref, rtol=0, atol=1e-9)
    full = ref.sum() >= e_req - 1e-9
    assert f.n_full_events == (1 if full else 0)
    assert f.e_del_kwh[0] == pytest.approx(ref.sum(), abs=1e-9)
    assert f.events == 2 + f.n_full_events  # arrival + departure (+ full)
    if full:
        assert f.e_del_kwh[0] == e_req  # exactly what it asked


def test_full_and_departure_at_one_instant_run_in_schedule_order() -> None:
    # 2 kW for 0.5 kWh a step. Vehicle A (plugged at 0 s) is full at 1350 s, the instant it
    # leaves: its full was computed at step 1's start, after its departure was scheduled
    # (at plug-in), so the departure runs first and the full is void. Vehicle B plugs at
    # 2800 s (inside step 3) and is full at 3025 s, the instant it leaves: the full was
    # computed at plug-in, before the departure was scheduled, so the vehicle is full first.
    a, e_a = _run_limits(table([(0.0, 1350.0, 0, 0.75, 2.0, 600.0)]), [3.7] * 4)
    assert a.e_del_kwh[0] == 0.75 and e_a[:, 0].tolist() == [0.5, 0.25, 0.0, 0.0]
    assert a.n_full_events == 0 and a.events == 2
    b, e_b = _run_limits(table([(2800.0, 3025.0, 0, 0.125, 2.0, 600.0)]), [3.7] * 4)
    assert b.e_del_kwh[0] == 0.125 and e_b[:, 0].tolist() == [0.0, 0.0, 0.0, 0.125]
    assert b.n_full_events == 1 and b.events == 3


def test_real_time_clock_wakes_at_event_instants_and_matches_fast_forward() -> None:
    from tests.conftest import SCENARIOS
    from twin.app.live import LiveEnvironment
    from twin.config import load_scenario
    from twin.engine import Twin

    scn = load_scenario(SCENARIOS / "week.yaml", {"duration": "1d", "dt": "15min", "seed": 4})
    fast = Twin(scn).run()
    twin = Twin(scn, env=LiveEnvironment(speed=2e6, slice_s=0.01))
    assert twin.plant is not None and twin.plant.fleet is not None
    fleet, env = twin.plant.fleet, twin.env
    seen: list[tuple[float, float]] = []
    advance = fleet.advance_to

    def spy(t_s: float) -> None:
        seen.append((float(env.now), t_s))  # type: ignore[union-attr]
        advance(t_s)

    fleet.advance_to = spy  # type: ignore[method-assign]
    live = twin.run()
    assert live.steps_done == fast.steps_done == scn.config.n_steps
    mid = [(now, t) for now, t in seen if t % 900.0]  # wake-ups inside a step
    assert len(mid) > 100
    assert all(abs(now - t) < 1e-6 for now, t in mid)  # woke at the event's instant
    for name in ("e_ev_kwh", "e_socket_kwh", "e_bess_stored_kwh"):
        assert np.array_equal(getattr(live.rec, name), getattr(fast.rec, name)), name
    assert live.sessions is not None and fast.sessions is not None
    assert np.array_equal(live.sessions.e_del_kwh, fast.sessions.e_del_kwh)
    assert live.sessions.events == fast.sessions.events

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

    ev = EvConfig()
    start = pd.Timestamp("2024-03-04", tz="America/Lima")
    s = draw_sessions(ev, start, 7 * 86400.0, np.random.default_rng(2))
    ok = s.departure_s > s.arrival_s
    stay_h = (s.departure_s - s.arrival_s)[ok] / 3600.0
    charge_h = s.e_req_kwh[ok] / np.minimum(s.p_max_kw[ok], np.where(s.type_code[ok] == 0, 3.7, 7.4))
    assert (stay_h >= charge_h - 1e-9).all()  # every rider can finish at the socket rating
    closing = ((s.departure_s[ok] % 86400.0) / 3600.0) >= ev.close_hour - 1e-9
    assert (stay_h[~closing] <= charge_h[~closing] * 4.0).all()  # and lingers a little
    assert 1.1 < np.median(stay_h[~closing] / charge_h[~closing]) < 1.4
    assert (~ok).sum() > 0 and ((s.arrival_s[~ok] % 86400.0) / 3600.0 > 21.5).all()
    assert s.latest_departure_s is not None

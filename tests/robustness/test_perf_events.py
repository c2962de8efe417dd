"""Red team for the EV events inside the tick: many events at one instant and on step edges.

Arrivals, stays and patience on a coarse grid (multiples of 75 s) put arrivals, departures,
"full" instants and step boundaries on the same instants as often as possible; the limits
change every step. Whatever the order the fleet picks for events at one instant, energy
is conserved, never above what was asked or what the limit allows, and every event is
counted once.
"""

from __future__ import annotations

import numpy as np
import simpy
from hypothesis import given
from hypothesis import strategies as st

from twin.components.fleet import STATUS_DONE, STATUS_REFUSED_CLOSING, Fleet
from twin.engine.clocks import run_step_events
from twin.inputs import SessionTable, SocketSpec

RATING = 3.7

session = st.tuples(
    st.integers(0, 191),  # arrival [75 s] (4 h)
    st.integers(0, 96),  # stay [75 s]; 0 = refused at the gate
    st.sampled_from([0.125, 0.25, 0.5, 1.0, 2.0, 3.7]),  # energy asked [kWh]
    st.sampled_from([1.0, 2.0, RATING, 7.4]),  # vehicle limit [kW]
    st.integers(0, 6),  # patience [300 s]
)


@given(st.lists(session, min_size=1, max_size=30), st.sampled_from([60.0, 300.0, 900.0]),
       st.integers(1, 3), st.lists(st.sampled_from([0.0, 1.0, 2.0, RATING, 100.0]),
                                   min_size=1, max_size=8))
def test_ties_on_a_grid_conserve_energy_and_count_events(
        rows: list[tuple[int, int, float, float, int]], dt: float, n_sock: int,
        limit_cycle: list[float]) -> None:
    rows = sorted(rows)
    arr = np.array([r[0] * 75.0 for r in rows])
    dep = arr + np.array([r[1] * 75.0 for r in rows])
    s = SessionTable(arr, dep, np.zeros(len(rows), dtype=np.int64),
                     np.array([r[2] for r in rows]), np.array([r[3] for r in rows]),
                     np.array([r[4] * 300.0 for r in rows]),
                     latest_departure_s=np.full(len(rows), 6 * 3600.0))
    env = simpy.Environment()
    fleet = Fleet(env, s, SocketSpec(np.zeros(n_sock, dtype=np.int64), np.full(n_sock, RATING)),
                  dt)
    n_steps = int(6 * 3600 / dt)
    e = np.zeros((n_steps, n_sock))
    lim = np.zeros((n_steps, n_sock))
    total = 0.0
    for k in range(n_steps):
        fleet.observe()
        lim[k] = limit_cycle[k % len(limit_cycle)]
        fleet.begin_step(lim[k].copy())
        run_step_events(env, dt)
        total += fleet.end_step(e[k])
    fleet.finish()
    e_del = fleet.e_del_kwh
    assert abs(total - e.sum()) < 1e-9
    assert abs(e.sum() - e_del.sum()) < 1e-9  # every kWh a socket gave went to a session
    assert (e >= 0.0).all() and (e <= np.minimum(lim, RATING) * dt / 3600.0 + 1e-12).all()
    assert (e_del <= s.e_req_kwh + 1e-12).all()
    plugged = fleet.socket_of >= 0  # never more than its power over the time it was plugged
    stay_h = (fleet.leave_s[plugged] - fleet.plug_s[plugged]) / 3600.0
    assert (e_del[plugged] <= np.minimum(s.p_max_kw[plugged], RATING) * stay_h + 1e-12).all()
    status = fleet.status
    assert (status[dep <= arr] == STATUS_REFUSED_CLOSING).all()
    n_left = int((status == STATUS_DONE).sum())
    assert fleet.n_arrived == len(rows)
    assert fleet.events == fleet.n_arrived + fleet.n_full_events + n_left
    assert fleet.n_full_events <= int((fleet.socket_of >= 0).sum())
    assert fleet.n_occupied == 0 and fleet.n_waiting == 0  # all gone by closing (6 h)

"""The LP's EV side: the queue replay is the plant's, and the envelopes bound every schedule."""

from __future__ import annotations

import numpy as np

from controllers.lp.ev import EvWindows, ReplayCache, envelopes, plug_schedule
from tests.conftest import SCENARIOS
from twin.config import load_scenario
from twin.engine import get_controller, simulate
from twin.engine.results import build_results
from twin.inputs import SessionTable, SocketSpec


def test_queue_replay_gives_the_plants_plug_in_instants() -> None:
    """Occupancy does not depend on the control: the replay matches a real run's plug-ins,
    turned-away vehicles included (the week has a queue at its peaks)."""
    scn = load_scenario(SCENARIOS / "week.yaml", {"ev.vehicles.moto.sessions_per_day": 450})
    out = simulate(scn, get_controller(scn, "no_bess"))
    res = build_results(out)
    ses = res.sessions
    s = out.inputs.sessions
    assert s is not None
    t_plug, p_max, t_dep = plug_schedule(s, SocketSpec.from_config(scn.site.ev))
    idx0 = out.inputs.index[0]
    plug_run = np.full(s.n, np.nan)
    got = ses["plug_in"].notna().to_numpy()
    plug_run[ses["session_id"].to_numpy()[got]] = (
        (ses["plug_in"][got] - idx0).dt.total_seconds().to_numpy())
    assert (ses["status"] == "turned_away").sum() > 0
    np.testing.assert_array_equal(np.isnan(t_plug), np.isnan(plug_run))
    ok = ~np.isnan(t_plug)
    np.testing.assert_allclose(t_plug[ok], plug_run[ok], atol=1e-6)
    # and the departure (the stay counts from plug-in) is the plant's leaving instant
    served = (ses["status"] == "served").to_numpy()
    sid = ses["session_id"].to_numpy()[served]
    leave = (ses["leave"][served] - idx0).dt.total_seconds().to_numpy()
    np.testing.assert_allclose(t_dep[sid], leave, atol=1e-6)
    # the cache, block by block, gives the same, and reuses a repeated day
    cache = ReplayCache(SocketSpec.from_config(scn.site.ev))
    t2, p2, d2 = cache.plug(s)
    np.testing.assert_array_equal(t2, t_plug)
    np.testing.assert_array_equal(p2, p_max)
    np.testing.assert_allclose(d2, t_dep)
    t3, _, _ = cache.plug(s)
    np.testing.assert_array_equal(t3, t_plug)
    assert cache.hits >= 7


def test_envelopes_bound_the_deliverable_energy() -> None:
    rng = np.random.default_rng(5)
    n = 200
    tp = np.sort(rng.uniform(0, 86400, n))
    w = EvWindows(rng.integers(0, 2, n), tp, tp + rng.uniform(600, 4 * 3600, n),
                  rng.choice([3.7, 7.4], n), rng.uniform(1, 10, n))
    edges = np.concatenate([np.arange(0, 6 * 3600, 900.0), np.arange(6 * 3600, 30 * 3600 + 1, 3600.0)])
    ev = envelopes(w, edges)
    d = np.minimum(w.e_req_kwh, w.p_max_kw * (w.t_dep_s - w.t_plug_s) / 3600.0)
    assert ev.e_deliverable_kwh == np.float64(d.sum()) or abs(ev.e_deliverable_kwh - d.sum()) < 1e-9
    assert np.all(ev.l_kwh <= ev.u_kwh + 1e-12)
    assert np.all(np.diff(ev.u_kwh, axis=1) >= -1e-12)
    np.testing.assert_allclose(ev.u_kwh[:, -1].sum(), d.sum())
    np.testing.assert_allclose(ev.l_kwh[:, -1].sum(), d.sum())
    # as-soon-as-possible increments never exceed what the plugged vehicles can take
    assert np.all(np.diff(ev.u_kwh, axis=1, prepend=0.0) <= ev.cap_kwh + 1e-9)


def test_replay_respects_sockets_busy_at_the_start() -> None:
    spec = SocketSpec(np.array([0, 0]), np.array([3.7, 3.7]))
    s = SessionTable(np.array([100.0, 200.0, 300.0]), np.array([5000.0, 5000.0, 5000.0]),
                     np.array([0, 0, 0]), np.ones(3), np.full(3, 3.7), np.array([0.0, 1000.0, 10.0]))
    t, _, _ = plug_schedule(s, spec, np.array([-np.inf, 1000.0]))
    # socket 1 busy until 1000 s: the first takes socket 0, the second waits and plugs at
    # 1000 s, the third (10 s patience) is turned away
    assert t[0] == 100.0 and t[1] == 1000.0 and np.isnan(t[2])

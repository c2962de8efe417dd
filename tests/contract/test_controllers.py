"""Contract suite run over every registered controller (acnportal's BaseAlgorithmTest idea).

Every controller must: build from the default site, return Setpoints of the right shape
with finite values, be deterministic for the same observation, not mutate the
observation, and run a short scenario end to end inside the envelope.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from controllers import REGISTRY, make_controller
from tests.conftest import SITE
from twin.config import load_site
from twin.types import BessState, Setpoints, SiteObservation, SocketArrays, TariffState

NAMES = sorted(REGISTRY)


@pytest.fixture(scope="module")
def context():  # type: ignore[no-untyped-def]
    """A one-day context (the default site) for controllers that plan before step 0."""
    from tests.conftest import SCENARIOS
    from twin.components.inputs import build_inputs
    from twin.config import load_scenario
    from twin.engine.driver import make_context

    scn = load_scenario(SCENARIOS / "hil.yaml")
    return make_context(scn, build_inputs(scn))


def ready(name: str, context):  # type: ignore[no-untyped-def]
    """The controller, reset and (if it plans) prepared, as the driver does."""
    from controllers.base import prepare_controller

    c = make_controller(name, load_site(SITE))
    c.reset(seed=0)
    prepare_controller(c, context)
    return c


def observation(hour: float, soc: float, pv: float, mall: float, plugged: int) -> SiteObservation:
    n = 38
    rating = np.array([3.7] * 30 + [7.4] * 8)
    occ = np.zeros(n, dtype=bool)
    occ[:plugged] = True
    pd_kw = np.where(occ, rating, 0.0)
    for a in (rating, occ, pd_kw):
        a.flags.writeable = False
    s = SocketArrays(np.array([0] * 30 + [1] * 8), rating, occ, pd_kw, pd_kw * 2, np.full(n, math.inf),
                     n_occupied=plugged, p_demand_total_kw=float(pd_kw.sum()))
    b = BessState(soc, soc * 2000, 2000, 400, 400, 0.2, 1.0, 0.97, 0.97)
    return SiteObservation(0, hour * 3600, 900.0, datetime(2024, 1, 1, tzinfo=UTC), "America/Lima",
                           hour, 2, pv, mall, float(pd_kw.sum()), 0.0, 9 <= hour < 22, b, s,
                           TariffState(0.45 if 18 <= hour < 23 else 0.28, 18 <= hour < 23))


GRID = [(h, soc, pv, mall, pl) for h in (0.0, 6.5, 9.25, 12.0, 15.5, 18.0, 21.75, 22.5)
        for soc in (0.2, 0.55, 1.0) for pv, mall in ((0.0, 1200.0), (2500.0, 2000.0), (300.0, 2300.0))
        for pl in (0, 20)]


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_summary_and_phases(name: str) -> None:
    spec = REGISTRY[name]
    assert spec.summary and len(spec.summary) < 200
    c = make_controller(name, load_site(SITE))
    assert c.name == name
    assert c.phases and all(isinstance(k, int) for k in c.phases)


@pytest.mark.parametrize("name", NAMES)
def test_setpoints_shape_finite_known_phase_deterministic(name: str, context) -> None:  # type: ignore[no-untyped-def]
    c = ready(name, context)
    for args in GRID:
        o = observation(*args)
        sp = c.decide(o)
        assert isinstance(sp, Setpoints)
        assert math.isfinite(sp.p_bess_kw)
        assert np.asarray(sp.p_socket_max_kw).shape == (38,)
        assert np.isfinite(sp.p_socket_max_kw).all()
        assert sp.phase in c.phases
        sp2 = c.decide(o)
        assert sp2.p_bess_kw == sp.p_bess_kw and np.array_equal(sp2.p_socket_max_kw, sp.p_socket_max_kw)


@pytest.mark.parametrize("name", NAMES)
def test_observation_is_read_only(name: str, context) -> None:  # type: ignore[no-untyped-def]
    o = observation(19.0, 0.6, 0.0, 1500.0, 10)
    with pytest.raises(ValueError):
        o.sockets.p_demand_kw[0] = 99.0
    ready(name, context).decide(o)
    assert o.sockets.p_demand_kw[0] == 3.7


@pytest.mark.parametrize("name", NAMES)
def test_runs_a_scenario_inside_the_envelope(name: str, make_scenario) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_bus_physics import check_bus_rows
    from twin.config import load_scenario
    from twin.engine import simulate
    from twin.engine.results import build_results

    scn = load_scenario(make_scenario(controller=name, duration="2d"))
    res = build_results(simulate(scn))
    ts = res.timeseries
    site = scn.site.bess
    # The SOC window is a share of the present capacity; the fade inside one step (set
    # after the safety layer sized the step) may move the SOC by a few 1e-6.
    soc = ts["soc_kwh"] / ts["capacity_kwh"]
    assert soc.min() >= site.soc_min_frac - 1e-5
    assert soc.max() <= site.soc_max_frac + 1e-5
    assert (ts["p_bess_kw"] <= site.p_discharge_max_kw + 1e-6).all()
    assert (ts["p_bess_kw"] >= -site.p_charge_max_kw - 1e-6).all()
    # the bus against its physics (not the split's own residual)
    check_bus_rows(ts, scn.site.grid.export_limit_kw, scn.config.dt, 1e-6)

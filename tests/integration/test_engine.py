"""The one tick driver: stepping API ≡ ``twin run``, reset/seed, forecasts for controllers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from controllers.base import REGISTRY, register
from controllers.six_phase import SixPhaseController
from twin.app.cli import main
from twin.config import load_scenario
from twin.engine import Twin, simulate
from twin.engine.results import build_results
from twin.forecast import (
    ControlContext,
    NoisyForecaster,
    PerfectForecaster,
    PersistenceForecaster,
    ev_energy_per_step,
)
from twin.types import Setpoints, SiteObservation

ROOT = Path(__file__).resolve().parents[2]
WEEK = ROOT / "scenarios" / "week.yaml"


def digest(df: pd.DataFrame) -> str:
    """sha256 of a table's values (row order, columns, dtypes)."""
    h = hashlib.sha256()
    h.update(",".join(f"{c}:{df[c].dtype}" for c in df.columns).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def week() -> Any:
    return load_scenario(WEEK, {"duration": "3d"})


def test_step_api_is_bit_identical_to_twin_run(week: Any) -> None:
    ref = build_results(simulate(week))
    # a caller that decides itself, through the controller's own decide()
    twin = Twin(week)
    ctrl = SixPhaseController(week.site)
    ctrl.reset(seed=week.config.seed)
    obs = twin.reset()
    n = 0
    while not twin.done:
        obs = twin.step(ctrl.decide(obs))
        n += 1
    out = build_results(twin.record())
    assert n == week.config.n_steps == len(out.timeseries)
    assert digest(out.timeseries) == digest(ref.timeseries)
    assert digest(out.sessions) == digest(ref.sessions)
    # and the controller deciding inside step()
    twin2 = Twin(week)
    twin2.reset()
    while not twin2.done:
        twin2.step()
    assert digest(build_results(twin2.record()).timeseries) == digest(ref.timeseries)


def test_deliberately_different_setpoints_change_the_record(week: Any) -> None:
    """The identity above can fail: other setpoints give another time series."""
    ref = build_results(simulate(week))
    twin = Twin(week)
    obs = twin.reset()
    while not twin.done:
        obs = twin.step(Setpoints(-100.0, obs.sockets.p_rating_kw))
    assert digest(build_results(twin.record()).timeseries) != digest(ref.timeseries)


def test_reset_and_seeds(week: Any) -> None:
    twin = Twin(week)
    for _ in range(5):
        twin.reset()
        while not twin.done:
            twin.step()
    a = build_results(twin.record()).timeseries
    twin.reset()  # the same seed again: the same run
    while not twin.done:
        twin.step()
    assert digest(build_results(twin.record()).timeseries) == digest(a)
    twin.reset(seed=week.config.seed + 1)  # another seed: other sessions and clouds
    while not twin.done:
        twin.step()
    b = build_results(twin.record()).timeseries
    assert digest(b) != digest(a)
    other = load_scenario(WEEK, {"duration": "3d", "seed": week.config.seed + 1})
    assert digest(build_results(simulate(other)).timeseries) == digest(b)


def test_step_after_the_end_raises(week: Any) -> None:
    # (``step_record``'s bus: tests.integration.test_bus_physics, against physics)
    twin = Twin(week)
    twin.reset()
    for _ in range(60):
        twin.step()
    assert twin.step_record(59).k == 59
    with pytest.raises(RuntimeError):
        t = Twin(week)
        t.reset()
        while not t.done:
            t.step()
        t.step()


# ------------------------------------------------------------------ forecasts
def test_forecasters_against_the_inputs(week: Any) -> None:
    twin = Twin(week)
    inp = twin.inputs
    spd = round(86400 / inp.dt_s)
    n = len(inp.index)
    perfect = PerfectForecaster(inp)
    assert np.array_equal(perfect.pv_kw(10, 50), inp.p_pv_kw[10:60])
    assert np.array_equal(perfect.mall_kw(0, n), inp.p_mall_kw)
    ev = ev_energy_per_step(inp)
    assert ev.sum() == pytest.approx(inp.sessions.e_req_kwh.sum())
    assert np.array_equal(perfect.ev_energy_kwh(5, 7), ev[5:12])
    # past the horizon: the last day again
    tail = perfect.pv_kw(n - 2, 4)
    assert np.array_equal(tail[:2], inp.p_pv_kw[n - 2:])
    assert np.array_equal(tail[2:], inp.p_pv_kw[n - spd:n - spd + 2])
    s = perfect.sessions(spd, spd)
    assert ((s.arrival_s >= spd * inp.dt_s) & (s.arrival_s < 2 * spd * inp.dt_s)).all()
    assert s.n == int(((inp.sessions.arrival_s >= spd * inp.dt_s)
                       & (inp.sessions.arrival_s < 2 * spd * inp.dt_s)).sum())
    # persistence: yesterday at the same time, for the next day; two days ahead: the same day
    pers = PersistenceForecaster(inp)
    k0 = spd + 7
    f = pers.pv_kw(k0, 2 * spd)
    assert np.array_equal(f[:spd], inp.p_pv_kw[k0 - spd:k0])
    assert np.array_equal(f[spd:], inp.p_pv_kw[k0 - spd:k0])
    assert np.array_equal(pers.mall_kw(0, 3), np.full(3, inp.p_mall_kw[0]))  # no history yet
    ps = pers.sessions(k0, spd)
    yest = inp.sessions.arrival_s[(inp.sessions.arrival_s >= (k0 - spd) * inp.dt_s)
                                  & (inp.sessions.arrival_s < k0 * inp.dt_s)]
    assert np.allclose(np.sort(ps.arrival_s), np.sort(yest) + spd * inp.dt_s)
    # noisy: seeded, unbiased-ish, with the asked-for RMSE of the relative error
    noisy = NoisyForecaster(inp, 0.15, seed=3)
    again = NoisyForecaster(inp, 0.15, seed=3)
    assert np.array_equal(noisy.mall_kw(0, n), again.mall_kw(0, n))
    rel = noisy.mall_kw(0, n) / inp.p_mall_kw - 1.0
    assert 0.12 < float(np.sqrt(np.mean(rel ** 2))) < 0.18
    assert not np.array_equal(noisy.mall_kw(0, n), NoisyForecaster(inp, 0.15, 4).mall_kw(0, n))
    assert np.array_equal(noisy.pv_kw(0, n)[inp.p_pv_kw == 0], np.zeros(int((inp.p_pv_kw == 0)
                                                                             .sum())))
    assert np.array_equal(noisy.mall_kw(20, 5), noisy.mall_kw(0, 30)[20:25])  # lead-independent


class LookAhead:
    """Test controller: charges when the next 4 h of forecast PV exceed the mall, else idles."""

    name = "lookahead_test"
    phases: ClassVar[dict[int, str]] = {0: "idle", 1: "charge_ahead"}

    def __init__(self, site: Any) -> None:
        self.site = site
        self.context: ControlContext | None = None
        self.n_prepared = 0

    def reset(self, *, seed: int | None = None) -> None:
        self.context = None

    def prepare(self, context: ControlContext) -> None:
        self.context = context
        self.n_prepared += 1
        self.h = round(4 * 3600 / context.dt_s)

    def decide(self, obs: SiteObservation) -> Setpoints:
        assert self.context is not None, "prepare() was not called"
        fc = self.context.forecaster
        ahead = float(fc.pv_kw(obs.k, self.h).mean() - fc.mall_kw(obs.k, self.h).mean())
        if ahead > 0:
            return Setpoints(-200.0, obs.sockets.p_rating_kw, 1)
        return Setpoints(0.0, obs.sockets.p_rating_kw, 0)


@pytest.fixture
def lookahead() -> Any:
    register("lookahead_test", "test: charges on forecast PV")(LookAhead)
    yield
    REGISTRY.pop("lookahead_test", None)


def test_a_forecasting_controller_in_twin_run_and_twin_hil(lookahead: Any, tmp_path: Path) -> None:
    scn = ROOT / "scenarios" / "hil.yaml"
    assert main(["run", str(scn), "--controller", "lookahead_test", "--out",
                 str(tmp_path / "run"), "-q"]) == 0
    assert main(["hil", str(scn), "--controller", "lookahead_test", "--out",
                 str(tmp_path / "hil"), "-q", "--timeout", "2"]) == 0
    a = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    b = pd.read_parquet(tmp_path / "hil" / "timeseries.parquet")
    # the plan follows the forecast: it charges ahead of the PV on both paths
    assert (a["phase"] == 1).sum() > 10
    assert np.array_equal(a["phase"].to_numpy(), b["phase"].to_numpy())
    assert a["bess_charge_kwh"].sum() == pytest.approx(b["bess_charge_kwh"].sum(), rel=0.005)


def test_forecast_key_in_the_scenario(tmp_path: Path, lookahead: Any) -> None:
    for spec in ("persistence", {"noisy": {"rmse_frac": 0.3}}):
        scn = load_scenario(WEEK, {"duration": "2d", "forecast": spec,
                                   "controller": "lookahead_test"})
        twin = Twin(scn)
        ctx = twin.context
        assert ctx.forecaster.name == (spec if isinstance(spec, str) else "noisy")
        assert twin.controller.n_prepared == 1  # type: ignore[attr-defined]
        twin.run()
    bad = tmp_path / "bad.yaml"
    bad.write_text(WEEK.read_text() + "\nforecast: crystal_ball\n")
    bad_site = tmp_path / "site.yaml"
    bad_site.write_text((ROOT / "config" / "site.yaml").read_text())
    text = bad.read_text().replace("../config/site.yaml", str(bad_site))
    bad.write_text(text)
    assert main(["validate", str(bad)]) == 2

"""The RL fast path (encoder, action mapping, env reward) against slow, simple references.

The references below are the implementations before the round-three speed-up (commit
0bcb9f1), kept here verbatim in spirit: every feature computed from the observation on
its own, the month looked up every step, the forecast asked of the forecaster every step,
the reward from ``Twin.step_record``. The fast path must give the same bits.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controllers.rl.encoding import (
    _SITE_FEATURES,
    BESS_DEADBAND,
    DEPARTURE_SCALE_H,
    Encoder,
    Scales,
    Spec,
)
from twin.config import load_scenario
from twin.forecast import Forecaster
from twin.rl import TwinEnv
from twin.types import Setpoints, SiteObservation


# ---------------------------------------------------------------- references (slow, simple)
def ref_encode(spec: Spec, obs: SiteObservation, forecaster: Forecaster | None) -> np.ndarray:
    """The observation vector as computed before the speed-up (no caches, no tables)."""
    s = spec.scales
    n = spec.n_sockets
    h_fc = spec.options.forecast_h
    out = np.empty(spec.n_obs, dtype=np.float32)
    b = obs.bess
    load = obs.p_ev_kw + obs.p_mall_kw
    grid = max(0.0, load - obs.p_pv_kw - b.p_kw)
    inv_load = 1.0 / (s.ev_kw + s.mall_kw)
    when = (obs.start_utc + timedelta(seconds=obs.t_s)).astimezone(ZoneInfo(obs.tz))
    m = when.month - 1
    d = obs.weekday % 7
    h = obs.hour
    site = np.array([
        obs.p_pv_kw * (1.0 / s.pv_ac_kw), obs.p_ev_kw * (1.0 / s.ev_kw),
        obs.p_mall_kw * (1.0 / s.mall_kw), load * inv_load, b.soc_frac, b.e_kwh * (1.0 / s.bess_kwh),
        grid * inv_load, (load - obs.p_pv_kw) * (1.0 / s.pv_ac_kw),
        math.sin(2 * math.pi * h / 24.0), math.cos(2 * math.pi * h / 24.0),
        math.sin(2 * math.pi * d / 7), math.cos(2 * math.pi * d / 7),
        math.sin(2 * math.pi * m / 12), math.cos(2 * math.pi * m / 12),
        obs.tariff.price_per_kwh * (1.0 / s.price_per_kwh), 1.0 if obs.tariff.is_peak else 0.0,
        1.0 if obs.ev_open else 0.0, obs.n_waiting * (1.0 / max(n, 1)),
    ], dtype=np.float64)
    n_site = len(_SITE_FEATURES)
    out[:n_site] = site
    if h_fc:
        res = np.empty(2 * h_fc)
        inv_pv, inv_mall = 1.0 / s.pv_ac_kw, 1.0 / s.mall_kw
        if forecaster is None:
            res[0::2] = obs.p_pv_kw * inv_pv
            res[1::2] = obs.p_mall_kw * inv_mall
        else:
            sph = max(1, round(3600.0 / obs.dt_s))
            k1 = obs.k + 1
            res[0::2] = forecaster.pv_kw(k1, h_fc * sph).reshape(h_fc, sph).sum(axis=1) * (inv_pv / sph)
            res[1::2] = forecaster.mall_kw(k1, h_fc * sph).reshape(h_fc, sph).sum(axis=1) * (inv_mall / sph)
        out[n_site:n_site + 2 * h_fc] = res
    so = obs.sockets
    i = n_site + 2 * h_fc
    out[i:i + 3 * n:3] = so.occupied
    out[i + 1:i + 3 * n:3] = so.e_remaining_kwh * (1.0 / s.e_session_kwh)
    out[i + 2:i + 3 * n:3] = np.where(so.occupied, (so.t_departure_s - obs.t_s)
                                      * (1.0 / (3600.0 * DEPARTURE_SCALE_H)), 0.0)
    np.clip(out, np.asarray(spec.obs_low, np.float32), np.asarray(spec.obs_high, np.float32), out=out)
    return out


def ref_action_to_setpoints(action: Any, obs: SiteObservation, scales: Scales) -> Setpoints:
    """The action mapping as written before the speed-up."""
    a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), 0.0, 1.0)
    rating = obs.sockets.p_rating_kw
    x = 2.0 * float(a[0]) - 1.0
    if abs(x) < BESS_DEADBAND:
        p, phase = 0.0, 0
    elif x > 0.0:
        p, phase = x * scales.bess_discharge_kw, 2
    else:
        p, phase = x * scales.bess_charge_kw, 1
    return Setpoints(p, a[1:] * rating, phase)


def ref_reward(env: TwinEnv, obs: SiteObservation, prev_import_kwh: float) -> tuple[float, dict[str, Any]]:
    """The reward as computed before the speed-up, from ``Twin.step_record``."""
    twin = env.twin
    assert twin is not None
    rec = twin.step_record(twin.k - 1)
    s = env.rl_spec.scales
    dt_h = obs.dt_s / 3600.0
    e_ref = (s.ev_kw + s.mall_kw) * dt_h
    imp = rec.e_grid_import_kwh
    ev_possible = max(obs.p_ev_kw - obs.p_ev_inflexible_kw, 0.0) * dt_h
    terms = {
        "r_co2": -imp / e_ref,
        "r_solar": -rec.e_curtailed_kwh / (s.pv_ac_kw * dt_h),
        "r_ev": -max(ev_possible - max(rec.e_ev_kwh - obs.p_ev_inflexible_kw * dt_h, 0.0), 0.0)
        / (s.ev_kw * dt_h),
        "r_ramp": -abs(imp - prev_import_kwh) / e_ref if rec.k > 0 else 0.0,
        "r_cost": -imp * obs.tariff.price_per_kwh / (e_ref * s.price_per_kwh),
    }
    w = env.weights
    reward = (w.co2 * terms["r_co2"] + w.solar * terms["r_solar"] + w.ev * terms["r_ev"]
              + w.ramp * terms["r_ramp"] + w.cost * terms["r_cost"])
    return float(reward), {"k": rec.k, "n_clamps": rec.n_clamps, **terms}


def same_bits(a: Any, b: Any) -> bool:
    """Equal down to the bit (-0.0 differs from 0.0, NaN equals NaN), dtype and shape included."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def random_action(rng: np.random.Generator, n: int) -> np.ndarray:
    """Actions that visit the dead band, both battery directions, and values outside [0, 1]."""
    a = rng.random(n).astype(np.float32)
    u = rng.random()
    if u < 0.2:
        a[0] = np.float32(0.5 + rng.uniform(-0.6, 0.6) * BESS_DEADBAND)
    elif u < 0.3:
        a = (a * 3.0 - 1.0).astype(np.float32)
    return a


def run_against_reference(env: TwinEnv, *, seed: int, options: dict[str, Any] | None = None,
                          max_steps: int | None = None) -> int:
    """Step ``env`` with random actions; assert every obs, setpoint, reward and info equal the
    references'; return the number of steps checked."""
    rng = np.random.default_rng(seed)
    vec, _ = env.reset(seed=seed, options=options)
    twin = env.twin
    assert twin is not None
    fc = twin.context.forecaster
    obs = env.site_obs
    assert obs is not None
    assert same_bits(vec, ref_encode(env.rl_spec, obs, fc))
    applied: list[Setpoints] = []
    real_step = twin.step

    def spy(sp: Setpoints) -> SiteObservation:
        applied.append(sp)
        return real_step(sp)

    twin.step = spy  # type: ignore[method-assign]
    prev_imp, done, n = 0.0, False, 0
    while not done and (max_steps is None or n < max_steps):
        act = random_action(rng, env.rl_spec.n_act)
        want_sp = ref_action_to_setpoints(act, obs, env.rl_spec.scales)
        vec, reward, done, trunc, info = env.step(act)
        got_sp = applied[-1]
        assert got_sp.phase == want_sp.phase and same_bits(got_sp.p_bess_kw, want_sp.p_bess_kw)
        assert same_bits(got_sp.p_socket_max_kw, want_sp.p_socket_max_kw)
        want_r, want_info = ref_reward(env, obs, prev_imp)
        assert type(reward) is float and same_bits(reward, want_r), (n, reward, want_r)
        assert list(info) == list(want_info)
        for key, val in want_info.items():
            assert type(info[key]) is type(val) and same_bits(info[key], val), (n, key)
        prev_imp = twin.step_record(twin.k - 1).e_grid_import_kwh
        obs = env.site_obs
        assert obs is not None
        assert same_bits(vec, ref_encode(env.rl_spec, obs, fc)), n
        assert done is twin.done and trunc is False
        n += 1
    return n


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("forecast", ["perfect", "persistence", {"noisy": {"rmse_frac": 0.2}}])
def test_env_episode_equals_reference(make_scenario, forecast) -> None:  # type: ignore[no-untyped-def]
    """A whole 2-day episode: observations, setpoints, rewards and info bit-identical."""
    env = TwinEnv(make_scenario(duration="2d", forecast=forecast), episode_days=None)
    assert run_against_reference(env, seed=1) == 192


def test_env_windowed_episodes_equal_reference(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """Windows cut from a longer scenario (the forecast table indexed by the window's k),
    5-min steps, two episodes on one env (the record and tables rebound at reset)."""
    env = TwinEnv(make_scenario(duration="4d", dt="5min"), episode_days=1.0)
    for day, seed in ((2, 4), (0, 5)):
        assert run_against_reference(env, seed=seed, options={"start_day": day}) == 288


def test_rl_controller_equals_reference_in_a_run(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """The ``rl`` controller (the shipped ONNX policy) in a run: every decision equals the
    reference encoder + mapping's, and the run's record equals a run of the reference."""
    from controllers.rl.controller import RlController
    from twin.engine import simulate

    scn = load_scenario(make_scenario(duration="1d", controller="rl"))

    class Reference:
        """Decides with the references; checks the real controller agrees at every step."""

        def __init__(self) -> None:
            self.ctl = RlController(scn.site)
            self.name, self.phases = self.ctl.name, self.ctl.phases
            self.fc: Forecaster | None = None
            self.n = 0

        def reset(self, *, seed: int | None = None) -> None:
            self.ctl.reset(seed=seed)
            self.fc = None

        def prepare(self, context) -> None:  # type: ignore[no-untyped-def]
            self.ctl.prepare(context)
            self.fc = context.forecaster

        def decide(self, obs: SiteObservation) -> Setpoints:
            ctl = self.ctl
            want = ref_action_to_setpoints(ctl.policy.act(ref_encode(ctl.spec, obs, self.fc)), obs,
                                           ctl.spec.scales)
            got = ctl.decide(obs)
            assert got.phase == want.phase and same_bits(got.p_bess_kw, want.p_bess_kw)
            assert same_bits(got.p_socket_max_kw, want.p_socket_max_kw)
            self.n += 1
            return want

    ref = Reference()
    out_ref = simulate(scn, ref)  # type: ignore[arg-type]
    out_rl = simulate(scn, RlController(scn.site))
    assert ref.n == 96 and ref.fc is not None
    for col in ("p_bess_command_kw", "e_ev_kwh", "e_bess_stored_kwh", "phase", "n_clamps",
                "e_socket_kwh"):
        assert same_bits(getattr(out_ref.rec, col), getattr(out_rl.rec, col)), col


def test_encoder_matches_reference_on_the_contract_grid() -> None:
    """Hand-built observations (no forecaster: the present value is held), in any order, with
    the same empty socket arrays coming back between occupied ones."""
    from controllers.rl.encoding import build_spec
    from tests.conftest import SITE
    from tests.contract.test_controllers import GRID, observation
    from twin.config import load_site

    spec = build_spec(load_site(SITE))
    enc = Encoder(spec)
    obs = [observation(*args) for args in GRID]
    empty = obs[0].sockets
    rng = np.random.default_rng(0)
    for i in rng.permutation(len(obs)).tolist() + list(range(len(obs))):
        o = obs[i]  # the same socket arrays come again at another time
        o = o._replace(t_s=o.t_s + 3600.0 * float(rng.integers(0, 400)))
        if o.sockets.n_occupied == 0:
            o = o._replace(sockets=empty)
        else:  # departures a few hours after the step start, so the time matters
            d = np.where(o.sockets.occupied, o.t_s + 3600.0 * (1.0 + (np.arange(38) % 9)), math.inf)
            o = o._replace(sockets=o.sockets._replace(t_departure_s=d))
        assert same_bits(enc.encode(o), ref_encode(spec, o, None)), i


def test_reward_uses_step_record_bus(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """The env's import/curtailment equal ``Twin.step_record``'s, with PV beyond the export
    limit (curtailment > 0) — the two computations of the site bus must not drift apart."""
    import yaml

    from tests.conftest import SITE

    site = yaml.safe_load(Path(SITE).read_text())
    site["grid"]["export_limit_kw"] = 40.0
    site["bess"]["e_capacity_kwh"] = 50.0
    site["mall"]["e_day_kwh"] = 1000.0
    env = TwinEnv(make_scenario(site, duration="1d"), episode_days=None)
    env.reset(seed=0)
    twin = env.twin
    assert twin is not None
    act = np.zeros(env.rl_spec.n_act, np.float32)  # charge the battery, no EV charging
    curtailed = 0.0
    done = False
    while not done:
        _, _, done, _, info = env.step(act)
        rec = twin.step_record(twin.k - 1)
        s = env.rl_spec.scales
        dt_h = twin.dt_s / 3600.0
        assert same_bits(info["r_solar"], -rec.e_curtailed_kwh / (s.pv_ac_kw * dt_h))
        assert same_bits(info["r_co2"], -rec.e_grid_import_kwh / ((s.ev_kw + s.mall_kw) * dt_h))
        curtailed += rec.e_curtailed_kwh
    assert curtailed > 0.0

"""Red-team cases for the RL env's reward (issue 20, env speed-up): the site-bus split is
inline in ``TwinEnv.step`` (conditional expressions instead of ``split_bus`` with the
builtins). On odd step energies — NaN, signed zeros, infinities, negatives, ties, export
room used up — it must give the same bits as ``split_bus`` with ``min``/``max``, signed
zeros included. A NaN only has to be a NaN: when two NaNs meet (NaN + NaN), which one's
sign survives depends on the interpreter's float path (CPython's specialised and generic
additions may order the operands differently), for ``split_bus`` itself as well."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tests.unit.test_rl_fastpath import same_bits
from twin.engine.balance import split_bus
from twin.rl import TwinEnv
from twin.types import Setpoints, SiteObservation

#: Values each step energy [kWh] is drawn from (the record's stdlib arrays hold doubles).
ODD = [0.0, -0.0, 1.0, 2.5, 2.5, 1e-300, -1.0, math.inf, -math.inf, math.nan, 40.0, 7.25]


def same_value(a: float, b: float) -> bool:
    """The same bits, or both NaN."""
    return (math.isnan(a) and math.isnan(b)) or same_bits(a, b)


def ref_terms(env: TwinEnv, obs: SiteObservation, e: dict[str, float],
              prev_imp: float) -> tuple[float, float, float, float]:
    """(r_co2, r_solar, r_ramp, grid import [kWh]) from ``split_bus`` on the step energies ``e``."""
    s = env.rl_spec.scales
    dt_h = obs.dt_s / 3600.0
    bus_h = env._bus_dt_h
    fl = split_bus(e["pv_kw"] * bus_h, e["ev"], e["mall_kw"] * bus_h, e["ch"], e["dis"],
                   env.scn.site.grid.export_limit_kw * bus_h, min, max)
    imp = fl.grid_import_kwh
    e_ref = (s.ev_kw + s.mall_kw) * dt_h
    return (-imp / e_ref, -fl.pv_curtailed_kwh / (s.pv_ac_kw * dt_h),
            -abs(imp - prev_imp) / e_ref if obs.k > 0 else 0.0, imp)


def test_inline_bus_split_equals_split_bus_on_odd_energies(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """After each real step the record's energies of that step are overwritten with odd
    values (before the env reads them): the reward terms equal ``split_bus``'s, bit for bit."""
    env = TwinEnv(make_scenario(duration="2d"), episode_days=None)
    env.reset(seed=0)
    twin = env.twin
    assert twin is not None
    rng = np.random.default_rng(7)
    real_step = twin.step
    energies: dict[str, Any] = {}

    def step_then_poison(sp: Setpoints) -> SiteObservation:
        nxt = real_step(sp)
        k = twin.k - 1
        rec = twin.rec
        e = {name: float(ODD[int(rng.integers(len(ODD)))])
             for name in ("pv_kw", "ev", "mall_kw", "ch", "dis")}
        if rng.random() < 0.3:  # PV far beyond the export limit: the room is used up
            e["pv_kw"], e["dis"] = 1e4, float(ODD[int(rng.integers(len(ODD)))])
        rec.b_p_pv_kw[k], rec.b_e_ev_kwh[k], rec.b_p_mall_kw[k] = e["pv_kw"], e["ev"], e["mall_kw"]
        rec.b_e_bess_charge_kwh[k], rec.b_e_bess_discharge_kwh[k] = e["ch"], e["dis"]
        energies.update(e)
        return nxt

    twin.step = step_then_poison  # type: ignore[method-assign]
    act = np.full(env.rl_spec.n_act, 0.5, np.float32)
    prev_imp, done, n = 0.0, False, 0
    while not done:
        obs = env.site_obs
        assert obs is not None
        _, _, done, _, info = env.step(act)
        r_co2, r_solar, r_ramp, imp = ref_terms(env, obs, energies, prev_imp)
        assert same_value(info["r_co2"], r_co2), (n, energies)
        assert same_value(info["r_solar"], r_solar), (n, energies)
        assert same_value(info["r_ramp"], r_ramp), (n, energies)
        prev_imp = imp
        n += 1
    assert n == 192

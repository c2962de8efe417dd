"""``mpc``: the ``optimal`` LP on a rolling horizon, fed by the scenario's forecaster.

Every ``resolve_every_h`` hours (default 1) the controller re-solves the LP over the next
``horizon_h`` hours (default 48) from the battery's measured state, the vehicles plugged
now (their departure and remaining energy, read from the sockets) and the forecaster's PV,
mall and arrivals (scenario key ``forecast``: ``perfect``, ``persistence`` or ``noisy``);
between solves it plays the latest plan back like ``optimal``. The LP keeps one HiGHS
model: each solve changes bounds and costs only and starts from the previous basis.

The LP has one step per tick for the first ``fine_h`` hours (default 4, at least until the
next solve) and ``coarse_h`` steps (default 1 h: means of PV, mall and price) beyond: 60
steps instead of 192 for 48 h at 15-min ticks. Queue replays of the forecast arrivals are
reused when the same day comes back (``controllers.lp.ev.ReplayCache``).

``controller_params``: the weights of ``optimal`` (``co2_price_per_kg``,
``peak_charge_per_kw``, ``unserved_penalty_per_kwh``; the tariff's demand charges are in
the objective, with the month's demand so far as a floor), ``horizon_h`` (48),
``resolve_every_h`` (1), ``fine_h`` (4), ``coarse_h`` (1), ``time_limit_s`` (5, per
solve; a stalled warm start is retried once from scratch). The hours are finite and > 0, at
most :data:`MAX_HOURS`; ``horizon_h`` is at most the run's length (or 48 h on shorter runs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from controllers.base import register
from controllers.lp.cost import run_cost
from controllers.lp.ev import ReplayCache
from controllers.lp.horizon import (
    battery_data,
    battery_units,
    fade_bound_kwh,
    horizon_data,
    n_types,
    step_grid,
    weights_from,
)
from controllers.lp.model import BatteryData, SiteLp
from controllers.lp.playback import socket_limits
from controllers.optimal import PHASES, _time_limit, play_step
from twin.config import SiteConfig
from twin.errors import ConfigError, UserError
from twin.forecast import ControlContext
from twin.types import FloatArray, Setpoints, SiteObservation

#: Default horizon [h]; also the longest horizon allowed on runs shorter than it.
DEFAULT_HORIZON_H = 48.0
#: Upper bound of ``horizon_h``, ``resolve_every_h``, ``fine_h`` and ``coarse_h`` [h] (a leap year).
MAX_HOURS = 8784.0


@register("mpc", "model-predictive control: the optimal LP re-solved every hour over the next "
          "48 h on the scenario's forecasts (perfect, persistence or noisy)")
class MpcController:
    """Rolling-horizon LP."""

    name = "mpc"
    phases = PHASES

    def __init__(self, site: SiteConfig, **params: Any) -> None:
        self.site = site
        self.weights, rest = weights_from(params, "mpc")
        # a peak charge or an import limit: vehicles behind the plan do not catch up above it
        # (a tariff's demand charge does not: catching up costs a few kW of the month's
        # peak, holding vehicles back costs many of them their full charge)
        self.strict = (site.grid.import_limit_kw is not None
                       or self.weights.peak_charge_per_kw > 0.0)
        self.time_limit_s = _time_limit(rest, "mpc", 5.0)
        hours = {k: rest.pop(k, d) for k, d in (("horizon_h", DEFAULT_HORIZON_H), ("resolve_every_h", 1.0),
                                                ("fine_h", 4.0), ("coarse_h", 1.0))}
        try:
            h = {k: float(v) for k, v in hours.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"mpc: controller_params {hours}: hours must be numbers") from None
        self.horizon_h, self.resolve_every_h = h["horizon_h"], h["resolve_every_h"]
        self.fine_h, self.coarse_h = h["fine_h"], h["coarse_h"]
        if rest:
            raise TypeError(f"mpc got unknown parameters {sorted(rest)}; it takes "
                            "co2_price_per_kg, peak_charge_per_kw, unserved_penalty_per_kwh, "
                            "horizon_h, resolve_every_h, fine_h, coarse_h, time_limit_s")
        for k, v in h.items():
            if not (math.isfinite(v) and 0 < v <= MAX_HOURS):
                raise ConfigError(f"mpc: controller_params.{k} = {hours[k]!r}: the hours horizon_h, "
                                  f"resolve_every_h, fine_h and coarse_h must be finite, > 0 and "
                                  f"<= {MAX_HOURS:g}")
        self.ctx: ControlContext | None = None
        self.reset()

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the model and the plan."""
        self.lp: SiteLp | None = None
        self.k_plan = -1
        self.multi = False
        self._p_units: FloatArray | None = None  # per step and battery (several batteries)
        self.n_solves = 0
        self.solve_s: list[float] = []
        self.build_s = 0.0
        self.peak_kw = 0.0
        self.n_adjusted = 0
        # billed demand so far per (billing month, demand charge) of the played plan [kW]
        self.demand_kw: dict[tuple[int, int], float] = {}

    def prepare(self, context: ControlContext) -> None:
        """Build the LP structure for one horizon (solved at the first step)."""
        from controllers.optimal import needs_writeoff

        self.ctx = context
        dt_h = context.dt_s / 3600.0
        run_h = context.n_steps * dt_h
        if self.horizon_h > max(run_h, DEFAULT_HORIZON_H):
            raise ConfigError(f"mpc: controller_params.horizon_h = {self.horizon_h:g} h is longer than "
                              f"the run ({run_h:g} h); give at most {max(run_h, DEFAULT_HORIZON_H):g}")
        n_h = max(1, round(self.horizon_h / dt_h))
        self.every = max(1, round(self.resolve_every_h / dt_h))
        # one tick per LP step for the first fine_h (at least until the next solve), then
        # coarse_h steps (means of the ticks)
        group = max(1, round(self.coarse_h / dt_h))
        n_fine = min(n_h, max(self.every, round(self.fine_h / dt_h)))
        n_coarse = -(-(n_h - n_fine) // group)
        self.grid = step_grid(n_fine, group, n_coarse)
        self.n_h = n_fine + group * n_coarse  # ticks the horizon spans
        self.cache = ReplayCache(context.sockets)
        t0 = time.perf_counter()
        # demand slots: every billing month a horizon can touch × priced demand charge
        self.dem_months = min(int(self.n_h * dt_h // (28 * 24)) + 2,
                              context.tariff.n_months + 1) if context.tariff else 0
        probe = horizon_data(context, 0, 1, context.site.bess.e_capacity_kwh,
                             demand_months=self.dem_months)
        probe.price_per_kwh = np.asarray(context.price_per_kwh, float)
        n_lp = n_fine + n_coarse
        self.multi = len(context.site.batteries) > 1  # one storage unit per battery
        bat: BatteryData | tuple[BatteryData, ...] = (
            battery_units(context.site) if self.multi else battery_data(context.site))
        self.lp = SiteLp(n_lp, dt_h * self.grid[1], n_types(context.site), bat, self.weights,
                         time_limit_s=self.time_limit_s,
                         with_writeoff=needs_writeoff(self.weights, probe),
                         demand_steps=[np.ones(n_lp, bool)] * len(probe.demand))
        self.lp.h.setOptionValue("solver", "simplex")
        self.build_s = time.perf_counter() - t0

    def _solve(self, obs: SiteObservation) -> None:
        ctx, lp = self.ctx, self.lp
        assert ctx is not None and lp is not None
        t0 = time.perf_counter()
        multi = self.multi and len(obs.batteries) == len(lp.bats)
        if multi:
            lp.bats = battery_units(ctx.site, tuple(b.e_capacity_kwh for b in obs.batteries))
        else:
            lp.bat = battery_data(ctx.site, obs.bess.e_capacity_kwh)
        d = horizon_data(ctx, obs.k, self.n_h, obs.bess.e_kwh, obs, self.peak_kw, self.grid,
                         self.cache, self.dem_months, self.demand_kw)
        if multi:
            d.e0_units_kwh = np.array([b.e_kwh for b in obs.batteries])
            if any(b.fades for b in lp.bats):
                d.fade_kwh = np.stack([fade_bound_kwh(b, lp.dt_h) for b in lp.bats])
        elif lp.bat.fades:  # a bound of the fade over the horizon (a few 0.1 kWh in 48 h)
            d.fade_kwh = fade_bound_kwh(lp.bat, lp.dt_h)
        plan = lp.solve(d)
        self.solve_s.append(time.perf_counter() - t0)
        self.n_solves += 1
        self.k_plan = obs.k
        self._p_bess = plan.p_discharge_kw - plan.p_charge_kw
        self._p_units = None
        if plan.p_charge_units_kw is not None and plan.p_discharge_units_kw is not None:
            self._p_units = (plan.p_discharge_units_kw - plan.p_charge_units_kw).T.copy()
        self._g = plan.p_grid_kw
        self._e_ev = plan.e_ev_kwh.T.copy()
        self._e_asap = np.diff(d.ev.u_kwh, axis=1, prepend=0.0).T.copy()

    def decide(self, obs: SiteObservation) -> Setpoints:
        """Re-solve when due, then play the plan's current step back."""
        if self.lp is None:
            raise UserError("mpc: the driver must call prepare(context) before the first step")
        k = obs.k
        if self.k_plan < 0 or k - self.k_plan >= self.every or k - self.k_plan >= self.n_h:
            self._solve(obs)
        j = k - self.k_plan
        self.peak_kw = max(self.peak_kw, float(self._g[j]))
        self._track_demand(k, float(self._g[j]))
        lim = socket_limits(obs, self._e_ev[j], self._e_asap[j],
                            self.strict)
        sp, adjusted = play_step(obs, float(self._p_bess[j]),
                                 None if self._p_units is None else self._p_units[j], lim,
                                 self.site.grid.export_limit_kw)
        self.n_adjusted += adjusted
        return sp

    def _track_demand(self, k: int, g_kw: float) -> None:
        """The month's billed demand so far per demand charge (the played plan's import)."""
        sch = self.ctx.tariff if self.ctx is not None else None
        if sch is None or not sch.demand or k >= sch.period.shape[0]:
            return
        m, p = int(sch.month[k]), int(sch.period[k])
        for j, dc in enumerate(sch.demand):
            if dc.in_period[p]:
                key = (m, j)
                self.demand_kw[key] = max(self.demand_kw.get(key, 0.0), g_kw)

    def summary(self, run: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``summary.json["mpc"]``: solves, their times, the forecaster, the weighted cost."""
        if self.ctx is None:
            return {}
        s = np.asarray(self.solve_s) if self.solve_s else np.zeros(1)
        out: dict[str, Any] = {
            "forecast": getattr(self.ctx.forecaster, "name", "?"),
            "horizon_h": self.horizon_h, "resolve_every_h": self.resolve_every_h,
            "fine_h": self.fine_h, "coarse_h": self.coarse_h,
            "lp_steps": int(self.grid[0].shape[0]),
            "queue_replays_reused": self.cache.hits, "queue_replays": self.cache.misses,
            "n_solves": self.n_solves, "build_s": self.build_s,
            "solve_s_total": float(s.sum()), "solve_s_median": float(np.median(s)),
            "solve_s_max": float(s.max()),
            "cold_retries": self.lp.n_cold_retries if self.lp else 0,
            "n_variables": self.lp.n_cols if self.lp else 0,
            "n_constraints": self.lp.n_rows if self.lp else 0,
            "playback_adjustments": self.n_adjusted, "weights": asdict(self.weights),
        }
        if run is not None:
            out["simulated_cost"] = run_cost(run, self.weights)["cost"]
        return {"mpc": out}


__all__ = ["MpcController"]

"""``optimal``: the perfect-foresight linear program over the whole horizon (docs/spec.md §4.5).

``prepare(context)`` solves the LP of ``controllers.lp.model`` once, with the scenario's own
PV, mall and EV sessions (the context's forecaster; perfect by default); ``decide`` plays
the plan back step by step: the planned battery power and socket limits that deliver the
planned EV energy per vehicle type (earliest departure first). The safety layer still
checks every setpoint; a correct plan needs no clamp.

``controller_params``: ``co2_price_per_kg`` (0), ``peak_charge_per_kw`` (0),
``unserved_penalty_per_kwh`` (1.0), ``time_limit_s`` (300) — the weights of the objective,
which ``summary.json["lp"]`` evaluates on the simulated run too. The tariff's demand charges
(``tariff.demand_charges``) are part of the objective: one variable per billing month and
charge, at least the import of every step of its periods in that month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from controllers.base import register
from controllers.lp.cost import run_cost
from controllers.lp.horizon import (
    battery_data,
    battery_units,
    horizon_data,
    n_types,
    weights_from,
)
from controllers.lp.model import BatteryData, HorizonData, Plan, SiteLp, Weights
from controllers.lp.playback import bess_setpoint, bess_split_setpoints, socket_limits
from twin.config import SiteConfig
from twin.errors import ConfigError, UserError
from twin.forecast import ControlContext
from twin.types import FloatArray, Setpoints, SiteObservation

PHASES = {0: "plan_idle", 1: "plan_charge", 2: "plan_discharge"}


def phase_of(p_kw: float) -> int:
    """Phase code of a battery setpoint [kW]."""
    return 2 if p_kw > 1e-6 else (1 if p_kw < -1e-6 else 0)


def play_step(obs: SiteObservation, p_kw: float, p_units_kw: FloatArray | None,
              lim: FloatArray, export_limit_kw: float) -> tuple[Setpoints, bool]:
    """Setpoints of one planned step, kept inside the envelope and the no-reverse-flow limit
    (``controllers.lp.playback``): each battery's planned power [kW] (``p_units_kw``) when the
    plan has one per battery of the site, else the planned total ``p_kw`` [kW]; and whether
    the plan had to be bent."""
    if p_units_kw is not None and len(obs.batteries) == p_units_kw.shape[0]:
        parts, adjusted = bess_split_setpoints(obs, p_units_kw, lim, export_limit_kw)
        p = math.fsum(parts)
        return Setpoints(p, lim, phase_of(p), parts), adjusted
    p, adjusted = bess_setpoint(obs, p_kw, lim, export_limit_kw)
    return Setpoints(p, lim, phase_of(p)), adjusted


def _time_limit(rest: dict[str, Any], name: str, default: float) -> float:
    raw = rest.pop("time_limit_s", default)
    try:
        tl = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: controller_params.time_limit_s must be a number of seconds, "
                          f"got {raw!r}") from None
    if not tl > 0:
        raise ConfigError(f"{name}: controller_params.time_limit_s must be > 0, got {tl!r}")
    return tl


@register("optimal", "perfect-foresight LP over the whole horizon (HiGHS): the best any "
          "controller can do; plan played back through the tick")
class OptimalController:
    """Solve once with the whole horizon known, then play the plan back."""

    name = "optimal"
    phases = PHASES

    def __init__(self, site: SiteConfig, **params: Any) -> None:
        self.site = site
        self.weights, rest = weights_from(params, "optimal")
        # a peak charge or an import limit: vehicles behind the plan do not catch up above it
        # (a tariff's demand charge does not: catching up costs a few kW of the month's
        # peak, holding vehicles back costs many of them their full charge)
        self.strict = (site.grid.import_limit_kw is not None
                       or self.weights.peak_charge_per_kw > 0.0)
        self.time_limit_s = _time_limit(rest, "optimal", 300.0)
        if rest:
            raise TypeError(f"optimal got unknown parameters {sorted(rest)}; it takes "
                            "co2_price_per_kg, peak_charge_per_kw, unserved_penalty_per_kwh, "
                            "time_limit_s")
        self.plan: Plan | None = None
        self._p_units: FloatArray | None = None  # per battery and step (several batteries)
        self.n_adjusted = 0

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the plan."""
        self.plan = None
        self.n_adjusted = 0

    def prepare(self, context: ControlContext) -> None:
        """Build and solve the LP over the whole horizon."""
        n = context.n_steps
        b = context.site.bess
        units = context.site.batteries
        d = horizon_data(context, 0, n, b.soc_initial_frac * b.e_capacity_kwh)
        bat: BatteryData | tuple[BatteryData, ...] = battery_data(context.site)
        if len(units) > 1:  # one storage unit per battery
            bat = battery_units(context.site)
            d.e0_units_kwh = np.array([u.soc_initial_frac * u.e_capacity_kwh for u in units])
            d.e0_kwh = float(d.e0_units_kwh.sum())
        lp = SiteLp(n, context.dt_s / 3600.0, n_types(context.site), bat, self.weights,
                    time_limit_s=self.time_limit_s,
                    with_writeoff=needs_writeoff(self.weights, d),
                    demand_steps=[t.steps for t in d.demand])
        self.plan = solve_with_fade(lp, d, lp.bat)
        self._p_bess = (self.plan.p_discharge_kw - self.plan.p_charge_kw).tolist()
        self._p_units = None
        if self.plan.p_charge_units_kw is not None and self.plan.p_discharge_units_kw is not None:
            self._p_units = (self.plan.p_discharge_units_kw - self.plan.p_charge_units_kw).T.copy()
        self._e_ev = self.plan.e_ev_kwh.T.copy()
        self._e_asap = np.diff(d.ev.u_kwh, axis=1, prepend=0.0).T.copy()

    def decide(self, obs: SiteObservation) -> Setpoints:
        """The plan's step ``obs.k``."""
        if self.plan is None:
            raise UserError("optimal: no plan: the driver must call prepare(context) before "
                            "the first step")
        k = obs.k
        lim = socket_limits(obs, self._e_ev[k], self._e_asap[k],
                            self.strict)
        sp, adjusted = play_step(obs, self._p_bess[k],
                                 None if self._p_units is None else self._p_units[k], lim,
                                 self.site.grid.export_limit_kw)
        self.n_adjusted += adjusted
        return sp

    def summary(self, run: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``summary.json["lp"]``: the solve, and with ``run`` (the run's KPIs) the same
        objective evaluated on the simulated run and the relative gap between the two."""
        pl = self.plan
        if pl is None:
            return {}
        out: dict[str, Any] = {
            "status": pl.status, "objective": pl.objective, "energy_cost_soles": pl.energy_cost,
            "unserved_kwh": pl.unserved_kwh, "co2_kg": pl.info["co2_kg"],
            "peak_kw": pl.info["peak_kw"], "demand_cost_soles": pl.info.get("demand_cost", 0.0),
            "build_s": pl.build_s, "solve_s": pl.solve_s,
            "n_variables": pl.n_variables, "n_constraints": pl.n_constraints,
            "fade_passes": int(pl.info.get("fade_passes", 1)),
            "playback_adjustments": self.n_adjusted,
            "weights": asdict(self.weights),
        }
        if run is not None and not run.get("interrupted", False):
            sim = run_cost(run, self.weights)
            out["simulated_cost"] = sim["cost"]
            out["simulated_energy_cost_soles"] = sim["energy_cost"]
            out["simulated_demand_cost_soles"] = sim["demand_cost"]
            out["simulated_unserved_kwh"] = sim["unserved_kwh"]
            out["gap_percent"] = ((sim["cost"] - pl.objective) / abs(pl.objective) * 100.0
                                  if pl.objective else 0.0)
        return {"lp": out}


def needs_writeoff(w: Weights, d: HorizonData) -> bool:
    """Whether the LP must be allowed to leave deliverable EV energy undelivered.

    Without an import limit, a peak charge or a demand charge, delivering one more
    deliverable kWh costs at most the highest marginal price of import; a penalty above it
    means the optimum delivers everything deliverable, and the smaller LP (no write-off)
    has the same optimum.
    """
    if d.import_limit_kw is not None or w.peak_charge_per_kw > 0.0 or d.demand:
        return True
    top = float(np.max(d.price_per_kwh, initial=0.0)) + w.co2_price_per_kg * d.co2_kg_per_kwh
    return w.unserved_penalty_per_kwh <= top


def plan_fade_kwh(plan: Plan, bat: BatteryData, dt_h: float | FloatArray, e0_kwh: float
                  ) -> FloatArray:
    """Capacity lost by each step end under ``plan`` [kWh], as the plant ages the battery:
    per kWh of DC throughput (cycling, legacy fade) and per hour at the SOC of the step
    start (calendar)."""
    dt = np.broadcast_to(np.asarray(dt_h, float), plan.p_charge_kw.shape)
    thr = (plan.p_charge_kw * bat.eta_charge + plan.p_discharge_kw / bat.eta_discharge) * dt
    e_start = np.concatenate([[e0_kwh], plan.e_stored_kwh[:-1]])
    soc = e_start / bat.e_capacity_kwh if bat.e_capacity_kwh > 0 else np.zeros_like(e_start)
    cal = bat.calendar_fade_per_h * dt * np.maximum(1.0 + bat.calendar_soc_coeff * (soc - 0.5), 0.0)
    return np.cumsum(bat.fade_per_kwh * thr + cal)


def plan_fade_units_kwh(plan: Plan, bats: tuple[BatteryData, ...], dt_h: float | FloatArray,
                        d: HorizonData) -> FloatArray:
    """``plan_fade_kwh`` of each battery of a plan with several [kWh], (n_batteries, n)."""
    assert plan.p_charge_units_kw is not None and plan.p_discharge_units_kw is not None
    assert plan.e_stored_units_kwh is not None and d.e0_units_kwh is not None
    rows = []
    for u, bat in enumerate(bats):
        one = Plan(plan.status, plan.p_charge_units_kw[u], plan.p_discharge_units_kw[u],
                   plan.p_grid_kw, plan.e_stored_units_kwh[u], plan.e_ev_kwh, 0.0, 0.0, 0.0,
                   0.0, 0.0, 0, 0)
        rows.append(plan_fade_kwh(one, bat, dt_h, float(d.e0_units_kwh[u])))
    return np.stack(rows)


def solve_with_fade(lp: SiteLp, d: HorizonData, bat: BatteryData, max_passes: int = 4) -> Plan:
    """Solve; when the battery fades, re-solve (warm) with the plan's own fade lowering the
    SOC ceiling until the plan stays within the capacity it leaves itself."""
    build0 = lp.build_s
    plan = lp.solve(d)
    build, solve = build0 + plan.build_s, plan.solve_s
    passes = 1
    if any(b.fades for b in lp.bats):
        multi = len(lp.bats) > 1
        shape = (len(lp.bats), lp.n) if multi else (lp.n,)
        used = np.zeros(shape) if d.fade_kwh is None else d.fade_kwh
        while passes < max_passes:
            fade = plan_fade_units_kwh(plan, lp.bats, lp.dt_h, d) if multi else \
                plan_fade_kwh(plan, bat, lp.dt_h, d.e0_kwh)
            if np.all(fade <= used + 1e-6):
                break
            used = np.maximum(used, fade * 1.02 + 1e-4)
            d.fade_kwh = used
            plan = lp.solve(d)
            build += plan.build_s
            solve += plan.solve_s
            passes += 1
    plan.build_s, plan.solve_s = build, solve
    plan.info["fade_passes"] = passes
    return plan


__all__ = ["OptimalController", "needs_writeoff", "phase_of", "plan_fade_kwh",
           "plan_fade_units_kwh", "solve_with_fade"]



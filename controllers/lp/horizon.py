"""Data of one LP horizon from a ``ControlContext`` (forecasts, tariff, battery state)."""

from __future__ import annotations

from typing import Any

import numpy as np

from controllers.lp.ev import (
    EvWindows,
    ReplayCache,
    concat_windows,
    envelopes,
    windows_from_sessions,
)
from controllers.lp.model import BatteryData, DemandTerm, HorizonData, Weights
from twin.components.bess import BessParams
from twin.config import SiteConfig
from twin.errors import ConfigError
from twin.forecast import ControlContext
from twin.inputs import SessionTable
from twin.types import FloatArray, SiteObservation


def battery_data(site: SiteConfig, e_capacity_kwh: float | None = None) -> BatteryData:
    """The battery of ``site`` for the LP: the plant's own parameters (``BessParams``)."""
    return BatteryData.from_params(BessParams.from_config(site.bess), e_capacity_kwh)


def battery_units(site: SiteConfig, caps_kwh: tuple[float, ...] | None = None
                  ) -> tuple[BatteryData, ...]:
    """Every battery of ``site`` as an LP storage unit (``battery_data`` of each), at the
    capacities ``caps_kwh`` [kWh] (default: nominal)."""
    units = site.batteries
    if caps_kwh is not None and len(caps_kwh) != len(units):
        raise ValueError(f"{len(caps_kwh)} capacities for {len(units)} batteries")
    return tuple(BatteryData.from_params(BessParams.from_config(b),
                                         caps_kwh[i] if caps_kwh is not None else None)
                 for i, b in enumerate(units))


def fade_bound_kwh(bat: BatteryData, dt_h: FloatArray) -> FloatArray:
    """An upper bound of the capacity lost by each step end [kWh] (full power throughput,
    calendar fade at a full battery): for a short horizon."""
    thr = max(bat.p_charge_max_kw * bat.eta_charge, bat.p_discharge_max_kw / bat.eta_discharge)
    cal = bat.calendar_fade_per_h * max(1.0 + 0.5 * bat.calendar_soc_coeff, 0.0)
    return np.cumsum((bat.fade_per_kwh * thr + cal) * dt_h)


def weights_from(params: dict[str, Any], name: str) -> tuple[Weights, dict[str, Any]]:
    """Split ``controller_params`` into the objective weights and the rest."""
    known = {"co2_price_per_kg", "peak_charge_per_kw", "unserved_penalty_per_kwh"}
    vals: dict[str, float] = {}
    for k in sorted(known & params.keys()):
        try:
            vals[k] = float(params[k])
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: controller_params.{k} must be a number, got "
                              f"{params[k]!r}") from None
        if not vals[k] >= 0.0:
            raise ConfigError(f"{name}: controller_params.{k} must be >= 0, got {params[k]!r}")
    w = Weights(**vals)
    return w, {k: v for k, v in params.items() if k not in known}


def plugged_windows(obs: SiteObservation) -> EvWindows:
    """Vehicles plugged at ``obs``: window from now to their departure, energy still asked."""
    s = obs.sockets
    occ = np.flatnonzero(s.occupied) if s.n_occupied else np.zeros(0, np.int64)
    return EvWindows(s.type_code[occ], np.full(occ.size, obs.t_s), s.t_departure_s[occ].copy(),
                     s.p_demand_kw[occ].copy(), s.e_remaining_kwh[occ].copy())


def step_grid(n_fine: int, group: int, n_coarse: int) -> tuple[np.ndarray, np.ndarray]:
    """LP steps over ticks: ``n_fine`` steps of one tick, then ``n_coarse`` of ``group`` ticks.

    Returns the first tick of every LP step and the ticks per step.
    """
    size = np.concatenate([np.ones(n_fine, np.int64), np.full(n_coarse, group, np.int64)])
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    return first, size


def _ticks(ctx: ControlContext, k0: int, n: int) -> np.ndarray:
    """Ticks ``k0 .. k0 + n - 1``; past the end, the same time of day on the last day."""
    k = np.arange(k0, k0 + n)
    spd = max(1, round(86400.0 / ctx.dt_s))
    over = k >= ctx.n_steps
    if over.any():
        k = k.copy()
        back = np.ceil((k[over] - (ctx.n_steps - 1)) / spd).astype(np.int64)
        k[over] = np.maximum(k[over] - back * spd, 0)
    return k


def _tariff(ctx: ControlContext, k0: int, n: int) -> FloatArray:
    """Price per tick; past the end, the same time of day on the last day."""
    return np.asarray(ctx.price_per_kwh, float)[_ticks(ctx, k0, n)]


def demand_terms(ctx: ControlContext, k0: int, n: int,
                 grid: tuple[np.ndarray, np.ndarray] | None = None,
                 n_months: int | None = None,
                 floors_kw: dict[tuple[int, int], float] | None = None) -> list[DemandTerm]:
    """The tariff's demand charges over ticks ``k0 .. k0 + n - 1`` as LP demand slots.

    One slot per billing month the ticks touch × priced demand charge (month by month, the
    charges in tariff order); a slot holds the LP steps (``grid``: ticks grouped as in
    ``step_grid``) with a tick in its month and periods. With ``n_months`` the slots are
    the first ``n_months`` months from ``k0``'s (a fixed count: a rolling horizon keeps
    one LP; later ticks count in the last); ``floors_kw[(month, charge)]`` is the demand
    already reached in the month [kW]. Ticks past the end count in the last month.
    """
    sch = ctx.tariff
    if sch is None:
        return []
    priced = [j for j, dc in enumerate(sch.demand) if dc.price_per_kw_month > 0.0]
    if not priced or n <= 0:
        return []
    k = np.arange(k0, k0 + n)
    period = sch.period[_ticks(ctx, k0, n)]
    month = sch.month[np.minimum(k, ctx.n_steps - 1)]
    m0 = int(month[0])
    rel = month - m0
    n_m = int(rel.max()) + 1 if n_months is None else n_months
    rel = np.minimum(rel, n_m - 1)
    first, size = grid if grid is not None else (np.arange(n), np.ones(n, np.int64))
    step_of = np.repeat(np.arange(first.shape[0]), size)
    terms: list[DemandTerm] = []
    for mo in range(n_m):
        for j in priced:
            dc = sch.demand[j]
            steps = np.zeros(first.shape[0], bool)
            steps[step_of[(rel == mo) & dc.in_period[period]]] = True
            if n_months is None and not steps.any():
                continue
            floor = (floors_kw or {}).get((m0 + mo, j), 0.0)
            terms.append(DemandTerm(dc.price_per_kw_month, steps, floor))
    return terms


def horizon_data(ctx: ControlContext, k0: int, n: int, e0_kwh: float,
                 obs: SiteObservation | None = None, peak_floor_kw: float = 0.0,
                 grid: tuple[np.ndarray, np.ndarray] | None = None,
                 cache: ReplayCache | None = None, demand_months: int | None = None,
                 demand_floors_kw: dict[tuple[int, int], float] | None = None) -> HorizonData:
    """Forecasts over ticks ``k0 .. k0 + n - 1`` as LP data.

    With ``grid`` (``step_grid``) ticks are grouped into LP steps (means of PV, mall and
    price; ``n`` must be the total of ticks). With ``obs`` the vehicles plugged now are part
    of the horizon (and hold their sockets for the queue replay of the forecast arrivals).
    The tariff's demand charges become demand slots (``demand_terms``).
    """
    fc = ctx.forecaster
    site = ctx.site
    dt_s = ctx.dt_s
    dt_h = dt_s / 3600.0
    pv = fc.pv_kw(k0, n)
    mall = fc.mall_kw(k0, n)
    base = mall - pv
    if site.ev.source == "profile":
        base = base + fc.ev_energy_kwh(k0, n) / dt_h
    price = _tariff(ctx, k0, n)
    t0 = k0 * dt_s
    if grid is None:
        edges = t0 + dt_s * np.arange(n + 1, dtype=float)
    else:
        first, size = grid
        base = np.add.reduceat(base, first) / size
        price = np.add.reduceat(price, first) / size
        edges = t0 + dt_s * np.append(first, n).astype(float)
    if site.ev.source == "profile":
        z = np.zeros(0)
        win = EvWindows(np.zeros(0, np.int64), z, z, z, z)
    else:
        arr = fc.sessions(k0, n)
        busy = None
        if obs is not None and obs.sockets.n_occupied:
            busy = np.where(obs.sockets.occupied, obs.sockets.t_departure_s, -np.inf)
        if obs is not None:
            keep = arr.arrival_s > obs.t_s
            if not keep.all():
                lat = arr.latest_departure_s
                arr = SessionTable(arr.arrival_s[keep], arr.departure_s[keep],
                                   arr.type_code[keep], arr.e_req_kwh[keep], arr.p_max_kw[keep],
                                   arr.patience_s[keep], lat[keep] if lat is not None else None)
        win = windows_from_sessions(arr, ctx.sockets, busy, cache)
        if obs is not None and obs.sockets.n_occupied:
            win = concat_windows(plugged_windows(obs), win)
    ev = envelopes(win, edges, n_types(site))
    return HorizonData(base_kw=base, price_per_kwh=price, co2_kg_per_kwh=site.grid.co2_kg_per_kwh,
                       e0_kwh=e0_kwh, ev=ev, import_limit_kw=site.grid.import_limit_kw,
                       peak_floor_kw=peak_floor_kw,
                       demand=demand_terms(ctx, k0, n, grid, demand_months, demand_floors_kw))


def n_types(site: SiteConfig) -> int:
    """Number of vehicle classes of the site (rows of the LP's per-class EV variables)."""
    return len(site.ev.vehicles)


__all__ = [
    "battery_data",
    "battery_units",
    "demand_terms",
    "fade_bound_kwh",
    "horizon_data",
    "n_types",
    "plugged_windows",
    "step_grid",
    "weights_from",
]

"""Battery sizing formulas of the seeds (docs/spec.md §6, seed 003), as pure functions.

Inputs are hourly energies [kWh per hour] grouped by day (``(n_days, 24)`` arrays).
Per day, the EV deficit is ``Σ_h max(EV_h − PV_h, 0)`` and the PV surplus
``Σ_h max(PV_h − EV_h, 0)`` (the PV left after the EVs, which the seeds send to the
battery first: PV → EV, then BESS, then mall). Then, with ``k = DoD × η``:

============================  ================================================
mode                          raw capacity [kWh]
============================  ================================================
``ev_open_hours``             max daily EV deficit / k (the seeds' choice)
``ev_deficit_100``            max daily EV deficit / k (same formula)
``surplus_only``              mean daily PV surplus / k
``autonomy``                  peak hourly deficit [kW] × autonomy hours / k
``max``                       the largest of the three above
============================  ================================================

The raw capacity is rounded up to ``round_kwh`` (10 kWh) and multiplied by the design
factor (1.20); the power is ``capacity × c_rate`` (0.36 1/h), at least
``1.1 × peak hourly deficit`` [kW].

Sizing economics (``twin sweep``): :func:`capex` (0 without a battery), :func:`opex_per_yr`,
:func:`cash_flows` over the project life with the run's capacity fade and cell replacements,
:func:`npv`, :func:`irr`, :func:`lcos`, :func:`discounted_payback` and the :func:`knee`
of the curve (the size of largest NPV).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

MODES = ("ev_open_hours", "ev_deficit_100", "surplus_only", "autonomy", "max")


@dataclass(frozen=True)
class SizingParams:
    """Parameters of the formulas.

    Attributes
    ----------
    dod_frac : usable depth of discharge [0-1] (site: soc_max − soc_min).
    eta_roundtrip : round-trip efficiency [0-1].
    autonomy_h : hours of peak deficit the ``autonomy`` mode covers [h].
    c_rate_per_h : power / capacity [1/h].
    design_factor : multiplier after rounding [-].
    round_kwh : capacity rounding step (upwards) [kWh].
    peak_margin : the power covers at least this × peak hourly deficit [-].
    """

    dod_frac: float = 0.80
    eta_roundtrip: float = 0.95
    autonomy_h: float = 4.0
    c_rate_per_h: float = 0.36
    design_factor: float = 1.20
    round_kwh: float = 10.0
    peak_margin: float = 1.10


@dataclass(frozen=True)
class DeficitStats:
    """What the profiles say (per day: Σ over its hours).

    Attributes
    ----------
    n_days : days in the profiles.
    deficit_mean_kwh, deficit_max_kwh : daily EV deficit, mean and max [kWh/day].
    peak_deficit_kw : largest hourly deficit [kW] (kWh in one hour).
    surplus_mean_kwh, surplus_max_kwh : daily PV surplus after the EVs [kWh/day].
    """

    n_days: int
    deficit_mean_kwh: float
    deficit_max_kwh: float
    peak_deficit_kw: float
    surplus_mean_kwh: float
    surplus_max_kwh: float


@dataclass(frozen=True)
class ModeSize:
    """Size from one mode.

    Attributes
    ----------
    mode : formula name.
    raw_kwh : formula result before rounding [kWh].
    rounded_kwh : rounded up to the step [kWh].
    capacity_kwh : after the design factor [kWh].
    power_kw : capacity × C-rate, at least the peak margin × peak deficit [kW].
    c_rate_per_h : the resulting power / capacity [1/h].
    """

    mode: str
    raw_kwh: float
    rounded_kwh: float
    capacity_kwh: float
    power_kw: float
    c_rate_per_h: float


@dataclass(frozen=True)
class SizingResult:
    """Every mode's size and the statistics behind them."""

    params: SizingParams
    stats: DeficitStats
    modes: dict[str, ModeSize] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "params": asdict(self.params),
            "stats": asdict(self.stats),
            "modes": {k: asdict(v) for k, v in self.modes.items()},
        }


def deficit_stats(pv_day_h: np.ndarray, ev_day_h: np.ndarray) -> DeficitStats:
    """Daily deficit and surplus statistics from ``(n_days, hours)`` arrays [kWh per hour]."""
    pv = np.asarray(pv_day_h, dtype=float)
    ev = np.asarray(ev_day_h, dtype=float)
    if pv.shape != ev.shape or pv.ndim != 2 or pv.shape[0] == 0:
        raise ValueError(f"need two (n_days, hours) arrays of one shape, got {pv.shape} and {ev.shape}")
    deficit_h = np.maximum(ev - pv, 0.0)
    surplus_h = np.maximum(pv - ev, 0.0)
    d_day = deficit_h.sum(axis=1)
    s_day = surplus_h.sum(axis=1)
    return DeficitStats(
        int(pv.shape[0]),
        float(d_day.mean()),
        float(d_day.max()),
        float(deficit_h.max()),
        float(s_day.mean()),
        float(s_day.max()),
    )


def mode_size(mode: str, raw_kwh: float, peak_deficit_kw: float, p: SizingParams) -> ModeSize:
    """Round, apply the design factor and derive the power for one raw capacity."""
    rounded = math.ceil(raw_kwh / p.round_kwh - 1e-9) * p.round_kwh if raw_kwh > 0 else 0.0
    cap = rounded * p.design_factor
    power = max(cap * p.c_rate_per_h, p.peak_margin * peak_deficit_kw)
    return ModeSize(mode, raw_kwh, rounded, cap, power, power / cap if cap > 0 else 0.0)


def size_bess(pv_day_h: np.ndarray, ev_day_h: np.ndarray, params: SizingParams | None = None) -> SizingResult:
    """The seeds' sizes in every mode (see the module docstring).

    Parameters
    ----------
    pv_day_h, ev_day_h : PV available and EV demand, ``(n_days, 24)`` [kWh per hour].
    params : formula parameters (defaults: the seeds').
    """
    p = params or SizingParams()
    if not 0 < p.dod_frac <= 1 or not 0 < p.eta_roundtrip <= 1:
        raise ValueError("dod_frac and eta_roundtrip must lie in (0, 1]")
    st = deficit_stats(pv_day_h, ev_day_h)
    k = p.dod_frac * p.eta_roundtrip
    raw = {
        "ev_open_hours": st.deficit_max_kwh / k,
        "ev_deficit_100": st.deficit_max_kwh / k,
        "surplus_only": st.surplus_mean_kwh / k,
        "autonomy": st.peak_deficit_kw * p.autonomy_h / k,
    }
    raw["max"] = max(raw["ev_open_hours"], raw["surplus_only"], raw["autonomy"])
    return SizingResult(p, st, {m: mode_size(m, raw[m], st.peak_deficit_kw, p) for m in MODES})


# ------------------------------------------------------------------ sizing economics
# Cash flows at the end of each project year y = 1..N; the investment at y = 0.


@dataclass(frozen=True)
class EconParams:
    """Costs and finance of a battery project (the site's ``economics`` section).

    Attributes
    ----------
    capex_per_kwh : energy part of the investment [currency/kWh].
    capex_per_kw : power part (inverter, transformer) [currency/kW].
    capex_fixed : fixed project cost, paid only with a battery [currency].
    opex_per_kwh_yr, opex_per_kw_yr : yearly O&M per kWh and per kW [currency/kWh/yr, /kW/yr].
    opex_frac_of_capex_yr : further yearly O&M as a fraction of the CAPEX [1/yr].
    project_life_yr : project life [yr].
    discount_rate : yearly discount rate [1/yr].
    replacement_capacity_frac : the cells are replaced at the end of the year in which the
        capacity falls below this fraction of nameplate [-].
    replacement_cost_frac : a replacement costs this fraction of the energy part [-].
    """

    capex_per_kwh: float = 1100.0
    capex_per_kw: float = 550.0
    capex_fixed: float = 0.0
    opex_per_kwh_yr: float = 11.0
    opex_per_kw_yr: float = 5.5
    opex_frac_of_capex_yr: float = 0.0
    project_life_yr: int = 15
    discount_rate: float = 0.08
    replacement_capacity_frac: float = 0.8
    replacement_cost_frac: float = 1.0

    @classmethod
    def from_config(cls, econ: Any) -> EconParams:
        """From a :class:`twin.config.Economics` (the site's ``economics`` section)."""
        return cls(
            econ.bess_capex_per_kwh, econ.bess_capex_per_kw, econ.bess_capex_fixed,
            econ.bess_opex_per_kwh_yr, econ.bess_opex_per_kw_yr, econ.opex_frac_of_capex_yr,
            int(econ.project_life_yr), econ.discount_rate, econ.replacement_capacity_frac,
            econ.replacement_cost_frac,
        )


def capex(e_kwh: float, p_kw: float, ep: EconParams) -> float:
    """Investment [currency]: fixed + energy + power part; 0 without a battery (``e_kwh`` 0:
    no cells, so no power electronics either)."""
    if e_kwh <= 0.0:
        return 0.0
    return ep.capex_fixed + e_kwh * ep.capex_per_kwh + p_kw * ep.capex_per_kw


def opex_per_yr(e_kwh: float, p_kw: float, ep: EconParams) -> float:
    """Yearly O&M [currency/yr]; 0 without a battery."""
    if e_kwh <= 0.0:
        return 0.0
    return e_kwh * ep.opex_per_kwh_yr + p_kw * ep.opex_per_kw_yr + ep.opex_frac_of_capex_yr * capex(
        e_kwh, p_kw, ep)


def npv(rate: float, flows: Sequence[float] | np.ndarray) -> float:
    """Net present value [currency] of ``flows[t]`` at the end of year t (t = 0 now)."""
    cf = np.asarray(flows, dtype=float)
    return float(np.sum(cf / (1.0 + rate) ** np.arange(cf.size)))


def irr(flows: Sequence[float] | np.ndarray, lo: float = -0.99, hi: float = 10.0) -> float:
    """Internal rate of return [1/yr]: the rate where :func:`npv` is 0 (Brent's method on
    ``[lo, hi]``); NaN when the NPV does not change sign there (e.g. never pays back, or no
    investment)."""
    from scipy.optimize import brentq

    cf = np.asarray(flows, dtype=float)
    if cf.size < 2 or not np.any(cf < 0) or not np.any(cf > 0):
        return math.nan
    f_lo, f_hi = npv(lo, cf), npv(hi, cf)
    if not (math.isfinite(f_lo) and math.isfinite(f_hi)) or f_lo * f_hi > 0:
        return math.nan
    return float(brentq(lambda r: npv(r, cf), lo, hi, xtol=1e-12, rtol=1e-12, maxiter=200))


def discounted_payback(rate: float, flows: Sequence[float] | np.ndarray) -> float:
    """Years [yr] until the discounted cumulative cash flow reaches 0 (linear within the
    year); 0 without an investment; ``inf`` when it does not within the flows' years."""
    cf = np.asarray(flows, dtype=float)
    disc = cf / (1.0 + rate) ** np.arange(cf.size)
    cum = np.cumsum(disc)
    if cum[0] >= 0.0:
        return 0.0
    for t in range(1, cf.size):
        if cum[t] >= 0.0:
            return float(t - 1 + (-cum[t - 1]) / disc[t])
    return math.inf


@dataclass(frozen=True)
class CashFlows:
    """A battery size's yearly cash flows over the project life (index = year, 0 = now).

    Attributes
    ----------
    capacity_frac : mean capacity in each year as a fraction of nameplate [-] (year 0: 1).
    savings, opex, replacement : yearly amounts [currency/yr] (year 0: 0).
    residual : value of the cells' remaining life at the end of the last year [currency]
        (zero elsewhere).
    net : savings − opex − replacement + residual, year 0 = −CAPEX [currency].
    replacement_years : years at whose end the cells are replaced.
    discharge_kwh : energy the battery delivers per year [kWh/yr] (scaled like savings).
    """

    capacity_frac: np.ndarray
    savings: np.ndarray
    opex: np.ndarray
    replacement: np.ndarray
    residual: np.ndarray
    net: np.ndarray
    replacement_years: tuple[int, ...]
    discharge_kwh: np.ndarray


def cash_flows(
    e_kwh: float,
    p_kw: float,
    savings_per_yr: float,
    fade_frac_per_yr: float,
    sim_fade_frac: float,
    discharge_kwh_per_yr: float,
    ep: EconParams,
) -> CashFlows:
    """The cash flows of one size, with linear capacity fade and replacements.

    The capacity falls by ``fade_frac_per_yr`` of nameplate a year (the twin's ageing model
    is linear in throughput and time: the run's annualised capacity fade); at the end of
    a year in which it fell below ``replacement_capacity_frac`` the cells are replaced
    (not in the last year) and it starts again at 1. At the end of the life the cells are
    worth the replacement cost × the share of their life left, ``(cap_end − threshold) / (1 −
    threshold)`` (linear residual value). The savings and discharged energy of
    a year scale with its mean capacity, relative to the run's own mean capacity
    ``1 − sim_fade_frac / 2`` (an upper bound on the loss: a battery seldom full loses less).

    Parameters
    ----------
    e_kwh, p_kw : size [kWh, kW].
    savings_per_yr : the run's savings from the battery, per year [currency/yr].
    fade_frac_per_yr : capacity fade per year [fraction of nameplate / yr].
    sim_fade_frac : fade over the simulated run [fraction of nameplate].
    discharge_kwh_per_yr : the run's battery discharge per year [kWh/yr].
    ep : cost and finance parameters.
    """
    n = ep.project_life_yr
    cap = np.ones(n + 1)
    repl = np.zeros(n + 1)
    years: list[int] = []
    age = 0
    for y in range(1, n + 1):
        cap[y] = max(0.0, 1.0 - fade_frac_per_yr * (age + 0.5))
        age += 1
        if y < n and e_kwh > 0.0 and 1.0 - fade_frac_per_yr * age < ep.replacement_capacity_frac:
            repl[y] = ep.replacement_cost_frac * e_kwh * ep.capex_per_kwh
            years.append(y)
            age = 0
    res = np.zeros(n + 1)
    if e_kwh > 0.0:
        thr = ep.replacement_capacity_frac
        left = (1.0 - fade_frac_per_yr * age - thr) / (1.0 - thr)
        res[n] = ep.replacement_cost_frac * e_kwh * ep.capex_per_kwh * min(1.0, max(0.0, left))
    ref = max(1.0 - sim_fade_frac / 2.0, 1e-9)
    scale = cap / ref
    scale[0] = 0.0
    sav = savings_per_yr * scale
    dis = discharge_kwh_per_yr * scale
    op = np.full(n + 1, opex_per_yr(e_kwh, p_kw, ep))
    op[0] = 0.0
    net = sav - op - repl + res
    net[0] = -capex(e_kwh, p_kw, ep)
    return CashFlows(cap, sav, op, repl, res, net, tuple(years), dis)


def lcos(cf: CashFlows, capex_0: float, rate: float) -> float:
    """Levelised cost of storage [currency/kWh]: discounted CAPEX + O&M + replacements −
    residual value over the discounted energy discharged (charging energy not costed); NaN
    without discharge."""
    d = (1.0 + rate) ** -np.arange(cf.net.size)
    energy = float(np.sum(cf.discharge_kwh * d))
    if energy <= 0.0:
        return math.nan
    return (capex_0 + float(np.sum((cf.opex + cf.replacement - cf.residual) * d))) / energy


def knee(sizes: Sequence[float] | np.ndarray, npvs: Sequence[float] | np.ndarray) -> int:
    """Index of the knee of the sizing curve: the size with the largest NPV.

    Along a concave NPV curve that is the largest size whose marginal NPV (over the next
    smaller size) is still positive; ties go to the smaller size.
    """
    s = np.asarray(sizes, dtype=float)
    v = np.asarray(npvs, dtype=float)
    if s.size == 0:
        raise ValueError("no sizes")
    order = np.lexsort((s, -np.where(np.isfinite(v), v, -np.inf)))
    return int(order[0])


__all__ = [
    "MODES",
    "CashFlows",
    "DeficitStats",
    "EconParams",
    "ModeSize",
    "SizingParams",
    "SizingResult",
    "capex",
    "cash_flows",
    "deficit_stats",
    "discounted_payback",
    "irr",
    "knee",
    "lcos",
    "mode_size",
    "npv",
    "opex_per_yr",
    "size_bess",
]

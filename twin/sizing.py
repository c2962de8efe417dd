"""Battery sizing formulas of the seeds (SPEC §6, seed 003), as pure functions.

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
"""

from __future__ import annotations

import math
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


__all__ = [
    "MODES",
    "DeficitStats",
    "ModeSize",
    "SizingParams",
    "SizingResult",
    "deficit_stats",
    "mode_size",
    "size_bess",
]

"""The tariff over a run's steps, and the bill of an import series.

``schedule(tariff, index)`` resolves the site's ``tariff`` (``twin.config.Tariff``: named
periods by kind of day and hour) onto the step starts: the period, the energy price, the
peak flag and the billing month of every step. ``bill(sched, import_kwh, dt_s)`` prices an
import series: energy (Σ price × kWh), demand charges (per billing month and charge: the
highest mean import power of one step among the charge's periods × its price per kW-month)
and the fixed charge (per billing month). A billing month is a calendar month of the site's
local time; a run that covers part of a month pays that month's demand and fixed charges in
full (what its bill would say).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.config import DAY_KINDS, Tariff
from twin.types import BoolArray, FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class DemandSpec:
    """One demand charge resolved on the period codes.

    Attributes
    ----------
    name : the charge's key in ``tariff.demand_charges``.
    price_per_kw_month : price [currency/kW per billing month].
    in_period : per period code, whether the charge looks at it (all True: all hours).
    """

    name: str
    price_per_kw_month: float
    in_period: BoolArray


@dataclass(frozen=True, slots=True)
class TariffSchedule:
    """The tariff on a run's steps.

    Attributes
    ----------
    names : period names (index = period code).
    prices_per_kwh : energy price per period code [currency/kWh].
    period : period code per step.
    price_per_kwh : energy price per step [currency/kWh].
    is_peak : peak flag per step (``tariff.peak_periods``).
    month : billing month per step (0 = the first step's month).
    month_labels : ``YYYY-MM`` of each billing month.
    demand : the demand charges.
    fixed_per_month : fixed charge [currency per billing month].
    currency : the site's currency.
    """

    names: tuple[str, ...]
    prices_per_kwh: FloatArray
    period: IntArray
    price_per_kwh: FloatArray
    is_peak: BoolArray
    month: IntArray
    month_labels: tuple[str, ...]
    demand: tuple[DemandSpec, ...]
    fixed_per_month: float
    currency: str

    @property
    def n_months(self) -> int:
        """Billing months the steps touch."""
        return len(self.month_labels)

    def demand_mask(self, j: int, m: int) -> BoolArray:
        """Steps that charge ``j`` looks at in billing month ``m``."""
        return (self.month == m) & self.demand[j].in_period[self.period]


def clock_hour(index: pd.DatetimeIndex) -> FloatArray:
    """Local clock hour of each instant of ``index`` [h, 0-24): hour + minute/60 + second/3600
    (the one computation: inputs, tariff, PV ambient, weather and shadow calendars)."""
    return np.asarray((index.hour + index.minute / 60.0 + index.second / 3600.0).to_numpy(dtype=float))


def day_kind(tariff: Tariff, index: pd.DatetimeIndex) -> IntArray:
    """Kind of day per step: 0 weekday, 1 weekend, 2 holiday (a holiday wins)."""
    kind = np.where(np.isin(index.day_of_week.to_numpy(), list(tariff.weekend_days)), 1, 0)
    if tariff.holidays:
        days = index.tz_localize(None).normalize().to_numpy().astype("datetime64[D]") \
            if index.tz is not None else index.normalize().to_numpy().astype("datetime64[D]")
        hol = np.isin(days, np.asarray(sorted(tariff.holidays), dtype="datetime64[D]"))
        kind = np.where(hol, 2, kind)
    return kind.astype(np.int64)


def schedule(tariff: Tariff, index: pd.DatetimeIndex, hour: FloatArray | None = None,
             currency: str | None = None) -> TariffSchedule:
    """Resolve ``tariff`` on the step starts ``index`` (site-local; ``hour`` the local hour
    of each step as a float, computed from ``index`` when not given)."""
    prices = tariff.period_prices
    names = tuple(prices)
    code_of = {p: i for i, p in enumerate(names)}
    h = clock_hour(index) if hour is None else np.asarray(hour, float)
    kind = day_kind(tariff, index)
    period = np.zeros(len(index), np.int64)
    for ki, kname in enumerate(DAY_KINDS):
        on_day = kind == ki
        if not on_day.any():
            continue
        for p, a, b in tariff.day_windows[kname]:
            period[on_day & (h >= a) & (h < b)] = code_of[p]
    price_tab = np.asarray([prices[p] for p in names], float)
    peak_tab = np.asarray([p in tariff.peak_names for p in names], bool)
    ym = (index.year.to_numpy() * 12 + index.month.to_numpy() - 1).astype(np.int64)
    first = int(ym[0]) if len(ym) else 0
    month = ym - first
    n_months = int(month.max()) + 1 if len(month) else 0
    labels = tuple(f"{(first + m) // 12:04d}-{(first + m) % 12 + 1:02d}" for m in range(n_months))
    demand = tuple(
        DemandSpec(k, dc.price_per_kw_month,
                   np.ones(len(names), bool) if dc.periods is None
                   else np.asarray([p in dc.periods for p in names], bool))
        for k, dc in tariff.demand_charges.items())
    return TariffSchedule(names, price_tab, period, price_tab[period], peak_tab[period], month,
                          labels, demand, float(tariff.fixed_charge_per_month),
                          currency or tariff.currency)


def offpeak_price_per_kwh(tariff: Tariff) -> float:
    """Lowest energy price outside the peak periods (all periods if every one is peak)
    [currency/kWh]: the reference of the seed's "HP savings" formula."""
    pr = tariff.period_prices
    off = [v for k, v in pr.items() if k not in tariff.peak_names] or list(pr.values())
    return min(off)


def tariff_summary(tariff: Tariff, b: Bill, sched: TariffSchedule) -> dict[str, object]:
    """``summary.json["tariff_bill"]``: the tariff's parts and the billed demand per month."""
    return {
        "name": tariff.name, "file": str(tariff.file) if tariff.file else None,
        "periods": tariff.period_prices, "peak_periods": list(tariff.peak_names),
        "demand_charges": {k: {"price_per_kw_month": dc.price_per_kw_month,
                               "periods": dc.periods} for k, dc in tariff.demand_charges.items()},
        "fixed_charge_per_month": tariff.fixed_charge_per_month,
        "months": list(sched.month_labels),
        "billed_demand_kw": b.peaks_kw, "demand_cost_by_charge": b.demand_by_charge,
        "energy": b.energy, "demand": b.demand, "fixed": b.fixed, "total": b.total,
    }


@dataclass(frozen=True, slots=True)
class Bill:
    """The bill of an import series [currency]; ``peaks_kw[j][m]`` the billed demand of
    charge ``j`` in month ``m`` [kW]."""

    energy: float
    demand: float
    fixed: float
    demand_by_charge: dict[str, float]
    peaks_kw: dict[str, list[float]]

    @property
    def total(self) -> float:
        """Energy + demand + fixed [currency]."""
        return self.energy + self.demand + self.fixed


def bill(sched: TariffSchedule, import_kwh: FloatArray, dt_s: float) -> Bill:
    """Price ``import_kwh`` (one value per step of ``sched``, possibly fewer: a run cut
    short is billed on the steps it ran)."""
    e = np.maximum(np.asarray(import_kwh, float), 0.0)
    n = e.shape[0]
    energy = float(np.sum(e * sched.price_per_kwh[:n]))
    p_kw = e / (dt_s / 3600.0)
    month, period = sched.month[:n], sched.period[:n]
    n_months = int(month.max()) + 1 if n else 0
    by_charge: dict[str, float] = {}
    peaks: dict[str, list[float]] = {}
    for dc in sched.demand:
        sel = dc.in_period[period]
        pk = [float(p_kw[sel & (month == m)].max(initial=0.0)) for m in range(n_months)]
        peaks[dc.name] = pk
        by_charge[dc.name] = dc.price_per_kw_month * float(sum(pk))
    return Bill(energy, float(sum(by_charge.values())), sched.fixed_per_month * n_months,
                by_charge, peaks)


__all__ = ["Bill", "DemandSpec", "TariffSchedule", "bill", "clock_hour", "day_kind", "offpeak_price_per_kwh",
           "schedule", "tariff_summary"]

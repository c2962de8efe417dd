"""The site's ``tariff:`` section: named periods with their energy prices, the day schedule
per kind of day, holidays, demand charges, and the legacy two-period keys."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from twin.config.fields import Hour, Price, _Strict

#: Currency of a site that names none (``tariff.currency``).
DEFAULT_CURRENCY = "PEN"


#: Kinds of day a tariff schedule distinguishes (a holiday wins over a weekend day).
DAY_KINDS = ("weekday", "weekend", "holiday")
#: Names of the two periods of the legacy tariff (``peak_*`` keys).
LEGACY_PEAK, LEGACY_OFFPEAK = "HP", "HFP"
#: Legacy two-period defaults: HP 18:00-22:59 at 0.45, HFP otherwise at 0.28 [currency/kWh].
_LEGACY_DEFAULTS = {"peak_start_hour": 18.0, "peak_end_hour": 23.0,
                    "peak_price_per_kwh": 0.45, "offpeak_price_per_kwh": 0.28}
PeriodName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")]
MonthlyPrice = Annotated[float, Field(ge=0.0, le=1e7, allow_inf_nan=False)]


class TariffPeriod(_Strict):
    """One named period of a tariff: its energy price."""

    price_per_kwh: Price


class TariffWindow(_Strict):
    """Hours ``[start_hour, end_hour)`` of a day that belong to ``period``."""

    period: PeriodName
    start_hour: Hour
    end_hour: Hour

    @model_validator(mode="after")
    def _order(self) -> TariffWindow:
        if self.end_hour <= self.start_hour:
            raise ValueError(f"end_hour ({self.end_hour:g}) must be later than start_hour "
                             f"({self.start_hour:g})")
        return self


class DemandCharge(_Strict):
    """A charge per kW of the billing month's highest import (mean power of one step) in
    ``periods`` (None: over all hours) [currency/kW per month]."""

    price_per_kw_month: MonthlyPrice
    periods: list[PeriodName] | None = Field(default=None, min_length=1, max_length=64)


class Tariff(_Strict):
    """The tariff: N named periods by kind of day and hour, energy prices per period,
    optional demand charges per billing month and a fixed charge per month.

    Two ways to write it: the legacy two-period keys (``peak_start_hour``, ``peak_end_hour``,
    ``peak_price_per_kwh``, ``offpeak_price_per_kwh``: OSINERGMIN MT, HP 18:00-22:59, HFP
    otherwise; the default) or a table (``periods`` and ``schedule``). ``demand_charges`` and
    ``fixed_charge_per_month`` go with either. ``file`` names a YAML file that holds the
    table (it replaces the rest of the block except ``currency``; see ``load_site``).
    """

    currency: Annotated[str, Field(min_length=1, max_length=16)] = DEFAULT_CURRENCY
    file: Path | None = None
    peak_start_hour: Hour | None = None
    peak_end_hour: Hour | None = None
    peak_price_per_kwh: Price | None = None
    offpeak_price_per_kwh: Price | None = None
    name: Annotated[str, Field(max_length=200)] = ""
    source: Annotated[str, Field(max_length=2000)] = ""
    periods: dict[PeriodName, TariffPeriod] | None = Field(default=None, min_length=1,
                                                           max_length=64)
    schedule: dict[Literal["weekday", "weekend", "holiday"],
                   Annotated[list[TariffWindow], Field(min_length=1, max_length=96)]] | None = None
    peak_periods: list[PeriodName] | None = Field(default=None, min_length=1, max_length=64)
    weekend_days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [5, 6], max_length=7)
    holidays: list[date] = Field(default_factory=list, max_length=10_000)
    demand_charges: dict[PeriodName, DemandCharge] = Field(default_factory=dict, max_length=32)
    fixed_charge_per_month: MonthlyPrice = 0.0

    _resolved: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _table(self) -> Tariff:
        legacy = [k for k in _LEGACY_DEFAULTS if getattr(self, k) is not None]
        if self.periods is None and self.schedule is None:
            v = {k: getattr(self, k) if getattr(self, k) is not None else d
                 for k, d in _LEGACY_DEFAULTS.items()}
            if v["peak_end_hour"] <= v["peak_start_hour"]:
                raise ValueError("peak_end_hour must be later than peak_start_hour")
            periods = {LEGACY_PEAK: v["peak_price_per_kwh"], LEGACY_OFFPEAK: v["offpeak_price_per_kwh"]}
            cuts = [(LEGACY_OFFPEAK, 0.0, v["peak_start_hour"]),
                    (LEGACY_PEAK, v["peak_start_hour"], v["peak_end_hour"]),
                    (LEGACY_OFFPEAK, v["peak_end_hour"], 24.0)]
            day = tuple((p, a, b) for p, a, b in cuts if b > a)
            days = {k: day for k in DAY_KINDS}
            peak: tuple[str, ...] = (LEGACY_PEAK,)
        else:
            if legacy:
                raise ValueError(f"give either the two-period keys ({', '.join(legacy)}) or "
                                 "periods/schedule, not both")
            if self.periods is None or self.schedule is None:
                raise ValueError("a tariff table needs both 'periods' (name: {price_per_kwh}) "
                                 "and 'schedule' (weekday/weekend/holiday: windows)")
            periods = {k: p.price_per_kwh for k, p in self.periods.items()}
            days = self._days(set(periods))
            top = max(periods.values())
            peak = tuple(self.peak_periods) if self.peak_periods is not None else \
                tuple(k for k, p in periods.items() if p == top)
        self._check_names(set(periods), days)
        self._resolved = (periods, days, peak)
        return self

    def _days(self, names: set[str]) -> dict[str, tuple[tuple[str, float, float], ...]]:
        assert self.schedule is not None
        if "weekday" not in self.schedule:
            raise ValueError("schedule.weekday is required (weekend defaults to weekday, "
                             "holiday to weekend)")
        days: dict[str, tuple[tuple[str, float, float], ...]] = {}
        for kind in DAY_KINDS:
            wins = self.schedule.get(kind)  # type: ignore[call-overload]
            if wins is None:
                days[kind] = days["weekend" if kind == "holiday" else "weekday"]
                continue
            ws = sorted(wins, key=lambda w: w.start_hour)
            at = 0.0
            for i, w in enumerate(ws):
                where = f"schedule.{kind}"
                if w.period not in names:
                    raise ValueError(f"{where}: unknown period {w.period!r}; the periods are "
                                     f"{sorted(names)}")
                if w.start_hour < at:
                    raise ValueError(f"{where}: hours {w.start_hour:g}-{w.end_hour:g} ({w.period}) "
                                     f"overlap {ws[i - 1].period} {ws[i - 1].start_hour:g}-"
                                     f"{ws[i - 1].end_hour:g}")
                if w.start_hour > at:
                    raise ValueError(f"{where}: hours {at:g}-{w.start_hour:g} belong to no period "
                                     "(the windows must cover 0-24 without gaps)")
                at = w.end_hour
            if at < 24.0:
                raise ValueError(f"{where}: hours {at:g}-24 belong to no period (the windows "
                                 "must cover 0-24 without gaps)")
            days[kind] = tuple((w.period, w.start_hour, w.end_hour) for w in ws)
        return days

    def _check_names(self, names: set[str], days: dict[str, Any]) -> None:
        used = {p for d in days.values() for p, _, _ in d}
        if unused := sorted(names - used):
            raise ValueError(f"periods {unused} are never scheduled (a typo in schedule?)")
        for p in self.peak_periods or ():
            if p not in names:
                raise ValueError(f"peak_periods: unknown period {p!r}; the periods are "
                                 f"{sorted(names)}")
        for k, dc in self.demand_charges.items():
            for p in dc.periods or ():
                if p not in names:
                    raise ValueError(f"demand_charges.{k}.periods: unknown period {p!r}; the "
                                     f"periods are {sorted(names)}")

    # --------------------------------------------------------------- resolved view
    @property
    def period_prices(self) -> dict[str, float]:
        """Energy price per period [currency/kWh], in table order."""
        return dict(self._resolved[0])

    @property
    def day_windows(self) -> dict[str, tuple[tuple[str, float, float], ...]]:
        """Per kind of day (weekday, weekend, holiday): (period, start_hour, end_hour)."""
        return dict(self._resolved[1])

    @property
    def peak_names(self) -> tuple[str, ...]:
        """Periods flagged as peak (``is_peak``; HP shading; rule-based controllers)."""
        return tuple(self._resolved[2])

    @property
    def peak_window_h(self) -> tuple[float, float]:
        """Hours [start, end) of the first peak window of a weekday [h] (the rule-based
        controllers' peak hours)."""
        for p, a, b in self._resolved[1]["weekday"]:
            if p in self._resolved[2]:
                return a, b
        return 24.0, 24.0

    @property
    def max_price_per_kwh(self) -> float:
        """Highest energy price of the tariff [currency/kWh]."""
        return max(self._resolved[0].values())

    @property
    def has_demand_charges(self) -> bool:
        """Whether any demand charge has a price above zero."""
        return any(dc.price_per_kw_month > 0 for dc in self.demand_charges.values())

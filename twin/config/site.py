"""Typed configuration: the site file and the scenario file, validated once at load.

Every number of the site is a parameter here (docs/spec.md §1); nothing site-specific is a constant
in code. Unknown keys are errors. Messages name the file, the field and the problem.
"""

from __future__ import annotations

import itertools
import math
import re
import reprlib
import stat
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from twin.errors import ConfigError
from twin.faults import FaultSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)


#: Physical upper bounds: far above any real site, low enough that no product, sum or
#: annual total of the model can overflow a float [kW, kWh].
MAX_KW = 1e6
MAX_KWH = 1e7

NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Frac = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Hour = Annotated[float, Field(ge=0.0, le=24.0, allow_inf_nan=False)]
PowerKw = Annotated[float, Field(ge=0.0, le=MAX_KW, allow_inf_nan=False)]
PosPowerKw = Annotated[float, Field(gt=0.0, le=MAX_KW, allow_inf_nan=False)]
EnergyKwh = Annotated[float, Field(ge=0.0, le=MAX_KWH, allow_inf_nan=False)]
Price = Annotated[float, Field(ge=0.0, le=1e3, allow_inf_nan=False)]
Width = Annotated[float, Field(gt=0.0, le=24.0, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)]


# --------------------------------------------------------------------------- site
class Location(_Strict):
    """Where the site is."""

    lat_deg: Annotated[float, Field(ge=-90, le=90)] = -3.75
    lon_deg: Annotated[float, Field(ge=-180, le=180)] = -73.25
    alt_m: Annotated[float, Field(ge=-500.0, le=9000.0)] = 106.0
    tz: str = "America/Lima"

    @field_validator("tz")
    @classmethod
    def _tz_exists(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as 'America/Lima'"
            ) from exc
        return v


class Grid(_Strict):
    """The grid connection."""

    co2_kg_per_kwh: Annotated[float, Field(ge=0.0, le=10.0)] = 0.4521
    import_limit_kw: PosPowerKw | None = None
    export_limit_kw: PowerKw = 0.0


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


class ProfileFile(_Strict):
    """A measured profile: CSV or Parquet, column name ending in _kw or _kwh."""

    path: Path
    column: Annotated[str, Field(min_length=1, max_length=200)]


class PvCloudiness(_Strict):
    """``pv.cloudiness``: parameters of the cloud and temperature model (``PvParams``).

    Every key is optional; an absent key keeps the model's default. Ranges are physical
    (clear-sky index in (0, 1), hours in [0, 24] ...); the model checks what depends on
    several keys (``kt_std`` against ``kt_mean``).
    """

    eta_inv_nom: float | None = Field(default=None, gt=0.0, le=1.0)
    albedo: float | None = Field(default=None, ge=0.0, le=1.0)
    linke_turbidity: float | None = Field(default=None, ge=0.5, le=10.0)
    kt_mean: float | None = Field(default=None, gt=0.0, lt=1.0)
    kt_std: float | None = Field(default=None, gt=0.0, lt=0.5)
    afternoon_drop_frac: float | None = Field(default=None, ge=0.0, lt=1.0)
    afternoon_peak_hour: float | None = Field(default=None, ge=0.0, le=24.0)
    afternoon_width_h: float | None = Field(default=None, gt=0.0, le=24.0)
    intraday_std: float | None = Field(default=None, ge=0.0, le=2.0)
    intraday_tau_s: float | None = Field(default=None, gt=0.0, le=86_400.0)
    kt_min: float | None = Field(default=None, ge=0.0, lt=0.5)
    kt_max: float | None = Field(default=None, ge=0.5, le=2.0)
    cloud_base_s: float | None = Field(default=None, ge=1.0, le=86_400.0)
    t_amb_min_c: float | None = Field(default=None, ge=-60.0, le=60.0)
    t_amb_max_c: float | None = Field(default=None, ge=-60.0, le=70.0)
    t_amb_peak_hour: float | None = Field(default=None, ge=0.0, le=24.0)
    wind_m_s: float | None = Field(default=None, ge=0.0, le=60.0)
    faiman_u0: float | None = Field(default=None, gt=0.0, le=100.0)
    faiman_u1: float | None = Field(default=None, ge=0.0, le=100.0)
    solpos_method: Literal["ephemeris", "nrel_numpy"] | None = None
    max_substep_s: float | None = Field(default=None, ge=1.0, le=3600.0)

    @field_validator("cloud_base_s")
    @classmethod
    def _divides_day(cls, v: float | None) -> float | None:
        if v is not None:
            n = 86_400.0 / v
            if abs(n - round(n)) > 1e-9:
                raise ValueError(f"cloud_base_s={v:g} s must divide a day (86400 s), e.g. 60")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> PvCloudiness:
        if self.t_amb_min_c is not None and self.t_amb_max_c is not None \
                and self.t_amb_max_c < self.t_amb_min_c:
            raise ValueError("t_amb_max_c must be >= t_amb_min_c")
        return self

    def given(self) -> dict[str, Any]:
        """The keys the site gives (the model keeps its defaults for the others)."""
        return self.model_dump(exclude_none=True)


class MallShape(_Strict):
    """``mall.shape``: parameters of the synthetic mall demand (``MallParams``).

    Every key is optional; an absent key keeps the model's default (``p_peak_kw`` defaults
    to the model's peak scaled by ``e_day_kwh``). The model checks what depends on several
    keys (the night base load it solves for must lie in (0, ``p_peak_kw``)).
    """

    p_peak_kw: float | None = Field(default=None, gt=0.0, le=MAX_KW)
    weekend_factor: float | None = Field(default=None, ge=0.0, le=10.0)
    noise_frac: float | None = Field(default=None, ge=0.0, le=1.0)
    noise_tau_s: float | None = Field(default=None, ge=0.0, le=1e6)
    day_std: float | None = Field(default=None, ge=0.0, le=1.0)
    day_corr: float | None = Field(default=None, ge=0.0, lt=1.0)
    preopen_h: float | None = Field(default=None, gt=0.0, le=12.0)
    postclose_h: float | None = Field(default=None, gt=0.0, le=12.0)
    morning_level: float | None = Field(default=None, ge=0.0, le=10.0)
    ac_peak_hour: float | None = Field(default=None, ge=0.0, le=24.0)
    ac_width_h: float | None = Field(default=None, gt=0.0, le=24.0)
    evening_level: float | None = Field(default=None, ge=0.0, le=10.0)
    evening_peak_hour: float | None = Field(default=None, ge=0.0, le=24.0)
    evening_width_h: float | None = Field(default=None, gt=0.0, le=24.0)
    max_substep_s: float | None = Field(default=None, ge=1.0, le=3600.0)
    open_hour: float | None = Field(default=None, ge=0.0, le=24.0)
    close_hour: float | None = Field(default=None, ge=0.0, le=24.0)

    @model_validator(mode="after")
    def _hours(self) -> MallShape:
        if self.open_hour is not None and self.close_hour is not None \
                and self.close_hour <= self.open_hour:
            raise ValueError("close_hour must be later than open_hour")
        return self

    def given(self) -> dict[str, Any]:
        """The keys the site gives (the model keeps its defaults for the others)."""
        return self.model_dump(exclude_none=True)


#: Iquitos monthly mean GHI, January first [kWh/m²/day]: the PVGIS TMY shipped in
#: ``data/weather/iquitos_pvgis_tmy.csv`` (``python scripts/pvgis_monthly_targets.py``).
IQUITOS_GHI_MONTHLY_KWH_M2_DAY: tuple[float, ...] = (
    4.570, 4.098, 4.755, 4.380, 4.000, 4.087, 4.199, 4.971, 5.231, 5.320, 4.805, 4.386)


class PvConfig(_Strict):
    """PV plant: pvlib model with a cloudiness model, or a measured profile file.

    ``ghi_monthly_kwh_m2_day`` (12 values, or null for none): the monthly GHI the cloud
    model produces (the level follows ``cloudiness.kt_mean`` only when null).
    """

    source: Literal["model", "file"] = "model"
    p_dc_kwp: PosPowerKw = 4050.0
    p_ac_max_kw: PosPowerKw = 3400.0
    tilt_deg: Annotated[float, Field(ge=0, le=90)] = 10.0
    azimuth_deg: Annotated[float, Field(ge=0, le=360)] = 0.0
    gamma_pdc_per_c: Annotated[float, Field(ge=-0.02, le=0.0)] = -0.0037
    losses_frac: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.14
    ghi_monthly_kwh_m2_day: list[Annotated[float, Field(gt=0.0, le=20.0)]] | None = Field(
        default_factory=lambda: list(IQUITOS_GHI_MONTHLY_KWH_M2_DAY))
    cloudiness: PvCloudiness = Field(default_factory=lambda: PvCloudiness())
    file: ProfileFile | None = None

    @model_validator(mode="after")
    def _file_needed(self) -> PvConfig:
        if self.source == "file" and self.file is None:
            raise ValueError("source is 'file' but no 'file: {path, column}' is given")
        g = self.ghi_monthly_kwh_m2_day
        if g is not None and len(g) != 12:
            raise ValueError(f"ghi_monthly_kwh_m2_day needs 12 values (January first), got {len(g)}")
        return self


class MallConfig(_Strict):
    """Mall demand: synthetic profile scaled to the daily energy, or a profile file."""

    source: Literal["synthetic", "file"] = "synthetic"
    e_day_kwh: Annotated[float, Field(gt=0.0, le=MAX_KWH)] = 33885.0
    shape: MallShape = Field(default_factory=lambda: MallShape())
    file: ProfileFile | None = None

    @model_validator(mode="after")
    def _file_needed(self) -> MallConfig:
        if self.source == "file" and self.file is None:
            raise ValueError("source is 'file' but no 'file: {path, column}' is given")
        return self


class VehicleClass(_Strict):
    """A vehicle type of the fleet and how its sessions are drawn.

    Stay (``ev.stay_model``): ``dwell`` (default; ``fixed`` is the same) — a gamma dwell
    time of mean ``stay_h_mean`` [h] and shape ``stay_h_shape``, clipped to [``stay_h_min``,
    ``stay_h_max``], whatever the request; ``charge_time`` — the older linger model: time to
    charge the request at the vehicle's power (with its taper) × a linger factor
    ``1 + Gamma(linger_shape, (linger_mean - 1) / linger_shape)`` + ``stay_fixed_h``.

    Vehicle: on-board charger power [kW] drawn per vehicle from ``charger_kw`` with
    ``charger_weights`` (null: every vehicle ``p_max_kw``), capped by ``p_max_kw`` and the
    socket rating; battery ``battery_kwh`` [kWh] (null: no battery model, no taper); energy
    asked uniform in [``e_req_kwh_min``, ``e_req_kwh_max``] (arrival SOC = 1 − asked /
    battery) or, when ``soc_arrival_min``/``max`` are set, arrival SOC uniform in that range
    and asked = battery × (1 − SOC); CC-CV taper: above ``taper_soc`` the power limit falls
    linearly in SOC to ``taper_floor_frac`` × the vehicle's power at 100 % (``taper_soc: 1``:
    no taper; see ``twin.components.taper``).
    """

    sessions_per_day: Annotated[float, Field(ge=0.0, le=1e5)]
    e_req_kwh_min: Annotated[float, Field(gt=0.0, le=1e4)]
    e_req_kwh_max: Annotated[float, Field(gt=0.0, le=1e4)]
    p_max_kw: Annotated[float, Field(gt=0.0, le=1e4)]
    stay_h_mean: Annotated[float, Field(gt=0.0, le=72.0)] = 1.5
    stay_h_max: Annotated[float, Field(gt=0.0, le=72.0)] = 4.0
    patience_min: Annotated[float, Field(ge=0.0, le=10_080.0)] = 20.0
    linger_mean: Annotated[float, Field(ge=1.0, le=20.0, allow_inf_nan=False)] = 1.25
    linger_shape: Annotated[float, Field(gt=0.0, le=100.0)] = 2.0
    stay_fixed_h: Annotated[float, Field(ge=0.0, le=72.0)] = 0.0
    stay_h_shape: Annotated[float, Field(ge=0.5, le=100.0, allow_inf_nan=False)] = 4.0
    stay_h_min: Annotated[float, Field(ge=0.0, le=72.0, allow_inf_nan=False)] = 0.25
    charger_kw: Annotated[list[Annotated[float, Field(gt=0.0, le=1e4, allow_inf_nan=False)]],
                          Field(min_length=1, max_length=50)] | None = None
    charger_weights: Annotated[list[Annotated[float, Field(ge=0.0, le=1e6,
                                                           allow_inf_nan=False)]],
                               Field(min_length=1, max_length=50)] | None = None
    battery_kwh: Annotated[float, Field(gt=0.0, le=1e4, allow_inf_nan=False)] | None = None
    soc_arrival_min: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None = None
    soc_arrival_max: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None = None
    taper_soc: Annotated[float, Field(ge=0.05, le=1.0, allow_inf_nan=False)] = 1.0
    taper_floor_frac: Annotated[float, Field(ge=0.01, le=1.0, allow_inf_nan=False)] = 0.1

    @model_validator(mode="after")
    def _ranges(self) -> VehicleClass:
        if self.e_req_kwh_max < self.e_req_kwh_min:
            raise ValueError("e_req_kwh_max must be >= e_req_kwh_min")
        if self.stay_h_max < self.stay_h_mean:
            raise ValueError("stay_h_max must be >= stay_h_mean")
        if self.stay_h_min > self.stay_h_mean:
            raise ValueError("stay_h_min must be <= stay_h_mean")
        if self.charger_weights is not None:
            if self.charger_kw is None or len(self.charger_weights) != len(self.charger_kw):
                raise ValueError("charger_weights needs one weight per charger_kw value")
            if sum(self.charger_weights) <= 0.0:
                raise ValueError("charger_weights are all zero")
        soc = (self.soc_arrival_min, self.soc_arrival_max)
        if (soc[0] is None) != (soc[1] is None):
            raise ValueError("soc_arrival_min and soc_arrival_max go together (both or neither)")
        if self.battery_kwh is None:
            if soc[0] is not None:
                raise ValueError("soc_arrival_min/max need battery_kwh")
            if self.taper_soc < 1.0:
                raise ValueError("taper_soc below 1 needs battery_kwh (the taper follows SOC)")
        elif soc[0] is None and self.battery_kwh < self.e_req_kwh_max:
            raise ValueError(f"battery_kwh ({self.battery_kwh:g}) must be >= e_req_kwh_max "
                             f"({self.e_req_kwh_max:g}): a vehicle cannot ask more than it holds")
        if soc[0] is not None and soc[1] is not None and soc[1] < soc[0]:
            raise ValueError("soc_arrival_max must be >= soc_arrival_min")
        return self


#: A vehicle class name: a lower-case identifier (it becomes a column category, a metric
#: label and a CityLearn name).
VehicleClassName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]

#: Most vehicle classes a site may define.
MAX_VEHICLE_CLASSES = 16


class SocketGroup(_Strict):
    """A group of identical sockets for one vehicle class (a key of ``ev.vehicles``)."""

    type: VehicleClassName
    count: Annotated[int, Field(ge=0, le=10_000)]
    p_rating_kw: Annotated[float, Field(gt=0.0, le=1e4)]


def _default_vehicles() -> dict[str, VehicleClass]:
    return {
        "moto": VehicleClass(
            sessions_per_day=270, e_req_kwh_min=2.0, e_req_kwh_max=4.0, p_max_kw=3.7,
            stay_h_mean=1.0, stay_h_max=4.0, patience_min=20.0,
            charger_kw=[3.0, 3.3, 3.7], charger_weights=[0.3, 0.3, 0.4], battery_kwh=5.0,
            soc_arrival_min=0.0, soc_arrival_max=0.3, taper_soc=0.85, taper_floor_frac=0.2,
        ),
        "mototaxi": VehicleClass(
            sessions_per_day=39, e_req_kwh_min=6.0, e_req_kwh_max=10.0, p_max_kw=7.4,
            stay_h_mean=1.5, stay_h_max=5.0, patience_min=30.0,
            charger_kw=[6.0, 6.6, 7.4], charger_weights=[0.3, 0.3, 0.4], battery_kwh=12.0,
            soc_arrival_min=0.0, soc_arrival_max=0.3, taper_soc=0.85, taper_floor_frac=0.2,
        ),
    }


def _default_sockets() -> list[SocketGroup]:
    return [
        SocketGroup(type="moto", count=30, p_rating_kw=3.7),
        SocketGroup(type="mototaxi", count=8, p_rating_kw=7.4),
    ]


#: Relative arrival intensity by local hour (0-23) inside opening hours; shopping-mall
#: shape with a lunch bump and an evening peak.
DEFAULT_ARRIVAL_WEIGHTS: tuple[float, ...] = (
    0, 0, 0, 0, 0, 0, 0, 0, 0,
    0.5, 0.6, 0.8, 1.0, 1.0, 0.9, 0.9, 1.0, 1.3, 1.7, 1.9, 1.6, 0.8, 0, 0,
)


class EvConfig(_Strict):
    """EV fleet and charging station.

    ``stay_model`` picks how synthetic stays are drawn (see ``VehicleClass``).
    ``late_min_kwh`` [kWh]: a rider arriving so close to ``close_hour`` that the socket's
    rating cannot give the whole request asks for what fits before closing; if that is
    below ``late_min_kwh`` the session is refused at the gate (status ``refused_closing``).
    """

    source: Literal["synthetic", "sessions_file", "profile"] = "synthetic"
    open_hour: Hour = 9.0
    close_hour: Hour = 22.0
    arrival_weights: list[Annotated[float, Field(ge=0.0, le=1e6)]] = Field(
        default_factory=lambda: list(DEFAULT_ARRIVAL_WEIGHTS))
    vehicles: Annotated[dict[VehicleClassName, VehicleClass],
                        Field(min_length=1, max_length=MAX_VEHICLE_CLASSES)] = Field(
        default_factory=_default_vehicles
    )
    sockets: list[SocketGroup] = Field(default_factory=_default_sockets)
    stay_model: Literal["dwell", "charge_time", "fixed"] = "dwell"
    late_min_kwh: NonNeg = 1.0
    sessions_file: Path | None = None
    profile: ProfileFile | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EvConfig:
        if self.close_hour <= self.open_hour:
            raise ValueError("close_hour must be later than open_hour")
        if len(self.arrival_weights) != 24:
            raise ValueError(
                f"arrival_weights needs 24 values (one per hour), got {len(self.arrival_weights)}"
            )
        if self.source == "synthetic" and sum(self.arrival_weights) <= 0:
            raise ValueError("arrival_weights are all zero: no vehicle could arrive")
        if self.source == "sessions_file" and self.sessions_file is None:
            raise ValueError("source is 'sessions_file' but 'sessions_file' is not given")
        if self.source == "profile" and self.profile is None:
            raise ValueError("source is 'profile' but no 'profile: {path, column}' is given")
        self._classes_and_sockets()
        return self

    def _classes_and_sockets(self) -> None:
        """Every socket group names a class of ``vehicles``; every class with arrivals has a
        socket group (``count: 0`` is a deliberate "no socket": its riders are turned away)."""
        names = self.class_names
        for i, g in enumerate(self.sockets):
            if g.type not in names:
                raise ValueError(f"ev.sockets[{i}].type: {g.type!r} is not a vehicle class "
                                 f"of ev.vehicles {list(names)}")
        grouped = {g.type for g in self.sockets}
        if self.source == "synthetic":
            lost = [n for n, vc in self.vehicles.items()
                    if vc.sessions_per_day > 0 and n not in grouped]
            if lost:
                raise ValueError(f"ev.vehicles: class(es) {lost} have arrivals (sessions_per_day "
                                 "> 0) but no socket group in ev.sockets (add one, or one with "
                                 "count: 0 to turn them all away)")

    @property
    def class_names(self) -> tuple[str, ...]:
        """Vehicle class names in file order; a class's code is its index here."""
        return tuple(self.vehicles)

    @property
    def n_sockets(self) -> int:
        """Total number of sockets."""
        return sum(g.count for g in self.sockets)


#: Technology presets (seed 004): round-trip efficiency and SOC window, plus the cell
#: chemistry whose ageing parameters apply (``AGEING_PRESETS``).
BESS_PRESETS: dict[str, dict[str, Any]] = {
    "standard": {"eta_roundtrip": 0.90, "soc_min_frac": 0.20, "soc_max_frac": 0.90,
                 "chemistry": "nmc"},
    "modern_lfp": {"eta_roundtrip": 0.93, "soc_min_frac": 0.10, "soc_max_frac": 0.95,
                   "chemistry": "lfp"},
    "premium": {"eta_roundtrip": 0.95, "soc_min_frac": 0.05, "soc_max_frac": 0.95,
                "chemistry": "lfp", "cycle_life_efc": 8000.0},
}

#: Ageing parameters per cell chemistry (see ``twin.components.bess`` for the model and
#: the sources): equivalent full cycles to ``eol_capacity_frac`` [-], calendar fade at
#: 25 °C and 50 % SOC [1/yr], relative slope of the calendar rate with SOC [-], rate factor
#: per +10 °C [-].
AGEING_PRESETS: dict[str, dict[str, float]] = {
    "lfp": {"cycle_life_efc": 6000.0, "calendar_fade_frac_per_year": 0.008,
            "calendar_soc_coeff": 1.0, "calendar_q10": 2.0},
    "nmc": {"cycle_life_efc": 3500.0, "calendar_fade_frac_per_year": 0.015,
            "calendar_soc_coeff": 2.0, "calendar_q10": 2.0},
    "lto": {"cycle_life_efc": 15000.0, "calendar_fade_frac_per_year": 0.004,
            "calendar_soc_coeff": 0.5, "calendar_q10": 1.8},
}


#: Smallest battery [kWh] (0 = none): below it the stored energy is a handful of float
#: quanta and the SOC is noise (a 5e-324 kWh battery read SOC 1.0 in a 0.17-0.23 window).
BESS_MIN_CAPACITY_KWH = 1e-3


class BessConfig(_Strict):
    """Battery: energy-reservoir model parameters.

    A ``technology`` preset fills efficiency, SOC window and chemistry; the ``chemistry``
    fills the ageing parameters (``AGEING_PRESETS``); fields given explicitly win.
    ``ageing: false`` switches cycle and calendar ageing off. ``capacity_loss_coefficient``
    is the older CityLearn-style throughput fade, added on top (0 by default).

    ``ageing_model``: ``blast`` (the default: NREL BLAST-Lite's model of the chemistry,
    ``twin.components.ageing``) or ``linear`` (the linear cycle + calendar presets at the
    fixed ``t_cell_c``). The BLAST models take the cell temperature from the container
    model: ``hvac_setpoint_c`` [°C],
    ``hvac_coupling_frac`` (share of the ambient's deviation from the setpoint reaching the
    cells, 0 = ideal HVAC) and ``container_tau_h`` (thermal lag of the container [h]).
    """

    #: the battery's name in a list of batteries (``bess:`` as a list): column names
    #: (``soc_frac_<name>``), device labels; ``bess`` for the one battery of a site
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")] = "bess"
    technology: Literal["custom", "standard", "modern_lfp", "premium"] = "custom"
    chemistry: Literal["lfp", "nmc", "lto"] = "lfp"
    ageing: bool = True
    cycle_life_efc: Annotated[float, Field(gt=0.0, le=1e6)] = 6000.0
    eol_capacity_frac: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8
    calendar_fade_frac_per_year: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.008
    calendar_soc_coeff: Annotated[float, Field(ge=0.0, le=4.0)] = 1.0
    calendar_q10: Annotated[float, Field(ge=1.0, le=4.0)] = 2.0
    t_cell_c: Annotated[float, Field(ge=-20.0, le=60.0)] = 25.0
    ageing_model: Literal["blast", "linear"] = "blast"
    hvac_setpoint_c: Annotated[float, Field(ge=0.0, le=45.0)] = 25.0
    hvac_coupling_frac: Frac = 0.5
    container_tau_h: Annotated[float, Field(ge=0.0, le=168.0)] = 6.0
    e_capacity_kwh: EnergyKwh = 2000.0
    p_charge_max_kw: PowerKw = 400.0
    p_discharge_max_kw: PowerKw = 400.0
    eta_roundtrip: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    soc_min_frac: Frac = 0.20
    soc_max_frac: Frac = 1.00
    soc_initial_frac: Frac = 0.50
    capacity_loss_coefficient: Annotated[float, Field(ge=0.0, lt=0.01)] = 0.0
    self_discharge_frac_per_h: Annotated[float, Field(ge=0.0, lt=0.1)] = 0.0
    efficiency_curve: list[tuple[Frac, Annotated[float, Field(gt=0.0, le=1.0)]]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            tech = data.get("technology", "custom")
            tech = tech if isinstance(tech, str) else None
            merged = dict(BESS_PRESETS.get(tech, {})) if tech is not None else {}
            merged.update(data)
            chem = merged.get("chemistry", "lfp")
            if isinstance(chem, str) and chem in AGEING_PRESETS:
                for k, v in AGEING_PRESETS[chem].items():
                    merged.setdefault(k, v)
            return merged
        return data

    @model_validator(mode="after")
    def _window(self) -> BessConfig:
        if 0.0 < self.e_capacity_kwh < BESS_MIN_CAPACITY_KWH:
            raise ValueError(
                f"e_capacity_kwh={self.e_capacity_kwh:g} is below {BESS_MIN_CAPACITY_KWH:g} kWh "
                "(1 Wh): too small to hold a state of charge; use 0 for a site without a battery")
        if self.soc_min_frac >= self.soc_max_frac:
            raise ValueError(
                f"soc_min_frac ({self.soc_min_frac}) must be below soc_max_frac "
                f"({self.soc_max_frac})"
            )
        if not self.soc_min_frac <= self.soc_initial_frac <= self.soc_max_frac:
            raise ValueError("soc_initial_frac must lie inside [soc_min_frac, soc_max_frac]")
        if self.efficiency_curve is not None:
            xs = [p[0] for p in self.efficiency_curve]
            if len(xs) < 2 or any(b <= a for a, b in itertools.pairwise(xs)):
                raise ValueError(
                    "efficiency_curve needs >= 2 points [p/p_nominal, efficiency] "
                    "with strictly increasing p/p_nominal"
                )
        return self

    def c_rate_warnings(self) -> list[str]:
        """Warnings for a C-rate outside 0.1-2 (not an error)."""
        out = []
        if self.e_capacity_kwh > 0:
            for name, p in (("charge", self.p_charge_max_kw), ("discharge", self.p_discharge_max_kw)):
                c = p / self.e_capacity_kwh
                if p > 0 and not 0.1 <= c <= 2.0:
                    who = "bess" if self.name == "bess" else f"bess {self.name}"
                    out.append(f"{who}: {name} C-rate {c:.2f} is outside the usual 0.1-2 range")
        return out


class Economics(_Strict):
    """Battery costs and project finance for the sizing economics of ``twin sweep`` [site
    currency]: CAPEX = fixed + per kWh + per kW (0 without a battery), O&M per kWh, per kW
    and as a fraction of CAPEX, the project life, the discount rate, and the cell
    replacement when the capacity falls below ``replacement_capacity_frac`` of nameplate.

    Defaults are placeholders of the right order for a utility LFP system (about
    US$ 300/kWh + US$ 150/kW installed, O&M about 1 % of it a year, at 3.7 PEN/US$);
    put the site's own quotes here.
    """

    bess_capex_per_kwh: NonNeg = 1100.0  # [currency/kWh] energy part of the investment
    bess_capex_per_kw: NonNeg = 550.0  # [currency/kW] power part (inverter, transformer)
    bess_opex_per_kwh_yr: NonNeg = 11.0  # [currency/kWh/yr] yearly O&M per kWh
    bess_opex_per_kw_yr: NonNeg = 5.5  # [currency/kW/yr] yearly O&M per kW
    # sizing economics of 'twin sweep' (twin.sizing.cash_flows)
    bess_capex_fixed: Annotated[float, Field(ge=0.0, le=1e9)] = 0.0  # [currency] only with a battery
    opex_frac_of_capex_yr: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0  # [1/yr] further O&M
    project_life_yr: Annotated[int, Field(ge=1, le=50)] = 15  # [yr]
    discount_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.08  # [1/yr] real, yearly
    replacement_capacity_frac: Annotated[float, Field(ge=0.5, lt=1.0)] = 0.8  # [-] of nameplate
    replacement_cost_frac: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0  # [-] of the energy part


#: Most batteries a site file may list.
MAX_BATTERIES = 32


def _check_battery_list(units: Any) -> None:
    """The shape of ``bess:`` given as a list: 1..MAX_BATTERIES mappings, each with a
    unique ``name`` (raises ValueError naming the entry)."""
    if not units:
        raise ValueError("bess: an empty list; give one battery (a mapping) or a list of "
                         "mappings, each with a name")
    if len(units) > MAX_BATTERIES:
        raise ValueError(f"bess: {len(units)} batteries; at most {MAX_BATTERIES}")
    seen: set[str] = set()
    for i, u in enumerate(units):
        if not isinstance(u, dict):
            raise ValueError(f"bess[{i}]: each entry of a list of batteries is a mapping "
                             f"(got {_short_repr(u)}); do not mix mappings and other values")
        nm = u.get("name")
        if not isinstance(nm, str) or not nm:
            raise ValueError(f"bess[{i}]: a battery in a list needs a 'name' (e.g. name: b{i + 1})")
        if nm in seen:
            raise ValueError(f"bess[{i}]: duplicate battery name {nm!r}; names must be unique")
        seen.add(nm)
        cap = u.get("e_capacity_kwh", 1.0)
        if isinstance(cap, int | float) and not cap > 0.0:
            raise ValueError(f"bess[{i}] ({nm}): e_capacity_kwh must be > 0 in a list of "
                             "batteries (drop the entry instead)")


def aggregate_bess(units: tuple[BessConfig, ...]) -> BessConfig:
    """One battery standing for a list of them (``SiteConfig.bess`` of a multi-battery site).

    Capacity and power ratings are the sums [kWh, kW]; the SOC window, the initial SOC
    and the round-trip efficiency are capacity-weighted means; chemistry and the ageing
    and container settings are the first battery's. It is what a caller that knows one
    battery sees (controllers' parameters, warnings, the sizing economics); the plant, the
    safety layer and the record use each battery.
    """
    cap = sum(u.e_capacity_kwh for u in units)

    def mean(attr: str) -> float:
        return sum(getattr(u, attr) * u.e_capacity_kwh for u in units) / cap

    first = units[0]
    data = first.model_dump()
    data.update(name="total", technology="custom", e_capacity_kwh=cap,
                p_charge_max_kw=sum(u.p_charge_max_kw for u in units),
                p_discharge_max_kw=sum(u.p_discharge_max_kw for u in units),
                eta_roundtrip=min(mean("eta_roundtrip"), 1.0),
                soc_min_frac=mean("soc_min_frac"), soc_max_frac=min(mean("soc_max_frac"), 1.0),
                efficiency_curve=None)
    data["soc_initial_frac"] = min(max(mean("soc_initial_frac"), data["soc_min_frac"]),
                                   data["soc_max_frac"])
    return BessConfig.model_validate(data)


class SiteConfig(_Strict):
    """The whole site (docs/spec.md §1).

    ``bess:`` in the site file is one battery (a mapping) or a list of batteries (each a
    mapping with a unique ``name``). ``batteries`` is always the list (one entry for a
    mapping). ``bess`` is the one battery of a one-battery site, and for a list the
    aggregate (``aggregate_bess``): use it only where a caller needs one battery's
    figures (controller parameters, C-rate warnings, shadow, calibration, economics);
    the plant, safety layer, record, results, LP and HIL use ``batteries``. The list is
    stored in ``bess_units`` (empty for a one-battery site).
    """

    name: Annotated[str, Field(max_length=200)] = "site"
    location: Location = Field(default_factory=Location)
    grid: Grid = Field(default_factory=Grid)
    tariff: Tariff = Field(default_factory=Tariff)
    pv: PvConfig = Field(default_factory=PvConfig)
    mall: MallConfig = Field(default_factory=MallConfig)
    ev: EvConfig = Field(default_factory=EvConfig)
    bess: BessConfig = Field(default_factory=BessConfig)
    bess_units: tuple[BessConfig, ...] = ()
    economics: Economics = Field(default_factory=Economics)

    @model_validator(mode="before")
    @classmethod
    def _battery_list(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        b = data.get("bess")
        if isinstance(b, list | tuple):
            if data.get("bess_units"):
                raise ValueError("bess: give the list of batteries under 'bess:' only")
            _check_battery_list(b)
            data = {k: v for k, v in data.items() if k != "bess"}
            data["bess_units"] = list(b)
        elif data.get("bess_units") is not None:
            units = data["bess_units"]
            if isinstance(units, list | tuple) and units:
                # a dumped multi-battery site read back: ``bess`` is the derived aggregate
                _check_battery_list([u.model_dump() if isinstance(u, BaseModel) else u
                                     for u in units])
                data = {k: v for k, v in data.items() if k != "bess"}
        return data

    @model_validator(mode="after")
    def _aggregate(self) -> SiteConfig:
        if self.bess_units:
            object.__setattr__(self, "bess", aggregate_bess(self.bess_units))
        return self

    @property
    def batteries(self) -> tuple[BessConfig, ...]:
        """The site's batteries (one entry for a one-battery site)."""
        return self.bess_units if self.bess_units else (self.bess,)


# ----------------------------------------------------------------------- scenario
#: Years a scenario may start in (pandas timestamps end in 2262; the PV model's solar
#: position is validated for 1900-2100 and usable a century further).
START_YEARS = (1900, 2200)
#: Longest horizon [s] (50 years).
MAX_DURATION_S = 50 * 366 * 86_400.0

class OutputConfig(_Strict):
    """What the run writes."""

    dir: Path | None = None
    #: also write timeseries.csv and sessions.csv (``twin run --csv``)
    csv: bool = False
    parquet: bool = True


_DAYS = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(?:d|day|days)\s*$")


def _parse_timedelta_s(v: Any, what: str) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{what} must be a duration such as '15min', '1h', '7d' or seconds")
    if isinstance(v, int | float):
        s = float(v)
    elif isinstance(v, str) and (m := _DAYS.match(v)):
        s = float(m.group(1)) * 86400.0
    else:
        try:
            s = pd.Timedelta(str(v)).total_seconds()
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{what} {v!r} is not a duration; write e.g. '15min', '1h', '7d' or seconds"
            ) from exc
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"{what} must be positive, got {v!r}")
    return s


class NoisyForecast(_Strict):
    """A seeded noisy forecast: perfect values × (1 + e), e ~ N(0, ``rmse_frac``)."""

    rmse_frac: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.15


class NoisyForecastSpec(_Strict):
    """``forecast: {noisy: {rmse_frac: 0.15}}``."""

    noisy: NoisyForecast = Field(default_factory=NoisyForecast)


ForecastSpec = Literal["perfect", "persistence"] | NoisyForecastSpec

#: controller_params keys (or string values with these suffixes) that name files: resolved
#: relative to the scenario file.
PATH_PARAM_KEYS = ("policy", "path", "file")
PATH_PARAM_SUFFIXES = (".onnx", ".json", ".npz", ".csv", ".parquet", ".yaml", ".yml")


def resolve_param_paths(params: dict[str, Any], base: Path) -> dict[str, Any]:
    """``controller_params`` with relative file paths made relative to ``base`` (a folder)."""
    return {k: str(_resolve(base, Path(v))) if _is_path_param(k, v) else v
            for k, v in params.items()}


#: Largest gap allowed between rows of a weather or measured-series file [s] (a week).
MAX_GAP_LIMIT_S = 7 * 86_400.0


def _tz_name(v: str | None) -> str | None:
    if v is not None:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. UTC or "
                             "America/Lima)") from exc
    return v


class WeatherConfig(_Strict):
    """``weather:``: what the PV chain is fed (``twin.components.weather``).

    ``source``: ``model`` (the stochastic cloud model of ``pv.cloudiness``, the default),
    ``tmy`` (a typical year, placed on the run's years at the same month, day and hour; 29
    February repeats 28 February) or ``file`` (measured weather with full time stamps
    covering the run). Unit, time zone and time label declare a plain CSV; PVGIS and EPW
    files carry their own.
    """

    source: Literal["model", "tmy", "file"] = "model"
    file: Path | None = None
    format: Literal["auto", "csv", "pvgis_json", "pvgis_csv", "epw"] = "auto"
    timezone: Annotated[str, Field(max_length=64)] | None = None
    irradiance_unit: Literal["W/m2", "kW/m2"] = "W/m2"
    temperature_unit: Literal["C", "K"] = "C"
    time_label: Literal["instant", "interval_start", "interval_end"] = "instant"
    max_gap_s: float = 3 * 3600.0
    fill_max_rows: Annotated[int, Field(ge=0, le=1000)] = 3

    @field_validator("max_gap_s", mode="before")
    @classmethod
    def _gap(cls, v: Any) -> float:
        s = _parse_timedelta_s(v, "max_gap_s")
        if s > MAX_GAP_LIMIT_S:
            raise ValueError(f"max_gap_s must be at most {MAX_GAP_LIMIT_S / 86400:g} days")
        return s

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return _tz_name(v)

    @model_validator(mode="after")
    def _file_needed(self) -> WeatherConfig:
        if self.source != "model" and self.file is None:
            raise ValueError(f"source is '{self.source}' but no 'file' is given")
        return self


class MeasuredConfig(_Strict):
    """``measured:``: a measured-series file (``twin.components.measured``) whose ``use``
    channels (``pv``, ``mall``) replace the site's PV and mall inputs."""

    file: Path
    use: list[Literal["pv", "mall"]] = Field(default_factory=lambda: ["pv", "mall"])  # type: ignore[arg-type]
    fill_max_steps: Annotated[int, Field(ge=0, le=1000)] = 4


class ScenarioConfig(_Strict):
    """A scenario: which site, when, how fine, which controller, what to write."""

    name: Annotated[str, Field(min_length=1, max_length=200)] = "scenario"
    site: Path
    start: datetime
    duration: float  # [s]
    dt: float  # [s]
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    controller: Annotated[str, Field(max_length=100)] = "six_phase"
    controller_params: dict[str, Any] = Field(default_factory=dict)
    forecast: ForecastSpec = "perfect"
    output: OutputConfig = Field(default_factory=OutputConfig)
    overrides: dict[str, Any] = Field(default_factory=dict)
    faults: list[FaultSpec] = Field(default_factory=list)  # HIL fault injection (twin.faults)
    weather: WeatherConfig = Field(default_factory=WeatherConfig)
    measured: MeasuredConfig | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return _parse_timedelta_s(v, "duration")

    @field_validator("dt", mode="before")
    @classmethod
    def _dt(cls, v: Any) -> float:
        return _parse_timedelta_s(v, "dt")

    @field_validator("start")
    @classmethod
    def _start_in_range(cls, v: datetime) -> datetime:
        if not START_YEARS[0] <= v.year <= START_YEARS[1]:
            raise ValueError(f"start year {v.year} is outside {START_YEARS[0]}-{START_YEARS[1]}")
        return v

    @model_validator(mode="after")
    def _dt_divides(self) -> ScenarioConfig:
        if self.duration > MAX_DURATION_S:
            raise ValueError(f"duration {self.duration / 86400:g} d is longer than the "
                             f"{MAX_DURATION_S / 86400:g} d the twin simulates")
        if self.dt < 1.0 or self.dt > 3600.0:
            raise ValueError(f"dt must be between 1 s and 1 h, got {self.dt:g} s")
        n = self.duration / self.dt
        if abs(n - round(n)) > 1e-9:
            raise ValueError(
                f"dt ({self.dt:g} s) does not divide the duration ({self.duration:g} s) "
                "into whole steps; pick a dt such as 15min or 1min"
            )
        return self

    @property
    def n_steps(self) -> int:
        """Number of control steps in the horizon."""
        return round(self.duration / self.dt)


# ------------------------------------------------------------------------ loading
class Scenario(BaseModel):
    """A loaded scenario with its validated site, paths resolved."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    config: ScenarioConfig
    site: SiteConfig
    site_path: Path
    warnings: tuple[str, ...] = ()

    @property
    def index(self) -> pd.DatetimeIndex:
        """Step starts, timezone-aware in the site's time zone."""
        tz = self.site.location.tz
        start = pd.Timestamp(self.config.start)
        start = start.tz_localize(tz) if start.tzinfo is None else start.tz_convert(tz)
        return pd.date_range(start, periods=self.config.n_steps, freq=pd.Timedelta(seconds=self.config.dt))


SCENARIO_KEYS = frozenset(ScenarioConfig.model_fields)


#: Limits of a YAML file: size [bytes], nesting depth, nodes reachable through aliases.
YAML_MAX_BYTES = 4 * 2**20
YAML_MAX_DEPTH = 64
YAML_MAX_ALIAS_NODES = 10_000
#: Values (YAML nodes) in a small device file (devices file, register map): a long flow list
#: is refused while it is being read, not parsed for tens of seconds.
YAML_MAX_VALUES_DEVICE = 10_000


class _YamlLimitError(Exception):
    """A YAML file over one of the limits (message says which)."""


def _node_count(node: yaml.Node, cap: int) -> int:
    """Nodes under ``node`` (aliases counted again), up to ``cap``; iterative."""
    n, stack = 0, [node]
    while stack and n <= cap:
        cur = stack.pop()
        n += 1
        if isinstance(cur, yaml.MappingNode):
            for k, v in cur.value:
                stack.extend((k, v))
        elif isinstance(cur, yaml.SequenceNode):
            stack.extend(cur.value)
    return n


class _LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with a nesting-depth limit and a cap on alias expansion."""

    def __init__(self, stream: str, max_values: int | None = None) -> None:
        super().__init__(stream)
        self._depth = 0
        self._alias_nodes = 0
        self._nodes = 0
        self._max_nodes = max_values

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._max_nodes is not None and self._nodes > self._max_nodes:
                raise _YamlLimitError(f"more than {self._max_nodes} values long (a file of "
                                      "this kind holds a few hundred)")
            if self._depth > YAML_MAX_DEPTH:
                raise _YamlLimitError(f"nested deeper than {YAML_MAX_DEPTH} levels")
            if self.check_event(yaml.AliasEvent):
                anchor = self.peek_event().anchor
                target = self.anchors.get(anchor)
                if target is not None:
                    self._alias_nodes += _node_count(target, YAML_MAX_ALIAS_NODES)
                    if self._alias_nodes > YAML_MAX_ALIAS_NODES:
                        raise _YamlLimitError(
                            f"aliases (*name) expand to more than {YAML_MAX_ALIAS_NODES} values "
                            "(an alias bomb?)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping; a key written twice is an error (plain YAML keeps the last silently,
        so a second vehicle class or battery of the same name would vanish)."""
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        problem=f"duplicate key {key_node.value!r} (each key once per mapping)",
                        problem_mark=key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, max_values: int | None = None) -> dict[str, Any]:
    """Read a YAML mapping: a regular file (no FIFO or device), size, depth and alias limits
    (and at most ``max_values`` YAML values when given)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    if st is None:
        raise ConfigError(f"{path}: file not found. Check the path (relative paths are "
                          "taken from the folder of the file that names them).")
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, " \
            "FIFO or socket)"
        raise ConfigError(f"{path}: is {kind}; name a YAML file.")
    if st.st_size > YAML_MAX_BYTES:
        raise ConfigError(f"{path}: {st.st_size} bytes is too big for a configuration file "
                          f"(at most {YAML_MAX_BYTES // 2**20} MiB).")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(YAML_MAX_BYTES + 1)
        if len(raw) > YAML_MAX_BYTES:
            raise ConfigError(f"{path}: too big for a configuration file (at most "
                              f"{YAML_MAX_BYTES // 2**20} MiB).")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc}).") from exc
    try:
        loader = _LimitedLoader(text, max_values)  # a SafeLoader subclass
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except _YamlLimitError as exc:
        raise ConfigError(f"{path}: refused: the YAML is {exc}. Write plain values.") from None
    except RecursionError:
        raise ConfigError(f"{path}: refused: the YAML is nested too deeply.") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. 2024-02-30 as a timestamp
        raise ConfigError(f"{path}: a value cannot be read: {exc} (an impossible date such as "
                          "2024-02-30 or hour 25?). Fix the value.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: broken YAML{where}: {problem}. Fix the syntax.") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values, "
                          f"got {type(data).__name__}.")
    return data


def read_device_yaml(path: Path) -> dict[str, Any]:
    """Read a devices file or register map: as a configuration file (regular file, at most
    4 MiB checked before parsing, depth and alias limits) with at most
    ``YAML_MAX_VALUES_DEVICE`` values.

    Raises
    ------
    ConfigError
        Naming the file and the limit or the YAML problem.
    """
    return _read_yaml(path, YAML_MAX_VALUES_DEVICE)


def _short_repr(v: Any, limit: int = 80) -> str:
    """``repr(v)`` cut to ``limit`` characters (without building a huge string)."""
    if isinstance(v, list | tuple) and len(v) > 10:
        return f"a list of {len(v)} items"
    r = reprlib.Repr()
    r.maxstring = r.maxother = limit
    r.maxlevel = 3
    r.maxlist = r.maxtuple = r.maxdict = 6
    return r.repr(v)


def _format_errors(path: Path, exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        if loc.startswith("bess_units."):  # the list given under ``bess:``
            loc = "bess." + loc[len("bess_units."):]
        msg = err["msg"]
        if not loc and err["type"] == "value_error" and msg.startswith("Value error, bess"):
            loc, _, msg = msg[len("Value error, "):].partition(": ")  # the battery list's
        field = prefix + loc if loc else (prefix.rstrip(".") or "(top level)")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a field of this section; check the spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        inp = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(inp, dict) \
            else f" (got {_short_repr(inp)})"
        lines.append(f"{path}: field '{field}': {msg}{shown}")
    return "\n".join(lines)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = 'a.b.c'``, creating mappings."""
    parts = dotted.split(".")
    cur = data
    i = 0
    while i < len(parts) - 1:
        p = parts[i]
        nxt = cur.get(p)
        if nxt is None:
            nxt = {}
            cur[p] = nxt
        if isinstance(nxt, list) and all(isinstance(u, dict) for u in nxt):
            # a list of named entries (``bess:`` batteries): the next part names one
            names = [u.get("name") for u in nxt]
            i += 1
            if i >= len(parts) - 1 or parts[i] not in names:
                raise ConfigError(f"--set {dotted}: '{p}' is a list; name an entry "
                                  f"({', '.join(map(str, names))}), e.g. "
                                  f"{p}.{names[0]}.{parts[-1]}={value}")
            j = names.index(parts[i])
            nxt[j] = dict(nxt[j])
            nxt = nxt[j]
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: '{p}' is not a section")
        cur = nxt
        i += 1
    cur[parts[-1]] = value


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p)


def _resolve_site_paths(site: dict[str, Any], base: Path) -> None:
    for sect, key in (("pv", "file"), ("mall", "file"), ("ev", "profile")):
        s = site.get(sect)
        if isinstance(s, dict) and isinstance(s.get(key), dict) and "path" in s[key]:
            s[key]["path"] = str(_resolve(base, Path(str(s[key]["path"]))))
    ev = site.get("ev")
    if isinstance(ev, dict) and isinstance(ev.get("sessions_file"), str):
        ev["sessions_file"] = str(_resolve(base, Path(ev["sessions_file"])))


#: Values in a tariff file (periods, windows, holidays ...): a few hundred at most.
YAML_MAX_VALUES_TARIFF = 50_000


def _read_tariff_file(site: dict[str, Any], path: Path) -> None:
    """Replace ``site['tariff']`` by the tariff of the file it names (``tariff.file``),
    validated with the file's name in the messages. Keys of the site's block override the
    file's (``currency``, ``demand_charges`` ...), except the two-period keys
    (``peak_*``, ``offpeak_*``), which a file with a table replaces."""
    tar = site.get("tariff")
    if not isinstance(tar, dict) or tar.get("file") in (None, ""):
        return
    if not isinstance(tar["file"], str | Path):
        raise ConfigError(f"{path}: field 'tariff.file': must be a path to a tariff YAML file "
                          f"(got {_short_repr(tar['file'])})")
    fpath = _resolve(path.parent, Path(str(tar["file"])))
    body = _read_yaml(fpath, YAML_MAX_VALUES_TARIFF)
    if "tariff" in body and len(body) == 1 and isinstance(body["tariff"], dict):
        body = dict(body["tariff"])  # a file may hold the block under a 'tariff:' key
    if "file" in body:
        raise ConfigError(f"{fpath}: field 'file': a tariff file cannot name another file")
    cur = tar.get("currency")
    if cur is not None and body.get("currency", cur) != cur:
        raise ConfigError(f"{path}: field 'tariff.currency': {cur!r} differs from the tariff "
                          f"file's currency {body['currency']!r} ({fpath}); drop one")
    # the file gives the tariff; the block's other keys override it (--set tariff.x=...),
    # except the two-period keys, which a file with a table replaces
    table = "periods" in body or "schedule" in body
    keep = {k: v for k, v in tar.items()
            if k != "file" and not (table and k in _LEGACY_DEFAULTS)}
    merged = {**body, **keep, "file": str(fpath)}
    try:
        Tariff.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_errors(fpath, exc)) from exc
    site["tariff"] = merged


def load_site(path: Path, overrides: dict[str, Any] | None = None) -> SiteConfig:
    """Load and validate a site file, applying dotted ``overrides``.

    Raises
    ------
    ConfigError
        With the file, the field and the problem.
    """
    path = Path(path)
    data = _read_yaml(path)
    for k, v in (overrides or {}).items():
        set_dotted(data, k, v)
    _resolve_site_paths(data, path.parent)
    _read_tariff_file(data, path)
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from exc


#: Dotted site keys that name files (made absolute against the working directory when
#: given on the command line; against the site file's folder when written in it).
SITE_PATH_KEYS = ("pv.file.path", "mall.file.path", "ev.profile.path", "ev.sessions_file",
                  "tariff.file")
#: Dotted scenario keys that name files (absolute against the working directory on the
#: command line).
SCENARIO_PATH_KEYS = ("weather.file", "measured.file")


def _is_path_param(key: str, value: Any) -> bool:
    return isinstance(value, str) and bool(value) and (
        key in PATH_PARAM_KEYS or key.endswith(("_path", "_file"))
        or value.lower().endswith(PATH_PARAM_SUFFIXES))


def cli_paths_absolute(sets: dict[str, Any], cwd: Path | None = None) -> dict[str, Any]:
    """``--set`` values that name files, made absolute against the working directory.

    A path typed on the command line means what the shell means (relative to the working
    directory); a path written in a scenario or site file is relative to that file.
    """
    base = Path.cwd() if cwd is None else cwd
    out: dict[str, Any] = {}
    for k, v in sets.items():
        last = k.rsplit(".", 1)[-1]
        if k == "site" or k in SITE_PATH_KEYS or k in SCENARIO_PATH_KEYS:
            v = str(_resolve(base, Path(str(v)))) if isinstance(v, str | Path) and v else v
        elif k.startswith("controller_params.") and _is_path_param(last, v):
            v = str(_resolve(base, Path(v)))
        elif k == "controller_params" and isinstance(v, dict):
            v = resolve_param_paths(v, base)
        out[k] = v
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse ``--set dotted.key=value`` items (values are YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write dotted.key=value, e.g. bess.e_capacity_kwh=1500")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: the key is empty")
        try:
            out[key] = yaml.load(raw, Loader=_LimitedLoader)  # a SafeLoader subclass
        except (yaml.YAMLError, _YamlLimitError, RecursionError, ValueError, TypeError,
                OverflowError) as exc:
            raise ConfigError(f"--set {item!r}: the value is not a valid YAML scalar "
                              f"({str(exc)[:120]})") from None
    return out


def _resolve_input_files(cfg: ScenarioConfig, base: Path) -> ScenarioConfig:
    """The scenario's weather and measured files made relative to its folder."""
    upd: dict[str, Any] = {}
    w = cfg.weather
    if w.file is not None and not w.file.is_absolute():
        upd["weather"] = w.model_copy(update={"file": base / w.file})
    m = cfg.measured
    if m is not None and not m.file.is_absolute():
        upd["measured"] = m.model_copy(update={"file": base / m.file})
    return cfg.model_copy(update=upd) if upd else cfg


def load_scenario(path: Path | str, sets: dict[str, Any] | None = None) -> Scenario:
    """Load a scenario file and its site, applying ``--set`` values.

    A ``--set`` key whose first part is a scenario field (``seed``, ``dt``, ``controller``,
    ``output.dir`` ...) changes the scenario; any other key (``bess.e_capacity_kwh``) is a
    site override, like the scenario's own ``overrides:`` mapping.
    """
    path = Path(path)
    return scenario_from_data(path, _read_yaml(path), sets)


def scenario_from_data(path: Path, data: dict[str, Any],
                       sets: dict[str, Any] | None = None) -> Scenario:
    """:func:`load_scenario` of a scenario's mapping ``data`` (paths in it are relative to
    ``path``'s folder; messages name ``path``)."""
    data = dict(data)
    site_over: dict[str, Any] = {}
    for k, v in cli_paths_absolute(sets or {}).items():
        if k.split(".")[0] in SCENARIO_KEYS and k.split(".")[0] not in ("overrides",):
            set_dotted(data, k, v)
        else:
            site_over[k] = v
    if "site" not in data:
        raise ConfigError(f"{path}: field 'site': required field is missing "
                          "(name the site file, e.g. site: ../config/site.yaml)")
    data_site = data.get("site")
    if not isinstance(data_site, str | Path):
        raise ConfigError(f"{path}: field 'site': must be a path to a site YAML file")
    site_path = _resolve(path.parent, Path(str(data_site)))
    data["site"] = str(site_path)
    try:
        cfg = ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from exc
    overrides = dict(cfg.overrides)
    overrides.update(site_over)
    try:
        site = load_site(site_path, overrides)
    except ConfigError as exc:
        if overrides:
            raise ConfigError(f"{exc}\n(overrides applied: {sorted(overrides)})") from exc
        raise
    if cfg.output.dir is not None and not cfg.output.dir.is_absolute():
        cfg = cfg.model_copy(update={"output": cfg.output.model_copy(
            update={"dir": Path.cwd() / cfg.output.dir})})
    cfg = _resolve_input_files(cfg, path.parent)
    if cfg.controller_params:
        cfg = cfg.model_copy(update={"controller_params": resolve_param_paths(
            dict(cfg.controller_params), path.parent)})
    warnings = tuple(w for b in site.batteries for w in b.c_rate_warnings())
    return Scenario(path=path, config=cfg, site=site, site_path=site_path, warnings=warnings)


def seeds_weather(scn: Scenario, n_seeds: int) -> tuple[dict[str, Any], str | None]:
    """``--set`` values and a note for a trial over ``n_seeds`` seeds of ``scn``.

    A typical year (``weather.source: tmy``) gives every seed the same sun, so a trial over
    several seeds runs the stochastic cloud model instead (the seeds then vary PV, mall and
    EV); a measured weather file is kept (the seeds vary the mall and EV only) with a note.
    """
    src = scn.config.weather.source
    if n_seeds < 2 or src == "model":
        return {}, None
    if src == "tmy":
        return {"weather.source": "model"}, (
            f"{scn.path}: the {n_seeds} seeds run the synthetic cloud model, not the typical "
            f"year {scn.config.weather.file} (one TMY would give every seed the same sun); "
            "--seeds 1 runs the TMY")
    return {}, (f"{scn.path}: PV comes from the weather file {scn.config.weather.file} for every "
                f"seed; the {n_seeds} seeds vary the mall and EV only")


#: Keys only a scenario has (a file with one of them is checked as a scenario).
SCENARIO_ONLY_KEYS = frozenset({"site", "start", "duration", "dt", "seed", "controller",
                                "controller_params", "forecast", "output", "overrides",
                                "faults", "weather", "measured"})


def looks_like_scenario(path: Path) -> bool:
    """True when the YAML file is a scenario (has scenario keys), False for a site file.

    Raises
    ------
    ConfigError
        When the file is empty or holds only comments: there is nothing to validate.
    """
    data = _read_yaml(path)
    if not data:
        raise ConfigError(f"{path}: the file is empty (or only comments): nothing to check. "
                          "A scenario needs at least site, start, duration and dt; a site "
                          "file at least one section (pv, mall, ev, bess ...).")
    return bool(SCENARIO_ONLY_KEYS & set(map(str, data)))

"""The site file: location, grid, PV, mall, economics and the whole ``SiteConfig``
(tariff, EV fleet and batteries in their own modules)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from twin.config.bess import BessConfig, _check_battery_list, aggregate_bess
from twin.config.ev import EvConfig
from twin.config.fields import MAX_KW, MAX_KWH, NonNeg, PosPowerKw, PowerKw, ProfileFile, _Strict
from twin.config.tariff import Tariff


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

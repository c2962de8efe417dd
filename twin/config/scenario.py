"""The scenario file: horizon, step, seed, controller, forecast, weather and measured inputs,
output; the loaded :class:`Scenario` (with its validated site)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.config.fields import _Strict
from twin.config.site import SiteConfig
from twin.faults import FaultSpec

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

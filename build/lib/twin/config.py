"""Typed configuration: the site file and the scenario file, validated once at load.

Every number of the site is a parameter here (SPEC §1); nothing site-specific is a constant
in code. Unknown keys are errors. Messages name the file, the field and the problem.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from twin.errors import ConfigError
from twin.faults import FaultSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Frac = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Hour = Annotated[float, Field(ge=0.0, le=24.0, allow_inf_nan=False)]


# --------------------------------------------------------------------------- site
class Location(_Strict):
    """Where the site is."""

    lat_deg: Annotated[float, Field(ge=-90, le=90)] = -3.75
    lon_deg: Annotated[float, Field(ge=-180, le=180)] = -73.25
    alt_m: float = 106.0
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

    co2_kg_per_kwh: NonNeg = 0.4521
    import_limit_kw: Pos | None = None
    export_limit_kw: NonNeg = 0.0


class Tariff(_Strict):
    """Two-period time-of-use tariff (OSINERGMIN MT: HP 18:00-22:59, HFP otherwise)."""

    currency: str = "PEN"
    peak_start_hour: Hour = 18.0
    peak_end_hour: Hour = 23.0
    peak_price_per_kwh: NonNeg = 0.45
    offpeak_price_per_kwh: NonNeg = 0.28

    @model_validator(mode="after")
    def _window(self) -> Tariff:
        if self.peak_end_hour <= self.peak_start_hour:
            raise ValueError("peak_end_hour must be later than peak_start_hour")
        return self


class ProfileFile(_Strict):
    """A measured profile: CSV or Parquet, column name ending in _kw or _kwh."""

    path: Path
    column: str


#: Iquitos monthly mean GHI, January first [kWh/m²/day] (NASA POWER climatology as
#: recalled without network access; see ``twin.components.pv`` for the source and caveats).
IQUITOS_GHI_MONTHLY_KWH_M2_DAY: tuple[float, ...] = (
    4.47, 4.52, 4.31, 4.19, 4.00, 3.95, 4.19, 4.65, 4.89, 4.86, 4.80, 4.56)


class PvConfig(_Strict):
    """PV plant: pvlib model with a cloudiness model, or a measured profile file.

    ``ghi_monthly_kwh_m2_day`` (12 values, or null for none) shapes the cloudiness by month.
    """

    source: Literal["model", "file"] = "model"
    p_dc_kwp: NonNeg = 4050.0
    p_ac_max_kw: NonNeg = 3400.0
    tilt_deg: Annotated[float, Field(ge=0, le=90)] = 10.0
    azimuth_deg: Annotated[float, Field(ge=0, le=360)] = 0.0
    gamma_pdc_per_c: Annotated[float, Field(ge=-0.02, le=0.0)] = -0.0037
    losses_frac: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.14
    ghi_monthly_kwh_m2_day: list[Pos] | None = Field(
        default_factory=lambda: list(IQUITOS_GHI_MONTHLY_KWH_M2_DAY))
    cloudiness: dict[str, float] = Field(default_factory=dict)
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
    e_day_kwh: NonNeg = 33885.0
    shape: dict[str, float] = Field(default_factory=dict)
    file: ProfileFile | None = None

    @model_validator(mode="after")
    def _file_needed(self) -> MallConfig:
        if self.source == "file" and self.file is None:
            raise ValueError("source is 'file' but no 'file: {path, column}' is given")
        return self


class VehicleClass(_Strict):
    """A vehicle type of the fleet and how its sessions are drawn.

    Stay (``ev.stay_model``): ``charge_time`` — time to charge the request at the socket's
    rating × a linger factor ``1 + Gamma(linger_shape, (linger_mean - 1) / linger_shape)``
    + ``stay_fixed_h``; ``fixed`` — the older model, a gamma stay of mean ``stay_h_mean``
    clipped to [0.25 h, ``stay_h_max``], whatever the request.
    """

    sessions_per_day: NonNeg
    e_req_kwh_min: Pos
    e_req_kwh_max: Pos
    p_max_kw: Pos
    stay_h_mean: Pos = 1.5
    stay_h_max: Pos = 4.0
    patience_min: NonNeg = 20.0
    linger_mean: Annotated[float, Field(ge=1.0, le=20.0, allow_inf_nan=False)] = 1.25
    linger_shape: Pos = 2.0
    stay_fixed_h: NonNeg = 0.0

    @model_validator(mode="after")
    def _ranges(self) -> VehicleClass:
        if self.e_req_kwh_max < self.e_req_kwh_min:
            raise ValueError("e_req_kwh_max must be >= e_req_kwh_min")
        if self.stay_h_max < self.stay_h_mean:
            raise ValueError("stay_h_max must be >= stay_h_mean")
        return self


class SocketGroup(_Strict):
    """A group of identical sockets for one vehicle type."""

    type: Literal["moto", "mototaxi"]
    count: Annotated[int, Field(ge=0, le=10_000)]
    p_rating_kw: Pos


def _default_vehicles() -> dict[Literal["moto", "mototaxi"], VehicleClass]:
    return {
        "moto": VehicleClass(
            sessions_per_day=270, e_req_kwh_min=2.0, e_req_kwh_max=4.0, p_max_kw=3.7,
            stay_h_mean=1.5, stay_h_max=4.0, patience_min=20.0,
        ),
        "mototaxi": VehicleClass(
            sessions_per_day=39, e_req_kwh_min=6.0, e_req_kwh_max=10.0, p_max_kw=7.4,
            stay_h_mean=2.0, stay_h_max=5.0, patience_min=30.0,
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
    0.6, 0.8, 1.0, 1.2, 1.1, 1.0, 1.0, 1.1, 1.3, 1.5, 1.5, 1.2, 0.6, 0, 0,
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
    arrival_weights: list[NonNeg] = Field(default_factory=lambda: list(DEFAULT_ARRIVAL_WEIGHTS))
    vehicles: dict[Literal["moto", "mototaxi"], VehicleClass] = Field(
        default_factory=_default_vehicles
    )
    sockets: list[SocketGroup] = Field(default_factory=_default_sockets)
    stay_model: Literal["charge_time", "fixed"] = "charge_time"
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
        return self

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


class BessConfig(_Strict):
    """Battery: energy-reservoir model parameters.

    A ``technology`` preset fills efficiency, SOC window and chemistry; the ``chemistry``
    fills the ageing parameters (``AGEING_PRESETS``); fields given explicitly win.
    ``ageing: false`` switches cycle and calendar ageing off. ``capacity_loss_coefficient``
    is the older CityLearn-style throughput fade, added on top (0 by default).
    """

    technology: Literal["custom", "standard", "modern_lfp", "premium"] = "custom"
    chemistry: Literal["lfp", "nmc", "lto"] = "lfp"
    ageing: bool = True
    cycle_life_efc: Pos = 6000.0
    eol_capacity_frac: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8
    calendar_fade_frac_per_year: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.008
    calendar_soc_coeff: Annotated[float, Field(ge=0.0, le=4.0)] = 1.0
    calendar_q10: Annotated[float, Field(ge=1.0, le=4.0)] = 2.0
    t_cell_c: Annotated[float, Field(ge=-20.0, le=60.0)] = 25.0
    e_capacity_kwh: NonNeg = 2000.0
    p_charge_max_kw: NonNeg = 400.0
    p_discharge_max_kw: NonNeg = 400.0
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
            merged = dict(BESS_PRESETS.get(tech, {}))
            merged.update(data)
            chem = merged.get("chemistry", "lfp")
            if chem in AGEING_PRESETS:
                for k, v in AGEING_PRESETS[chem].items():
                    merged.setdefault(k, v)
            return merged
        return data

    @model_validator(mode="after")
    def _window(self) -> BessConfig:
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
                    out.append(f"bess: {name} C-rate {c:.2f} is outside the usual 0.1-2 range")
        return out


class SiteConfig(_Strict):
    """The whole site (SPEC §1)."""

    name: str = "site"
    location: Location = Field(default_factory=Location)
    grid: Grid = Field(default_factory=Grid)
    tariff: Tariff = Field(default_factory=Tariff)
    pv: PvConfig = Field(default_factory=PvConfig)
    mall: MallConfig = Field(default_factory=MallConfig)
    ev: EvConfig = Field(default_factory=EvConfig)
    bess: BessConfig = Field(default_factory=BessConfig)


# ----------------------------------------------------------------------- scenario
class OutputConfig(_Strict):
    """What the run writes."""

    dir: Path | None = None
    csv: bool = True
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
    out: dict[str, Any] = {}
    for k, v in params.items():
        is_path = isinstance(v, str) and v and (
            k in PATH_PARAM_KEYS or k.endswith(("_path", "_file"))
            or v.lower().endswith(PATH_PARAM_SUFFIXES))
        out[k] = str(_resolve(base, Path(v))) if is_path else v
    return out


class ScenarioConfig(_Strict):
    """A scenario: which site, when, how fine, which controller, what to write."""

    name: str = "scenario"
    site: Path
    start: datetime
    duration: float  # [s]
    dt: float  # [s]
    seed: Annotated[int, Field(ge=0)] = 0
    controller: str = "six_phase"
    controller_params: dict[str, Any] = Field(default_factory=dict)
    forecast: ForecastSpec = "perfect"
    output: OutputConfig = Field(default_factory=OutputConfig)
    overrides: dict[str, Any] = Field(default_factory=dict)
    faults: list[FaultSpec] = Field(default_factory=list)  # HIL fault injection (twin.faults)

    @field_validator("duration", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return _parse_timedelta_s(v, "duration")

    @field_validator("dt", mode="before")
    @classmethod
    def _dt(cls, v: Any) -> float:
        return _parse_timedelta_s(v, "dt")

    @model_validator(mode="after")
    def _dt_divides(self) -> ScenarioConfig:
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


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path}: file not found. Check the path (relative paths are "
                          "taken from the folder of the file that names them).")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc}).") from exc
    try:
        data = yaml.safe_load(text)
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


def _format_errors(path: Path, exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        field = prefix + loc if loc else (prefix.rstrip(".") or "(top level)")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a field of this section; check the spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        inp = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(inp, dict) \
            else f" (got {inp!r})"
        lines.append(f"{path}: field '{field}': {msg}{shown}")
    return "\n".join(lines)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = 'a.b.c'``, creating mappings."""
    parts = dotted.split(".")
    cur = data
    for p in parts[:-1]:
        nxt = cur.get(p)
        if nxt is None:
            nxt = {}
            cur[p] = nxt
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: '{p}' is not a section")
        cur = nxt
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
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from exc


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
            out[key] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not a valid YAML scalar") from exc
    return out


def load_scenario(path: Path | str, sets: dict[str, Any] | None = None) -> Scenario:
    """Load a scenario file and its site, applying ``--set`` values.

    A ``--set`` key whose first part is a scenario field (``seed``, ``dt``, ``controller``,
    ``output.dir`` ...) changes the scenario; any other key (``bess.e_capacity_kwh``) is a
    site override, like the scenario's own ``overrides:`` mapping.
    """
    path = Path(path)
    data = _read_yaml(path)
    site_over: dict[str, Any] = {}
    for k, v in (sets or {}).items():
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
    if cfg.controller_params:
        cfg = cfg.model_copy(update={"controller_params": resolve_param_paths(
            dict(cfg.controller_params), path.parent)})
    warnings = tuple(site.bess.c_rate_warnings())
    return Scenario(path=path, config=cfg, site=site, site_path=site_path, warnings=warnings)


def looks_like_scenario(path: Path) -> bool:
    """True when the YAML file names a site (a scenario), False for a site file."""
    data = _read_yaml(path)
    return "site" in data and isinstance(data.get("site"), str)

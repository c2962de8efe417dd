"""Typed configuration: the site file and the scenario file, validated once at load.

Every number of the site is a parameter here (docs/spec.md §1); nothing site-specific is a constant
in code. Unknown keys are errors. Messages name the file, the field and the problem.

One job per module (this package re-exports every name, so ``from twin.config import X``
keeps working):

* :mod:`twin.config.fields`: the strict base model, physical bounds, constrained numbers;
* :mod:`twin.config.tariff`, :mod:`twin.config.ev`, :mod:`twin.config.bess`: the site's
  ``tariff``, ``ev`` and ``bess`` sections;
* :mod:`twin.config.site`: location, grid, PV, mall, economics and ``SiteConfig``;
* :mod:`twin.config.scenario`: the scenario file and the loaded ``Scenario``;
* :mod:`twin.config.safe_yaml`: the one YAML reader (size, depth, alias and value limits);
* :mod:`twin.config.paths`: file paths relative to their file or the working directory;
* :mod:`twin.config.messages`: validation errors as one line per field;
* :mod:`twin.config.loading`: ``load_site``, ``load_scenario``, ``--set`` overrides.
"""

from twin.config.bess import (
    AGEING_PRESETS,
    BESS_MIN_CAPACITY_KWH,
    BESS_PRESETS,
    MAX_BATTERIES,
    BessConfig,
    aggregate_bess,
)
from twin.config.ev import (
    DEFAULT_ARRIVAL_WEIGHTS,
    MAX_VEHICLE_CLASSES,
    EvConfig,
    SocketGroup,
    VehicleClass,
    VehicleClassName,
)
from twin.config.fields import (
    MAX_KW,
    MAX_KWH,
    EnergyKwh,
    Frac,
    Hour,
    NonNeg,
    Pos,
    PosPowerKw,
    PowerKw,
    Price,
    ProfileFile,
    Seconds,
    Width,
)
from twin.config.loading import (
    SCENARIO_ONLY_KEYS,
    load_scenario,
    load_site,
    looks_like_scenario,
    parse_set,
    scenario_from_data,
    set_dotted,
)
from twin.config.paths import (
    PATH_PARAM_KEYS,
    PATH_PARAM_SUFFIXES,
    SCENARIO_PATH_KEYS,
    SITE_PATH_KEYS,
    _resolve_site_paths,
    cli_paths_absolute,
    resolve_param_paths,
)
from twin.config.safe_yaml import (
    YAML_MAX_ALIAS_NODES,
    YAML_MAX_BYTES,
    YAML_MAX_DEPTH,
    YAML_MAX_VALUES_DEVICE,
    YAML_MAX_VALUES_TARIFF,
    _read_yaml,
    read_device_yaml,
)
from twin.config.scenario import (
    MAX_DURATION_S,
    MAX_GAP_LIMIT_S,
    SCENARIO_KEYS,
    START_YEARS,
    ForecastSpec,
    MeasuredConfig,
    NoisyForecast,
    NoisyForecastSpec,
    OutputConfig,
    Scenario,
    ScenarioConfig,
    WeatherConfig,
    _parse_timedelta_s,
    seeds_weather,
)
from twin.config.site import (
    IQUITOS_GHI_MONTHLY_KWH_M2_DAY,
    Economics,
    Grid,
    Location,
    MallConfig,
    MallShape,
    PvCloudiness,
    PvConfig,
    SiteConfig,
)
from twin.config.tariff import (
    DAY_KINDS,
    DEFAULT_CURRENCY,
    LEGACY_OFFPEAK,
    LEGACY_PEAK,
    DemandCharge,
    MonthlyPrice,
    PeriodName,
    Tariff,
    TariffPeriod,
    TariffWindow,
)
from twin.errors import ConfigError

__all__ = [
    "AGEING_PRESETS",
    "BESS_MIN_CAPACITY_KWH",
    "BESS_PRESETS",
    "DAY_KINDS",
    "DEFAULT_ARRIVAL_WEIGHTS",
    "DEFAULT_CURRENCY",
    "IQUITOS_GHI_MONTHLY_KWH_M2_DAY",
    "LEGACY_OFFPEAK",
    "LEGACY_PEAK",
    "MAX_BATTERIES",
    "MAX_DURATION_S",
    "MAX_GAP_LIMIT_S",
    "MAX_KW",
    "MAX_KWH",
    "MAX_VEHICLE_CLASSES",
    "PATH_PARAM_KEYS",
    "PATH_PARAM_SUFFIXES",
    "SCENARIO_KEYS",
    "SCENARIO_ONLY_KEYS",
    "SCENARIO_PATH_KEYS",
    "SITE_PATH_KEYS",
    "START_YEARS",
    "YAML_MAX_ALIAS_NODES",
    "YAML_MAX_BYTES",
    "YAML_MAX_DEPTH",
    "YAML_MAX_VALUES_DEVICE",
    "YAML_MAX_VALUES_TARIFF",
    "BessConfig",
    "ConfigError",
    "DemandCharge",
    "Economics",
    "EnergyKwh",
    "EvConfig",
    "ForecastSpec",
    "Frac",
    "Grid",
    "Hour",
    "Location",
    "MallConfig",
    "MallShape",
    "MeasuredConfig",
    "MonthlyPrice",
    "NoisyForecast",
    "NoisyForecastSpec",
    "NonNeg",
    "OutputConfig",
    "PeriodName",
    "Pos",
    "PosPowerKw",
    "PowerKw",
    "Price",
    "ProfileFile",
    "PvCloudiness",
    "PvConfig",
    "Scenario",
    "ScenarioConfig",
    "Seconds",
    "SiteConfig",
    "SocketGroup",
    "Tariff",
    "TariffPeriod",
    "TariffWindow",
    "VehicleClass",
    "VehicleClassName",
    "WeatherConfig",
    "Width",
    "_parse_timedelta_s",
    "_read_yaml",
    "_resolve_site_paths",
    "aggregate_bess",
    "cli_paths_absolute",
    "load_scenario",
    "load_site",
    "looks_like_scenario",
    "parse_set",
    "read_device_yaml",
    "resolve_param_paths",
    "scenario_from_data",
    "seeds_weather",
    "set_dotted",
]

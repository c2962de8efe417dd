"""Build a scenario's exogenous inputs: PV, mall, EV sessions, calendar and tariff.

Each component gets an independent seeded random stream from the scenario seed, so
changing the EV fleet never changes the PV profile and vice versa.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from twin.components.profiles import ProfileError, load_profile_kw
from twin.components.sessions import draw_sessions, read_sessions
from twin.config import ConfigError, Scenario, SiteConfig
from twin.inputs import PlantInputs, SessionTable
from twin.tariff import clock_hour
from twin.tariff import schedule as tariff_schedule
from twin.types import FloatArray

RNG_STREAMS = ("pv", "mall", "ev")


def rng_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators per component from one scenario seed."""
    children = np.random.SeedSequence(seed).spawn(len(RNG_STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(RNG_STREAMS, children, strict=True)}


def _params(cls: type, base: dict[str, Any], extra: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(extra) - names)
    if unknown:
        known = sorted(names - set(base))
        raise ConfigError(f"site field '{where}': unknown key(s) {unknown}; known: {known}")
    return cls(**{**base, **extra})


def _default(cls: type, name: str) -> float:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return float(f.default)  # type: ignore[arg-type]
    raise KeyError(name)


@contextlib.contextmanager
def _model_errors(scn: Scenario, what: str) -> Iterator[None]:
    """A model's rejection of its parameters (ValueError) as a configuration error."""
    try:
        yield
    except ValueError as exc:
        raise ConfigError(f"{scn.site_path}: the {what} model cannot use these values: {exc}. "
                          "Change the site values named here.") from None


def check_inputs_finite(scn: Scenario, inputs: PlantInputs) -> None:
    """Every exogenous power finite and below the physical bound (before any run).

    Raises
    ------
    ConfigError
        Naming the input and the first bad step.
    """
    from twin.config import MAX_KW

    arrays = {"PV power": inputs.p_pv_kw, "mall demand": inputs.p_mall_kw}
    if inputs.p_ev_profile_kw is not None:
        arrays["EV profile"] = inputs.p_ev_profile_kw
    for name, a in arrays.items():
        a = np.asarray(a, dtype=float)
        bad = ~np.isfinite(a) | (np.abs(a) > MAX_KW)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"{scn.site_path}: the {name} is {a[i]:.6g} kW at {inputs.index[i]} (step {i}); "
                f"powers above {MAX_KW:g} kW (or not finite) are not physical. Fix the "
                "profile file or the site values.")


def _profile(site_file: str, f: Any, index: pd.DatetimeIndex, dt_s: float) -> FloatArray:
    try:
        return load_profile_kw(f.path, f.column, index, dt_s)
    except ProfileError as exc:
        raise ConfigError(f"{exc} (named by field '{site_file}')") from exc


def _measured(scn: Scenario) -> Any:
    """The scenario's measured-series file at the tick (``measured:``), or None."""
    m = scn.config.measured
    if m is None:
        return None
    from twin.components.measured import read_measured

    return read_measured(m.file, scn.index, scn.config.dt, fill_max_steps=m.fill_max_steps,
                         need=m.use)


def _pv_on_weather(scn: Scenario, params: Any
                   ) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    """PV AC power, GHI and air temperature per step from the scenario's weather file, and
    the number of values filled; read from the PV cache when the file's bytes, the
    ``weather:`` fields, the steps and the PV parameters are those of a cached entry."""
    from twin.components.pv import cache_dir
    from twin.components.weather import (
        WeatherPv,
        pv_from_weather,
        read_weather,
        read_weather_pv_cached,
        weather_on_run,
        weather_pv_key,
        write_weather_pv_cached,
    )

    spec = scn.config.weather
    folder = cache_dir()
    key = weather_pv_key(spec, scn.index, scn.config.dt, params) if folder is not None else None
    if folder is not None and key is not None:
        hit = read_weather_pv_cached(folder, key, len(scn.index), params.p_ac_max_kw)
        if hit is not None:
            return hit.p_ac_kw, hit.ghi_w_m2, hit.temp_air_c, hit.n_filled
    w = read_weather(spec)
    frame = weather_on_run(w, spec, scn.index, scn.config.dt)
    with _model_errors(scn, "pv"):
        p_pv, ghi, t_air = pv_from_weather(scn.index, scn.config.dt, params, frame)
    if folder is not None and key is not None:
        write_weather_pv_cached(folder, key, WeatherPv(p_pv, ghi, t_air, w.n_filled))
    return p_pv, ghi, t_air, w.n_filled


def pv_params(site: SiteConfig) -> Any:
    """The :class:`twin.components.pv.PvParams` of a site (its ``pv`` and location fields)."""
    from twin.components.pv import PvParams

    pv = site.pv
    base = {"lat_deg": site.location.lat_deg, "lon_deg": site.location.lon_deg,
            "alt_m": site.location.alt_m, "p_dc_kwp": pv.p_dc_kwp,
            "p_ac_max_kw": pv.p_ac_max_kw, "tilt_deg": pv.tilt_deg,
            "azimuth_deg": pv.azimuth_deg, "gamma_pdc_per_c": pv.gamma_pdc_per_c,
            "losses_frac": pv.losses_frac,
            "ghi_monthly_kwh_m2_day": (tuple(pv.ghi_monthly_kwh_m2_day)
                                       if pv.ghi_monthly_kwh_m2_day else None)}
    return _params(PvParams, base, pv.cloudiness.given(), "pv.cloudiness")


def mall_params(site: SiteConfig) -> Any:
    """The :class:`twin.components.mall.MallParams` of a site's synthetic mall."""
    from twin.components.mall import MallParams

    mall = site.mall
    # the default peak scales with the daily energy (33,885 kWh/d -> 2,150 kW)
    base_m = {"e_day_kwh": mall.e_day_kwh,
              "p_peak_kw": _default(MallParams, "p_peak_kw") * mall.e_day_kwh
              / _default(MallParams, "e_day_kwh")}
    return _params(MallParams, base_m, mall.shape.given(), "mall.shape")


def pv_weather_inputs(scn: Scenario) -> tuple[FloatArray, FloatArray] | None:
    """GHI [W/m²] and air temperature [°C] per step that the scenario's PV model saw
    (the same cloud draws as :func:`build_inputs`, or its weather file), or None when PV
    comes from a file or a measured series."""
    from twin.components.pv import pv_weather_cached

    measured = scn.config.measured
    if scn.site.pv.source == "file" or (measured is not None and "pv" in measured.use):
        return None
    if scn.config.weather.source != "model":  # build_inputs kept them
        return None
    with _model_errors(scn, "pv (pv.cloudiness)"):
        return pv_weather_cached(scn.index, scn.config.dt, pv_params(scn.site),
                                 rng_streams(scn.config.seed)["pv"])


def _ambient_c(cloudiness: dict[str, Any], hour_mid: FloatArray) -> FloatArray:
    """Ambient air temperature at the step middles [°C]: the PV model's diurnal ambient
    (``pv.cloudiness`` ``t_amb_min_c`` / ``t_amb_max_c`` / ``t_amb_peak_hour``, or their
    defaults; also with ``pv.source: file``)."""
    from twin.components.pv import PvParams, diurnal_ambient_c

    names = ("t_amb_min_c", "t_amb_max_c", "t_amb_peak_hour")
    t_min, t_max, peak = (float(cloudiness.get(k, _default(PvParams, k))) for k in names)
    return diurnal_ambient_c(hour_mid, t_min, t_max, peak)


def build_inputs(scn: Scenario) -> PlantInputs:
    """PV, mall, EV sessions and calendar arrays for the scenario.

    Raises
    ------
    ConfigError
        For a missing or broken profile or sessions file.
    """
    from twin.components.mall import mall_kw
    from twin.components.pv import pv_ac_kw_cached

    site = scn.site
    idx = scn.index
    dt_s = scn.config.dt
    rngs = rng_streams(scn.config.seed)
    measured = _measured(scn)
    n_filled = measured.n_filled if measured is not None else 0
    ghi: FloatArray | None = None
    t_air: FloatArray | None = None
    # PV
    pv = site.pv
    if measured is not None and "pv" in scn.config.measured.use:  # type: ignore[union-attr]
        p_pv = measured.values["pv"]
    elif pv.source == "file":
        p_pv = _profile("pv.file", pv.file, idx, dt_s)
    else:
        params = pv_params(site)
        if scn.config.weather.source != "model":
            p_pv, ghi, t_air, filled = _pv_on_weather(scn, params)
            n_filled += filled
        else:
            with _model_errors(scn, "pv (pv.cloudiness)"):
                p_pv = pv_ac_kw_cached(idx, dt_s, params, rngs["pv"])
    # mall
    mall = site.mall
    if measured is not None and "mall" in scn.config.measured.use:  # type: ignore[union-attr]
        p_mall = measured.values["mall"]
    elif mall.source == "file":
        p_mall = _profile("mall.file", mall.file, idx, dt_s)
    else:
        with _model_errors(scn, "mall (mall.e_day_kwh, mall.shape)"):
            p_mall = mall_kw(idx, dt_s, mall_params(site), rngs["mall"])
    # EV
    ev = site.ev
    start = idx[0]
    duration = scn.config.duration
    sessions: SessionTable | None = None
    p_ev_prof = None
    if ev.source == "synthetic":
        with _model_errors(scn, "ev"):
            sessions = draw_sessions(ev, start, duration, rngs["ev"])
    elif ev.source == "sessions_file":
        assert ev.sessions_file is not None
        sessions = read_sessions(ev.sessions_file, ev, start, duration)
    else:
        p_ev_prof = _profile("ev.profile", ev.profile, idx, dt_s)
    # calendar and tariff
    hour = clock_hour(idx)
    weekday = idx.day_of_week.to_numpy()
    tar = tariff_schedule(site.tariff, idx, hour)
    is_peak, price = tar.is_peak, tar.price_per_kwh
    ev_open = (hour >= ev.open_hour) & (hour < ev.close_hour)
    out = PlantInputs(idx, dt_s, np.asarray(p_pv, float), np.asarray(p_mall, float), p_ev_prof,
                      sessions, hour, weekday, price, is_peak, ev_open, n_filled, ghi,
                      t_air if t_air is not None
                      else _ambient_c(pv.cloudiness.given(), hour + dt_s / 7200.0))
    check_inputs_finite(scn, out)
    return out


__all__ = ["RNG_STREAMS", "build_inputs", "rng_streams"]

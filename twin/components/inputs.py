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
from twin.config import ConfigError, Scenario
from twin.inputs import PlantInputs, SessionTable
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


def _ambient_c(cloudiness: dict[str, Any], hour_mid: FloatArray) -> FloatArray:
    """Ambient air temperature at the step middles [°C]: the PV model's diurnal ambient
    (``pv.cloudiness`` ``t_amb_min_c`` / ``t_amb_max_c`` / ``t_amb_peak_hour``, or their
    defaults; also with ``pv.source: file``)."""
    from twin.components.ageing import diurnal_ambient_c
    from twin.components.pv import PvParams

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
    from twin.components.mall import MallParams, mall_kw
    from twin.components.pv import PvParams, pv_ac_kw_cached

    site = scn.site
    idx = scn.index
    dt_s = scn.config.dt
    rngs = rng_streams(scn.config.seed)
    # PV
    pv = site.pv
    if pv.source == "file":
        p_pv = _profile("pv.file", pv.file, idx, dt_s)
    else:
        base = {"lat_deg": site.location.lat_deg, "lon_deg": site.location.lon_deg,
                "alt_m": site.location.alt_m, "p_dc_kwp": pv.p_dc_kwp,
                "p_ac_max_kw": pv.p_ac_max_kw, "tilt_deg": pv.tilt_deg,
                "azimuth_deg": pv.azimuth_deg, "gamma_pdc_per_c": pv.gamma_pdc_per_c,
                "losses_frac": pv.losses_frac,
                "ghi_monthly_kwh_m2_day": (tuple(pv.ghi_monthly_kwh_m2_day)
                                           if pv.ghi_monthly_kwh_m2_day else None)}
        with _model_errors(scn, "pv (pv.cloudiness)"):
            p_pv = pv_ac_kw_cached(idx, dt_s, _params(PvParams, base, pv.cloudiness.given(),
                                               "pv.cloudiness"), rngs["pv"])
    # mall
    mall = site.mall
    if mall.source == "file":
        p_mall = _profile("mall.file", mall.file, idx, dt_s)
    else:
        # the default peak scales with the daily energy (33,885 kWh/d -> 2,150 kW)
        shape = mall.shape.given()
        base_m = {"e_day_kwh": mall.e_day_kwh,
                  "p_peak_kw": _default(MallParams, "p_peak_kw") * mall.e_day_kwh
                  / _default(MallParams, "e_day_kwh")}
        with _model_errors(scn, "mall (mall.e_day_kwh, mall.shape)"):
            p_mall = mall_kw(idx, dt_s, _params(MallParams, base_m, shape, "mall.shape"),
                             rngs["mall"])
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
    hour = (idx.hour + idx.minute / 60.0 + idx.second / 3600.0).to_numpy(dtype=float)
    weekday = idx.day_of_week.to_numpy()
    tar = site.tariff
    is_peak = (hour >= tar.peak_start_hour) & (hour < tar.peak_end_hour)
    price = np.where(is_peak, tar.peak_price_per_kwh, tar.offpeak_price_per_kwh)
    ev_open = (hour >= ev.open_hour) & (hour < ev.close_hour)
    out = PlantInputs(idx, dt_s, np.asarray(p_pv, float), np.asarray(p_mall, float), p_ev_prof,
                      sessions, hour, weekday, price, is_peak, ev_open,
                      _ambient_c(pv.cloudiness.given(), hour + dt_s / 7200.0))
    check_inputs_finite(scn, out)
    return out


__all__ = ["RNG_STREAMS", "build_inputs", "rng_streams"]

"""Build a scenario's exogenous inputs: PV, mall, EV sessions, calendar and tariff.

Each component gets an independent seeded random stream from the scenario seed, so
changing the EV fleet never changes the PV profile and vice versa.
"""

from __future__ import annotations

import dataclasses
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


def _profile(site_file: str, f: Any, index: pd.DatetimeIndex, dt_s: float) -> FloatArray:
    try:
        return load_profile_kw(f.path, f.column, index, dt_s)
    except ProfileError as exc:
        raise ConfigError(f"{exc} (named by field '{site_file}')") from exc


def build_inputs(scn: Scenario) -> PlantInputs:
    """PV, mall, EV sessions and calendar arrays for the scenario.

    Raises
    ------
    ConfigError
        For a missing or broken profile or sessions file.
    """
    from twin.components.mall import MallParams, mall_kw
    from twin.components.pv import PvParams, pv_ac_kw

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
        p_pv = pv_ac_kw(idx, dt_s, _params(PvParams, base, dict(pv.cloudiness), "pv.cloudiness"),
                        rngs["pv"])
    # mall
    mall = site.mall
    if mall.source == "file":
        p_mall = _profile("mall.file", mall.file, idx, dt_s)
    else:
        p_mall = mall_kw(idx, dt_s, _params(MallParams, {"e_day_kwh": mall.e_day_kwh},
                                            dict(mall.shape), "mall.shape"), rngs["mall"])
    # EV
    ev = site.ev
    start = idx[0]
    duration = scn.config.duration
    sessions: SessionTable | None = None
    p_ev_prof = None
    if ev.source == "synthetic":
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
    return PlantInputs(idx, dt_s, np.asarray(p_pv, float), np.asarray(p_mall, float), p_ev_prof,
                       sessions, hour, weekday, price, is_peak, ev_open)


__all__ = ["RNG_STREAMS", "build_inputs", "rng_streams"]

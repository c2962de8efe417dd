"""Weather as a site's station measures it, and the PV chain run on measured irradiance.

* :func:`weather_series` — what a weather station at the site reads for a scenario: the
  cloud model's step-mean global horizontal irradiance (the same clouds as the scenario's
  PV power: the same ``pv`` random stream), the air temperature of the PV model's diurnal
  curve at mid-step and a back-of-module temperature (Faiman, on GHI). The Modbus
  simulator publishes it (SunSpec 308).
* :func:`pv_ac_from_ghi_kw` — the twin's PV chain (:func:`twin.components.pv.pv_chain_kw`:
  Erbs decomposition, Hay-Davies transposition, physical IAM, Faiman cell temperature,
  PVWatts DC and inverter) on a *measured* GHI and air temperature, with the twin's own
  plant parameters. Shadow mode predicts PV power with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.components.inputs import pv_params, rng_streams
from twin.components.pv import PvParams, _pvlib, diurnal_ambient_c, pv_chain_kw, pv_ghi_w_m2
from twin.config import Scenario
from twin.tariff import clock_hour
from twin.types import FloatArray


@dataclass(frozen=True)
class WeatherSeries:
    """One value per step: GHI [W/m²], air and back-of-module temperature [°C]."""

    ghi_w_m2: FloatArray
    t_amb_c: FloatArray
    t_module_c: FloatArray


def _t_amb_c(times: pd.DatetimeIndex, params: PvParams) -> FloatArray:
    """The PV model's diurnal air temperature at ``times`` [°C] (local clock hours)."""
    hour = clock_hour(times)
    return np.asarray(diurnal_ambient_c(hour, params.t_amb_min_c, params.t_amb_max_c,
                                        params.t_amb_peak_hour), dtype=float)


def weather_series(scn: Scenario) -> WeatherSeries:
    """What a weather station at the site measures over the scenario, per step.

    Raises
    ------
    ValueError
        When the site's PV comes from a file (no irradiance model to measure).
    """
    site = scn.site
    if site.pv.source == "file":
        raise ValueError("pv.source is 'file': the scenario has no irradiance to measure")
    params = pv_params(site)
    idx, dt_s = scn.index, scn.config.dt
    ghi = pv_ghi_w_m2(idx, dt_s, params, rng_streams(scn.config.seed)["pv"])
    mid = pd.DatetimeIndex(idx + pd.Timedelta(seconds=dt_s / 2.0))
    t_amb = _t_amb_c(mid, params)
    t_mod = _pvlib().temperature.faiman(ghi, t_amb, params.wind_m_s, u0=params.faiman_u0,
                                        u1=params.faiman_u1)
    return WeatherSeries(np.asarray(ghi, float), t_amb, np.asarray(t_mod, float))


def pv_ac_from_ghi_kw(times: pd.DatetimeIndex, ghi_w_m2: FloatArray, t_amb_c: FloatArray,
                      params: PvParams) -> FloatArray:
    """AC power of the PV plant [kW] for a measured GHI and air temperature at ``times``.

    Parameters
    ----------
    times : timezone-aware instants (mid-steps).
    ghi_w_m2 : global horizontal irradiance there [W/m²].
    t_amb_c : air temperature there [°C].
    params : the plant (the twin's own site parameters).

    Returns
    -------
    AC power [kW], >= 0, <= ``params.p_ac_max_kw``.
    """
    ghi = np.maximum(np.asarray(ghi_w_m2, dtype=float), 0.0)
    p_ac = pv_chain_kw(times, ghi, np.asarray(t_amb_c, dtype=float), params)[1]
    return np.clip(np.nan_to_num(p_ac), 0.0, params.p_ac_max_kw)


__all__ = ["WeatherSeries", "pv_ac_from_ghi_kw", "pv_params", "weather_series"]

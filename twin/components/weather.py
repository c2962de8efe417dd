"""Weather as a site's station measures it, and the PV chain run on measured irradiance.

* :func:`weather_series` — what a weather station at the site reads for a scenario: the
  cloud model's step-mean global horizontal irradiance (the same clouds as the scenario's
  PV power: the same ``pv`` random stream), the air temperature of the PV model's diurnal
  curve at mid-step and a back-of-module temperature (Faiman, on GHI). The Modbus
  simulator publishes it (SunSpec 308).
* :func:`pv_ac_from_ghi_kw` — the twin's PV chain (the one of :mod:`twin.components.pv`:
  Erbs decomposition, Hay-Davies transposition, physical IAM, Faiman cell temperature,
  PVWatts DC and inverter) evaluated at mid-step on a *measured* GHI and air temperature,
  with the twin's own plant parameters. Shadow mode predicts PV power with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.components.inputs import _params, rng_streams
from twin.components.pv import PvParams, _pvlib, _sun_and_clear_sky, pv_ghi_w_m2
from twin.config import Scenario, SiteConfig
from twin.types import FloatArray


def pv_params(site: SiteConfig) -> PvParams:
    """The PV model parameters of ``site`` (as ``twin.components.inputs.build_inputs``)."""
    pv, loc = site.pv, site.location
    base = {"lat_deg": loc.lat_deg, "lon_deg": loc.lon_deg, "alt_m": loc.alt_m,
            "p_dc_kwp": pv.p_dc_kwp, "p_ac_max_kw": pv.p_ac_max_kw, "tilt_deg": pv.tilt_deg,
            "azimuth_deg": pv.azimuth_deg, "gamma_pdc_per_c": pv.gamma_pdc_per_c,
            "losses_frac": pv.losses_frac,
            "ghi_monthly_kwh_m2_day": (tuple(pv.ghi_monthly_kwh_m2_day)
                                       if pv.ghi_monthly_kwh_m2_day else None)}
    return _params(PvParams, base, pv.cloudiness.given(), "pv.cloudiness")


@dataclass(frozen=True)
class WeatherSeries:
    """One value per step: GHI [W/m²], air and back-of-module temperature [°C]."""

    ghi_w_m2: FloatArray
    t_amb_c: FloatArray
    t_module_c: FloatArray


def _t_amb_c(times: pd.DatetimeIndex, params: PvParams) -> FloatArray:
    """The PV model's diurnal air temperature at ``times`` [°C] (local clock hours)."""
    hour = (times.hour + times.minute / 60.0 + times.second / 3600.0).to_numpy(dtype=float)
    mean = 0.5 * (params.t_amb_min_c + params.t_amb_max_c)
    amp = 0.5 * (params.t_amb_max_c - params.t_amb_min_c)
    return np.asarray(mean + amp * np.cos(2.0 * np.pi * (hour - params.t_amb_peak_hour) / 24.0))


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
    pvlib = _pvlib()
    sun = _sun_and_clear_sky(times, params)
    zen, app_zen, sun_az = sun["zen"], sun["app_zen"], sun["sun_az"]
    ghi = np.maximum(np.asarray(ghi_w_m2, dtype=float), 0.0)
    dec = pvlib.irradiance.erbs(ghi, zen, sun["doy"])
    dni = np.nan_to_num(np.asarray(dec["dni"], dtype=np.float64))
    dhi = np.nan_to_num(np.asarray(dec["dhi"], dtype=np.float64))
    poa = pvlib.irradiance.get_total_irradiance(
        params.tilt_deg, params.azimuth_deg, app_zen, sun_az, dni, ghi, dhi,
        dni_extra=sun["dni_extra"], albedo=params.albedo, model="haydavies")
    beam = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=np.float64))
    sky = np.nan_to_num(np.asarray(poa["poa_sky_diffuse"], dtype=np.float64))
    gnd = np.nan_to_num(np.asarray(poa["poa_ground_diffuse"], dtype=np.float64))
    aoi = pvlib.irradiance.aoi(params.tilt_deg, params.azimuth_deg, zen, sun_az)
    iam_beam = np.nan_to_num(np.asarray(pvlib.iam.physical(aoi), dtype=np.float64))
    iam_diff = pvlib.iam.marion_diffuse("physical", params.tilt_deg)
    poa_global = np.maximum(beam + sky + gnd, 0.0)
    poa_eff = np.maximum(beam * iam_beam + sky * float(np.asarray(iam_diff["sky"]))
                         + gnd * float(np.asarray(iam_diff["ground"])), 0.0)
    t_cell = pvlib.temperature.faiman(poa_global, np.asarray(t_amb_c, dtype=float),
                                      params.wind_m_s, u0=params.faiman_u0, u1=params.faiman_u1)
    p_dc = pvlib.pvsystem.pvwatts_dc(poa_eff, t_cell, params.p_dc_kwp, params.gamma_pdc_per_c)
    p_dc = np.maximum(np.asarray(p_dc, dtype=np.float64), 0.0) * (1.0 - params.losses_frac)
    p_ac = pvlib.inverter.pvwatts(p_dc, params.p_ac_max_kw / params.eta_inv_nom,
                                  eta_inv_nom=params.eta_inv_nom)
    return np.clip(np.nan_to_num(np.asarray(p_ac, dtype=np.float64)), 0.0, params.p_ac_max_kw)


__all__ = ["WeatherSeries", "pv_ac_from_ghi_kw", "pv_params", "weather_series"]

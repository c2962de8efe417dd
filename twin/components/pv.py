"""PV plant AC power from a physical irradiance chain (pvlib) with a stochastic cloud model.

The chain, evaluated at the mid-point of each step (or of sub-steps of at most
``PvParams.max_substep_s`` that are then averaged, so the value is the mean over the step):

1. solar position (``pvlib.solarposition.get_solarposition``),
2. Ineichen clear-sky irradiance with the Linke turbidity climatology shipped with pvlib
   (or a fixed turbidity),
3. a clear-sky index ``kt(t)`` from the cloud model below, ``GHI = kt * GHI_clear``,
4. Erbs decomposition into DNI and DHI,
5. Hay-Davies transposition to the plane of array, physical IAM on beam and diffuse light,
6. Faiman cell temperature with a diurnal ambient temperature model,
7. PVWatts DC power, lumped system losses, PVWatts inverter clipping at the AC limit.

Cloud model (humid tropical site, e.g. Iquitos, Köppen Af)
----------------------------------------------------------
The clear-sky index is ``kt(t) = clip(K_d * (1 - a * b(h)) + s_d * x(t), kt_min, kt_max)``:

* ``K_d`` — daily clear-sky index, one independent draw per local calendar day from a Beta
  distribution with mean ``kt_mean`` and standard deviation ``kt_std``. Humid tropical sites
  have mostly partly-cloudy days, few fully clear and few fully overcast ones, which a
  unimodal Beta centred near 0.8 reproduces.
* ``b(h) = exp(-((h - afternoon_peak_hour) / afternoon_width_h)**2 / 2)`` with ``h`` the
  local clock hour — afternoon convective clouding: the expected index is lowered by up to
  the fraction ``a = afternoon_drop_frac`` around mid-afternoon.
* ``x(t)`` — a stationary, unit-variance AR(1) (discretised Ornstein-Uhlenbeck) process with
  correlation time ``intraday_tau_s``, generated on a fixed grid of ``cloud_base_s`` seconds
  anchored at local midnight of the first day (of the first month's 1st with monthly
  targets), independent of the scenario step. Its
  amplitude ``s_d = intraday_std * 4 * K_d * (1 - K_d)`` is largest on partly cloudy days and
  small on clear or overcast days. Each evaluation point uses the mean of ``kt`` over its
  interval, so runs at different steps (1 min, 15 min, 1 h) with the same seed share one
  cloud realisation and give the same energy to well within 1 %.
* ``kt_max > 1`` allows brief cloud enhancement.
* Monthly targets (``ghi_monthly_kwh_m2_day``, 12 values, optional): the cloud process is
  drawn for whole calendar months (from the 1st of the first month to the end of the
  last, whatever part of them the run covers); the daily draws start from the monthly
  mean ``kt_m`` = target / (clear-sky GHI × its weighted afternoon shape), and then each
  month's ``kt`` is multiplied by target / produced GHI and re-clipped until the month's
  GHI — evaluated as the model does at 15-min steps — equals its target (a few passes;
  targets the clip bounds cannot reach are refused with a ValueError). The rescaling keeps
  the month's day-to-day and intra-day variations (relative), so a run of whole months
  meets its targets exactly for every seed (≤ 0.1 % at 1-min steps), while a run of a few
  days sees ordinary days of its month. Without targets the daily mean is ``kt_mean`` all
  year and nothing is rescaled (the level then follows ``kt_mean``: 1,790-1,800 kWh/m²/yr
  with the defaults).

Why the model overshot before (issue 19): the targets only set the *shape* of the year
(``kt_mean_m = kt_mean × r_m / r̄``) while ``kt_mean`` = 0.80 set its level, which over
the Ineichen clear sky (2,390 kWh/m²/yr) gives ≈ 1,795 kWh/m²/yr, 8-13 % above the
targets; the 30 daily Beta draws of each month added ±3-5 % of noise per month (February
+17 % with seed 1). Clipping and the AR(1) noise bias the mean by < 0.5 %.

Iquitos monthly GHI (the site default, ``config/site.yaml``)
------------------------------------------------------------
[kWh/m²/day], Jan…Dec: 4.570, 4.098, 4.755, 4.380, 4.000, 4.087, 4.199, 4.971, 5.231,
5.320, 4.805, 4.386 (1,668 kWh/m²/yr) — the monthly means of the PVGIS typical
meteorological year for -3.75, -73.25 shipped in ``data/weather/iquitos_pvgis_tmy.csv``
(provenance in ``data/weather/README.md``; ``python scripts/pvgis_monthly_targets.py``
recomputes them).

Random draws (in this order): one Beta variate per day of the whole months, then one
standard normal per cloud grid point of them (without targets: per day and grid point of
the run only). Same generator state → bit-identical output.

Calibration
-----------
With the defaults over 2024 (15-min steps, seed 1): clear-sky GHI 2,390 kWh/m², all-sky
GHI 1,668 kWh/m² (the PVGIS TMY), specific yield 1,233 kWh/kWp (performance ratio on
GHI ≈ 0.74: 14 % system losses, hot cells, IAM, inverter); the same pvlib chain fed the
TMY's hourly GHI gives 1,221 kWh/kWp. Daily GHI varies within a month by a coefficient of
variation of ≈ 0.19 (the TMY: 0.21).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from twin.components.noise import ar1_filter
from twin.components.timeindex import step_offsets_s

__all__ = ["CACHE_ENV", "PvParams", "cache_dir", "chain_ac_kw", "chain_dc_kw",
           "clear_sky_monthly_kwh_m2_day", "evaluation_instants", "monthly_kt_mean", "pv_ac_kw",
           "pv_ac_kw_cached", "pv_cache_key", "pv_chain_kw", "pv_ghi_w_m2", "pv_inverter_kw",
           "pv_weather", "pv_weather_cached", "sun_position"]

_DAY_S = 86_400.0
#: Most rescaling passes per month in the calibration to the monthly targets.
_CAL_PASSES = 40


@dataclass(frozen=True, slots=True)
class PvParams:
    """Parameters of the PV plant, its site and its cloud model.

    Attributes
    ----------
    lat_deg : float
        Latitude [deg], positive north.
    lon_deg : float
        Longitude [deg], positive east.
    alt_m : float
        Altitude above sea level [m].
    p_dc_kwp : float
        DC nameplate power at STC [kWp].
    p_ac_max_kw : float
        AC power limit of the inverters [kW].
    tilt_deg : float
        Module tilt from horizontal [deg].
    azimuth_deg : float
        Module azimuth [deg], pvlib convention (0 = north, 90 = east, 180 = south). At
        lat −3.75 the noon sun is north of the zenith about seven months a year, so a
        near-flat, north-facing roof (10°, self-cleaning in the rain) is the default.
    gamma_pdc_per_c : float
        Temperature coefficient of DC power [1/°C].
    losses_frac : float
        Lumped DC system losses (soiling, mismatch, wiring, LID, availability) [-].
    eta_inv_nom : float
        Nominal inverter efficiency [-].
    albedo : float
        Ground reflectance [-].
    linke_turbidity : float or None
        Linke turbidity [-]; None looks up pvlib's monthly climatology for the site.
    kt_mean : float
        Mean of the daily clear-sky index distribution [-] when there are no monthly
        targets (with targets each month's mean follows from its target).
    kt_std : float
        Standard deviation of the daily clear-sky index between days [-].
    afternoon_drop_frac : float
        Relative reduction of the expected clear-sky index at the afternoon peak [-].
    afternoon_peak_hour : float
        Local clock hour of the strongest convective clouding [h].
    afternoon_width_h : float
        Width (standard deviation) of the afternoon clouding bump [h].
    intraday_std : float
        Amplitude of intra-day clear-sky index fluctuations on a day with K_d = 0.5 [-].
    intraday_tau_s : float
        Correlation time of the intra-day fluctuations [s].
    kt_min : float
        Lower bound of the clear-sky index (heavy overcast) [-].
    kt_max : float
        Upper bound of the clear-sky index (cloud enhancement) [-].
    cloud_base_s : float
        Step of the grid on which the cloud process is generated [s]; must divide a day.
    t_amb_min_c : float
        Daily minimum ambient temperature, reached 12 h before the maximum [°C].
    t_amb_max_c : float
        Daily maximum ambient temperature [°C].
    t_amb_peak_hour : float
        Local clock hour of the ambient temperature maximum [h].
    wind_m_s : float
        Wind speed at module height [m/s].
    faiman_u0 : float
        Faiman constant heat transfer coefficient [W/(m²·K)].
    faiman_u1 : float
        Faiman wind-dependent heat transfer coefficient [W/(m²·K)/(m/s)].
    solpos_method : str
        ``pvlib.solarposition.get_solarposition`` method; ``"ephemeris"`` is within 0.01°
        of SPA in zenith at this site and ten times faster than ``"nrel_numpy"``.
    max_substep_s : float
        Longest interval evaluated at a single mid-point [s]; longer steps are averaged
        over equal sub-steps.
    ghi_monthly_kwh_m2_day : tuple of 12 floats or None
        Monthly mean GHI targets, January first [kWh/m²/day]; each calendar month of the
        cloud process is rescaled to produce its target (see the module docstring).
        None: the same ``kt_mean`` all year.
    """

    lat_deg: float = -3.75
    lon_deg: float = -73.25
    alt_m: float = 106.0
    p_dc_kwp: float = 4050.0
    p_ac_max_kw: float = 3400.0
    tilt_deg: float = 10.0
    azimuth_deg: float = 0.0
    gamma_pdc_per_c: float = -0.0037
    losses_frac: float = 0.14
    eta_inv_nom: float = 0.97
    albedo: float = 0.2
    linke_turbidity: float | None = None
    kt_mean: float = 0.80
    kt_std: float = 0.13
    afternoon_drop_frac: float = 0.15
    afternoon_peak_hour: float = 15.0
    afternoon_width_h: float = 2.0
    intraday_std: float = 0.2
    intraday_tau_s: float = 900.0
    kt_min: float = 0.05
    kt_max: float = 1.15
    cloud_base_s: float = 60.0
    t_amb_min_c: float = 22.5
    t_amb_max_c: float = 31.5
    t_amb_peak_hour: float = 14.5
    wind_m_s: float = 1.5
    faiman_u0: float = 25.0
    faiman_u1: float = 6.84
    solpos_method: str = "ephemeris"
    max_substep_s: float = 900.0
    ghi_monthly_kwh_m2_day: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        g = self.ghi_monthly_kwh_m2_day
        if g is not None:
            object.__setattr__(self, "ghi_monthly_kwh_m2_day", tuple(float(x) for x in g))


def _pvlib() -> ModuleType:
    """pvlib (with scipy), imported only when the PV chain is computed (~0.5 s)."""
    import pvlib

    return pvlib


def _check(index: pd.DatetimeIndex, dt_s: float, params: PvParams) -> None:
    """Reject inputs the model cannot honour (raises ValueError)."""
    step_offsets_s(index, dt_s)
    if not 0.0 < params.kt_mean < 1.0:
        raise ValueError(f"kt_mean must be in (0, 1), got {params.kt_mean}")
    if not 0.0 < params.kt_std**2 < params.kt_mean * (1.0 - params.kt_mean):
        raise ValueError(
            f"kt_std={params.kt_std} impossible for a Beta with mean {params.kt_mean}: "
            f"need 0 < kt_std < {math.sqrt(params.kt_mean * (1 - params.kt_mean)):.3f}"
        )
    g = params.ghi_monthly_kwh_m2_day
    if g is not None and (len(g) != 12 or min(g) <= 0):
        raise ValueError("ghi_monthly_kwh_m2_day needs 12 positive values (January first)")
    n_base = _DAY_S / params.cloud_base_s
    if params.cloud_base_s <= 0 or abs(n_base - round(n_base)) > 1e-9:
        raise ValueError(f"cloud_base_s={params.cloud_base_s} must divide 86400 s")
    if params.p_ac_max_kw <= 0 or params.p_dc_kwp <= 0 or params.max_substep_s <= 0:
        raise ValueError("p_dc_kwp, p_ac_max_kw and max_substep_s must be > 0")


def _clear_sky_hourly(params: PvParams, year: int = 2023) -> pd.Series:
    """Ineichen clear-sky GHI [W/m²] at the mid-points of the UTC hours of ``year``."""
    pvlib = _pvlib()
    times = pd.date_range(f"{year}-01-01 00:30", f"{year}-12-31 23:30", freq="1h", tz="UTC")
    loc = pvlib.location.Location(params.lat_deg, params.lon_deg, altitude=params.alt_m)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dayofyear", category=DeprecationWarning)
        kw = {} if params.linke_turbidity is None else {"linke_turbidity": params.linke_turbidity}
        cs = loc.get_clearsky(times, model="ineichen", solar_position=loc.get_solarposition(
            times, method=params.solpos_method), **kw)
    return pd.Series(np.nan_to_num(cs["ghi"].to_numpy(dtype=np.float64)), index=times)


def clear_sky_monthly_kwh_m2_day(params: PvParams, year: int = 2023) -> np.ndarray:
    """Mean daily clear-sky GHI per calendar month at the site [kWh/m²/day], 12 values.

    Ineichen with the turbidity of ``params`` (pvlib's Linke climatology by default), at
    the mid-points of the hours of a reference (non-leap) year.
    """
    ghi = _clear_sky_hourly(params, year)
    times = pd.DatetimeIndex(ghi.index)
    monthly = ghi.groupby(times.month).sum() / 1000.0  # kWh/m² per month
    days = pd.Series(1.0, index=times).groupby(times.month).sum() / 24.0
    return (monthly / days).to_numpy(dtype=np.float64)


def _afternoon_shape(hour: np.ndarray, params: PvParams) -> np.ndarray:
    """Relative expected clear-sky index at local clock ``hour`` (afternoon clouding) [-]."""
    bump = np.exp(-0.5 * ((hour - params.afternoon_peak_hour) / params.afternoon_width_h) ** 2)
    return np.asarray(1.0 - params.afternoon_drop_frac * bump, dtype=np.float64)


def monthly_kt_mean(params: PvParams) -> np.ndarray:
    """Mean daily clear-sky index per calendar month the daily draws start from [-], 12 values.

    ``kt_mean`` each month without monthly targets. With targets: target GHI / (clear-sky
    GHI × its weighted mean of the afternoon shape) over a reference year (local clock
    taken as solar time, UTC + lon/15), so the expected monthly GHI is near its target
    before the exact per-month rescaling of :func:`_cloud_index`.
    """
    g = params.ghi_monthly_kwh_m2_day
    if g is None:
        return np.full(12, params.kt_mean)
    ghi = _clear_sky_hourly(params)
    times = pd.DatetimeIndex(ghi.index)
    hour = ((times.hour + 0.5 + params.lon_deg / 15.0) % 24.0).to_numpy(dtype=np.float64)
    shaped = ghi * _afternoon_shape(hour, params)
    shape_w = (shaped.groupby(times.month).sum() / ghi.groupby(times.month).sum()).to_numpy()
    clear = clear_sky_monthly_kwh_m2_day(params)
    return np.clip(np.asarray(g, dtype=np.float64) / (clear * shape_w), 0.05, 0.95)


def _month_span(first_day: pd.Timestamp, n_days: int) -> tuple[pd.Timestamp, int, int]:
    """Whole calendar months covering ``n_days`` local days from ``first_day``.

    Returns (local midnight of the first month's 1st, days from it to ``first_day``, days
    in the whole months).
    """
    start = first_day.normalize().replace(day=1)
    last = first_day.normalize() + pd.Timedelta(days=n_days - 1)
    end = (last.replace(day=1) + pd.Timedelta(days=32)).replace(day=1)
    lead = round((first_day.normalize() - start) / pd.Timedelta(days=1))
    return start, lead, round((end - start) / pd.Timedelta(days=1))


def _calibrate_to_months(kt: np.ndarray, start: pd.Timestamp, n_days: int,
                         params: PvParams) -> None:
    """Rescale ``kt`` (whole months on the cloud grid, in place) so that each month's GHI
    equals its target.

    The GHI is evaluated as the model does at 15-min steps: the mean of ``kt`` over each
    15 min times the clear-sky GHI at its mid-point. Each month's ``kt`` is multiplied by
    target / produced, which keeps the shape of the month (its day-to-day and intra-day
    variations, relative), and re-clipped to [kt_min, kt_max]; a few passes absorb the
    clipping.
    """
    g = params.ghi_monthly_kwh_m2_day
    assert g is not None
    base = params.cloud_base_s
    blk = 900.0
    n_blk = round(n_days * _DAY_S / blk)
    mids = pd.DatetimeIndex(start + pd.to_timedelta((np.arange(n_blk) + 0.5) * blk, unit="s"))
    ghi_clear = _sun_and_clear_sky(mids, params)["ghi_clear"]
    days = pd.date_range(start.tz_localize(None), periods=n_days, freq="D")
    month_of_day = days.month.to_numpy() - 1
    per_day_blk = round(_DAY_S / blk)
    per_day = round(_DAY_S / base)
    # month boundaries (day indices) and their targets [Wh/m²]
    firsts = np.flatnonzero(np.r_[True, month_of_day[1:] != month_of_day[:-1]])
    bounds = np.r_[firsts, n_days]
    target_wh = np.array([g[month_of_day[d0]] * 1000.0 * (d1 - d0)
                          for d0, d1 in itertools.pairwise(bounds)])
    edges = np.arange(kt.size + 1, dtype=np.float64) * base
    blk_edges = np.arange(n_blk + 1, dtype=np.float64) * blk
    for k in range(_CAL_PASSES):
        cum = np.concatenate(([0.0], np.cumsum(kt * base)))
        kt_blk = np.diff(np.interp(blk_edges, edges, cum)) / blk
        e_wh = np.add.reduceat(kt_blk * ghi_clear * (blk / 3600.0), bounds[:-1] * per_day_blk)
        f = target_wh / np.maximum(e_wh, 1e-9)
        if np.all(np.abs(f - 1.0) < 1e-6) or k == _CAL_PASSES - 1:
            break
        kt *= np.repeat(f, np.diff(bounds) * per_day)
        np.clip(kt, params.kt_min, params.kt_max, out=kt)
    bad = np.flatnonzero(np.abs(f - 1.0) > 0.005)
    if bad.size:  # the clip bounds keep the month away from its target
        i = int(bad[0])
        clear = np.add.reduceat(ghi_clear, bounds[:-1] * per_day_blk)[i] * blk / 3.6e6
        n_d = int(bounds[i + 1] - bounds[i])
        raise ValueError(
            f"ghi_monthly_kwh_m2_day: the target {g[month_of_day[bounds[i]]]:g} kWh/m²/day "
            f"of month {month_of_day[bounds[i]] + 1} cannot be produced under this sky "
            f"(clear sky {clear / n_d:.2f} kWh/m²/day × kt in [kt_min, kt_max] = "
            f"[{params.kt_min:g}, {params.kt_max:g}]); give a value between "
            f"{1.2 * params.kt_min * clear / n_d:.2f} and "
            f"{0.92 * params.kt_max * clear / n_d:.2f}")


def _cloud_index(
    t0_s: float, span_s: float, params: PvParams, rng: np.random.Generator,
    first_day: pd.Timestamp | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Clear-sky index on the fixed cloud grid.

    Parameters
    ----------
    t0_s : float
        Scenario start relative to local midnight of its first day [s].
    span_s : float
        Scenario horizon [s].
    params : PvParams
        Model parameters.
    rng : numpy.random.Generator
        Random source.
    first_day : pandas.Timestamp, optional
        Local midnight of the first day, timezone-aware (for the monthly climatology).

    Returns
    -------
    edges_s : numpy.ndarray
        Cloud grid edges relative to local midnight of the first day [s], length n + 1
        (negative before it when whole months are generated).
    cum_kt_s : numpy.ndarray
        Integral of kt from the first edge to each edge [s], length n + 1.
    """
    base = params.cloud_base_s
    per_day = round(_DAY_S / base)
    n_days = max(1, math.ceil((t0_s + span_s) / _DAY_S - 1e-9))
    monthly = params.ghi_monthly_kwh_m2_day is not None and first_day is not None
    lead = 0
    if monthly:
        assert first_day is not None
        start, lead, n_days = _month_span(first_day, n_days)
        month = pd.date_range(start.tz_localize(None), periods=n_days,
                              freq="D").month.to_numpy() - 1
        m_day = monthly_kt_mean(params)[month]
        var = np.minimum(params.kt_std**2, 0.9 * m_day * (1.0 - m_day))  # a valid Beta
        conc_d = m_day * (1.0 - m_day) / var - 1.0
        k_day = rng.beta(m_day * conc_d, (1.0 - m_day) * conc_d)
    else:
        m, s = params.kt_mean, params.kt_std
        conc = m * (1.0 - m) / s**2 - 1.0
        k_day = rng.beta(m * conc, (1.0 - m) * conc, size=n_days)
    n = n_days * per_day

    phi = math.exp(-base / params.intraday_tau_s) if params.intraday_tau_s > 0 else 0.0
    eps = rng.standard_normal(n)
    eps[1:] *= math.sqrt(1.0 - phi * phi)
    x = ar1_filter(eps, phi)  # stationary AR(1), unit variance

    shape = _afternoon_shape((np.arange(per_day) + 0.5) * (base / 3600.0), params)
    sig = params.intraday_std * 4.0 * k_day * (1.0 - k_day)  # (n_days,)

    kt = (k_day[:, None] * shape[None, :]).ravel() + np.repeat(sig, per_day) * x
    np.clip(kt, params.kt_min, params.kt_max, out=kt)
    if monthly:
        _calibrate_to_months(kt, start, n_days, params)

    edges = (np.arange(n + 1, dtype=np.float64) - lead * per_day) * base
    cum = np.empty(n + 1)
    cum[0] = 0.0
    np.cumsum(kt * base, out=cum[1:])
    return edges, cum


def _sun_and_clear_sky(times: pd.DatetimeIndex, params: PvParams) -> dict[str, np.ndarray]:
    """Sun position and Ineichen clear-sky GHI at ``times`` (elementwise).

    Returns arrays ``doy``, ``zen``, ``app_zen``, ``sun_az`` [deg], ``dni_extra`` and
    ``ghi_clear`` [W/m²] (0 at night).
    """
    pvlib = _pvlib()
    pressure = pvlib.atmosphere.alt2pres(params.alt_m)
    t_amb_mean = 0.5 * (params.t_amb_min_c + params.t_amb_max_c)
    doy = times.day_of_year.to_numpy()
    with warnings.catch_warnings():
        # pvlib 0.16 still reads DatetimeIndex.dayofyear, deprecated in pandas 3.1
        warnings.filterwarnings("ignore", message=".*dayofyear", category=DeprecationWarning)
        sp = pvlib.solarposition.get_solarposition(
            times,
            params.lat_deg,
            params.lon_deg,
            altitude=params.alt_m,
            pressure=pressure,
            method=params.solpos_method,
            temperature=t_amb_mean,
        )
        if params.linke_turbidity is None:
            tl = np.asarray(
                pvlib.clearsky.lookup_linke_turbidity(times, params.lat_deg, params.lon_deg),
                dtype=np.float64,
            )
        else:
            tl = np.full(len(times), params.linke_turbidity)
    zen = sp["zenith"].to_numpy(dtype=np.float64)
    app_zen = sp["apparent_zenith"].to_numpy(dtype=np.float64)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(doy), dtype=np.float64)
    am_rel = pvlib.atmosphere.get_relative_airmass(app_zen)
    am_abs = pvlib.atmosphere.get_absolute_airmass(am_rel, pressure)
    with np.errstate(divide="ignore", invalid="ignore"):  # night: airmass is NaN
        cs = pvlib.clearsky.ineichen(
            app_zen, am_abs, tl, altitude=params.alt_m, dni_extra=dni_extra
        )
    return {"doy": doy, "zen": zen, "app_zen": app_zen,
            "sun_az": sp["azimuth"].to_numpy(dtype=np.float64), "dni_extra": dni_extra,
            "ghi_clear": np.nan_to_num(np.asarray(cs["ghi"], dtype=np.float64))}


def diurnal_ambient_c(hour: np.ndarray, t_min_c: float, t_max_c: float,
                      peak_hour: float) -> np.ndarray:
    """The model's diurnal ambient temperature [°C] at local clock hours ``hour`` [h]: a
    cosine between ``t_min_c`` and ``t_max_c`` peaking at ``peak_hour`` (used by the PV
    chain, the battery container and the simulated weather station)."""
    mean = 0.5 * (t_min_c + t_max_c)
    amp = 0.5 * (t_max_c - t_min_c)
    return np.asarray(mean + amp * np.cos(2.0 * np.pi * (hour - peak_hour) / 24.0), dtype=np.float64)


def _t_amb_c(mid_s: np.ndarray, t0_s: float, params: PvParams) -> np.ndarray:
    """Diurnal ambient temperature model at ``mid_s`` seconds after the first step [°C]."""
    return diurnal_ambient_c((t0_s + mid_s) / 3600.0 % 24.0, params.t_amb_min_c,
                             params.t_amb_max_c, params.t_amb_peak_hour)


def _ac_power_kw(
    times: pd.DatetimeIndex, kt: np.ndarray, mid_s: np.ndarray, t0_s: float, params: PvParams
) -> np.ndarray:
    """AC power [kW] at ``times`` for clear-sky index ``kt`` (pvlib chain, elementwise)."""
    sun = _sun_and_clear_sky(times, params)
    ghi = kt * sun["ghi_clear"]
    return pv_chain_kw(times, ghi, _t_amb_c(mid_s, t0_s, params), params, sun)[1]


def pv_chain_kw(times: pd.DatetimeIndex, ghi_w_m2: np.ndarray, t_amb_c: np.ndarray,
                params: PvParams, sun: dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """DC and AC power of the plant for a given GHI and air temperature (elementwise).

    Erbs decomposition of the GHI, then :func:`chain_dc_kw` and the inverter, with the
    site's wind speed. ``twin calibrate`` runs it on measured irradiance.

    Parameters
    ----------
    times : instants of evaluation (timezone-aware).
    ghi_w_m2 : global horizontal irradiance at ``times`` [W/m²].
    t_amb_c : air temperature at ``times`` [°C].
    params : plant parameters (``p_dc_kwp``, orientation, losses, inverter).
    sun : the output of :func:`sun_position` at ``times`` when already computed.

    Returns
    -------
    (p_dc_kw, p_ac_kw) : DC power after the system losses and AC power [kW].
    """
    pvlib = _pvlib()
    if sun is None:
        sun = _sun_and_clear_sky(times, params)
    dec = pvlib.irradiance.erbs(ghi_w_m2, sun["zen"], sun["doy"])
    dni = np.nan_to_num(np.asarray(dec["dni"], dtype=np.float64))
    dhi = np.nan_to_num(np.asarray(dec["dhi"], dtype=np.float64))
    p_dc = chain_dc_kw(sun, ghi_w_m2, dni, dhi, t_amb_c, params.wind_m_s, params)
    return p_dc, pv_inverter_kw(p_dc, params)


def chain_ac_kw(sun: dict[str, np.ndarray], ghi: np.ndarray, dni: np.ndarray, dhi: np.ndarray,
                t_amb_c: np.ndarray, wind_m_s: np.ndarray | float,
                params: PvParams) -> np.ndarray:
    """AC power [kW] from irradiance and weather: :func:`chain_dc_kw` then the inverter."""
    return pv_inverter_kw(chain_dc_kw(sun, ghi, dni, dhi, t_amb_c, wind_m_s, params), params)


def chain_dc_kw(sun: dict[str, np.ndarray], ghi: np.ndarray, dni: np.ndarray, dhi: np.ndarray,
                t_amb_c: np.ndarray, wind_m_s: np.ndarray | float,
                params: PvParams) -> np.ndarray:
    """DC power [kW] after the system losses from irradiance and weather (pvlib chain,
    elementwise): Hay-Davies transposition, physical IAM, Faiman cell temperature, PVWatts DC.

    Parameters
    ----------
    sun : the sun position of :func:`sun_position` at the same instants.
    ghi, dni, dhi : global horizontal, direct normal and diffuse horizontal irradiance [W/m²].
    t_amb_c : air temperature [°C].
    wind_m_s : wind speed [m/s].
    params : the plant (the cloud-model fields are not used).
    """
    pvlib = _pvlib()
    zen, app_zen, sun_az, dni_extra = sun["zen"], sun["app_zen"], sun["sun_az"], sun["dni_extra"]
    poa = pvlib.irradiance.get_total_irradiance(
        params.tilt_deg,
        params.azimuth_deg,
        app_zen,
        sun_az,
        dni,
        ghi,
        dhi,
        dni_extra=dni_extra,
        albedo=params.albedo,
        model="haydavies",
    )
    poa_beam = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=np.float64))
    poa_sky = np.nan_to_num(np.asarray(poa["poa_sky_diffuse"], dtype=np.float64))
    poa_gnd = np.nan_to_num(np.asarray(poa["poa_ground_diffuse"], dtype=np.float64))
    aoi = pvlib.irradiance.aoi(params.tilt_deg, params.azimuth_deg, zen, sun_az)
    iam_beam = np.nan_to_num(np.asarray(pvlib.iam.physical(aoi), dtype=np.float64))
    iam_diff = pvlib.iam.marion_diffuse("physical", params.tilt_deg)
    poa_global = np.maximum(poa_beam + poa_sky + poa_gnd, 0.0)
    poa_eff = np.maximum(
        poa_beam * iam_beam
        + poa_sky * float(np.asarray(iam_diff["sky"]))
        + poa_gnd * float(np.asarray(iam_diff["ground"])),
        0.0,
    )
    t_cell = pvlib.temperature.faiman(
        poa_global, t_amb_c, wind_m_s, u0=params.faiman_u0, u1=params.faiman_u1
    )
    p_dc = pvlib.pvsystem.pvwatts_dc(poa_eff, t_cell, params.p_dc_kwp, params.gamma_pdc_per_c)
    return np.maximum(np.asarray(p_dc, dtype=np.float64), 0.0) * (1.0 - params.losses_frac)


def pv_inverter_kw(p_dc_kw: np.ndarray, params: PvParams) -> np.ndarray:
    """AC power of the PVWatts inverter (sized ``p_ac_max_kw``) for DC power ``p_dc_kw`` [kW]."""
    p_ac = _pvlib().inverter.pvwatts(
        p_dc_kw, params.p_ac_max_kw / params.eta_inv_nom, eta_inv_nom=params.eta_inv_nom
    )
    return np.asarray(p_ac, dtype=np.float64)


def sun_position(times: pd.DatetimeIndex, params: PvParams) -> dict[str, np.ndarray]:
    """Sun position and clear sky at ``times`` (the arrays :func:`chain_ac_kw` takes)."""
    return _sun_and_clear_sky(times, params)



def evaluation_instants(index: pd.DatetimeIndex, dt_s: float,
                        params: PvParams) -> tuple[pd.DatetimeIndex, int]:
    """The instants the PV chain is evaluated at (mid-points of ``n_sub`` equal sub-steps of
    each step, at most ``params.max_substep_s`` long) and ``n_sub``; the step's value is
    the mean over its sub-steps."""
    step_offsets_s(index, dt_s)
    first = index[0]
    n = len(index)
    n_sub = max(1, math.ceil(dt_s / params.max_substep_s - 1e-9))
    h_s = dt_s / n_sub
    starts_s = (index - first).total_seconds().to_numpy(dtype=np.float64)
    mid_s = (np.repeat(starts_s, n_sub) + np.tile(np.arange(n_sub) * h_s, n)) + 0.5 * h_s
    times = pd.DatetimeIndex(first + pd.to_timedelta(mid_s, unit="s")).tz_convert(index.tz)
    return times, n_sub


def _evaluation_points(
    index: pd.DatetimeIndex, dt_s: float, params: PvParams, rng: np.random.Generator
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, float, int]:
    """Evaluation instants and the clear-sky index there (``index`` already checked).

    Each step is split into ``n_sub`` equal sub-steps evaluated at their mid-points; the
    clear-sky index of a sub-step is the mean of the fixed-grid cloud process over it.

    Returns
    -------
    (times, kt, mid_s, t0_s, n_sub): the mid-points (``index.tz``), the clear-sky index
    there [-], the mid-points relative to the first step [s], the first step's offset from
    its local midnight [s] and the sub-steps per step.
    """
    n = len(index)
    first = index[0]
    midnight = first.normalize()
    t0_s = float((first - midnight).total_seconds())
    n_sub = max(1, math.ceil(dt_s / params.max_substep_s - 1e-9))
    h_s = dt_s / n_sub
    starts_s = (index - first).total_seconds().to_numpy(dtype=np.float64)
    sub_s = (np.repeat(starts_s, n_sub) + np.tile(np.arange(n_sub) * h_s, n)).astype(np.float64)
    mid_s = sub_s + 0.5 * h_s
    times = pd.DatetimeIndex(first + pd.to_timedelta(mid_s, unit="s")).tz_convert(index.tz)
    edges, cum = _cloud_index(t0_s, n * dt_s, params, rng, first_day=midnight)
    a = t0_s + sub_s
    kt = (np.interp(a + h_s, edges, cum) - np.interp(a, edges, cum)) / h_s
    return times, kt, mid_s, t0_s, n_sub


def pv_ghi_w_m2(
    index: pd.DatetimeIndex, dt_s: float, params: PvParams, rng: np.random.Generator
) -> np.ndarray:
    """Mean global horizontal irradiance of the cloud model over each step [W/m²].

    The GHI :func:`pv_ac_kw` decomposes and transposes for the same arguments (the same
    ``rng`` state gives the same clouds); parameters as there.
    """
    _check(index, dt_s, params)
    times, kt, _, _, n_sub = _evaluation_points(index, dt_s, params, rng)
    ghi = kt * _sun_and_clear_sky(times, params)["ghi_clear"]
    return ghi.reshape(len(index), n_sub).mean(axis=1) if n_sub > 1 else ghi


def pv_weather(
    index: pd.DatetimeIndex, dt_s: float, params: PvParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The weather the PV chain sees per step: mean GHI [W/m²] and air temperature [°C].

    The same cloud realisation as :func:`pv_ac_kw` for the same ``rng`` state; with steps of
    at most ``max_substep_s`` these are the values at the step mid-point the chain is
    evaluated at (longer steps: the means over their sub-steps).
    """
    _check(index, dt_s, params)
    times, kt, mid_s, t0_s, n_sub = _evaluation_points(index, dt_s, params, rng)
    ghi = kt * _sun_and_clear_sky(times, params)["ghi_clear"]
    t_amb = _t_amb_c(mid_s, t0_s, params)
    if n_sub > 1:
        n = len(index)
        return ghi.reshape(n, n_sub).mean(axis=1), t_amb.reshape(n, n_sub).mean(axis=1)
    return ghi, t_amb


def pv_ac_kw(
    index: pd.DatetimeIndex, dt_s: float, params: PvParams, rng: np.random.Generator
) -> np.ndarray:
    """Mean AC power of the PV plant over each step [kW], >= 0, <= p_ac_max_kw.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Timezone-aware starts of the scenario steps, evenly spaced by ``dt_s``.
    dt_s : float
        Step length [s].
    params : PvParams
        Plant, site and cloud-model parameters.
    rng : numpy.random.Generator
        Random source for the cloud model; the same state gives a bit-identical result.

    Returns
    -------
    numpy.ndarray
        Mean AC power over ``[index[k], index[k] + dt_s)`` [kW], float64, ``len(index)``.

    Raises
    ------
    ValueError
        If the index is naive, empty or not spaced by ``dt_s``, or a parameter is invalid.

    Notes
    -----
    See the module docstring for the irradiance chain and the cloud model. Local clock
    hours are taken in ``index.tz``; with a DST time zone the cloud and temperature
    diurnal shapes are off by the DST shift (the default site, America/Lima, has none).
    """
    _check(index, dt_s, params)
    n = len(index)
    times, kt, mid_s, t0_s, n_sub = _evaluation_points(index, dt_s, params, rng)

    # The pvlib chain is elementwise: evaluate it in chunks to bound memory at 1-min ticks
    # (identical numbers to one pass).
    chunk = 131_072
    p_ac = np.empty(len(times))
    for a0 in range(0, len(times), chunk):
        sl = slice(a0, a0 + chunk)
        p_ac[sl] = _ac_power_kw(times[sl], kt[sl], mid_s[sl], t0_s, params)

    out = p_ac.reshape(n, n_sub).mean(axis=1) if n_sub > 1 else p_ac
    return np.clip(out, 0.0, params.p_ac_max_kw).astype(np.float64, copy=False)


# ------------------------------------------------------------------ on-disk profile cache
#: Environment variable naming the cache folder (default ``~/.cache/pvbess-twin``); ``off``
#: (or ``0``, ``none``) turns the cache off.
CACHE_ENV = "PVBESS_CACHE_DIR"
#: Bumped when the cache file layout changes.
_CACHE_FORMAT = 1
#: Source files whose code computes the profile: an edit to any of them is a new key.
_MODEL_SOURCES = ("pv.py", "noise.py", "timeindex.py")


def cache_dir() -> Path | None:
    """The PV profile cache folder (``$PVBESS_CACHE_DIR`` or ``~/.cache/pvbess-twin``), or
    None when the variable says ``off``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in ("off", "0", "none", "false"):
        return None
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pvbess-twin"


def _model_fingerprint(extra: tuple[str, ...] = ()) -> str:
    """Hash of the model's code (``_MODEL_SOURCES`` and the ``extra`` source files of this
    package) and of the libraries whose numbers it uses."""
    import importlib.metadata as md

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in (*_MODEL_SOURCES, *extra):
        h.update((here / name).read_bytes())
    for lib in ("pvlib", "numpy", "pandas"):
        try:
            h.update(f"{lib}={md.version(lib)};".encode())
        except md.PackageNotFoundError:
            h.update(f"{lib}=?;".encode())
    return h.hexdigest()


def pv_cache_key(index: pd.DatetimeIndex, dt_s: float, params: PvParams,
                 rng: np.random.Generator) -> str:
    """Hash of every input of :func:`pv_ac_kw`: steps (start, count, time zone, length),
    every parameter, the random generator's state, the model's code and library versions."""
    spec: dict[str, Any] = {
        "format": _CACHE_FORMAT,
        "model": _model_fingerprint(),
        "start": index[0].isoformat() if len(index) else None,
        "tz": str(index.tz),
        "n": len(index),
        "dt_s": float(dt_s),
        "params": dataclasses.asdict(params),
        "rng": {"bit_generator": type(rng.bit_generator).__name__,
                "state": rng.bit_generator.state},
    }
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_cached(path: Path, key: str, n: int, p_max_kw: float) -> np.ndarray | None:
    """The cached profile, or None when the file is missing, damaged or not this key's."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            p = np.asarray(z["p_ac_kw"])
    except Exception:  # missing, truncated, not a zip, wrong members: recompute
        return None
    if p.dtype != np.float64 or p.shape != (n,) or not np.isfinite(p).all() \
            or (p < 0.0).any() or (p > p_max_kw).any():
        return None
    return p


def _write_cached(folder: Path, path: Path, key: str, **arrays: np.ndarray) -> None:
    """Store ``arrays`` and ``key`` atomically (temporary file, then rename) as an npz; a
    failure is ignored."""
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            members: dict[str, Any] = {"key": np.array(key), **arrays}
            np.savez(fh, **members)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass  # a read-only or full disk: run without the cache
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def pv_ac_kw_cached(
    index: pd.DatetimeIndex, dt_s: float, params: PvParams, rng: np.random.Generator,
    folder: Path | None = None,
) -> np.ndarray:
    """:func:`pv_ac_kw`, stored on disk and read back on the next run with the same inputs.

    The file ``FOLDER/pv/KEY.npz`` (no pickle) is keyed by :func:`pv_cache_key`; a damaged
    or foreign file is recomputed and replaced, never trusted. On a hit ``rng`` is not
    advanced (it is the PV's own stream) and pvlib is not imported.

    Parameters
    ----------
    folder : the cache folder; None = :func:`cache_dir` (which may turn the cache off).
    """
    _check(index, dt_s, params)
    base = folder if folder is not None else cache_dir()
    if base is None:
        return pv_ac_kw(index, dt_s, params, rng)
    key = pv_cache_key(index, dt_s, params, rng)
    sub = base / "pv"
    path = sub / f"{key}.npz"
    hit = _read_cached(path, key, len(index), params.p_ac_max_kw)
    if hit is not None:
        return hit
    p = pv_ac_kw(index, dt_s, params, rng)
    _write_cached(sub, path, key, p_ac_kw=p)
    return p


def pv_weather_cached(
    index: pd.DatetimeIndex, dt_s: float, params: PvParams, rng: np.random.Generator,
    folder: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pv_weather`, stored next to the PV profile cache (``FOLDER/pv/KEY.weather.npz``,
    the same key as :func:`pv_ac_kw_cached`), so a cached run writes its weather columns
    without pvlib."""
    _check(index, dt_s, params)
    base = folder if folder is not None else cache_dir()
    if base is None:
        return pv_weather(index, dt_s, params, rng)
    key = pv_cache_key(index, dt_s, params, rng)
    sub = base / "pv"
    path = sub / f"{key}.weather.npz"
    n = len(index)
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                ghi, t_air = np.asarray(z["ghi_w_m2"]), np.asarray(z["temp_air_c"])
                if all(a.dtype == np.float64 and a.shape == (n,) and np.isfinite(a).all()
                       for a in (ghi, t_air)):
                    return ghi, t_air
    except Exception:  # missing, truncated, foreign: recompute
        pass
    ghi, t_air = pv_weather(index, dt_s, params, rng)
    _write_cached(sub, path, key, ghi_w_m2=ghi, temp_air_c=t_air)
    return ghi, t_air

"""Synthetic demand of the shopping mall.

Model
-----
For a step at local clock hour ``h`` on a day with day-type factor ``w`` (1 on weekdays,
``weekend_factor`` on Saturdays and Sundays) the noise-free demand is

``p(t) = p_night + (p_peak_kw - p_night) * w * g(h)``

with the activity shape ``g`` (0 when closed, 1 at the weekday peak):

``g(h) = window(h) * (morning_level + (1 - morning_level) * bump(h; ac_peak_hour, ac_width_h)
+ evening_level * bump(h; evening_peak_hour, evening_width_h))``, rescaled to a maximum of 1,

where ``bump`` is a Gaussian and ``window`` rises smoothly (raised cosine) from 0 at
``open_hour - preopen_h`` (staff, pre-cooling) to 1 at ``open_hour`` and falls from 1 at
``close_hour`` to 0 at ``close_hour + postclose_h``. The night base load ``p_night``
(refrigeration, security lighting, 24/7 cooling) is not a parameter: it is solved so that
the mean daily energy over the horizon (whole days) equals ``e_day_kwh`` exactly, keeping
the nominal weekday peak at ``p_peak_kw``.

Two multiplicative noises make days and steps differ: a day-to-day factor
``1 + day_std * y_d`` (``y_d`` a unit AR(1) across days with lag-one correlation
``day_corr`` — hot spells raise the cooling load for several days) and an intra-day factor
``1 + noise_frac * x(t)`` (``x`` a unit AR(1) with correlation time ``noise_tau_s`` at the
scenario step); their product is clipped to [0.5, 1.5]. Both are applied before
``p_night`` is solved, so the energy stays exact.

Random draws (in this order): one standard normal per calendar day spanned by the
horizon, then one per step of those whole days. Same generator state → bit-identical
output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.components.noise import ar1_filter
from twin.components.timeindex import step_offsets_s

__all__ = ["MallParams", "mall_kw"]

_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class MallParams:
    """Parameters of the synthetic mall demand.

    Attributes
    ----------
    e_day_kwh : float
        Mean daily energy over the horizon [kWh/day].
    open_hour : float
        Opening time, local clock [h].
    close_hour : float
        Closing time, local clock [h].
    p_peak_kw : float
        Nominal weekday peak demand, before noise [kW].
    weekend_factor : float
        Activity (load above the night base) on Saturdays and Sundays relative to weekdays [-].
    noise_frac : float
        Standard deviation of the intra-day multiplicative noise [-].
    noise_tau_s : float
        Correlation time of the intra-day noise [s].
    day_std : float
        Standard deviation of the day-to-day multiplicative factor [-].
    day_corr : float
        Lag-one (day-to-day) correlation of the daily factor [-].
    preopen_h : float
        Ramp-up time before opening (staff, pre-cooling) [h].
    postclose_h : float
        Ramp-down time after closing [h].
    morning_level : float
        Activity in the late morning relative to the afternoon peak, before the AC bump [-].
    ac_peak_hour : float
        Local clock hour of the AC-driven peak [h].
    ac_width_h : float
        Width (standard deviation) of the AC bump [h].
    evening_level : float
        Height of the evening retail bump relative to the AC bump [-].
    evening_peak_hour : float
        Local clock hour of the evening retail bump [h].
    evening_width_h : float
        Width (standard deviation) of the evening bump [h].
    max_substep_s : float
        Longest interval evaluated at a single mid-point [s]; longer steps are averaged
        over equal sub-steps.
    """

    e_day_kwh: float = 33885.0
    open_hour: float = 9.0
    close_hour: float = 22.0
    p_peak_kw: float = 2150.0
    weekend_factor: float = 0.85
    noise_frac: float = 0.03
    noise_tau_s: float = 1800.0
    day_std: float = 0.04
    day_corr: float = 0.6
    preopen_h: float = 1.0
    postclose_h: float = 1.0
    morning_level: float = 0.6
    ac_peak_hour: float = 15.5
    ac_width_h: float = 2.5
    evening_level: float = 0.15
    evening_peak_hour: float = 19.5
    evening_width_h: float = 1.5
    max_substep_s: float = 900.0


def _window(h: np.ndarray, p: MallParams) -> np.ndarray:
    """Smooth opening-hours window in [0, 1] for local clock hours ``h`` [h]."""
    up = np.clip((h - (p.open_hour - p.preopen_h)) / p.preopen_h, 0.0, 1.0)
    down = np.clip(((p.close_hour + p.postclose_h) - h) / p.postclose_h, 0.0, 1.0)
    return np.asarray(0.25 * (1.0 - np.cos(np.pi * up)) * (1.0 - np.cos(np.pi * down)))


def _raw_shape(h: np.ndarray, p: MallParams) -> np.ndarray:
    """Unnormalised activity shape for local clock hours ``h`` [h]."""
    ac = np.exp(-0.5 * ((h - p.ac_peak_hour) / p.ac_width_h) ** 2)
    ev = np.exp(-0.5 * ((h - p.evening_peak_hour) / p.evening_width_h) ** 2)
    return _window(h, p) * (p.morning_level + (1.0 - p.morning_level) * ac + p.evening_level * ev)


def activity_shape(h: np.ndarray, params: MallParams) -> np.ndarray:
    """Weekday activity shape g(h) in [0, 1], 1 at the peak.

    Parameters
    ----------
    h : numpy.ndarray
        Local clock hours [h], 0 <= h < 24.
    params : MallParams
        Model parameters.

    Returns
    -------
    numpy.ndarray
        Activity above the night base, as a fraction of the weekday peak [-].
    """
    grid = np.arange(0.0, 24.0, 1.0 / 600.0)  # 6-s grid for the maximum
    peak = float(_raw_shape(grid, params).max())
    return _raw_shape(np.asarray(h, dtype=np.float64), params) / peak


def _ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) with unit variance and lag-one correlation ``phi``."""
    eps = rng.standard_normal(n)
    if n > 1:
        eps[1:] *= math.sqrt(1.0 - phi * phi)
    return ar1_filter(eps, phi)


def _whole_days(first: pd.Timestamp, n: int, dt_s: float) -> tuple[int, np.ndarray]:
    """The steps before the horizon's first one, and the starts [s from the first local
    midnight] of every step of the whole calendar days the horizon spans (on its grid).

    The profile is built over those days and then sliced, so the energy target is met
    over whole days.
    """
    t0_s = float((first - first.normalize()).total_seconds())
    k_before = math.floor(t0_s / dt_s + 1e-9)
    end_s = t0_s + n * dt_s
    n_days_span = max(1, math.ceil(end_s / _DAY_S - 1e-9))
    k_after = math.floor((n_days_span * _DAY_S - end_s) / dt_s + 1e-9)
    n_ext = k_before + n + k_after
    return k_before, t0_s - k_before * dt_s + np.arange(n_ext) * dt_s


def mall_kw(
    index: pd.DatetimeIndex, dt_s: float, params: MallParams, rng: np.random.Generator
) -> np.ndarray:
    """Mean mall demand per step [kW].

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Timezone-aware starts of the scenario steps, evenly spaced by ``dt_s``.
    dt_s : float
        Step length [s].
    params : MallParams
        Model parameters.
    rng : numpy.random.Generator
        Random source; the same state gives a bit-identical result.

    Returns
    -------
    numpy.ndarray
        Mean demand over ``[index[k], index[k] + dt_s)`` [kW], float64, ``len(index)``,
        > 0. When the horizon is whole local days starting at midnight,
        ``sum(p) * dt_s / 3600 == e_day_kwh * len(index) * dt_s / 86400`` (to rounding).

    Raises
    ------
    ValueError
        If the index is naive, empty or not spaced by ``dt_s``, or the parameters leave
        no room for a positive night base load below the peak.

    Notes
    -----
    See the module docstring. Clock hours and weekdays are taken in ``index.tz``. A horizon
    that does not start or end at local midnight is cut from the profile of the whole
    calendar days it spans (built on the scenario's step grid); the energy target then
    holds over those whole days, and the result equals the same slice of a run over them
    with the same generator state.
    """
    p = params
    step_offsets_s(index, dt_s)
    n = len(index)
    first = index[0]
    if not (p.preopen_h > 0.0 and p.postclose_h > 0.0 and p.open_hour < p.close_hour):
        raise ValueError("need preopen_h > 0, postclose_h > 0 and open_hour < close_hour")
    if not (p.e_day_kwh > 0 and p.p_peak_kw > 0 and p.weekend_factor >= 0):
        raise ValueError("e_day_kwh and p_peak_kw must be > 0, weekend_factor >= 0")

    k_before, ext_start_s = _whole_days(first, n, dt_s)
    n_ext = len(ext_start_s)
    # local clock time of each step's sub-step mid-points
    n_sub = max(1, math.ceil(dt_s / p.max_substep_s - 1e-9))
    h_s = dt_s / n_sub
    mid_s = np.repeat(ext_start_s, n_sub) + np.tile((np.arange(n_sub) + 0.5) * h_s, n_ext)
    day = np.floor(mid_s / _DAY_S).astype(np.int64)  # calendar day since the first one
    hour = (mid_s - day * _DAY_S) / 3600.0
    weekday = (first.normalize().day_of_week + day) % 7
    w = np.where(weekday >= 5, p.weekend_factor, 1.0)
    g = (activity_shape(hour, p) * w).reshape(n_ext, n_sub).mean(axis=1)  # (n_ext,)

    # noise: daily factor (one draw per calendar day), then intra-day AR(1) per step
    n_days = int(day[-1]) + 1
    day_factor = 1.0 + p.day_std * _ar1(n_days, p.day_corr, rng)
    day_step = day.reshape(n_ext, n_sub)[:, 0]
    phi = math.exp(-dt_s / p.noise_tau_s) if p.noise_tau_s > 0 else 0.0
    noise = day_factor[day_step] * (1.0 + p.noise_frac * _ar1(n_ext, phi, rng))
    np.clip(noise, 0.5, 1.5, out=noise)

    # p = (p_night * (1 - g) + p_peak * g) * noise; solve p_night for the energy target
    target_kwh = p.e_day_kwh * n_ext * dt_s / _DAY_S
    a_kwh = float(np.sum((1.0 - g) * noise)) * dt_s / 3600.0  # per kW of p_night
    b_kwh = float(np.sum(g * noise)) * dt_s / 3600.0  # per kW of p_peak
    if a_kwh <= 0.0:
        raise ValueError("the mall is never closed: cannot solve the night base load")
    p_night = (target_kwh - p.p_peak_kw * b_kwh) / a_kwh
    if not 0.0 < p_night < p.p_peak_kw:
        raise ValueError(
            f"e_day_kwh={p.e_day_kwh} and p_peak_kw={p.p_peak_kw} are inconsistent with the "
            f"shape: the night base load would be {p_night:.0f} kW; lower or raise p_peak_kw"
        )
    out = (p_night * (1.0 - g) + p.p_peak_kw * g) * noise
    return np.array(out[k_before : k_before + n], dtype=np.float64)

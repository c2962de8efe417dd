"""Weather files (TMY or measured) for the PV chain: read, check, place on the run's years.

Formats (``weather.format``; ``auto`` picks by the file name)
------------------------------------------------------------
* ``pvgis_json`` / ``pvgis_csv`` — a PVGIS TMY file as PVGIS serves it (``.json``;
  ``.csv`` only with ``format: pvgis_csv``), read by ``pvlib.iotools.read_pvgis_tmy``.
  Values are taken as instants at their UTC time stamps (PVGIS's convention).
* ``epw`` — an EnergyPlus weather file (``.epw``), read by ``pvlib.iotools.read_epw``.
  EPW values are means over the hour *ending* at their stamp: they are placed at its mid-point.
* ``csv`` — a plain CSV (``.csv``, ``.txt``): either a ``timestamp`` column (ISO 8601; naive
  stamps are in the declared ``timezone``) or ``month``, ``day``, ``hour`` (or ``hour_utc``,
  ``hour_local``) columns of one typical year in the declared ``timezone`` (``source:
  tmy`` only); irradiance columns ``ghi`` (required), ``dni`` and ``dhi`` (both or neither;
  without them GHI is decomposed by Erbs, as for the cloud model), optional ``temp_air``
  and ``wind_speed``. A column may carry its unit in its name (``ghi_w_m2``,
  ``ghi_kw_m2``, ``temp_air_c``, ``temp_air_k``, ``wind_speed_m_s``); it must then agree
  with the declared ``irradiance_unit`` (``W/m2`` or ``kW/m2``) and ``temperature_unit``
  (``C`` or ``K``). ``time_label`` says what a stamp labels: ``instant`` (default),
  ``interval_start`` or ``interval_end`` of an interval mean (placed at its mid-point).
  The shipped ``data/weather/iquitos_pvgis_tmy.csv`` is this format (``timezone: UTC``,
  ``W/m2``, ``C``, instants).

Checks (a ``ConfigError`` naming the file, the data row and the column): time stamps
increasing with no duplicates, naive stamps without a declared ``timezone``, a step between
rows longer than ``max_gap``, irradiance below −``NEG_TOL_W_M2`` or above
``MAX_IRRADIANCE_W_M2``, temperature outside [−60, 70] °C, wind outside [−0.5, 75] m/s
(small negatives set to 0), units that contradict the values (W/m² declared but GHI never
above 2: kW/m²?; °C declared but a value above 70: Kelvin?). Small negative irradiance (night offsets of a
pyranometer, ≥ −``NEG_TOL_W_M2``) is set to 0. Missing values (empty cells) of at most
``fill_max_rows`` consecutive rows are filled linearly in time and counted
(``weather_filled_values``); longer runs are an error.

Mapping a typical year onto the run (``source: tmy``): the file's rows are placed on every
year the run touches (one year either side) at the same month, day and clock time in the
file's time zone; in a leap year 29 February repeats 28 February; a file's own 29 February
is dropped. The run's PV then sees the same weather every year.

Between the file's instants the weather is interpolated linearly in time to the PV chain's
evaluation instants (the mid-points of the sub-steps, ``pv.cloudiness.max_substep_s``), so
the energy of hourly instants is kept at any tick (trapezoidal rule).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.errors import ConfigError, file_error
from twin.tariff import clock_hour

if TYPE_CHECKING:
    from twin.components.pv import PvParams
    from twin.config import WeatherConfig

__all__ = ["MAX_IRRADIANCE_W_M2", "NEG_TOL_W_M2", "Weather", "WeatherPv", "pv_from_weather",
           "read_weather", "read_weather_pv_cached", "weather_on_run", "weather_pv_key",
           "write_weather_pv_cached"]

#: Irradiance above this is not physical at ground level (extraterrestrial is 1,361-1,412) [W/m²].
MAX_IRRADIANCE_W_M2 = 1500.0
#: Negative irradiance down to this is a sensor offset and set to 0 [W/m²].
NEG_TOL_W_M2 = 10.0
_T_RANGE_C = (-60.0, 70.0)
#: wind speed range [m/s]; down to −0.5 is an interpolation artefact (the shipped TMY has
#: −0.04) and set to 0
_WIND_RANGE_M_S = (-0.5, 75.0)
_QUANTITIES = ("ghi", "dni", "dhi", "temp_air", "wind_speed")


@dataclass(frozen=True)
class Weather:
    """Weather samples at instants (UTC), columns ``ghi``, ``dni``, ``dhi`` [W/m²],
    ``temp_air`` [°C], ``wind_speed`` [m/s] (a column of NaN when the file lacks it)."""

    frame: pd.DataFrame
    path: Path
    n_filled: int = 0
    #: the time zone whose month, day and clock time a typical year keeps
    tz: Any = "UTC"


def _fail(path: Path, problem: str, row: int | None = None, column: str | None = None) -> ConfigError:
    return file_error("weather", path, problem, row, column)


def _guess_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    if name.endswith(".json"):
        return "pvgis_json"
    if name.endswith(".epw"):
        return "epw"
    if name.endswith((".csv", ".txt", ".csv.gz")):
        return "csv"
    raise _fail(path, f"cannot tell the format from the name ('{path.suffix}'); set "
                "weather.format to csv, pvgis_json, pvgis_csv or epw")


def _read_pvlib(path: Path, fmt: str) -> tuple[pd.DataFrame, Any]:
    """A PVGIS or EPW file through pvlib.iotools; index: instants (UTC); and the file's
    own time zone (UTC for PVGIS, the EPW's standard-time offset)."""
    import pvlib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "epw":
                data, _ = pvlib.iotools.read_epw(path)
            else:
                out = pvlib.iotools.read_pvgis_tmy(
                    path, pvgis_format="json" if fmt == "pvgis_json" else "csv",
                    map_variables=True)
                data = out[0]
    except Exception as exc:  # any reader failure means a broken file
        raise _fail(path, f"pvlib cannot read it as {fmt} ({type(exc).__name__}: "
                    f"{str(exc).strip()[:200]})") from None
    idx = pd.DatetimeIndex(data.index)
    if fmt == "epw":  # hour-ending means: place at the hour's mid-point
        idx = idx - pd.Timedelta(minutes=30)
    frame = pd.DataFrame({q: pd.to_numeric(data[q], errors="coerce").to_numpy(dtype=float)
                          if q in data else np.nan for q in _QUANTITIES},
                         index=idx.tz_convert("UTC"))
    return frame, idx.tz


def _unit_of(col: str) -> tuple[str, str | None]:
    """(quantity, unit suffix or None) of a plain-CSV column name."""
    low = col.lower()
    for q in _QUANTITIES:
        if low == q:
            return q, None
        if low.startswith(q + "_"):
            return q, low[len(q) + 1:]
    return "", None


_IRR_SUFFIX = {"w_m2": "W/m2", "kw_m2": "kW/m2"}
_T_SUFFIX = {"c": "C", "k": "K"}


def _csv_values(df: pd.DataFrame, path: Path, spec: WeatherConfig) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for col in df.columns:
        q, unit = _unit_of(str(col))
        if not q:
            continue
        if q in cols:
            raise _fail(path, f"a second '{q}' column; keep one", column=str(col))
        if unit is not None and q in ("ghi", "dni", "dhi") \
                and _IRR_SUFFIX.get(unit) != spec.irradiance_unit:
            raise _fail(path, f"the column's unit ({unit}) contradicts the declared "
                        f"irradiance_unit {spec.irradiance_unit}", column=str(col))
        if unit is not None and q == "temp_air" and _T_SUFFIX.get(unit) != spec.temperature_unit:
            raise _fail(path, f"the column's unit ({unit}) contradicts the declared "
                        f"temperature_unit {spec.temperature_unit}", column=str(col))
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = (num.isna() & raw.notna()).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(path, f"{raw.iloc[i]!r} is not a number", row=i + 1, column=str(col))
        v = num.to_numpy(dtype=np.float64, na_value=np.nan)
        if q in ("ghi", "dni", "dhi") and spec.irradiance_unit == "kW/m2":
            v = v * 1000.0
        if q == "temp_air" and spec.temperature_unit == "K":
            v = v - 273.15
        cols[q] = v
        cols["_col_" + q] = np.array([str(col)])
    return cols


def _csv_times(df: pd.DataFrame, path: Path,
               spec: WeatherConfig) -> tuple[pd.DatetimeIndex, np.ndarray | None]:
    """The rows' instants (UTC) and, for month/day/hour rows, which rows are kept (a
    typical year's 29 February is dropped)."""
    lower = {str(c).lower(): c for c in df.columns}
    tz = spec.timezone
    if "timestamp" in lower:
        col = lower["timestamp"]
        try:
            ts = pd.DatetimeIndex(pd.to_datetime(df[col], format="ISO8601"))
        except (ValueError, TypeError) as exc:
            raise _fail(path, f"not an ISO 8601 time stamp ({str(exc)[:120]})",
                        column=str(col)) from None
        if ts.isna().any():
            raise _fail(path, "empty time stamp", row=int(np.flatnonzero(ts.isna())[0]) + 1,
                        column=str(col))
        if ts.tz is None:
            if tz is None:
                raise _fail(path, "naive time stamps (no UTC offset) and no weather.timezone "
                            "declared; write e.g. 2024-01-01T00:00-05:00 or declare the "
                            "timezone", row=1, column=str(col))
            ts = ts.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        return ts.tz_convert("UTC"), None
    hour = next((lower[h] for h in ("hour", "hour_utc", "hour_local") if h in lower), None)
    if not {"month", "day"} <= set(lower) or hour is None:
        raise _fail(path, "no 'timestamp' column and no 'month', 'day', 'hour' columns; "
                    f"found {[str(c) for c in df.columns]}")
    if spec.source != "tmy":
        raise _fail(path, "month/day/hour rows have no year: use source: tmy (a typical year)")
    if tz is None:
        raise _fail(path, "month/day/hour rows need a declared weather.timezone (e.g. UTC)",
                    column=str(hour))
    if str(hour).lower() == "hour_utc" and tz not in ("UTC", "Etc/UTC"):
        raise _fail(path, f"the column says UTC but weather.timezone is {tz}", column=str(hour))
    parts = {}
    for name, col, lo, hi in (("month", lower["month"], 1, 12), ("day", lower["day"], 1, 31),
                              ("hour", hour, 0, 23)):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | (v < lo) | (v > hi) | (v != np.round(v))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(path, f"{df[col].iloc[i]!r} is not a whole number in {lo}..{hi}",
                        row=i + 1, column=str(col))
        parts[name] = v.astype(int)
    minute = (pd.to_numeric(df[lower["minute"]], errors="coerce").fillna(0).to_numpy(int)
              if "minute" in lower else np.zeros(len(df), dtype=int))
    try:  # a non-leap reference year (Feb 29 rows are dropped when placed)
        ts = pd.DatetimeIndex(pd.to_datetime(pd.DataFrame(
            {"year": np.full(len(df), 2001), "month": parts["month"], "day": parts["day"],
             "hour": parts["hour"], "minute": minute}), errors="coerce"))
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"month/day/hour do not form dates ({exc})") from None
    leap = (parts["month"] == 2) & (parts["day"] == 29)
    bad = np.asarray(ts.isna()) & ~leap
    if bad.any():
        raise _fail(path, "no such date", row=int(np.flatnonzero(bad)[0]) + 1,
                    column=str(lower["day"]))
    keep = ~leap
    return pd.DatetimeIndex(ts[keep]).tz_localize(tz).tz_convert("UTC"), keep


def _read_plain_csv(path: Path, spec: WeatherConfig) -> tuple[pd.DataFrame, dict[str, str]]:
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise _fail(path, f"cannot read it as CSV ({type(exc).__name__}: "
                    f"{str(exc).strip()[:200]})") from None
    if len(df) < 2:
        raise _fail(path, "fewer than two data rows")
    times, keep = _csv_times(df, path, spec)
    if keep is not None:
        df = df[keep].reset_index(drop=True)
    vals = _csv_values(df, path, spec)
    if "ghi" not in vals:
        raise _fail(path, f"no 'ghi' column (found {[str(c) for c in df.columns]})")
    if ("dni" in vals) != ("dhi" in vals):
        raise _fail(path, "give both 'dni' and 'dhi' or neither (then GHI is decomposed)")
    names = {q: str(vals.pop("_col_" + q)[0]) for q in _QUANTITIES if q in vals}
    frame = pd.DataFrame({q: vals.get(q, np.full(len(df), np.nan)) for q in _QUANTITIES},
                         index=times)
    if spec.time_label != "instant" and len(times) > 1:
        step = (times[1] - times[0]) / 2
        frame.index = times + step if spec.time_label == "interval_start" else times - step
    return frame, names


def _epoch_s(index: Any) -> np.ndarray:
    """Seconds since 1970 of a timezone-aware index."""
    idx = pd.DatetimeIndex(index)
    return np.asarray((idx - pd.Timestamp(0, tz="UTC")).total_seconds(), dtype=np.float64)


def _check_times(frame: pd.DataFrame, path: Path, max_gap_s: float) -> None:
    t = _epoch_s(frame.index)
    d = np.diff(t)
    if (d == 0).any():
        i = int(np.flatnonzero(d == 0)[0])
        raise _fail(path, f"duplicate time stamp {frame.index[i + 1]} (also row {i + 1})", row=i + 2)
    if (d < 0).any():
        i = int(np.flatnonzero(d < 0)[0])
        raise _fail(path, f"time stamps go backwards: {frame.index[i + 1]} after "
                    f"{frame.index[i]}", row=i + 2)
    if (d > max_gap_s).any():
        i = int(np.flatnonzero(d > max_gap_s)[0])
        raise _fail(path, f"a gap of {d[i] / 3600:g} h from {frame.index[i]} to "
                    f"{frame.index[i + 1]}, longer than weather.max_gap "
                    f"({max_gap_s / 3600:g} h)", row=i + 2)


def _check_values(frame: pd.DataFrame, path: Path, names: dict[str, str],
                  fill_max_rows: int) -> int:
    """Range checks, short gaps filled (in place); the number of values filled."""
    n_filled = 0
    for q in _QUANTITIES:
        v = frame[q].to_numpy(dtype=np.float64, copy=True)
        col = names.get(q, q)
        if np.isnan(v).all():
            continue
        lo, hi = ((-NEG_TOL_W_M2, MAX_IRRADIANCE_W_M2) if q in ("ghi", "dni", "dhi")
                  else _T_RANGE_C if q == "temp_air" else _WIND_RANGE_M_S)
        bad = np.isfinite(v) & ((v < lo) | (v > hi)) | np.isinf(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            unit = "W/m²" if q in ("ghi", "dni", "dhi") else "°C" if q == "temp_air" else "m/s"
            hint = (" (a file in Wh or declared kW/m² holding W/m²?)" if v[i] > hi and unit == "W/m²"
                    else " (Kelvin declared as °C?)" if q == "temp_air" and v[i] > hi else "")
            raise _fail(path, f"{v[i]:g} {unit} is outside [{lo:g}, {hi:g}]{hint}",
                        row=i + 1, column=col)
        if q == "ghi" and np.nanmax(v) < 2.0:
            raise _fail(path, f"GHI never exceeds {np.nanmax(v):g} W/m²: the values look like "
                        "kW/m² (set weather.irradiance_unit: kW/m2)", column=col)
        nan = np.isnan(v)
        if nan.any():
            # runs of missing rows: fill the short ones linearly in time
            edges = np.diff(np.concatenate([[0], nan.astype(int), [0]]))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            long = (ends - starts) > fill_max_rows
            if long.any() or starts[0] == 0 or ends[-1] == len(v):
                k = int(np.flatnonzero(long)[0]) if long.any() else 0
                raise _fail(path, f"{ends[k] - starts[k]} missing value(s) in a row (at most "
                            f"weather.fill_max_rows = {fill_max_rows} are filled, and not at "
                            "the file's ends)", row=int(starts[k]) + 1, column=col)
            x = _epoch_s(frame.index)
            v[nan] = np.interp(x[nan], x[~nan], v[~nan])
            n_filled += int(nan.sum())
        if q != "temp_air":
            v = np.maximum(v, 0.0)
        frame[q] = v
    return n_filled


def read_weather(spec: WeatherConfig) -> Weather:
    """Read and check the weather file of ``spec`` (a scenario's ``weather:``).

    Raises
    ------
    ConfigError
        Naming the file, the data row and the column (see the module docstring).
    """
    assert spec.file is not None
    path = Path(spec.file)
    if not path.is_file():
        raise _fail(path, "file not found (field 'weather.file')")
    fmt = _guess_format(path, spec.format)
    names: dict[str, str] = {}
    tz = spec.timezone or "UTC"
    if fmt == "csv":
        frame, names = _read_plain_csv(path, spec)
    else:
        frame, tz = _read_pvlib(path, fmt)
        if spec.source == "tmy":  # the typical months come from different years: one year
            local = pd.DatetimeIndex(frame.index).tz_convert(tz)
            keep = ~((local.month == 2) & (local.day == 29))
            frame = frame[keep]
            frame.index = pd.DatetimeIndex(local[keep].map(
                lambda t: t.replace(year=2001))).tz_convert("UTC")
    if frame["ghi"].isna().all():
        raise _fail(path, "no GHI values", column="ghi")
    _check_times(frame, path, spec.max_gap_s)
    n = _check_values(frame, path, names, spec.fill_max_rows)
    return Weather(frame, path, n, tz)


def _tmy_on_years(frame: pd.DataFrame, tz: Any, years: range) -> pd.DataFrame:
    """The typical year's rows placed on each of ``years`` (same month, day and clock time in
    ``tz``; Feb 29 repeats Feb 28; a file's own Feb 29 is dropped)."""
    local = pd.DatetimeIndex(frame.index).tz_convert(tz)
    keep = ~((local.month == 2) & (local.day == 29))
    local, rows = local[keep], frame[keep]
    parts = []
    for y in years:
        idx = pd.to_datetime({"year": np.full(len(local), y), "month": local.month,
                              "day": local.day, "hour": local.hour, "minute": local.minute})
        block = rows.set_axis(pd.DatetimeIndex(idx).tz_localize(tz, ambiguous="NaT",
                                                                 nonexistent="NaT"))
        if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
            feb28 = (local.month == 2) & (local.day == 28)
            extra = rows[feb28].set_axis(block.index[feb28] + pd.Timedelta(days=1))
            block = pd.concat([block, extra])
        parts.append(block[block.index.notna()])
    out = pd.concat(parts).sort_index(kind="stable")
    return out[~out.index.duplicated(keep="first")].tz_convert("UTC")


def weather_on_run(weather: Weather, spec: WeatherConfig, index: pd.DatetimeIndex,
                   dt_s: float) -> pd.DataFrame:
    """The weather covering the run ``[index[0], index[-1] + dt_s]`` (a TMY placed on the
    run's years).

    Raises
    ------
    ConfigError
        When a measured file does not cover the run.
    """
    frame = weather.frame
    first = index[0]
    last = index[-1] + pd.Timedelta(seconds=dt_s)
    if spec.source == "tmy":
        frame = _tmy_on_years(frame, weather.tz, range(first.year - 1, last.year + 2))
    t0, t1 = frame.index[0], frame.index[-1]
    if t0 > first or t1 < last:
        # a missing half step at either end of a measured file is held from its nearest row
        slack = pd.Timedelta(seconds=max(dt_s, 3600.0))
        if t0 - first > slack or last - t1 > slack:
            raise _fail(weather.path, f"covers {t0} to {t1} (UTC), the run needs "
                        f"{first.tz_convert('UTC')} to {last.tz_convert('UTC')}: supply a file "
                        "covering the run, shorten the run or use source: tmy")
    return frame


def pv_from_weather(index: pd.DatetimeIndex, dt_s: float, params: PvParams,
                    frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean AC power [kW], mean GHI [W/m²] and mean air temperature [°C] over each step, the pvlib chain of
    :mod:`twin.components.pv` fed the weather ``frame`` (interpolated linearly in time to the
    chain's evaluation instants; GHI decomposed by Erbs when DNI/DHI are absent; the
    model's diurnal air temperature and wind when the file has none)."""
    from twin.components import pv

    pvlib = pv._pvlib()
    times, n_sub = pv.evaluation_instants(index, dt_s, params)
    x, xt = _epoch_s(frame.index), _epoch_s(times)

    def at(q: str) -> np.ndarray | None:
        v = frame[q].to_numpy(dtype=np.float64)
        return None if np.isnan(v).all() else np.interp(xt, x, v)

    p_ac = np.empty(len(times))
    ghi_all = np.empty(len(times))
    t_all = np.empty(len(times))
    chunk = 131_072
    ghi_f, dni_f, dhi_f, t_f, w_f = (at(q) for q in _QUANTITIES)
    assert ghi_f is not None
    hour_local = clock_hour(times)
    for a0 in range(0, len(times), chunk):
        sl = slice(a0, a0 + chunk)
        sun = pv.sun_position(times[sl], params)
        ghi = ghi_f[sl]
        day = sun["zen"] < 90.0
        ghi = np.where(day, ghi, 0.0)
        if dni_f is None or dhi_f is None:
            dec = pvlib.irradiance.erbs(ghi, sun["zen"], sun["doy"])
            dni = np.nan_to_num(np.asarray(dec["dni"], dtype=np.float64))
            dhi = np.nan_to_num(np.asarray(dec["dhi"], dtype=np.float64))
        else:
            dni, dhi = np.where(day, dni_f[sl], 0.0), np.where(day, dhi_f[sl], 0.0)
        if t_f is None:
            mean = 0.5 * (params.t_amb_min_c + params.t_amb_max_c)
            amp = 0.5 * (params.t_amb_max_c - params.t_amb_min_c)
            t_amb = mean + amp * np.cos(2.0 * math.pi * (hour_local[sl]
                                                         - params.t_amb_peak_hour) / 24.0)
        else:
            t_amb = t_f[sl]
        wind: Any = params.wind_m_s if w_f is None else w_f[sl]
        p_ac[sl] = pv.chain_ac_kw(sun, ghi, dni, dhi, t_amb, wind, params)
        ghi_all[sl] = ghi
        t_all[sl] = t_amb
    n = len(index)
    out = p_ac.reshape(n, n_sub).mean(axis=1) if n_sub > 1 else p_ac
    g = ghi_all.reshape(n, n_sub).mean(axis=1) if n_sub > 1 else ghi_all
    t = t_all.reshape(n, n_sub).mean(axis=1) if n_sub > 1 else t_all
    return np.clip(out, 0.0, params.p_ac_max_kw), g, t


# ------------------------------------------------------------------ on-disk cache
#: Bumped when the layout of a cached weather-PV entry changes.
_WEATHER_CACHE_FORMAT = 1


@dataclass(frozen=True)
class WeatherPv:
    """What a run takes from its weather file: per-step mean AC power [kW], GHI [W/m²] and
    air temperature [°C], and the number of file values filled in short gaps."""

    p_ac_kw: np.ndarray
    ghi_w_m2: np.ndarray
    temp_air_c: np.ndarray
    n_filled: int


def weather_pv_key(spec: WeatherConfig, index: pd.DatetimeIndex, dt_s: float,
                   params: PvParams) -> str | None:
    """Hash of every input of the weather-file PV chain: the file's bytes (SHA-256), the
    ``weather:`` fields (format resolved from the name), the steps (start, count, time zone,
    length), every PV parameter, the model's code (``pv.py``, ``noise.py``,
    ``timeindex.py``, ``weather.py``) and library versions. None when the file cannot be
    read or its format not told (the uncached path then reports the problem)."""
    from twin.components.pv import _model_fingerprint

    if spec.file is None:
        return None
    path = Path(spec.file)
    try:
        fmt = _guess_format(path, spec.format)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ConfigError):
        return None
    fields = spec.model_dump(mode="json", exclude={"file"})
    key_spec: dict[str, Any] = {
        "format": _WEATHER_CACHE_FORMAT,
        "model": _model_fingerprint(("weather.py",)),
        "file_sha256": digest,
        "file_format": fmt,
        "weather": fields,
        "start": index[0].isoformat() if len(index) else None,
        "tz": str(index.tz),
        "n": len(index),
        "dt_s": float(dt_s),
        "params": dataclasses.asdict(params),
    }
    text = json.dumps(key_spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _weather_pv_path(folder: Path, key: str) -> Path:
    return folder / "pv" / f"{key}.tmy.npz"


def read_weather_pv_cached(folder: Path, key: str, n: int, p_max_kw: float) -> WeatherPv | None:
    """The cached entry of ``key``, or None when it is missing, damaged, foreign or out of
    range (never trusted blindly: dtype, shape, finiteness and bounds are checked)."""
    try:
        with np.load(_weather_pv_path(folder, key), allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            p, ghi, t_air = (np.asarray(z[m]) for m in ("p_ac_kw", "ghi_w_m2", "temp_air_c"))
            filled = np.asarray(z["n_filled"])
    except Exception:  # missing, truncated, not a zip, wrong members: recompute
        return None
    if not all(a.dtype == np.float64 and a.shape == (n,) and np.isfinite(a).all()
               for a in (p, ghi, t_air)):
        return None
    if (p < 0.0).any() or (p > p_max_kw).any() or (ghi < 0.0).any() \
            or (ghi > MAX_IRRADIANCE_W_M2).any() \
            or (t_air < _T_RANGE_C[0]).any() or (t_air > _T_RANGE_C[1]).any():
        return None
    if filled.shape != () or filled.dtype.kind != "i" or int(filled) < 0:
        return None
    return WeatherPv(p, ghi, t_air, int(filled))


def write_weather_pv_cached(folder: Path, key: str, w: WeatherPv) -> None:
    """Store ``w`` under ``key`` (atomically, by the PV cache's one writer)."""
    from twin.components.pv import _write_cached

    path = _weather_pv_path(folder, key)
    _write_cached(path.parent, path, key, p_ac_kw=w.p_ac_kw, ghi_w_m2=w.ghi_w_m2,
                  temp_air_c=w.temp_air_c, n_filled=np.array(w.n_filled, dtype=np.int64))

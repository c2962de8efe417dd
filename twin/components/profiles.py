"""Measured profiles (CSV or Parquet) resampled to the scenario step.

File format
-----------
* One numeric column per quantity; its unit is named by the column: ``*_kw`` is the mean
  power over the file's own step [kW], ``*_kwh`` the energy per file step [kWh]. The seed
  files' ``pv_kwh``, ``total_kw`` and ``demand_kw`` are both forms.
* Optionally a timestamp column named ``timestamp``, ``datetime`` or ``time`` (any case;
  a Parquet file may instead carry a DatetimeIndex). Each timestamp labels the *start* of
  its interval; the timestamps must be evenly spaced and that spacing is the file step.
  Naive timestamps are taken in the scenario's time zone, aware ones are converted to it.
  The file may start before and end after the scenario.
* Without a timestamp column the rows are consecutive intervals starting at the first step
  of the scenario; the file step is ``dt_s`` when the file has exactly one row per scenario
  step, and one hour (like the seeds' 8,760-row files) otherwise.

Resampling conserves energy: each scenario step gets the time-weighted mean of the file
intervals it overlaps. A coarser file (hourly into 15 min) is held constant over each
file interval; a finer file is averaged.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from twin.components.timeindex import step_offsets_s

__all__ = ["TIMESTAMP_COLUMNS", "ProfileError", "load_profile_kw"]

TIMESTAMP_COLUMNS: tuple[str, ...] = ("timestamp", "datetime", "time")
"""Names (case-insensitive, in order of preference) recognised as the timestamp column."""

_HOUR_S = 3600.0
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".csv.xz", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")


class ProfileError(ValueError):
    """A profile file cannot be used; the message names the file, the column and the fix."""


def _fail(path: Path, column: str, problem: str, fix: str) -> ProfileError:
    """Build a ProfileError with the file, the column, the problem and the fix."""
    return ProfileError(f"profile file '{path}', column '{column}': {problem}; fix: {fix}")


def _read_frame(path: Path, column: str) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame (raises ProfileError)."""
    if not path.exists():
        raise _fail(path, column, "file not found", "check the path in the scenario config")
    if not path.is_file():
        raise _fail(path, column, "not a regular file", "point to a CSV or Parquet file")
    name = path.name.lower()
    try:
        if name.endswith(_CSV_SUFFIXES):
            frame = pd.read_csv(path)
        elif name.endswith(_PARQUET_SUFFIXES):
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex):
                frame = frame.reset_index(names="timestamp")
        else:
            raise _fail(
                path,
                column,
                f"unsupported file type '{path.suffix}'",
                "save the profile as .csv or .parquet",
            )
    except ProfileError:
        raise
    except Exception as exc:  # any reader failure means a broken file
        raise _fail(
            path,
            column,
            f"cannot read the file ({type(exc).__name__}: {str(exc).strip()})",
            "re-export it as a valid CSV (comma-separated, one header row) or Parquet file",
        ) from exc
    if len(frame) == 0:
        raise _fail(path, column, "the file has no data rows", "supply a non-empty profile")
    return frame


def _timestamps(
    frame: pd.DataFrame, path: Path, column: str, tz: object
) -> pd.DatetimeIndex | None:
    """Parse the timestamp column, if any, into the scenario's time zone."""
    lower = {str(c).lower(): c for c in frame.columns}
    ts_col = next((lower[n] for n in TIMESTAMP_COLUMNS if n in lower), None)
    if ts_col is None:
        return None
    raw = frame[ts_col]
    try:
        if pd.api.types.is_datetime64_any_dtype(raw):
            ts = pd.DatetimeIndex(raw)
        else:
            try:
                ts = pd.DatetimeIndex(pd.to_datetime(raw, format="ISO8601"))
            except (ValueError, TypeError):
                with warnings.catch_warnings():  # non-ISO text: let pandas guess, quietly
                    warnings.simplefilter("ignore", UserWarning)
                    ts = pd.DatetimeIndex(pd.to_datetime(raw))
    except (ValueError, TypeError) as exc:
        raise _fail(
            path,
            column,
            f"cannot parse timestamp column '{ts_col}' ({exc})",
            "write ISO 8601 timestamps, e.g. 2024-01-01 00:00 or 2024-01-01T00:00-05:00",
        ) from exc
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna())[0]) + 1
        raise _fail(
            path,
            column,
            f"timestamp column '{ts_col}' is empty at data row {row}",
            "fill in every timestamp",
        )
    try:
        ts = ts.tz_localize(tz) if ts.tz is None else ts.tz_convert(tz)  # type: ignore[arg-type]
    except Exception as exc:  # nonexistent / ambiguous local times
        raise _fail(
            path,
            column,
            f"timestamps in '{ts_col}' cannot be placed in time zone {tz} ({exc})",
            "write timestamps with a UTC offset, e.g. 2024-01-01T00:00-05:00",
        ) from exc
    return ts


def _values_kw_or_kwh(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    """Return the column as float64, rejecting non-numeric, missing and negative values."""
    if column not in frame.columns:
        available = ", ".join(repr(str(c)) for c in frame.columns)
        near = [str(c) for c in frame.columns if str(c).lower() == column.lower()]
        hint = f"use '{near[0]}' (names are case-sensitive)" if near else "name one of them"
        raise _fail(path, column, f"column not in file; available columns: {available}", hint)
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        raise _fail(path, column, "values are booleans", "write numbers in kW or kWh")
    num = pd.to_numeric(raw, errors="coerce")
    bad = (num.isna() & raw.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(
            path,
            column,
            f"non-numeric value {raw.iloc[i]!r} at data row {i + 1} ({int(bad.sum())} in all)",
            "write plain numbers with '.' as decimal separator and no units in the cells",
        )
    values = num.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(values)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise _fail(
            path,
            column,
            f"missing or non-finite value ({values[i]}) at data row {i + 1} "
            f"({int(missing.sum())} in all)",
            "fill the gaps (e.g. interpolate) before using the file",
        )
    negative = values < 0.0
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise _fail(
            path,
            column,
            f"negative value {values[i]} at data row {i + 1} ({int(negative.sum())} in all)",
            "profiles are non-negative powers or energies; clip or correct the data",
        )
    return values


def _resample(
    p_kw: np.ndarray, file_start_s: float, file_step_s: float, starts_s: np.ndarray, dt_s: float
) -> np.ndarray:
    """Time-weighted mean of a piecewise-constant file signal over each scenario step.

    Parameters
    ----------
    p_kw : numpy.ndarray
        Mean power of each file interval [kW].
    file_start_s : float
        Start of the first file interval relative to the first scenario step [s].
    file_step_s : float
        Length of each file interval [s].
    starts_s : numpy.ndarray
        Starts of the scenario steps relative to the first one [s].
    dt_s : float
        Scenario step [s].

    Returns
    -------
    numpy.ndarray
        Mean power over each scenario step [kW].
    """
    offset = -file_start_s / file_step_s
    if file_step_s == dt_s and offset == round(offset):  # same grid: exact copy
        k = round(offset)
        return np.array(p_kw[k : k + len(starts_s)], dtype=np.float64)
    fe = file_start_s + np.arange(len(p_kw) + 1, dtype=np.float64) * file_step_s
    se = np.append(starts_s, starts_s[-1] + dt_s)
    grid = np.union1d(se, fe[(fe > se[0]) & (fe < se[-1])])
    width = np.diff(grid)
    row = np.searchsorted(fe, 0.5 * (grid[:-1] + grid[1:]), side="right") - 1
    np.clip(row, 0, len(p_kw) - 1, out=row)
    energy = p_kw[row] * width
    first = np.searchsorted(grid, starts_s)
    return np.asarray(np.add.reduceat(energy, first) / dt_s, dtype=np.float64)


def _file_grid(ts: pd.DatetimeIndex | None, m: int, n: int, first: pd.Timestamp, dt_s: float,
               path: Path, column: str) -> tuple[float, float]:
    """The file's step [s] and its first row's start [s after the scenario's first step].

    Without timestamps, a file of the scenario's length is on its grid, any other is hourly.
    """
    if ts is None:
        file_step_s = dt_s if m == n else _HOUR_S
        file_start_s = 0.0
    else:
        if m < 2:
            raise _fail(
                path,
                column,
                "a single timestamped row does not define a file step",
                "supply at least two rows",
            )
        rel = (ts - first).total_seconds().to_numpy(dtype=np.float64)
        steps = np.diff(rel)
        file_step_s = float(steps[0])
        irregular = np.flatnonzero(np.abs(steps - file_step_s) > 1e-6)
        if file_step_s <= 0 or irregular.size:
            i = int(irregular[0]) + 1 if irregular.size else 1
            raise _fail(
                path,
                column,
                f"timestamps are not evenly spaced and increasing: the step from data row {i} "
                f"to {i + 1} is {steps[i - 1]:g} s, the first step is {file_step_s:g} s",
                "resample the file to a fixed step with no gaps or duplicates",
            )
        file_start_s = float(rel[0])
    return file_step_s, file_start_s


def load_profile_kw(path: Path, column: str, index: pd.DatetimeIndex, dt_s: float) -> np.ndarray:
    """Read a CSV or Parquet profile and return mean power per step [kW], float64, len(index).

    Parameters
    ----------
    path : pathlib.Path
        CSV (``.csv``, optionally compressed, or ``.txt``) or Parquet (``.parquet``,
        ``.pq``) file.
    column : str
        Column to read; its name must end in ``_kw`` (mean power per file step [kW]) or
        ``_kwh`` (energy per file step [kWh]).
    index : pandas.DatetimeIndex
        Timezone-aware starts of the scenario steps, evenly spaced by ``dt_s``.
    dt_s : float
        Scenario step [s].

    Returns
    -------
    numpy.ndarray
        Mean power over ``[index[k], index[k] + dt_s)`` [kW], float64, ``len(index)``, >= 0.

    Raises
    ------
    ProfileError
        If the file is missing, unreadable or of an unsupported type; the column is missing,
        misnamed, non-numeric, has missing or negative values; the timestamps cannot be
        parsed or are not evenly spaced; or the file does not cover the scenario horizon.
        The message names the file, the column and the fix.
    ValueError
        If ``index`` is naive, empty or not spaced by ``dt_s``.

    Notes
    -----
    See the module docstring for the file format and the step rules.
    """
    path = Path(path)
    starts_s = step_offsets_s(index, dt_s)
    n = len(index)
    first = index[0]

    unit = column.lower()
    if not (unit.endswith("_kw") or unit.endswith("_kwh")):
        raise _fail(
            path,
            column,
            "the column name must end in _kw (mean power per file step) "
            "or _kwh (energy per file step)",
            f"rename the column in the file, e.g. '{column}_kw' or '{column}_kwh'",
        )

    frame = _read_frame(path, column)
    values = _values_kw_or_kwh(frame, path, column)
    ts = _timestamps(frame, path, column, index.tz)
    m = len(values)

    file_step_s, file_start_s = _file_grid(ts, m, n, first, dt_s, path, column)

    p_kw = values * (_HOUR_S / file_step_s) if unit.endswith("_kwh") else values

    horizon_end_s = float(starts_s[-1]) + dt_s
    file_end_s = file_start_s + m * file_step_s
    tol_s = 1e-6
    if file_start_s > tol_s or file_end_s < horizon_end_s - tol_s:
        first_file = first + pd.Timedelta(seconds=file_start_s)
        end_file = first + pd.Timedelta(seconds=file_end_s)
        end_scenario = first + pd.Timedelta(seconds=horizon_end_s)
        raise _fail(
            path,
            column,
            f"the file covers {m} steps of {file_step_s:g} s ({m * file_step_s / 86400:.2f} "
            f"days, {first_file} to {end_file}), the scenario needs {n} steps of {dt_s:g} s "
            f"({n * dt_s / 86400:.2f} days, {first} to {end_scenario})",
            "supply a file covering the whole scenario horizon (e.g. 8,784 hourly rows for "
            "2024), add a timestamp column, or shorten the scenario",
        )
    return _resample(p_kw, file_start_s, file_step_s, starts_s, dt_s)

"""Measured site series (CSV or Parquet): PV, mall, battery, SOC, grid import at the tick.

File format
-----------
* A ``timestamp`` column (or a Parquet DatetimeIndex) with a UTC offset or zone
  (``2024-03-04T10:00:00-05:00``); naive stamps are refused (a meter's clock has a zone).
  Each stamp labels the *start* of its interval; any regular interval (1 s ... 1 h ...).
* One column per channel, named like the twin's own ``timeseries`` columns
  (:mod:`twin.engine.results`), so a run's ``timeseries.parquet`` is a valid measured file:

  ========================  ===========================================================
  channel                   columns (either)
  ========================  ===========================================================
  ``pv``                    ``pv_kwh`` [kWh per file interval] or ``p_pv_kw`` [kW mean]
  ``mall``                  ``mall_kwh`` or ``p_mall_kw``
  ``bess``                  ``p_bess_kw`` [kW mean, + discharge, − charge] or
                            ``bess_action_kwh`` [kWh, + discharge]
  ``soc``                   ``soc_percent`` [%, 0-100]
  ``grid_import``           ``grid_import_kwh`` or ``p_grid_kw``
  ========================  ===========================================================

Resampling to the tick is the interval mean (energy conserved, as
:mod:`twin.components.profiles`): a finer file is averaged, a coarser one held over its
interval.

Checks (a ``ConfigError`` naming the file, the data row and the column): stamps naive,
duplicated, going backwards or not on the file's regular step; a gap (missing rows or empty
cells) longer than ``fill_max_steps`` file steps; a value not a number, negative (PV, mall,
grid import), above ``MAX_KW`` in magnitude (a file in W?), an SOC outside [0, 100] or never
above 1 (a fraction, not percent); a file that does not cover the run.

Gap rule: a gap of at most ``fill_max_steps`` file steps (missing rows, or empty cells) is
filled linearly in time between its neighbours, for every channel; the filled values are
counted (``input_filled_values`` in the run's summary).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.components.profiles import _resample
from twin.components.timeindex import step_offsets_s
from twin.errors import ConfigError, file_error

__all__ = ["CHANNELS", "MeasuredSeries", "measured_span", "read_measured"]

#: channel -> accepted columns (the first is the twin's own timeseries column).
CHANNELS: dict[str, tuple[str, ...]] = {
    "pv": ("pv_kwh", "p_pv_kw"),
    "mall": ("mall_kwh", "p_mall_kw"),
    "bess": ("p_bess_kw", "bess_action_kwh"),
    "soc": ("soc_percent",),
    "grid_import": ("grid_import_kwh", "p_grid_kw"),
}
_NON_NEGATIVE = ("pv", "mall", "grid_import")
#: Largest power magnitude a site meter reports [kW] (the twin's physical bound).
MAX_KW = 1e6


@dataclass
class MeasuredSeries:
    """Channels at the run's tick: ``pv``, ``mall``, ``bess``, ``grid_import`` as mean power
    [kW] over each step (``bess`` + discharge), ``soc`` [%]; only the channels in the file."""

    path: Path
    step_s: float
    values: dict[str, np.ndarray] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    n_filled: int = 0


def _fail(path: Path, problem: str, row: int | None = None, column: str | None = None) -> ConfigError:
    return file_error("measured", path, problem, row, column)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise _fail(path, "file not found")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            df = pd.read_parquet(path)
            if isinstance(df.index, pd.DatetimeIndex):
                df = df.reset_index(names="timestamp")
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            df = pd.read_csv(path)
        else:
            raise _fail(path, f"unsupported file type '{path.suffix}' (use .csv or .parquet)")
    except ConfigError:
        raise
    except Exception as exc:  # any reader failure means a broken file
        raise _fail(path, f"cannot read it ({type(exc).__name__}: {str(exc).strip()[:200]})") \
            from None
    if len(df) < 2:
        raise _fail(path, "fewer than two data rows")
    return df


def _stamps(df: pd.DataFrame, path: Path) -> pd.DatetimeIndex:
    lower = {str(c).lower(): c for c in df.columns}
    col = lower.get("timestamp")
    if col is None:
        raise _fail(path, f"no 'timestamp' column (found {[str(c) for c in df.columns]})")
    raw = df[col]
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = pd.DatetimeIndex(raw)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ts = pd.DatetimeIndex(pd.to_datetime(raw, format="ISO8601"))
        except (ValueError, TypeError) as exc:
            # mixed offsets parse to objects: ask for one form
            raise _fail(path, f"time stamps are not ISO 8601 with one UTC offset "
                        f"({str(exc)[:120]})", column=str(col)) from None
    if ts.isna().any():
        raise _fail(path, "empty time stamp", row=int(np.flatnonzero(ts.isna())[0]) + 1,
                    column=str(col))
    if ts.tz is None:
        raise _fail(path, f"naive time stamp {raw.iloc[0]!r}: write the UTC offset or zone, "
                    "e.g. 2024-03-04T10:00:00-05:00", row=1, column=str(col))
    return ts


def _step_and_slots(ts: pd.DatetimeIndex, path: Path, col: str,
                    fill_max_steps: int) -> tuple[float, np.ndarray]:
    """The file's regular step [s] and each row's slot number on it."""
    t = (ts - ts[0]).total_seconds().to_numpy(dtype=np.float64)
    d = np.diff(t)
    if (d == 0).any():
        i = int(np.flatnonzero(d == 0)[0])
        raise _fail(path, f"duplicate time stamp {ts[i + 1]} (as row {i + 1})", row=i + 2,
                    column=col)
    if (d < 0).any():
        i = int(np.flatnonzero(d < 0)[0])
        raise _fail(path, f"time stamps go backwards ({ts[i + 1]} after {ts[i]})", row=i + 2,
                    column=col)
    vals, counts = np.unique(np.round(d, 6), return_counts=True)
    step = float(vals[np.argmax(counts)])  # the most common spacing is the file's step
    k = d / step
    off = np.abs(k - np.round(k)) > 1e-6
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise _fail(path, f"{ts[i + 1]} is not on the file's regular step of {step:g} s",
                    row=i + 2, column=col)
    gap = np.round(k).astype(np.int64) - 1
    if (gap > fill_max_steps).any():
        i = int(np.flatnonzero(gap > fill_max_steps)[0])
        raise _fail(path, f"{gap[i]} missing step(s) of {step:g} s after {ts[i]}: longer than "
                    f"the fill limit of {fill_max_steps} (measured.fill_max_steps)",
                    row=i + 2, column=col)
    return step, np.concatenate([[0], np.cumsum(np.round(k).astype(np.int64))])


def _channel(df: pd.DataFrame, path: Path, ch: str, col: str, slots: np.ndarray,
             fill_max_steps: int) -> tuple[np.ndarray, int]:
    """One column on the full slot grid, short gaps filled; (values, number filled)."""
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = (num.isna() & raw.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(path, f"{raw.iloc[i]!r} is not a number", row=i + 1, column=col)
    v = num.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(v).any():
        i = int(np.flatnonzero(np.isinf(v))[0])
        raise _fail(path, "not a finite number", row=i + 1, column=col)
    fin = np.isfinite(v)
    if ch in _NON_NEGATIVE and (v[fin] < 0).any():
        i = int(np.flatnonzero(fin & (v < 0))[0])
        raise _fail(path, f"negative value {v[i]:g}: a {ch.replace('_', ' ')} meter reads >= 0",
                    row=i + 1, column=col)
    if ch == "soc":
        if (fin & ((v < 0) | (v > 100))).any():
            i = int(np.flatnonzero(fin & ((v < 0) | (v > 100)))[0])
            raise _fail(path, f"SOC {v[i]:g} % is outside [0, 100]", row=i + 1, column=col)
        if np.nanmax(v) <= 1.0:
            raise _fail(path, "SOC never exceeds 1 %: the values look like a fraction (0-1); "
                        "write percent (0-100)", column=col)
    elif (fin & (np.abs(v) > MAX_KW)).any():
        i = int(np.flatnonzero(fin & (np.abs(v) > MAX_KW))[0])
        raise _fail(path, f"{v[i]:g} is above {MAX_KW:g} in magnitude: not physical for a "
                    "site (a file in W or Wh instead of kW / kWh?)", row=i + 1, column=col)
    grid = np.full(int(slots[-1]) + 1, np.nan)
    grid[slots] = v
    nan = np.isnan(grid)
    if not nan.any():
        return grid, 0
    edges = np.diff(np.concatenate([[0], nan.astype(np.int64), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = (ends - starts) > fill_max_steps
    if long.any() or starts[0] == 0 or ends[-1] == len(grid):
        j = int(np.flatnonzero(long)[0]) if long.any() else (0 if starts[0] == 0 else -1)
        row = int(np.searchsorted(slots, starts[j])) + 1
        raise _fail(path, f"{ends[j] - starts[j]} value(s) missing in a row (the fill limit is "
                    f"{fill_max_steps}, measured.fill_max_steps; never at the file's ends)",
                    row=row, column=col)
    x = np.arange(len(grid), dtype=np.float64)
    grid[nan] = np.interp(x[nan], x[~nan], grid[~nan])
    return grid, int(nan.sum())


def read_measured(path: Path | str, index: pd.DatetimeIndex, dt_s: float, *,
                  fill_max_steps: int = 4, need: Iterable[str] = ()) -> MeasuredSeries:
    """Read a measured-series file and resample its channels to the run's steps.

    Parameters
    ----------
    path : CSV or Parquet file (module docstring).
    index : timezone-aware step starts of the run, spaced by ``dt_s``.
    dt_s : run step [s].
    fill_max_steps : longest gap filled, in file steps.
    need : channels that must be present.

    Returns
    -------
    MeasuredSeries
        Mean power [kW] (SOC [%]) over each step for every channel in the file.

    Raises
    ------
    ConfigError
        Naming the file, the data row and the column.
    """
    path = Path(path)
    df = _read(path)
    ts = _stamps(df, path)
    tcol = next(str(c) for c in df.columns if str(c).lower() == "timestamp")
    step, slots = _step_and_slots(ts, path, tcol, fill_max_steps)
    out = MeasuredSeries(path, step)
    for ch, names in CHANNELS.items():
        col = next((c for c in names if c in df.columns), None)
        if col is None:
            continue
        v, filled = _channel(df, path, ch, col, slots, fill_max_steps)
        if col.endswith("_kwh"):
            v = v * 3600.0 / step
        out.values[ch] = v
        out.columns[ch] = col
        out.n_filled += filled
    missing = [c for c in need if c not in out.values]
    if missing:
        want = {c: " or ".join(CHANNELS[c]) for c in missing}
        raise _fail(path, f"no column for channel(s) {want} (found {[str(c) for c in df.columns]})")
    if not out.values:
        raise _fail(path, f"no measured column; name columns like the twin's timeseries: "
                    f"{[n for ns in CHANNELS.values() for n in ns]}")
    starts_s = step_offsets_s(index, dt_s)
    file_start_s = float((ts[0] - index[0]).total_seconds())
    n_file = len(next(iter(out.values.values())))
    file_end_s = file_start_s + n_file * step
    need_end_s = float(starts_s[-1]) + dt_s
    if file_start_s > 1e-6 or file_end_s < need_end_s - 1e-6:
        raise _fail(path, f"covers {ts[0]} to {ts[0] + pd.Timedelta(seconds=n_file * step)}, "
                    f"the run needs {index[0]} to {index[0] + pd.Timedelta(seconds=need_end_s)}")
    for ch in list(out.values):
        out.values[ch] = _resample(out.values[ch], file_start_s, step, starts_s, dt_s)
    return out


def measured_span(path: Path | str, fill_max_steps: int = 4) -> tuple[pd.Timestamp, float]:
    """The first time stamp of a measured file and the span it covers [s] (checked as
    :func:`read_measured` checks the time stamps)."""
    path = Path(path)
    df = _read(path)
    ts = _stamps(df, path)
    tcol = next(str(c) for c in df.columns if str(c).lower() == "timestamp")
    step, slots = _step_and_slots(ts, path, tcol, fill_max_steps)
    return ts[0], float((slots[-1] + 1) * step)

"""The run folder: a run's files written atomically (temporary folder, then rename) as Parquet
(CSV on request) plus ``daily_profile.csv``, ``summary.json`` and the project's marker, and
read back with checks (``summary.json`` and the tables' numeric columns).

``twin run`` streams the per-step table: it is built and written in chunks of whole local
hours (one Parquet row group each) and the daily profile is aggregated chunk by chunk, so a
1-min year never holds the whole table.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin import atomic, kpi_catalogue
from twin.engine.tables import DailyProfileAccumulator, Results, StreamedResults
from twin.errors import UserError

#: Files of a run folder (besides the marker): the tables as Parquet (unless the scenario's
#: ``output.parquet`` is false), the daily profile and the summary.
OUTPUT_FILES = ("timeseries.parquet", "sessions.parquet", "daily_profile.csv", "summary.json")
#: The tables as CSV too, with ``--csv`` (or the scenario's ``output.csv``).
CSV_OUTPUT_FILES = ("timeseries.csv", "sessions.csv")


def iso_local(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timezone-aware timestamps as ISO 8601 strings with their UTC offset, vectorised.

    ``2024-01-01T09:15:00-05:00``; NaT becomes an empty string.
    """
    idx = pd.DatetimeIndex(ts)
    if idx.tz is None:
        raise ValueError("timestamps must be timezone-aware")
    local = idx.tz_localize(None)
    utc = idx.tz_convert("UTC").tz_localize(None)
    base = np.datetime_as_string(local.to_numpy().astype("datetime64[s]"), unit="s")
    nat = np.asarray(idx.isna())
    td = np.where(nat, np.timedelta64(0, "ns"), (local - utc).to_numpy())
    off_min = (td // np.timedelta64(1, "m")).astype(np.int64)
    uniq = {int(m): f"{'+' if m >= 0 else '-'}{abs(int(m)) // 60:02d}:{abs(int(m)) % 60:02d}"
            for m in np.unique(off_min[~nat])}
    suffix = np.array([uniq.get(int(m), "") for m in off_min]) if len(uniq) > 1 else \
        np.full(len(idx), next(iter(uniq.values()), ""))
    out = np.char.add(base.astype(str), suffix.astype(str)).astype(object)
    out[nat] = ""
    return out


def _csv_table(part: pd.DataFrame) -> Any:
    """``part`` as an Arrow table for CSV: timestamps as local ISO 8601, categories as text."""
    import pyarrow as pa

    frame = {}
    for c in part.columns:
        col = part[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            frame[c] = pa.array(iso_local(col), type=pa.string())
        elif isinstance(col.dtype, pd.CategoricalDtype):
            frame[c] = pa.array(col.astype(str).to_numpy(), type=pa.string())
        else:
            frame[c] = pa.array(col.to_numpy())
    return pa.table(frame)


class TableWriter:
    """Writes a table chunk by chunk: Parquet (one row group per chunk) and/or CSV.

    Parameters
    ----------
    parquet_path, csv_path : the files to write; None = not that format.
    """

    def __init__(self, parquet_path: Path | None, csv_path: Path | None) -> None:
        self.parquet_path = parquet_path
        self.csv_path = csv_path
        self._pq: Any = None
        self._csv: Any = None
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        """Append ``df`` (the same columns and types every time)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self.parquet_path is not None:
            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._pq is None:
                # dictionary pages only for the few-valued columns (text, categories, counts):
                # for floats and times they cost half the write and save nothing
                few = [f.name for f in table.schema
                       if not (pa.types.is_floating(f.type) or pa.types.is_temporal(f.type))]
                self._pq = pq.ParquetWriter(str(self.parquet_path), table.schema,
                                            use_dictionary=few)
            self._pq.write_table(table)
        if self.csv_path is not None:
            table = _csv_table(df)
            if self._csv is None:
                self._csv = pacsv.CSVWriter(str(self.csv_path), table.schema)
            self._csv.write_table(table)
        self.rows += len(df)

    def close(self) -> None:
        """Finish the files (also after a failure)."""
        for w in (self._pq, self._csv):
            if w is not None:
                w.close()
        self._pq = self._csv = None


def _write_chunks(df: pd.DataFrame, parquet: Path | None, csv: Path | None,
                  chunk_rows: int) -> None:
    """Write ``df`` through one ``TableWriter``, ``chunk_rows`` rows at a time."""
    w = TableWriter(parquet, csv)
    try:
        for start in range(0, max(len(df), 1), chunk_rows):
            w.write(df.iloc[start:start + chunk_rows])
    finally:
        w.close()


def write_csv(df: pd.DataFrame, path: Path, chunk_rows: int = 50_000) -> None:
    """Write ``df`` as CSV quickly (pyarrow, in chunks to bound memory); timestamps as
    local ISO 8601 with their offset."""
    _write_chunks(df, None, path, chunk_rows)


def write_parquet(df: pd.DataFrame, path: Path, chunk_rows: int = 100_000) -> None:
    """Write ``df`` as Parquet in row groups of ``chunk_rows`` (bounded memory)."""
    _write_chunks(df, path, None, chunk_rows)


def _write_streamed(res: StreamedResults, tmp: Path, *, csv: bool, parquet: bool) -> pd.DataFrame:
    """Write the per-step table of ``res`` chunk by chunk; return the daily profile."""
    w = TableWriter(tmp / "timeseries.parquet" if parquet else None,
                    tmp / "timeseries.csv" if csv else None)
    prof = DailyProfileAccumulator()
    try:
        for chunk in res.timeseries_chunks():
            w.write(chunk)
            prof.add(chunk)
    finally:
        w.close()
    return prof.result()


def check_output_dir(out_dir: Path | str, kind: str = "run") -> Path:
    """Refuse an output folder the twin may not replace (see :func:`twin.atomic.check_output_dir`).

    Call it before the run; returns the folder made absolute.

    Raises
    ------
    twin.errors.UserError
        When ``out_dir`` is a file, or a non-empty folder that is not the project's.
    """
    return atomic.check_output_dir(out_dir, kind)


def _free_sibling(out: Path) -> Path:
    """A name next to ``out`` that does not exist yet: ``NAME-2``, ``NAME-3`` ..."""
    for i in range(2, 10_000):
        cand = out.with_name(f"{out.name}-{i}")
        if not cand.exists():
            return cand
    raise UserError(f"{out}: no free folder name next to it")


def _finite_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with non-finite numbers replaced by null, listed in ``non_finite_fields``."""
    bad: list[str] = []

    def fix(v: Any, key: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            bad.append(key)
            return None
        if isinstance(v, dict):
            return {k: fix(x, f"{key}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x, f"{key}[{i}]") for i, x in enumerate(v)]
        return v

    out = {k: fix(v, k) for k, v in summary.items()}
    if bad:
        out["non_finite_fields"] = bad
    return out


def write_results(res: Results | StreamedResults, out_dir: Path, *, csv: bool = False,
                  parquet: bool = True,
                  extra: Callable[[Path], None] | None = None) -> Path:
    """Write the run's files atomically; return the folder actually written.

    Files are written into a temporary sibling folder which then replaces the output
    folder, so a reader never sees a half-written run and a failure leaves nothing behind.
    The folder gets the project's marker (:data:`twin.atomic.MARKER`, ``complete`` false
    for an interrupted run).

    * An interrupted run (``summary["interrupted"]``) never replaces a complete one: it
      goes to ``OUT.partial`` then.
    * If the folder became unusable during the run (a user file appeared), the run goes
      to a free sibling ``OUT-2`` rather than being lost.

    Parameters
    ----------
    res : the results; a :class:`StreamedResults`' per-step table and daily profile are
        built chunk by chunk as they are written.
    csv, parquet : write the tables as CSV (``timeseries.csv``, ``sessions.csv``) and / or
        Parquet (``timeseries.parquet``, ``sessions.parquet``).
    extra : called with the temporary folder to add more files (e.g. the HIL's logs)
        before the marker lists the folder's entries.
    """
    out_dir = Path(out_dir)
    complete = not res.summary.get("interrupted", False)
    target = atomic.partial_target(out_dir) if not complete else out_dir
    try:
        target = check_output_dir(target)
    except UserError:
        target = check_output_dir(_free_sibling(atomic._absolute(target)))
    tmp = atomic.temp_sibling(target)
    try:
        if isinstance(res, StreamedResults):
            profile = _write_streamed(res, tmp, csv=csv, parquet=parquet)
        else:
            profile = res.daily_profile
            if parquet:
                write_parquet(res.timeseries, tmp / "timeseries.parquet")
            if csv:
                write_csv(res.timeseries, tmp / "timeseries.csv")
        if parquet:
            res.sessions.to_parquet(tmp / "sessions.parquet", index=False)
        if csv:
            write_csv(res.sessions, tmp / "sessions.csv")
        profile.to_csv(tmp / "daily_profile.csv", index=False, float_format="%.9g")
        with open(tmp / "summary.json", "w", encoding="utf-8") as fh:
            json.dump(_finite_summary(res.summary), fh, indent=2, sort_keys=False,
                      allow_nan=False)
            fh.write("\n")
        if extra is not None:
            extra(tmp)
        atomic.write_marker(tmp, "run", complete=complete, extra={
            "steps_done": res.summary.get("steps_done"), "n_steps": res.summary.get("n_steps")})
        atomic.replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


#: Largest ``summary.json`` read [bytes] (a real one is a few kB).
SUMMARY_MAX_BYTES = 16 * 2**20
#: Largest magnitude accepted in a run's tables and KPIs [kWh, kW, kg, currency]; a bigger
#: value is a damaged or hand-edited file (the site's annual energy is ~1e7 kWh).
MAX_ABS_VALUE = 1e15

#: Types of the summary keys the tools read (``twin show``, ``export``, ``report``).
SUMMARY_TYPES: dict[str, type] = {
    "scenario": str, "site": str, "controller": str, "start": str, "end": str,
    "currency": str, "interrupted": bool, "phase_names": dict, "seed": int,
    "n_steps": int, "steps_done": int,
}


#: Summary keys that must be numbers: every number ``build_summary`` writes (the ``summary``
#: rows of the KPI catalogue, :mod:`twin.kpi_catalogue`).
NUMERIC_SUMMARY_KEYS: frozenset[str] = kpi_catalogue.summary_keys()


class SummaryError(UserError):
    """``summary.json`` of a run folder cannot be used; the message says why."""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_summary(data: Any, where: Path | str) -> dict[str, Any]:
    """Check a parsed ``summary.json``: a JSON object, known keys of the right type, KPIs finite.

    Raises
    ------
    SummaryError
        Naming the file and the field.
    """
    if not isinstance(data, dict):
        raise SummaryError(f"{where}: expected a JSON object of KPIs, found "
                           f"{'null' if data is None else type(data).__name__}; the file is not "
                           "a run summary written by the twin")
    for key, typ in SUMMARY_TYPES.items():
        if key in data and data[key] is not None:
            v = data[key]
            ok = isinstance(v, typ) and (typ is bool or not isinstance(v, bool))
            if not ok:
                raise SummaryError(f"{where}: field '{key}' should be a {typ.__name__}, found "
                                   f"{type(v).__name__} ({str(v)[:40]!r})")
    if isinstance(data.get("phase_names"), dict) and not all(
            isinstance(v, str) for v in data["phase_names"].values()):
        raise SummaryError(f"{where}: field 'phase_names' should map codes to names")
    for key, v in data.items():
        if v is None or (key not in NUMERIC_SUMMARY_KEYS and not _is_number(v)):
            continue
        if not _is_number(v):
            raise SummaryError(f"{where}: field '{key}' should be a number, found "
                               f"{type(v).__name__} ({str(v)[:40]!r})")
        if not math.isfinite(v) or abs(v) > MAX_ABS_VALUE:
            raise SummaryError(f"{where}: field '{key}' = {v!r} is not a plausible finite "
                               "value; the file is damaged")
    if _is_number(data.get("dt_s")) and not data["dt_s"] > 0:
        raise SummaryError(f"{where}: field 'dt_s' must be a positive step length [s], found "
                           f"{data['dt_s']!r}")
    for key in ("steps_done", "n_steps"):
        if isinstance(data.get(key), int) and data[key] < 0:
            raise SummaryError(f"{where}: field '{key}' is negative ({data[key]})")
    return data


def read_summary(run_dir: Path | str) -> dict[str, Any]:
    """Read and check ``RUN_DIR/summary.json`` (size cap, UTF-8, depth, types, finite KPIs).

    Raises
    ------
    SummaryError
        One paragraph naming the file and what is wrong.
    """
    p = Path(run_dir) / "summary.json"
    if not Path(run_dir).is_dir():
        raise SummaryError(f"{run_dir}: not a folder; give a run folder written by 'twin run'")
    if not p.is_file():
        raise SummaryError(f"{p}: not found; give a run folder written by 'twin run'")
    try:
        size = p.stat().st_size
        if size > SUMMARY_MAX_BYTES:
            raise SummaryError(f"{p}: {size} bytes is too big for a run summary (at most "
                               f"{SUMMARY_MAX_BYTES}); the file is not the twin's")
        with open(p, "rb") as fh:
            raw = fh.read(SUMMARY_MAX_BYTES + 1)
        data = json.loads(raw.decode("utf-8"))
    except SummaryError:
        raise
    except OSError as exc:
        raise SummaryError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SummaryError(f"{p}: not UTF-8 text (binary data); the file is damaged") from None
    except RecursionError:
        raise SummaryError(f"{p}: nested too deeply to be a run summary; the file is "
                           "damaged") from None
    except ValueError as exc:
        raise SummaryError(f"{p}: not valid JSON ({exc}); the file is damaged or was cut "
                           "short") from None
    return check_summary(data, p)


def check_columns(df: pd.DataFrame, columns: Sequence[str], where: Path | str) -> None:
    """Numeric, finite, plausible (|x| <= :data:`MAX_ABS_VALUE`) values in ``columns``.

    Raises
    ------
    SummaryError
        Naming the file and the first bad column.
    """
    for c in columns:
        s = df[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            raise SummaryError(f"{where}: column '{c}' should hold numbers, found {s.dtype}")
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v) | (np.abs(v) > MAX_ABS_VALUE)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SummaryError(f"{where}: column '{c}' holds {v[i]!r} at row {i} (not a "
                               "plausible finite value); the file is damaged")

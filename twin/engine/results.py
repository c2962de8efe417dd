"""Results of a run: per-step table, sessions, 24-hour profiles, summary KPIs (docs/spec.md §5).

This module assembles a run's results (:func:`build_results` in memory,
:func:`stream_results` with the per-step table left to be streamed to disk). The parts
live in their own modules, and every name is re-exported here, so
``from twin.engine.results import X`` keeps working:

* :mod:`twin.engine.tables`: the per-step table, the sessions, the daily profiles;
* :mod:`twin.engine.summary`: the summary KPIs;
* :mod:`twin.engine.run_folder`: writing the run folder atomically and reading it back.
"""

from __future__ import annotations

import pandas as pd

from twin.engine import RunOutput
from twin.engine.run_folder import (
    CSV_OUTPUT_FILES,
    MAX_ABS_VALUE,
    NUMERIC_SUMMARY_KEYS,
    OUTPUT_FILES,
    SUMMARY_MAX_BYTES,
    SUMMARY_TYPES,
    SummaryError,
    TableWriter,
    check_columns,
    check_output_dir,
    check_summary,
    iso_local,
    read_summary,
    write_csv,
    write_parquet,
    write_results,
)
from twin.engine.summary import (
    SATISFIED_TOL_KWH,
    VOLATILE_KEYS,
    SummaryColumns,
    TableLike,
    battery_summaries,
    build_summary,
    ev_shares,
    session_kpis,
)
from twin.engine.tables import (
    DEFAULT_CHUNK_ROWS,
    PROFILE_COLUMNS,
    SEED_COLUMNS,
    UNIT_COLUMN_KINDS,
    DailyProfileAccumulator,
    Results,
    StreamedResults,
    build_daily_profile,
    build_sessions,
    build_timeseries,
    chunk_bounds,
    iter_timeseries,
)


def build_results(out: RunOutput) -> Results:
    """All tables and the summary of a run, in memory (see :func:`stream_results` to write a
    long run without building its whole table)."""
    ts = build_timeseries(out)
    sessions = build_sessions(out)
    prof = build_daily_profile(ts) if len(ts) else pd.DataFrame()
    return Results(ts, sessions, prof, build_summary(out, ts, sessions))


def stream_results(out: RunOutput, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> StreamedResults:
    """Sessions and summary of a run, the per-step table left to be streamed to disk.

    The summary is built by :func:`build_summary` from the same column formulas as the
    table (:class:`SummaryColumns`), so its numbers equal :func:`build_results`'s.
    """
    sessions = build_sessions(out)
    summary = build_summary(out, SummaryColumns(out), sessions)
    return StreamedResults(out, sessions, summary, chunk_rows)


__all__ = [
    "CSV_OUTPUT_FILES",
    "DEFAULT_CHUNK_ROWS",
    "MAX_ABS_VALUE",
    "NUMERIC_SUMMARY_KEYS",
    "OUTPUT_FILES",
    "PROFILE_COLUMNS",
    "SATISFIED_TOL_KWH",
    "SEED_COLUMNS",
    "SUMMARY_MAX_BYTES",
    "SUMMARY_TYPES",
    "UNIT_COLUMN_KINDS",
    "VOLATILE_KEYS",
    "DailyProfileAccumulator",
    "Results",
    "StreamedResults",
    "SummaryColumns",
    "SummaryError",
    "TableLike",
    "TableWriter",
    "battery_summaries",
    "build_daily_profile",
    "build_results",
    "build_sessions",
    "build_summary",
    "build_timeseries",
    "check_columns",
    "check_output_dir",
    "check_summary",
    "chunk_bounds",
    "ev_shares",
    "iso_local",
    "iter_timeseries",
    "read_summary",
    "session_kpis",
    "stream_results",
    "write_csv",
    "write_parquet",
    "write_results",
]

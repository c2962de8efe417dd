"""Streamed results: the chunked per-step table, daily profile and files equal the in-memory ones."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from twin.config import load_scenario
from twin.engine import RunOutput, results, simulate, tables
from twin.engine.results import (
    VOLATILE_KEYS,
    build_daily_profile,
    build_results,
    build_timeseries,
    chunk_bounds,
    iter_timeseries,
    stream_results,
    write_results,
)


def _run(make_scenario: Any, site_dict: dict[str, Any], tz: str = "America/Lima",
         start: str = "2024-03-04T05:15:00", duration: str = "2d") -> RunOutput:
    site_dict["location"]["tz"] = tz
    return simulate(load_scenario(make_scenario(site_dict, start=start, duration=duration)))


def _stable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in VOLATILE_KEYS}


@pytest.fixture
def run(make_scenario: Any, site_dict: dict[str, Any]) -> RunOutput:
    # 2 days from 05:15 at 15 min: 192 steps, not a multiple of any chunk below, and the
    # first hour is partial
    return _run(make_scenario, site_dict)


@pytest.mark.parametrize("chunk_rows", [1, 7, 50, 100, 10_000])
def test_chunks_equal_the_whole_table(run: RunOutput, chunk_rows: int) -> None:
    whole = build_timeseries(run)
    parts = list(iter_timeseries(run, chunk_rows))
    assert len(parts) == len(chunk_bounds(run, chunk_rows))
    if chunk_rows < len(whole):
        assert len(parts) > 1
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole, check_exact=True)
    assert isinstance(whole["phase_name"].dtype, pd.CategoricalDtype)


def test_chunks_hold_whole_local_hours(run: RunOutput) -> None:
    bounds = chunk_bounds(run, 10)
    n = run.steps_done
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a < b for a, b in bounds)
    assert all(b1 == a2 for (_, b1), (a2, _) in itertools.pairwise(bounds))
    idx = run.inputs.index
    for a, _ in bounds[1:]:
        assert idx[a].floor("h") != idx[a - 1].floor("h"), a  # a cut between two hours
    # at most 10 rows of whole hours: the partial first hour (05:15-05:45, 3 rows) and one
    # more (4 rows), then two whole hours (8 rows) a chunk
    assert bounds[:3] == [(0, 7), (7, 15), (15, 23)]


def test_streamed_files_equal_in_memory_files(run: RunOutput, tmp_path: Path) -> None:
    a = write_results(build_results(run), tmp_path / "whole", csv=True)
    b = write_results(stream_results(run, chunk_rows=50), tmp_path / "chunked", csv=True)
    for f in ("timeseries.parquet", "sessions.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / f), pd.read_parquet(b / f),
                                      check_exact=True)
    assert pq.ParquetFile(b / "timeseries.parquet").num_row_groups > 1  # really chunked
    for f in ("daily_profile.csv", "timeseries.csv", "sessions.csv"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    assert _stable(sa) == _stable(sb)


def test_summary_from_columns_equals_summary_from_table(run: RunOutput) -> None:
    res = build_results(run)
    assert _stable(stream_results(run).summary) == _stable(res.summary)


@pytest.mark.parametrize(("tz", "start"), [
    ("Europe/Berlin", "2024-10-26T12:00:00"),    # clocks back 03:00 -> 02:00 (an hour twice)
    ("America/Santiago", "2024-04-06T12:00:00"),  # clocks back 24:00 -> 23:00
])
def test_daily_profile_across_a_clock_change(make_scenario: Any, site_dict: dict[str, Any],
                                             tmp_path: Path, tz: str, start: str) -> None:
    out = _run(make_scenario, site_dict, tz=tz, start=start, duration="1d")
    whole = build_timeseries(out)
    got = results.DailyProfileAccumulator()
    for part in iter_timeseries(out, 9):
        got.add(part)
    pd.testing.assert_frame_equal(got.result(), build_daily_profile(whole), check_exact=True)
    assert len(chunk_bounds(out, 9)) > 1


def test_local_time_running_back_to_an_earlier_hour_gives_one_chunk() -> None:
    """An hour that reopens after a later one (a clock set back across an hour boundary)
    would have its group split between chunks: the table is then one chunk."""
    t = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:30", "2024-01-01 01:00",
                          "2024-01-01 00:45", "2024-01-01 01:15", "2024-01-01 02:00"])
    fake = SimpleNamespace(steps_done=len(t), inputs=SimpleNamespace(index=t))
    assert chunk_bounds(fake, 1) == [(0, 6)]  # type: ignore[arg-type]
    forward = SimpleNamespace(steps_done=len(t), inputs=SimpleNamespace(index=t.sort_values()))
    assert chunk_bounds(forward, 1) == [(0, 3), (3, 5), (5, 6)]  # type: ignore[arg-type]


def test_long_runs_keep_phase_name_as_text(run: RunOutput, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Runs of 50,000+ steps carry ``phase_name`` as text (the layout of earlier files)."""
    monkeypatch.setattr(tables, "_PHASE_TEXT_MIN_STEPS", 10)  # where it is read
    whole = build_timeseries(run)
    assert not isinstance(whole["phase_name"].dtype, pd.CategoricalDtype)
    names = run.controller.phases
    assert list(whole["phase_name"]) == [names[int(p)] for p in whole["phase"]]
    pd.testing.assert_frame_equal(pd.concat(list(iter_timeseries(run, 7)), ignore_index=True),
                                  whole, check_exact=True)


def test_empty_run_writes_empty_tables(tmp_path: Path, run: RunOutput) -> None:
    empty = SimpleNamespace(**{**run.__dict__, "steps_done": 0, "interrupted": True})
    res = stream_results(empty)  # type: ignore[arg-type]
    out = write_results(res, tmp_path / "e")
    assert len(pd.read_parquet(out / "timeseries.parquet")) == 0
    assert res.summary["steps_done"] == 0
    assert np.isclose(res.summary["pv_kwh"], 0.0)

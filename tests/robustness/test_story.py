"""Red-team cases of "one story" (issue 21, points 4 and 5): session outcomes that must not
count as satisfied, damaged session tables reaching the report and the OpenMetrics export,
runs without sessions, comparisons where nothing differs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.app.export import families, load_run, load_sessions
from twin.app.table import kpi_table
from twin.kpi_catalogue import SESSION_OUTCOMES, outcome_counts, session_outcomes
from twin.report import compare
from twin.report.load import RunFolderError
from twin.report.load import load_run as load_report_run

ROOT = Path(__file__).resolve().parents[2]


def twin(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "twin", *args], cwd=ROOT, capture_output=True,
                          timeout=120)


def test_refused_or_turned_away_with_a_zero_request_is_never_satisfied() -> None:
    """A late rider refused at the gate asked for ~0 kWh and got 0: not satisfied (the old
    rule "delivered >= requested - 1 Wh" said it was)."""
    status = ["refused_closing", "turned_away", "refused_closing", "served", "served",
              "plugged", "waiting"]
    req = [0.0, 0.0, 0.0004, 5.0, 5.0, 5.0, 0.0]
    dl = [0.0, 0.0, 0.0, 5.0, 4.0, 5.0, 0.0]
    got = session_outcomes(status, req, dl).tolist()
    assert got == ["refused_closing", "turned_away", "refused_closing", "satisfied", "short",
                   "unfinished", "unfinished"]
    counts = outcome_counts(got)
    assert set(counts) == {o.key for o in SESSION_OUTCOMES}
    assert sum(counts.values()) == len(status)


def test_an_unknown_status_is_refused_not_counted() -> None:
    with pytest.raises(ValueError, match="unknown session status"):
        session_outcomes(["served", "teleported"], [1.0, 1.0], [1.0, 1.0])


def _damage_sessions(run: Path, tmp: Path, edit: str) -> Path:
    d = tmp / f"run_{edit}"
    shutil.copytree(run, d)
    p = d / "sessions.parquet"
    df = pd.read_parquet(p)
    if edit == "status":
        df["status"] = df["status"].astype(str)
        df.loc[0, "status"] = "teleported"
    elif edit == "no_leave":
        df = df.drop(columns=["leave"])
    elif edit == "socket_text":
        df["socket"] = "x"
    df.to_parquet(p, index=False)
    return d


@pytest.mark.parametrize("edit", ["status", "no_leave", "socket_text"])
def test_export_of_a_damaged_sessions_table_is_a_user_error(finished_run: Path, tmp_path: Path,
                                                            edit: str) -> None:
    d = _damage_sessions(finished_run, tmp_path, edit)
    out = tmp_path / "x.om"
    r = twin("export", "openmetrics", str(d), "-o", str(out))
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "sessions.parquet" in err and "Traceback" not in err, err
    assert not out.exists()


def test_report_of_an_unknown_status_names_the_file(finished_run: Path, tmp_path: Path) -> None:
    d = _damage_sessions(finished_run, tmp_path, "status")
    with pytest.raises(RunFolderError, match=r"sessions\.parquet.*status.*teleported"):
        load_report_run(d)


def test_export_without_sessions_or_with_none_still_fills_the_run_panels(
        finished_run: Path, tmp_path: Path) -> None:
    """No sessions table: no session counters (nothing to count from), but no crash; zero
    sessions: the counters exist at 0."""
    ts, summary = load_run(finished_run)
    sessions = load_sessions(finished_run)
    assert sessions is not None and len(sessions)
    none = {f.name for f in families(ts, summary, labels={}, dt_s=summary["dt_s"])}
    assert "twin_sim_steps_planned" in none and "twin_ev_sessions_arrived" not in none
    empty = {f.name: f for f in families(ts, summary, labels={}, dt_s=summary["dt_s"],
                                         sessions=sessions.iloc[0:0])}
    for name in ("arrived", "satisfied", "turned_away"):
        (_, v), = empty[f"twin_ev_sessions_{name}"].series
        assert len(v) == len(ts) and not v.any()


def test_hil_runs_get_no_made_up_comm_counters(finished_run: Path) -> None:
    """The in-process request model is not applied to a run against devices."""
    ts, summary = load_run(finished_run)
    fams = {f.name for f in families(ts, {**summary, "hil": {}}, labels={},
                                     dt_s=summary["dt_s"])}
    assert not any(n.startswith("twin_comm_") for n in fams)


def test_old_summary_counting_refused_as_satisfied_is_flagged(finished_run: Path,
                                                              tmp_path: Path) -> None:
    """A run folder written with the old rule (refused ~0 kWh counted satisfied): the
    report's story check names the difference instead of showing two numbers silently."""
    from twin.report.figures import session_story

    d = tmp_path / "old"
    shutil.copytree(finished_run, d)
    p = d / "summary.json"
    s = json.loads(p.read_text())
    s["sessions_satisfied"] += s["sessions_refused_closing"] + 1
    p.write_text(json.dumps(s))
    run = load_report_run(d)
    bad = session_story(run).mismatches(run.summary)
    assert bad and bad[0].startswith("sessions_satisfied:")
    assert "satisfied" in kpi_table(s)


def test_comparison_of_identical_runs_says_so(finished_run: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(finished_run, a)
    shutil.copytree(finished_run, b)
    runs = [load_report_run(a), load_report_run(b)]
    compare.label_runs(runs)
    differ, same = compare.kpi_panels(runs)
    assert differ == [] and same
    fig = compare.fig_kpi_bars(runs)
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "equal" in texts


@pytest.mark.parametrize("value", [6.61e-16, -6.61e-16, 1e-300, -0.0])
def test_float_crumbs_are_zero_in_the_comparison(value: float) -> None:
    from twin.kpi_catalogue import by_key

    for key in ("savings_bess_soles", "co2_avoided_bess_kg", "grid_import_kwh",
                "self_sufficiency", "sessions_satisfied"):
        row = by_key()[key]
        txt = compare.value_text(row, value, "PEN")
        assert not txt.startswith("-") and "e" not in txt.split()[0], (key, txt)
        assert compare.shown_value(row, value) == 0.0
    assert np.signbit(compare.shown_value(by_key()["savings_bess_soles"], -1e-16)) == 0

"""One story: the KPI table, ``summary.json`` and the report's EV figures count the same
sessions and energies (issue 21, point 4), and the comparison chart names runs and formats
values.

One week is simulated once (``twin run`` through :func:`twin.app.cli.main`); a second
run with another controller for the comparison is two days.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from twin.app.cli import main
from twin.app.table import kpi_table
from twin.kpi_catalogue import SESSION_OUTCOMES, by_key
from twin.report import build, compare
from twin.report.figures import fig_ev_daily, fig_ev_energy, session_story
from twin.report.load import load_run

ROOT = Path(__file__).resolve().parents[2]
WEEK = ROOT / "scenarios" / "week.yaml"
TWO_DAYS = ROOT / "tests" / "data" / "monitoring_2d.yaml"
OUTCOME_KEYS = [o.key for o in SESSION_OUTCOMES]


@pytest.fixture(scope="module")
def week_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("story") / "week"
    assert main(["run", str(WEEK), "--out", str(out), "-q"]) == 0
    return out


def table_numbers(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers of the printed KPI table, by summary key (in the shown unit)."""
    text = kpi_table(summary)
    out: dict[str, float] = {}
    for row in by_key().values():
        m = re.search(rf"^  {re.escape(row.table_label)}\s+(-?[\d,.]+)", text, re.M)
        if m and "table" in row.views:
            out[row.key] = float(m.group(1).replace(",", ""))
    return out


def figure_texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def test_table_summary_and_figure_18_count_the_same_sessions(week_run: Path) -> None:
    summary = json.loads((week_run / "summary.json").read_text())
    run = load_run(week_run)
    story = session_story(run)  # the data of figures 18 and 19
    table = table_numbers(summary)
    total = summary["sessions_total"]
    # the week has every kind of outcome the fleet produces, so the check is not vacuous
    for key in ("sessions_satisfied", "sessions_satisfied_reduced", "sessions_short",
                "sessions_refused_closing", "sessions_turned_away"):
        assert summary[key] > 0, key
    # satisfied-reduced: exactly the late riders whose request was cut and who got it
    sess = run.sessions
    cut = sess["e_req_orig_kwh"].to_numpy() > sess["e_req_kwh"].to_numpy() + 1e-3
    got = sess["e_delivered_kwh"].to_numpy() >= sess["e_req_kwh"].to_numpy() - 1e-3
    served = (sess["status"] == "served").to_numpy()
    assert int((cut & got & served).sum()) == summary["sessions_satisfied_reduced"]
    assert (sess["e_req_orig_kwh"].to_numpy() >= sess["e_req_kwh"].to_numpy()).all()
    assert story.total == total == int(table["sessions_total"]) == len(run.sessions)
    for key in OUTCOME_KEYS:
        assert story.counts[key] == summary[key] == int(table[key]), key
    assert sum(summary[k] for k in OUTCOME_KEYS) == total
    assert sum(story.counts.values()) == story.total
    assert table["sessions_satisfied_share"] == pytest.approx(
        round(story.satisfied_share * 100, 2), abs=0.006)
    assert summary["sessions_satisfied_share"] == pytest.approx(story.satisfied_share, rel=1e-12)
    # one "requested": what all arrivals asked for
    assert summary["ev_energy_requested_kwh"] == pytest.approx(story.e_requested_kwh, rel=1e-12)
    assert table["ev_energy_requested_kwh"] == pytest.approx(
        round(story.e_requested_kwh / 1e3, 2), abs=0.006)
    assert summary["ev_energy_delivered_kwh"] == pytest.approx(story.e_delivered_kwh,
                                                               rel=1e-12)
    assert story.mismatches(summary) == []
    # the figures print these very counts
    t18 = figure_texts(fig_ev_energy(run))
    for key in OUTCOME_KEYS:
        n = story.counts[key]
        assert f"{n:,} ({n / total * 100:.1f} %)" in t18, key
    assert f"{story.satisfied_share * 100:.1f} % of {total:,} arrivals satisfied" in t18
    assert f"{story.e_requested_kwh / 1e3:,.1f} MWh requested by all arrivals" in t18
    t19 = figure_texts(fig_ev_daily(run))
    assert f"{summary['sessions_turned_away']:,} turned away and " \
           f"{summary['sessions_refused_closing']:,} refused" in t19
    # no refused or turned-away session is satisfied, whatever it asked for
    s = run.sessions
    assert not (s["satisfied"] & s["status"].isin(["refused_closing", "turned_away"])).any()


def test_a_broken_count_is_caught_and_shown_on_the_report(week_run: Path,
                                                          tmp_path: Path) -> None:
    """A summary whose count is off by one (as one written with another definition) is
    found by the same check, and the report says so in its banner."""
    run_dir = tmp_path / "run"
    shutil.copytree(week_run, run_dir)
    p = run_dir / "summary.json"
    summary = json.loads(p.read_text())
    summary["sessions_satisfied"] += 1
    p.write_text(json.dumps(summary))
    run = load_run(run_dir)
    bad = session_story(run).mismatches(run.summary)
    assert any(b.startswith("sessions_satisfied:") for b in bad), bad
    assert any("outcome counts sum to" in b for b in bad), bad
    warnings = build._run_warnings(run)
    assert any("disagree on the EV sessions" in w and "sessions_satisfied" in w
               for w in warnings), warnings


def test_comparison_chart_names_runs_formats_values_and_shows_what_differs(
        week_run: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "six_phase", tmp_path / "no_bess"
    assert main(["run", str(TWO_DAYS), "--out", str(a), "-q"]) == 0
    assert main(["run", str(TWO_DAYS), "--out", str(b), "-q", "--controller", "no_bess"]) == 0
    runs = [load_run(a), load_run(b)]
    compare.label_runs(runs)
    differ, same = compare.kpi_panels(runs)
    keys = [k.key for k in differ]
    assert keys and len(keys) <= compare.MAX_KPI_PANELS
    for k in differ:  # every panel differs in its shown value
        assert len({compare.shown_value(k, r.summary[k.key]) for r in runs}) == 2, k.key
    for k in same:
        assert len({compare.shown_value(k, r.summary[k.key]) for r in runs}) == 1, k.key
    assert "cost_grid_import_soles" in keys
    fig = compare.fig_kpi_bars(runs)
    texts = figure_texts(fig)
    assert not re.search(r"\d[eE][-+]\d", texts), texts  # no 6.61e-16
    for ax in fig.axes:
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        if ax.axison and ticks:
            assert [t.replace("\n", " ") for t in ticks] == [r.label for r in runs]
    cur = runs[0].summary["currency"]
    assert f"k{cur}" in texts


def test_tiny_values_are_shown_as_zero_with_their_unit() -> None:
    row = by_key()["savings_bess_soles"]
    assert compare.shown_value(row, 6.61e-16) == 0.0
    assert compare.value_text(row, 6.61e-16, "PEN") == "0.0 kPEN"
    assert compare.value_text(row, -1e-12, "PEN") == "0.0 kPEN"  # never "-0.0"
    assert compare.value_text(by_key()["sessions_satisfied"], 2117.0, "PEN") == "2,117"
    assert compare.value_text(by_key()["grid_import_kwh"], 149_321.0, "PEN") == "149.3 MWh"
    assert np.isfinite(compare.shown_value(row, 1e9))

"""The KPI catalogue is the one list of KPIs: the summary, the terminal table, the report,
the trials and the wall-clock keys all follow it (issue 17, point 1)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.conftest import day_scenario
from twin import kpi_catalogue
from twin.app.table import kpi_table
from twin.config import load_scenario, parse_set
from twin.engine import Twin
from twin.engine.results import NUMERIC_SUMMARY_KEYS, VOLATILE_KEYS, build_results
from twin.kpi_catalogue import Kpi, rows
from twin.monitoring.catalogue import CATALOGUE as METRICS
from twin.report.kpis import kpi_table as report_table
from twin.trials.ab import default_kpis
from twin.trials.runner import WALL_KEYS, numeric_kpis


def _summary(folder: Path) -> dict[str, Any]:
    """The summary of the one-day scenario with an import limit (so every key is a number)."""
    scn = load_scenario(day_scenario(folder), parse_set(["grid.import_limit_kw=1500"]))
    return build_results(Twin(scn).run()).summary


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two runs of the same scenario and seed."""
    return (_summary(tmp_path_factory.mktemp("a")), _summary(tmp_path_factory.mktemp("b")))


def _numbers(summary: dict[str, Any]) -> set[str]:
    return {k for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def test_every_number_of_the_summary_is_a_catalogue_row(summaries: Any) -> None:
    s = summaries[0]
    written = _numbers(s)
    assert written - kpi_catalogue.summary_keys() == set(), "summary keys missing from the catalogue"
    # and no stale row: every ``summary`` row is written by build_summary
    assert kpi_catalogue.summary_keys() - written == set(), "catalogue rows build_summary never writes"
    assert kpi_catalogue.summary_keys() == NUMERIC_SUMMARY_KEYS
    # the trial runner's derived KPIs are rows too
    assert set(numeric_kpis(s)) <= set(kpi_catalogue.by_key())


def test_wall_clock_keys_are_the_volatile_rows(summaries: Any) -> None:
    a, b = summaries
    differ = {k for k in _numbers(a) if a[k] != b[k]}
    assert differ, "two runs should differ at least in their wall times"
    assert differ <= kpi_catalogue.volatile_keys()
    assert VOLATILE_KEYS == WALL_KEYS == kpi_catalogue.volatile_keys()
    assert {k: v for k, v in a.items() if k not in VOLATILE_KEYS and k != "scenario_file"} == \
        {k: v for k, v in b.items() if k not in VOLATILE_KEYS and k != "scenario_file"}


def _table_labels(text: str) -> list[str]:
    return [re.split(r"\s{2,}", line.strip())[0] for line in text.splitlines()[1:]]


def test_every_table_row_is_in_the_terminal_table(summaries: Any) -> None:
    labels = _table_labels(kpi_table(summaries[0]))
    assert labels == [r.table_label.strip() for r in rows("table")]


def test_every_report_row_is_in_the_report(summaries: Any) -> None:
    html = report_table([summaries[0]])
    shown = re.findall(r'data-key="([^"]+)"', html)
    assert [k for k in shown if not k.startswith("phase_hours.")] == [r.key for r in rows("report")]
    for r in rows("report"):
        assert f"<td>{r.label}</td>" in html


def test_every_trials_row_is_a_trials_kpi() -> None:
    kpis = default_kpis("PEN")
    assert [k.key for k in kpis] == [r.key for r in rows("trials")]
    assert len(kpis) >= 10
    assert {k.key: k.lower_is_better for k in kpis}["cost_grid_import_soles"] is True


def test_metric_links_name_metrics_of_the_metric_catalogue() -> None:
    names = {m.name for m in METRICS}
    linked = rows("metrics")
    assert linked and all(r.metric in names for r in linked), \
        [r.metric for r in linked if r.metric not in names]


def test_currency_comes_from_the_summary(summaries: Any) -> None:
    s = {**summaries[0], "currency": "USD"}
    table = kpi_table(s)
    assert "kUSD" in table and "PEN" not in table
    html = report_table([s])
    assert ">kUSD<" in html and "PEN" not in html
    units = {k.key: k.unit for k in default_kpis("USD")}
    assert units["cost_grid_import_soles"] == "USD"
    assert "PEN" not in units.values()


def test_adding_a_kpi_is_one_row(summaries: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Kpi("fake_widget_cost", "Fake widget cost", "{cur}", "Cost",
               frozenset({"table", "report", "trials"}), "k{cur}", 1e-3, ",.1f",
               better="lower", short="Fake widgets", name="fake widgets",
               metric="twin_grid_cost")
    monkeypatch.setattr(kpi_catalogue, "CATALOGUE", (*kpi_catalogue.CATALOGUE, fake))
    s = {**summaries[0], "fake_widget_cost": 12345.0, "currency": "XYZ"}
    assert re.search(r"^  Fake widgets +12\.35 kXYZ$", kpi_table(s), re.M)
    html = report_table([s])
    assert '<td>Fake widget cost</td><td class="num" data-key="fake_widget_cost"' in html
    assert ">12.3</td>" in html
    kpis = {k.key: k for k in default_kpis("XYZ")}
    assert kpis["fake_widget_cost"].label == "fake widgets"
    assert kpis["fake_widget_cost"].unit == "XYZ"
    assert kpis["fake_widget_cost"].lower_is_better is True
    assert fake in rows("metrics")


def test_a_row_must_name_known_views() -> None:
    with pytest.raises(ValueError, match="unknown view"):
        Kpi("x", "X", "", "S", frozenset({"tabel"}))
    with pytest.raises(ValueError, match="names no metric"):
        Kpi("x", "X", "", "S", frozenset({"metrics"}))


def test_rows_needing_a_limit_are_hidden_without_one(summaries: Any) -> None:
    s = {**summaries[0], "import_limit_kw": None}
    needy = [r for r in kpi_catalogue.CATALOGUE if r.requires == "import_limit_kw"]
    assert needy
    table, html = kpi_table(s), report_table([s])
    for r in needy:
        assert r.table_label not in table
        assert f'data-key="{r.key}"' not in html

"""The HTML report reads the site (issue 17, point 4): tariff period names, prices and
currency, the most expensive period shaded, vehicle classes in the site file's order with
a stable colour per class. Nothing of the Iquitos site leaks into another site's report,
and the Iquitos report keeps its own names (HP / HFP, PEN, moto / mototaxi)."""

from __future__ import annotations

import dataclasses
import html as html_mod
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from tests.conftest import ROOT, write_yaml
from twin.app.cli import main
from twin.kpi_catalogue import BATTERY_CATALOGUE
from twin.report.build import build_report
from twin.report.figures import (
    FIGURES,
    VEHICLE_PALETTE,
    fig_bess_week,
    fig_ev_arrivals,
    fig_profile_5days,
    fig_tariff_cost,
)
from twin.report.load import RunData, load_run
from twin.report.style import HP_SHADE, report_style

NAIROBI = ROOT / "config" / "sites" / "nairobi_mall.yaml"
IQUITOS = ROOT / "config" / "site.yaml"
THREE = ROOT / "config" / "sites" / "three_classes.yaml"


def _run(tmp: Path, site: Path, duration: str = "2d") -> Path:
    scn = write_yaml(tmp / "scenario.yaml", {
        "name": f"{site.stem}_{duration}", "site": str(site), "start": "2024-03-04T00:00:00",
        "duration": duration, "dt": "15min", "seed": 1, "controller": "six_phase"})
    out = tmp / "run"
    assert main(["run", str(scn), "--out", str(out), "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def nairobi(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    return load_run(_run(tmp_path_factory.mktemp("nairobi"), NAIROBI))


@pytest.fixture(scope="module")
def iquitos(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    return load_run(_run(tmp_path_factory.mktemp("iquitos"), IQUITOS))


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    return load_run(_run(tmp_path_factory.mktemp("three"), THREE, "1d"))


def _texts(fig: Figure) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _shaded_spans(fig: Figure) -> int:
    """Patches of the first axes drawn in the peak shading colour."""
    return sum(1 for p in fig.axes[0].patches if p.get_facecolor() == to_rgba(HP_SHADE))


def _runs_of(mask: np.ndarray) -> int:
    """Contiguous runs of True in ``mask``."""
    return int(np.count_nonzero(np.diff(np.concatenate([[0], mask.astype(int)])) == 1))


def _visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html_mod.unescape(re.sub(r"<[^>]+>", " ", page))  # tags and their attributes out


def test_nairobi_report_shows_its_periods_and_currency(nairobi: RunData, tmp_path: Path) -> None:
    res = build_report([nairobi.path], tmp_path / "report")
    page = res.html.read_text()
    _check_battery_table(page, nairobi.summary)
    text = _visible_text(page)
    assert "Grid energy cost at the peak/shoulder/offpeak tariff" in text
    assert "KES" in text
    for word in ("HP", "HFP", "PEN", "soles", "Lima", "moto", "mototaxi"):
        assert not re.search(rf"\b{word}\b", text), word


def test_nairobi_figures_shade_and_name_the_most_expensive_period(nairobi: RunData) -> None:
    assert nairobi.tariff_prices == {"peak": 30.0, "shoulder": 22.0, "offpeak": 12.0}
    assert nairobi.peak_tariff_periods == ["peak"]
    ts = nairobi.ts
    peak = (ts["tariff_period"] == "peak").to_numpy()
    assert peak.any()
    with report_style():
        for draw in (fig_profile_5days, fig_bess_week):
            fig = draw(nairobi)
            assert "Peak tariff (peak)" in _texts(fig), draw.__name__
            assert not [t for t in _texts(fig) if re.search(r"\bHP\b", t)], draw.__name__
            assert _shaded_spans(fig) == _runs_of(peak) > 0, draw.__name__
        title = [t for t in _texts(fig_tariff_cost(nairobi)) if "/kWh" in t]
    assert len(title) == 1 and title[0].startswith("peak 30 / shoulder 22 / offpeak 12 KES/kWh · ")


def test_iquitos_report_keeps_its_names(iquitos: RunData) -> None:
    """The default site: the same words as before (HP / HFP come from its site file)."""
    assert iquitos.tariff_prices == {"HP": 0.45, "HFP": 0.28}
    hp = (iquitos.ts["tariff_period"] == "HP").to_numpy()
    with report_style():
        fig = fig_profile_5days(iquitos)
        assert "Peak tariff (HP)" in _texts(fig)
        assert _shaded_spans(fig) == _runs_of(hp) > 0
        title = [t for t in _texts(fig_tariff_cost(iquitos)) if "/kWh" in t]
    assert title[0].startswith("HP 0.45 / HFP 0.28 PEN/kWh · ")
    (spec,) = [f for f in FIGURES if f.stem == "14_tariff_cost"]
    assert spec.caption_for(iquitos).startswith("Grid energy cost at the HP/HFP tariff; ")


def test_older_summary_without_tariff_bill_names_hp_and_hfp(iquitos: RunData) -> None:
    """A run written before ``tariff_bill``: the two periods of ``osinergmin_tariff``."""
    summ = {k: v for k, v in iquitos.summary.items() if k != "tariff_bill"}
    old = dataclasses.replace(iquitos, summary=summ)
    # in the site's order (HP first), not in order of appearance (the run starts off-peak)
    assert list(old.tariff_prices.items()) == [("HP", 0.45), ("HFP", 0.28)]
    assert old.ts["tariff_period"].iloc[0] == "HFP" and old.peak_tariff_periods == ["HP"]


def _bars(fig: Figure) -> dict[str, tuple[float, ...]]:
    """Label -> face colour of the arrival figure's bar layers."""
    ax = fig.axes[0]
    return {c.get_label(): tuple(c.patches[0].get_facecolor()) for c in ax.containers}


def test_arrival_figure_follows_the_site_class_order(three: RunData) -> None:
    """Classes in the site file's order (moto, mototaxi, car: not alphabetical), class i in
    colour i."""
    assert three.vehicle_classes == ["moto", "mototaxi", "car"]
    with report_style():
        fig = fig_ev_arrivals(three)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    classes = ["moto", "mototaxi", "car"]
    assert [t for t in legend if t in classes] == classes
    bars = _bars(fig)
    assert list(bars) == classes  # stacked bottom to top in the site's order
    for i, c in enumerate(["moto", "mototaxi", "car"]):
        assert bars[c] == to_rgba(VEHICLE_PALETTE[i]), c


def test_arrival_colours_stay_when_a_class_has_no_session(three: RunData) -> None:
    """A run in which no moto arrived: mototaxi and car keep their colours."""
    s = three.sessions[three.sessions["vehicle_type"] != "moto"].reset_index(drop=True)
    assert len(s) and s["vehicle_type"].cat.categories.tolist() == ["moto", "mototaxi", "car"]
    run = dataclasses.replace(three, sessions=s)
    with report_style():
        bars = _bars(fig_ev_arrivals(run))
    assert bars["mototaxi"] == to_rgba(VEHICLE_PALETTE[1])
    assert bars["car"] == to_rgba(VEHICLE_PALETTE[2])


def test_csv_sessions_keep_the_classes_in_order_of_arrival(three: RunData, tmp_path: Path) -> None:
    """A run folder with CSV tables only (no categorical dtype): classes in order of first
    arrival, still one colour each."""
    from twin.report.load import read_sessions

    run_dir = tmp_path / "csv"
    run_dir.mkdir()
    pd.read_parquet(three.path / "sessions.parquet").to_csv(run_dir / "sessions.csv", index=False)
    df, _ = read_sessions(run_dir, {})
    first = list(dict.fromkeys(df["vehicle_type"].astype(str).tolist()))
    assert df["vehicle_type"].cat.categories.tolist() == first
    assert sorted(first) == ["car", "moto", "mototaxi"]


def _check_battery_table(page: str, summary: dict[str, Any]) -> None:
    """The "Per battery" table: one column per battery of ``summary["batteries"]``, every
    report row of the battery catalogue, each cell showing the summary's value."""
    m = re.search(r'<table class="kpi" id="battery-table">(.*?)</table>', page, flags=re.S)
    assert m, "no per-battery table"
    table = m.group(1)
    units = summary["batteries"]
    assert re.findall(r"<th>([^<]*)</th>", table)[1:-1] == [u["name"] for u in units]
    cells = re.findall(r'data-key="batteries\.(\d+)\.(\w+)" data-value="([^"]+)" '
                       r'data-scale="([^"]+)" data-format="([^"]+)">([^<]*)</td>', table)
    rows = [k for k in BATTERY_CATALOGUE if "report" in k.views
            and any(isinstance(u.get(k.key), int | float) for u in units)]
    assert len(cells) == len(rows) * len(units) > 0
    for i, key, raw, scale, fmt, shown in cells:
        want = units[int(i)][key]
        assert float(raw) == want, (key, i)
        assert html_mod.unescape(shown) == format(want * float(scale), html_mod.unescape(fmt))


def test_every_per_battery_number_is_a_battery_catalogue_row(nairobi: RunData,
                                                             iquitos: RunData) -> None:
    """One source of truth: each number of ``summary["batteries"]`` has its row, and each
    row's metric is a per-battery family of the metric catalogue."""
    from twin.monitoring.catalogue import BY_NAME
    from twin.report.kpis import battery_table

    keys = {k.key for k in BATTERY_CATALOGUE}
    for u in nairobi.summary["batteries"]:
        numbers = {k for k, v in u.items() if isinstance(v, int | float) or v is None}
        assert numbers - keys == set(), numbers - keys
    for k in BATTERY_CATALOGUE:
        if k.metric is not None:
            assert "battery" in BY_NAME[k.metric].labels, k.metric
    assert battery_table(iquitos.summary) == ""  # one battery: no per-battery table

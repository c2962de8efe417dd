"""The second example site (issue 17, point 4): Nairobi, KES, a three-period tariff, three
vehicle classes and two batteries, through ``twin run`` and ``twin report``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from tests.conftest import ROOT, SCENARIOS
from twin.app.cli import main
from twin.config import load_scenario

NAIROBI = ROOT / "config" / "sites" / "nairobi_mall.yaml"


def test_nairobi_scenario_names_the_site() -> None:
    scn = load_scenario(SCENARIOS / "nairobi_week.yaml")
    assert scn.site.location.tz == "Africa/Nairobi" and scn.site.tariff.currency == "KES"
    assert scn.site.ev.class_names == ("boda", "car", "matatu")
    assert len(scn.site.batteries) == 2


def test_nairobi_runs_and_reports_in_its_zone_and_currency(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(SCENARIOS / "nairobi_week.yaml"), "--set", "duration=2d",
                 "--out", str(out), "-q"]) == 0
    ts = pd.read_parquet(out / "timeseries.parquet")
    stamps = pd.DatetimeIndex(ts["timestamp"])
    assert str(stamps.tz) == "Africa/Nairobi"
    assert stamps[0].utcoffset() == pd.Timedelta(hours=3)
    # the three periods at their local hours (Monday 2024-03-04)
    hour = stamps.hour
    assert set(ts.loc[hour == 3, "tariff_period"]) == {"offpeak"}
    assert set(ts.loc[hour == 12, "tariff_period"]) == {"shoulder"}
    assert set(ts.loc[hour == 19, "tariff_period"]) == {"peak"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["currency"] == "KES"
    assert [b["name"] for b in summary["batteries"]] == ["lfp_main", "nmc_second_life"]
    s = pd.read_parquet(out / "sessions.parquet")
    assert s["vehicle_type"].cat.categories.tolist() == ["boda", "car", "matatu"]
    assert (s.loc[s["vehicle_type"] == "matatu", "p_max_kw"] > 11.0).any()  # 22 kW sockets
    assert main(["report", str(out), "-q"]) == 0
    html = re.sub(r'data:[^"]*', "", (out / "report" / "report.html").read_text())  # no images
    assert "KES" in html and not re.search(r"\bPEN\b", html)


def test_nairobi_ab_two_seeds(tmp_path: Path) -> None:
    """``twin ab`` on the second site: two controllers × two seeds, costs in KES."""
    out = tmp_path / "ab"
    assert main(["ab", str(SCENARIOS / "nairobi_week.yaml"), "--controllers", "six_phase,no_bess",
                 "--seeds", "2", "--set", "duration=2d", "--out", str(out), "-q"]) == 0
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 4
    md = (out / "ab_summary.md").read_text()
    assert "currency: KES" in md and "[kKES]" in md and "+03:00" in md

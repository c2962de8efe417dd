"""Time zone from the site: a site elsewhere is labelled with its own zone (issue 17)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from twin.config import load_scenario
from twin.engine import Twin, get_controller
from twin.engine.results import build_results, write_results
from twin.report.figures import fig_profile_5days
from twin.report.load import load_run

ROOT = Path(__file__).resolve().parents[2]


def test_profile_axis_names_the_site_time_zone(tmp_path: Path) -> None:
    scn = load_scenario(ROOT / "scenarios" / "week.yaml",
                        {"duration": "1d", "location.tz": "Africa/Nairobi"})
    res = build_results(Twin(scn, get_controller(scn, "six_phase")).run())
    out = write_results(res, tmp_path / "run")
    fig = fig_profile_5days(load_run(out))
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert "Local time (Africa/Nairobi)" in labels, labels
    assert not any("Lima" in x for x in labels)

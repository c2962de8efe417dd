"""``twin report``: what a user checks on the figures, the HTML page and the error messages.

One week is simulated once per module (``twin run`` through :func:`twin.app.cli.main`) and
reported once; the other tests work on copies of that run folder.  The tests sharing the
report fixture are marked slow (building it takes about 20 s); CI runs them all.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from twin.app.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
WEEK = ROOT / "scenarios" / "week.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_FIGURES = 16


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def week_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-week run folder (seed 1), written by ``twin run``."""
    out = tmp_path_factory.mktemp("runs") / "week_seed1"
    assert main(["run", str(WEEK), "--out", str(out), "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def week_report(week_run: Path) -> Path:
    """The report of :func:`week_run`, in its default place ``RUN_DIR/report``."""
    assert main(["report", str(week_run), "-q"]) == 0
    return week_run / "report"


@pytest.fixture
def run_copy(week_run: Path, tmp_path: Path) -> Path:
    """A private copy of the week run (without its report), free to damage."""
    dst = tmp_path / "run"
    shutil.copytree(week_run, dst, ignore=shutil.ignore_patterns("report"))
    return dst


class _Page(HTMLParser):
    """Collects the ``<img src>`` values and the KPI/run table cells of the report."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.cells: list[dict[str, Any]] = []
        self._cell: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        if tag in ("link", "script", "a", "iframe") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src") or "")
        if tag == "td" and "data-key" in a:
            self._cell = {**a, "text": ""}

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None


def parse_page(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def lookup(summary: dict[str, Any], dotted: str) -> Any:
    cur: Any = summary
    for part in dotted.split("."):
        cur = cur[part]
    return cur


def check_number_cells(cells: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> int:
    """Every number cell shows its summary value; returns how many were checked."""
    n = 0
    for c in cells:
        if "data-format" not in c:
            continue
        summary = summaries[int(c.get("data-run") or 0)]
        raw = lookup(summary, c["data-key"])
        assert float(c["data-value"]) == raw, c
        scale = float(c["data-scale"])
        shown = c["text"].strip()
        # the displayed text is exactly the summary value, scaled and formatted
        assert shown == format(raw * scale, c["data-format"]), (c, raw)
        # and, read back as a number, agrees with it to the printed precision
        back = float(shown.replace(",", ""))
        mantissa, _, exponent = shown.replace(",", "").partition("e")
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        tol = 0.51 * 10.0 ** (int(exponent or 0) - decimals)
        assert abs(back - raw * scale) <= tol, (c, raw)
        n += 1
    return n


# ---------------------------------------------------------------- one run


def test_report_command_is_registered() -> None:
    assert "report" in build_parser().format_help()


@pytest.mark.slow  # shares the ~20 s week report fixture
def test_single_run_writes_pngs_and_html(week_report: Path, week_run: Path) -> None:
    pngs = sorted(week_report.glob("*.png"))
    assert len(pngs) >= MIN_FIGURES
    for p in pngs:
        assert p.read_bytes()[:8] == PNG_MAGIC, p
        h, w = mpimg.imread(p).shape[:2]
        assert w >= 800 and h >= 400, (p, w, h)  # readable at 100 % zoom
    assert (week_report / "report.html").stat().st_size > 100_000
    # written atomically: no temporary folder left beside the report
    assert not [p for p in week_run.iterdir() if p.name.startswith(".report.")]


@pytest.mark.slow  # shares the ~20 s week report fixture
def test_every_image_is_an_embedded_png(week_report: Path) -> None:
    page = parse_page(week_report / "report.html")
    assert len(page.imgs) >= MIN_FIGURES
    assert len(page.imgs) == len(list(week_report.glob("*.png")))
    for src in page.imgs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == PNG_MAGIC
        assert mpimg.imread(io.BytesIO(png)).shape[0] > 100
    # self-contained: nothing to fetch from the network
    assert not [u for u in page.links if u.startswith(("http:", "https:", "//"))]
    text = (week_report / "report.html").read_text(encoding="utf-8")
    assert "src=\"http" not in text and "url(http" not in text


@pytest.mark.slow  # shares the ~20 s week report fixture
def test_kpi_table_numbers_equal_summary(week_report: Path, week_run: Path) -> None:
    summary = json.loads((week_run / "summary.json").read_text())
    page = parse_page(week_report / "report.html")
    n = check_number_cells(page.cells, [summary])
    assert n >= 40
    keys = {c["data-key"] for c in page.cells}
    for k in ("pv_kwh", "ev_kwh", "grid_import_kwh", "self_sufficiency", "pv_self_consumption",
              "ev_coverage", "efc_usable_per_day", "cost_pv_only_soles", "cost_grid_import_soles",
              "savings_bess_soles", "co2_emissions_kg", "co2_avoided_kg",
              "co2_avoided_bess_kg", "co2_avoided_bess_seed_formula_kg", "peak_grid_import_kw",
              "sessions_total", "co2_reduction_percent_bess",
              "sessions_turned_away"):
        assert k in keys, k
    for key in summary["phase_hours"]:
        assert f"phase_hours.{key}" in keys
    # the run identity is shown as written in summary.json
    ident = {c["data-key"]: c["text"] for c in page.cells if "data-format" not in c}
    for k in ("scenario", "controller", "seed", "start", "site"):
        assert ident[k] == str(summary[k])


@pytest.mark.slow  # shares the ~20 s week report fixture
def test_chromium_renders_a_non_blank_page(week_report: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: run 'bash scripts/sysdeps.sh' (make test does)"
    shot = tmp_path / "shot.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1400,3000",
           (week_report / "report.html").resolve().as_uri()]
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env,
                          check=False)
    assert shot.exists(), proc.stderr[-2000:]
    img = mpimg.imread(shot)
    assert img.shape[0] == 3000 and img.shape[1] == 1400
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb[:: 7], axis=0)
    assert len(colours) > 200, len(colours)  # text, tables and figures, not a blank page
    not_white = (rgb.min(axis=1) < 235).mean()
    assert not_white > 0.06, not_white  # a long KPI table is mostly white rows (0.080 on the week)


# ---------------------------------------------------------------- broken inputs


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _drop_column(path: Path) -> None:
    pd.read_parquet(path).drop(columns=["pv_kwh"]).to_parquet(path, index=False)


BREAKAGES = {
    "summary_deleted": ("summary.json", lambda d: (d / "summary.json").unlink(), "not found"),
    "summary_not_json": ("summary.json",
                         lambda d: (d / "summary.json").write_text('{"pv_kwh": 1,'), "JSON"),
    "timeseries_truncated": ("timeseries.parquet", lambda d: _truncate(d / "timeseries.parquet"),
                             "damaged"),
    "timeseries_missing_column": ("timeseries.parquet",
                                  lambda d: _drop_column(d / "timeseries.parquet"), "pv_kwh"),
    "sessions_empty_file": ("sessions.parquet",
                            lambda d: (d / "sessions.parquet").write_bytes(b""), "empty"),
    "daily_profile_deleted": ("daily_profile.csv",
                              lambda d: (d / "daily_profile.csv").unlink(), "not found"),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_broken_run_folder_exits_2_naming_the_file(case: str, run_copy: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fname, damage, what = BREAKAGES[case]
    damage(run_copy)
    rc = main(["report", str(run_copy)])
    err = capsys.readouterr().err
    assert rc == 2
    assert fname in err and what in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one paragraph
    # nothing half-written
    assert not (run_copy / "report").exists()
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".report.")]


def test_missing_run_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_run"
    assert main(["report", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "no such folder" in err
    assert not missing.exists()


def test_foreign_output_folder_is_left_alone(run_copy: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert main(["report", str(run_copy), "--out", str(foreign)]) == 2
    assert "not a report folder" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]
    # nor may a report replace the run folder itself
    assert main(["report", str(run_copy), "--out", str(run_copy)]) == 2
    assert (run_copy / "summary.json").exists()


# ---------------------------------------------------------------- several runs


@pytest.fixture(scope="module")
def week_run_seed2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs2") / "week_seed2"
    assert main(["run", str(WEEK), "--out", str(out), "--set", "seed=2", "-q"]) == 0
    return out


def test_comparison_of_two_seeds(week_run: Path, week_run_seed2: Path) -> None:
    assert main(["report", str(week_run), str(week_run_seed2), "-q"]) == 0
    # default output folder for several runs: beside the first, named after the runs
    out = week_run.parent / f"compare_{week_run.name}_{week_run_seed2.name}"
    stems = {p.stem for p in out.glob("*.png")}
    for s in ("c01_kpi_bars", "c02_daily_cost_difference", "c03_soc_overlay"):
        assert s in stems
    page = parse_page(out / "report.html")
    assert len(page.imgs) == len(stems) and all(
        s.startswith("data:image/png;base64,") for s in page.imgs)
    sums = [json.loads((d / "summary.json").read_text()) for d in (week_run, week_run_seed2)]
    assert check_number_cells(page.cells, sums) >= 80
    assert {c.get("data-run") for c in page.cells if "data-format" in c} == {"0", "1"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "seed 1" in html and "seed 2" in html  # runs told apart in legends and tables


def test_runs_of_different_sites_are_refused(run_copy: Path, week_run: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    s = json.loads((run_copy / "summary.json").read_text())
    s["site"] = "Another mall"
    (run_copy / "summary.json").write_text(json.dumps(s))
    out = tmp_path / "cmp"
    assert main(["report", str(week_run), str(run_copy), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot be compared" in err and "site" in err and "Another mall" in err
    assert not out.exists()

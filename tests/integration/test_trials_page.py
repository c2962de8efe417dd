"""The A/B trial page (``ab.html``): readable numbers, a verdict per KPI, Holm p-values,
small-sample warnings, and a page that fits 1,400 px in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from twin.app.cli import main
from twin.report.trials import ab_page
from twin.trials.ab import card_data, default_kpis, summarize, trials_frame

CTRLS = ["six_phase", "optimal", "no_bess"]
#: Annual-scale KPI means per controller (six_phase, optimal, no_bess), as in the README.
BASE = {
    "cost_grid_import_soles": (2.661e6, 2.598e6, 2.793e6),
    "savings_bess_soles": (132.6e3, 195.6e3, 0.0),
    "co2_emissions_kg": (3.531e6, 3.451e6, 3.612e6),
    "co2_avoided_bess_kg": (81.4e3, 161.4e3, 0.0),
    "grid_import_kwh": (7.81e6, 7.633e6, 7.99e6),
    "peak_grid_import_kw": (2120.0, 2846.0, 2446.0),
    "pv_curtailed_kwh": (354e3, 178e3, 563e3),
    "ev_kwh": (396e3, 396e3, 396e3),
    "sessions_satisfied": (110274.0, 108633.0, 110274.0),
    "bess_throughput_kwh": (500e3, 499.2e3, 0.0),
    "capacity_fade_percent": (1.81, 1.72, 0.80),
}


def synthetic_records(n_seeds: int, ctrls: list[str] = CTRLS, seed: int = 7) -> list[dict[str, Any]]:
    """Trial records with annual-scale KPIs (0.3 % seed-to-seed noise)."""
    rng = np.random.default_rng(seed)
    recs = []
    for s in range(n_seeds):
        for j, c in enumerate(ctrls):
            k = {key: v[j % 3] * (1 + 0.003 * rng.normal()) for key, v in BASE.items()}
            recs.append({"controller": c, "seed": s, "kpis": k})
    return recs


def write_synthetic_page(out: Path, n_seeds: int = 4, ctrls: list[str] = CTRLS) -> tuple[Path, pd.DataFrame]:
    """``ab.html`` of a synthetic trial in PEN; returns the page and the summary."""
    t = trials_frame(synthetic_records(n_seeds, ctrls), ctrls)
    kp = default_kpis("PEN")
    s = summarize(t, ctrls, kp)
    daily = pd.DataFrame([{"controller": c, "seed": sd, "day": d, "date": "", "grid_cost_soles": 7e3 + d}
                          for c in ctrls for sd in range(n_seeds) for d in range(7)])
    meta = {"scenario": "annual", "currency": "PEN", "seeds": str(n_seeds),
            "scenario_hash": "ab" * 32, "scenario_file": "/a/rather/long/path" * 10}
    ab_page(out, s, t, daily, ctrls, [k.key for k in kp], {k.key: k.label for k in kp}, meta,
            cards=card_data(s, t, ctrls, kp))
    return out / "ab.html", s


def _text(page: str) -> str:
    """The page without its embedded images and styles."""
    page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    return re.sub(r"<style>.*?</style>", "", page, flags=re.S)


def scroll_width(page: Path, tmp: Path, width: int = 1400) -> int:
    """``document.documentElement.scrollWidth`` of ``page`` in headless Chromium at ``width`` px."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: run 'bash scripts/sysdeps.sh' (make test does)"
    probe = tmp / "probe.html"
    script = ('<script>window.addEventListener("load", () => document.body.setAttribute('
              '"data-sw", String(document.documentElement.scrollWidth)));</script></body>')
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'profile'}", f"--window-size={width},1000", "--dump-dom",
           probe.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(tmp)}, check=False)
    m = re.search(r'data-sw="(\d+)"', proc.stdout)
    assert m, proc.stderr[-2000:]
    return int(m.group(1))


def test_ab_page_fits_1400_px_in_chromium(tmp_path: Path) -> None:
    page, _ = write_synthetic_page(tmp_path / "ab", ctrls=[*CTRLS, "a_controller_with_a_very_long_name"])
    assert scroll_width(page, tmp_path) <= 1400


def test_ab_page_numbers_verdicts_and_warnings(tmp_path: Path) -> None:
    page, s = write_synthetic_page(tmp_path / "ab")
    text = _text(page.read_text(encoding="utf-8"))
    assert not re.search(r"\d\.\d+e[+-]\d", text), "a number in scientific notation"
    assert "kPEN" in text and "MWh" in text
    assert re.search(r"<li><b>optimal</b> 2,\d{3}\.\d kPEN</li>", text)  # thousands separator + unit
    # ranked best first on grid cost: optimal, six_phase, no_bess
    card = text[text.index('id="kpi-cost_grid_import_soles"'):]
    card = card[:card.index("</article>")]
    assert [m.group(1) for m in re.finditer(r"<li><b>(\w+)</b>", card)] == ["optimal", "six_phase", "no_bess"]
    assert re.search(r"optimal has \d+\.\d kPEN less grid cost than six_phase, 95 % CI \[\d+\.\d, \d+\.\d\], "
                     r"better on 4/4 seeds \(Holm p", card)
    assert "only 4 seeds (&lt; 10)" in card and "Small sample: 4 seeds" in text
    assert "Holm p" in card
    # every comparison on the page went into the Holm family
    assert f"all {len(s)} KPI × pair comparisons" in text
    assert len(list((tmp_path / "ab" / "figures").glob("ab_forest_*.png"))) == s["kpi"].nunique()


def test_ab_cli_summary_csv_keeps_full_precision(make_scenario: Any, tmp_path: Path) -> None:
    scn = make_scenario(duration="1d", dt="1h", seed=1)
    out = tmp_path / "ab"
    rc = main(["ab", str(scn), "--controllers", "six_phase,no_bess", "--seeds", "4", "--workers", "1",
               "--out", str(out), "-q"])
    assert rc == 0
    raw = (out / "ab_summary.csv").read_text()
    summ = pd.read_csv(out / "ab_summary.csv")
    assert {"p_holm", "warning"} <= set(summ.columns)
    assert (summ["p_holm"].dropna() >= summ.loc[summ["p_holm"].notna(), "p_value"] - 1e-15).all()
    assert summ["warning"].str.contains("only 4 seeds").all()
    assert "kPEN" not in raw and "MWh" not in raw  # the CSV is not formatted
    # full precision: the CSV reads back bit for bit as the summary of trials.parquet
    trials = pd.read_parquet(out / "trials.parquet")
    again = summarize(trials, ["six_phase", "no_bess"], default_kpis("PEN"))
    num = ["mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "boot_low", "boot_high", "p_value", "p_holm"]
    pd.testing.assert_frame_equal(summ[num], again[num], check_exact=True)
    html = (out / "ab.html").read_text()
    assert 'id="kpi-cost_grid_import_soles"' in html and "Small sample: 4 seeds" in html
    md = (out / "ab_summary.md").read_text()
    assert "p (Holm)" in md


@pytest.mark.parametrize("n", [4, 12])
def test_the_summary_warns_on_small_n_only_below_10(n: int) -> None:
    t = trials_frame(synthetic_records(n), CTRLS)
    s = summarize(t, CTRLS, default_kpis("PEN"))
    small = s["warning"].str.contains(f"only {n} seeds")
    assert small.all() if n < 10 else not small.any()

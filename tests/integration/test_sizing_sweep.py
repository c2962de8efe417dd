"""``twin sweep`` sizing economics end to end: optimal by default, CAPEX 0 at 0 kWh, NPV /
IRR / LCOS columns, diminishing returns with ``optimal``, and the sizing page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from twin.app.cli import main


@pytest.fixture
def two_days(make_scenario: Any) -> Path:
    """Two days at hourly ticks (the scenario's own controller is six_phase)."""
    return Path(make_scenario(duration="2d", dt="1h", seed=3))


def test_default_sweep_is_optimal_with_economics_and_a_sizing_page(two_days: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", str(two_days), "--workers", "1", "--out", str(out), "-q"]) == 0
    summ = pd.read_csv(out / "sweep_summary.csv").sort_values("bess.e_capacity_kwh")
    # the default grid, the default controller (not the scenario's six_phase)
    assert summ["bess.e_capacity_kwh"].tolist() == [0, 500, 1000, 1500, 2000, 2500, 3000]
    assert set(summ["controller"]) == {"optimal"}
    # no battery: no CAPEX, no O&M, NPV 0 (the site's power of 400 kW does not count)
    zero = summ.iloc[0]
    assert zero["capex"] == 0.0 and zero["opex_per_yr"] == 0.0
    assert zero["npv"] == pytest.approx(0.0, abs=1e-3)  # savings of 0 kWh: float noise only
    assert summ.iloc[1]["capex"] == pytest.approx(500 * 1100.0 + 400 * 550.0)
    for col in ("npv", "irr", "lcos_per_kwh", "discounted_payback_years", "replacement_years",
                "marginal_savings_per_yr", "knee"):
        assert col in summ.columns
    assert int(summ["knee"].sum()) == 1
    assert summ.loc[summ["knee"], "npv"].iloc[0] == summ["npv"].max()
    # diminishing returns: the extra savings of each 500 kWh fall
    m = summ["marginal_savings_per_yr"].to_numpy(float)[1:]
    assert np.all(np.diff(m) < 0), m
    assert (summ["savings_per_yr"].diff().dropna() > 0).all()
    page = (out / "sizing.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) >= 5
    for text in ("Knee of the curve", "Shape of the curves", "(diminishing returns)",
                 "Net present value", "Discounted payback", "NPV [kPEN]",
                 "capacity [kWh]", "★ knee"):
        assert text in page, text
    assert "savings_bess_soles" not in page
    assert "sizing.html" in (out / ".pvbess-run").read_text()


def test_several_controllers_show_the_controllers_share(two_days: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    rc = main(["sweep", str(two_days), "--set", "bess.e_capacity_kwh=0:1000:1000", "--controllers",
               "optimal", "--controllers", "six_phase,no_bess", "--workers", "1", "--out", str(out), "-q",
               "--set", "economics.discount_rate=0.05", "--set", "economics.project_life_yr=20"])
    assert rc == 0
    summ = pd.read_csv(out / "sweep_summary.csv")
    assert summ["controller"].tolist() == ["optimal", "six_phase", "no_bess"] * 2
    assert (summ["project_life_yr"] == 20).all()
    big = summ[summ["bess.e_capacity_kwh"] == 1000].set_index("controller")
    assert big.loc["optimal", "savings_share_of_best"] == pytest.approx(1.0)
    assert big.loc["six_phase", "savings_share_of_best"] < 1.0
    assert int(summ["knee"].sum()) == 3  # one per controller


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ("economics.discount_rate=1.5", "discount_rate"),
        ("economics.discount_rate=-0.01", "discount_rate"),
        ("economics.project_life_yr=0", "project_life_yr"),
        ("economics.replacement_capacity_frac=1.0", "replacement_capacity_frac"),
    ],
)
def test_bad_economics_exit_2_before_any_run(two_days: Path, tmp_path: Path, item: str, field: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x"
    assert main(["sweep", str(two_days), "--set", item, "--workers", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    assert not out.exists()


def test_size_economics_per_formula_mode(two_days: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import json

    out = tmp_path / "size.json"
    assert main(["size", str(two_days), "--economics", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = doc["economics"]["rows"]
    assert doc["economics"]["controllers"] == ["optimal"]
    by_mode = {r["mode"]: r for r in rows}
    assert by_mode["no battery"]["capex"] == 0.0
    m = doc["modes"]["ev_open_hours"]
    r = next(r for r in rows if "ev_open_hours" in r["mode"])
    assert r["capacity_kwh"] == pytest.approx(m["capacity_kwh"])
    assert r["nominal_power_kw"] == pytest.approx(m["power_kw"])
    assert r["capex"] == pytest.approx(m["capacity_kwh"] * 1100.0 + m["power_kw"] * 550.0)
    assert sum(bool(r["knee"]) for r in rows) == 1
    printed = capsys.readouterr().out
    assert "NPV kPEN" in printed and "ev_open_hours" in printed

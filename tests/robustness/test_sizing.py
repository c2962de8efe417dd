"""Red-team cases of the sizing economics (``twin sweep``, ``twin size --economics``): bad
economic parameters, a battery of 0 kWh, absurd paybacks, projects that never pay."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from twin.app.cli import main


@pytest.fixture
def one_day(make_scenario: Any) -> Path:
    return Path(make_scenario(duration="1d", dt="1h", seed=2))


BAD_ECONOMICS = {
    "rate_nan": ("economics.discount_rate=.nan", "discount_rate"),
    "rate_inf": ("economics.discount_rate=.inf", "discount_rate"),
    "rate_above_1": ("economics.discount_rate=1.5", "discount_rate"),
    "life_fraction": ("economics.project_life_yr=2.5", "project_life_yr"),
    "life_1e9": ("economics.project_life_yr=1000000000", "project_life_yr"),
    "life_zero": ("economics.project_life_yr=0", "project_life_yr"),
    "replacement_cost_negative": ("economics.replacement_cost_frac=-1", "replacement_cost_frac"),
    "replacement_threshold_0_1": ("economics.replacement_capacity_frac=0.1", "replacement_capacity_frac"),
    "replacement_threshold_1": ("economics.replacement_capacity_frac=1", "replacement_capacity_frac"),
    "opex_frac_5": ("economics.opex_frac_of_capex_yr=5", "opex_frac_of_capex_yr"),
    "capex_fixed_1e300": ("economics.bess_capex_fixed=1e300", "bess_capex_fixed"),
    "unknown_key": ("economics.interest=0.05", "interest"),
}


@pytest.mark.parametrize("case", sorted(BAD_ECONOMICS))
def test_bad_economics_are_one_line_user_errors(case: str, one_day: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    item, field = BAD_ECONOMICS[case]
    out = tmp_path / "out"
    rc = main(["sweep", str(one_day), "--set", "bess.e_capacity_kwh=0:500:500", "--set", item,
               "--workers", "1", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert field in err and "Traceback" not in err
    assert not out.exists()


def test_no_battery_costs_nothing_even_with_a_fixed_cost(one_day: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = main(["sweep", str(one_day), "--set", "bess.e_capacity_kwh=0:500:500", "--set",
               "economics.bess_capex_fixed=100000", "--set", "bess.p_nominal_kw=400",
               "--workers", "1", "--out", str(out), "-q"])
    assert rc == 0
    s = pd.read_csv(out / "sweep_summary.csv").set_index("bess.e_capacity_kwh")
    assert s.loc[0, "capex"] == 0.0 and s.loc[0, "opex_per_yr"] == 0.0
    assert s.loc[500, "capex"] == pytest.approx(100_000 + 500 * 1100.0 + 400 * 550.0)
    runs = pd.read_parquet(out / "sweep.parquet")
    assert (runs.loc[runs["bess.e_capacity_kwh"] == 0, "capex"] == 0.0).all()


def test_a_fixed_capacity_without_a_grid_is_refused(one_day: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["sweep", str(one_day), "--set", "bess.e_capacity_kwh=1000", "--out", str(out)]) == 2
    assert "grid" in capsys.readouterr().err and not out.exists()


def test_an_unknown_controller_in_a_repeated_option_is_refused(one_day: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["sweep", str(one_day), "--controllers", "nope", "--controllers", "optimal",
               "--out", str(out)])
    assert rc == 2 and "nope" in capsys.readouterr().err and not out.exists()


def test_an_absurd_payback_does_not_set_the_axis() -> None:
    from twin.report.sizing import add_economics, payback_figure
    from twin.sizing import EconParams

    e = [0.0, 500.0, 1000.0]
    summ = pd.DataFrame({
        "bess.e_capacity_kwh": e, "controller": "six_phase", "capacity_kwh": e, "nominal_power_kw": 400.0,
        "capex": [0.0, 770e3, 1320e3], "savings_per_yr": [0.0, 150e3, 3e3], "days": 365.0,
        "bess_discharge_kwh": [0.0, 1e5, 1e5], "capacity_fade_annualised_percent": 1.0,
        "capacity_fade_percent": 1.0,
    })
    s = add_economics(summ, ["bess.e_capacity_kwh"], EconParams())
    assert math.isinf(s.loc[2, "discounted_payback_years"])
    s.loc[1, "discounted_payback_years"] = 418.0  # a finite but absurd one
    fig = payback_figure(s, ["bess.e_capacity_kwh"], 15)
    assert fig.axes[0].get_ylim()[1] <= 20
    assert sum(t.get_text() == "> life" for t in fig.axes[0].texts) == 2


def test_a_project_that_never_pays_has_no_irr_and_no_payback() -> None:
    from twin.sizing import EconParams, cash_flows, discounted_payback, irr, npv

    ep = EconParams()
    cf = cash_flows(1000.0, 400.0, 0.0, 0.02, 0.02, 0.0, ep)  # no savings at all
    assert npv(ep.discount_rate, cf.net) < 0
    # only the cells' residual value comes back: a negative IRR, never a payback
    assert irr(cf.net) < 0
    assert math.isinf(discounted_payback(ep.discount_rate, cf.net))
    # nothing ever comes back (replacements free, so no residual value): no IRR at all
    cf0 = cash_flows(1000.0, 400.0, 0.0, 0.02, 0.02, 0.0, EconParams(replacement_cost_frac=0.0))
    assert (cf0.net[1:] < 0).all()
    assert math.isnan(irr(cf0.net))
    assert math.isinf(discounted_payback(ep.discount_rate, cf0.net))


def test_a_rerun_into_the_same_folder_keeps_the_sizing_page(one_day: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = ["sweep", str(one_day), "--set", "bess.e_capacity_kwh=0:500:500", "--workers", "1",
           "--out", str(out), "-q"]
    assert main(cmd) == 0 and (out / "sizing.html").is_file()
    (out / "sizing.html").unlink()
    assert main(cmd) == 0 and (out / "sizing.html").is_file()

"""Sizing economics (twin.sizing, twin.report.sizing) on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from twin.config import Economics
from twin.report.sizing import add_economics, curve_notes, fmt_num, payback_figure
from twin.sizing import (
    EconParams,
    capex,
    cash_flows,
    discounted_payback,
    irr,
    knee,
    lcos,
    npv,
    opex_per_yr,
)


def test_npv_irr_and_discounted_payback_by_hand() -> None:
    flows = [-100.0, 60.0, 60.0]
    # -100 + 60/1.1 + 60/1.21 = 4.1322314...
    assert npv(0.1, flows) == pytest.approx(-100 + 60 / 1.1 + 60 / 1.21, rel=1e-12)
    assert npv(0.1, flows) == pytest.approx(4.132231405, rel=1e-9)
    # 60 x² + 60 x − 100 = 0 with x = 1/(1+r): x = (−60 + √27600)/120, r = 1/x − 1
    x = (-60 + math.sqrt(27600)) / 120
    assert irr(flows) == pytest.approx(1 / x - 1, abs=1e-10)
    assert irr(flows) == pytest.approx(0.1306623863, abs=1e-9)
    # cumulative discounted: −100, −45.45 (= −500/11), +4.13; year 2 brings 6000/121
    assert discounted_payback(0.1, flows) == pytest.approx(1 + (500 / 11) / (6000 / 121), rel=1e-12)
    assert discounted_payback(0.1, flows) == pytest.approx(23 / 12, rel=1e-12)
    assert math.isinf(discounted_payback(0.1, [-100.0, 10.0, 10.0]))


def test_irr_is_nan_without_a_sign_change() -> None:
    assert math.isnan(irr([-100.0, 0.0, 0.0]))
    assert math.isnan(irr([0.0, 0.0]))
    assert math.isnan(irr([100.0, 10.0]))
    # −100 + 50 + 50 pays exactly back: IRR 0; −100 + 40 + 40 loses: a negative IRR
    # (40 x² + 40 x − 100 = 0, x = 1/(1+r))
    assert irr([-100.0, 50.0, 50.0]) == pytest.approx(0.0, abs=1e-10)
    x = (-40 + math.sqrt(1600 + 16000)) / 80
    assert irr([-100.0, 40.0, 40.0]) == pytest.approx(1 / x - 1, abs=1e-10)


def _ep(**kw: float) -> EconParams:
    base = {"capex_per_kwh": 1000.0, "capex_per_kw": 200.0, "capex_fixed": 0.0, "opex_per_kwh_yr": 10.0,
            "opex_per_kw_yr": 0.0, "opex_frac_of_capex_yr": 0.0, "project_life_yr": 2, "discount_rate": 0.1,
            "replacement_capacity_frac": 0.8, "replacement_cost_frac": 0.0}
    base.update(kw)
    return EconParams(**base)  # type: ignore[arg-type]


def test_lcos_by_hand() -> None:
    ep = _ep()
    cf = cash_flows(100.0, 50.0, 0.0, 0.0, 0.0, 20_000.0, ep)
    c0 = capex(100.0, 50.0, ep)
    assert c0 == 110_000.0 and opex_per_yr(100.0, 50.0, ep) == 1000.0
    # (110000 + 1000/1.1 + 1000/1.21) / (20000/1.1 + 20000/1.21) = 135200 / 42000
    assert lcos(cf, c0, 0.1) == pytest.approx(135_200 / 42_000, rel=1e-12)
    # with residual value: fade 5 %/yr, threshold 0.8, 2 years → 0.9 left = half the life,
    # worth half of 100 kWh × 1000 at replacement_cost_frac 1
    cf2 = cash_flows(100.0, 50.0, 0.0, 0.05, 0.0, 20_000.0, _ep(replacement_cost_frac=1.0))
    assert cf2.residual[-1] == pytest.approx(50_000.0)
    assert cf2.replacement_years == ()
    # × 1.21: costs 133100 + 1100 + 1000 − 50000 (residual at year 2); energy scales with the
    # mean capacity 0.975 and 0.925: 20000 × 0.975 × 1.1 + 20000 × 0.925
    assert lcos(cf2, c0, 0.1) == pytest.approx(85_200 / 39_950, rel=1e-12)


def test_no_battery_has_no_capex_even_with_power_and_fixed_costs() -> None:
    ep = _ep(capex_fixed=50_000.0, opex_frac_of_capex_yr=0.02)
    assert capex(0.0, 400.0, ep) == 0.0
    assert opex_per_yr(0.0, 400.0, ep) == 0.0
    assert capex(10.0, 400.0, ep) == 50_000.0 + 10_000.0 + 80_000.0
    cf = cash_flows(0.0, 400.0, 0.0, 0.0, 0.0, 0.0, ep)
    assert not np.any(cf.net) and npv(0.1, cf.net) == 0.0


def test_replacement_when_the_fade_crosses_the_threshold() -> None:
    ep = _ep(project_life_yr=10, replacement_cost_frac=0.5)
    # 6 %/yr: end-of-year capacity 0.94, 0.88, 0.82, 0.76 < 0.8 → replaced after year 4, and 8
    cf = cash_flows(100.0, 50.0, 1000.0, 0.06, 0.06, 0.0, ep)
    assert cf.replacement_years == (4, 8)
    assert np.flatnonzero(cf.replacement).tolist() == [4, 8]
    assert cf.replacement[4] == pytest.approx(0.5 * 100 * 1000.0)
    # mean capacity of year 4 (age 3.5) then a fresh year 5 (age 0.5)
    assert cf.capacity_frac[4] == pytest.approx(1 - 0.06 * 3.5)
    assert cf.capacity_frac[5] == pytest.approx(1 - 0.06 * 0.5)
    # savings scale with the capacity, relative to the run's own mean (1 − 0.06 / 2)
    assert cf.savings[1] == pytest.approx(1000.0)
    assert cf.savings[4] == pytest.approx(1000.0 * (1 - 0.06 * 3.5) / 0.97)
    # 1 %/yr never reaches 0.8 in 10 years; a 25 %/yr fade replaces every year but the last
    assert cash_flows(100.0, 50.0, 1000.0, 0.01, 0.0, 0.0, ep).replacement_years == ()
    assert cash_flows(100.0, 50.0, 1000.0, 0.25, 0.0, 0.0, ep).replacement_years == tuple(range(1, 10))


def test_knee_is_the_size_of_largest_npv() -> None:
    assert knee([0, 500, 1000, 1500], [0.0, 10.0, 15.0, 12.0]) == 2
    assert knee([0, 500, 1000], [0.0, -5.0, -9.0]) == 0  # nothing pays: no battery
    assert knee([0, 500, 1000], [0.0, 7.0, 7.0]) == 1  # a tie goes to the smaller size
    assert knee([1000, 0, 500], [3.0, 0.0, 5.0]) == 2  # order of the rows does not matter


def test_economics_params_from_the_site_defaults() -> None:
    ep = EconParams.from_config(Economics())
    assert ep == EconParams()


def _summary(sav: list[float], co2: list[float], ctrl: str = "optimal") -> pd.DataFrame:
    e = [0.0, 500.0, 1000.0, 1500.0][: len(sav)]
    return pd.DataFrame({
        "bess.e_capacity_kwh": e, "controller": ctrl, "capacity_kwh": e, "nominal_power_kw": 400.0,
        "capex": [capex(x, 400.0, EconParams()) for x in e], "savings_per_yr": sav,
        "co2_avoided_bess_kg": co2, "days": 365.0, "bess_discharge_kwh": [x * 300 for x in e],
        "capacity_fade_annualised_percent": 2.0, "capacity_fade_percent": 2.0,
    })


def test_marginal_savings_knee_and_curve_notes() -> None:
    keys = ["bess.e_capacity_kwh"]
    good = add_economics(_summary([0.0, 100e3, 160e3, 190e3], [0.0, 5e3, 8e3, 9e3]), keys, EconParams())
    assert good["marginal_savings_per_yr"].tolist()[1:] == [100e3, 60e3, 30e3]
    assert int(good["knee"].sum()) == 1
    assert good.loc[good["knee"], "npv"].iloc[0] == good["npv"].max()
    assert curve_notes(good, keys, "PEN") == []
    bad = add_economics(_summary([0.0, 10e3, 50e3, 45e3], [0.0, 5e3, 4e3, 6e3], "six_phase"), keys,
                        EconParams())
    notes = curve_notes(bad, keys, "PEN")
    assert any("savings from the BESS fall from 1,000 to 1,500 kWh" in n for n in notes)
    assert any("CO₂ avoided by the BESS fall from 500 to 1,000 kWh" in n for n in notes)
    assert any("extra savings rise" in n and "six_phase follows rules" in n for n in notes)


def test_payback_axis_ignores_absurd_values() -> None:
    keys = ["bess.e_capacity_kwh"]
    s = add_economics(_summary([0.0, 100e3, 3e3], [0.0, 1.0, 2.0]), keys, EconParams())
    s.loc[2, "discounted_payback_years"] = 418.0
    fig = payback_figure(s, keys, 15)
    _lo, hi = fig.axes[0].get_ylim()
    assert hi <= 15 * 1.2
    assert any(t.get_text() == "> life" for t in fig.axes[0].texts)


def test_no_negative_zero() -> None:
    assert fmt_num(-1e-9, ",.1f") == "0.0"
    assert fmt_num(-0.04, ".1f") == "0.0"
    assert fmt_num(-1234.5, ",.1f") == "-1,234.5"

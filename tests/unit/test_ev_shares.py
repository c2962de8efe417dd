"""EV shares that do not hang on the allocation order (issue 19, point 5): the
counterfactual and pro-rata shares and the grid-charged colour of the battery's output."""

from __future__ import annotations

import pandas as pd
import pytest

from twin.engine.results import ev_shares


def _ts(**cols: list[float]) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {c: [0.0] * n for c in (
        "ev_kwh", "mall_kwh", "load_kwh", "grid_import_kwh", "grid_to_bess_kwh",
        "pv_to_bess_kwh", "bess_discharge_kwh", "bess_to_ev_kwh", "soc_kwh", "pv_to_ev_kwh")}
    base.update(cols)
    df = pd.DataFrame(base)
    if "load_kwh" not in cols:
        df["load_kwh"] = df["ev_kwh"] + df["mall_kwh"]
    return df


def test_grid_charged_battery_output_is_not_pv() -> None:
    # step 0: 100 kWh from the grid into an empty battery (η 1); step 1: PV 100 kWh in;
    # steps 2-3: 100 kWh each to the EVs (which the grid would otherwise have served)
    ts = _ts(ev_kwh=[0, 0, 100, 100], grid_import_kwh=[100, 0, 0, 0],
             grid_to_bess_kwh=[100, 0, 0, 0], pv_to_bess_kwh=[0, 100, 0, 0],
             bess_discharge_kwh=[0, 0, 100, 100], bess_to_ev_kwh=[0, 0, 100, 100],
             soc_kwh=[100, 200, 100, 0])
    s = ev_shares(ts, 1.0, 0.0)
    assert s["bess_discharge_grid_share"] == pytest.approx(0.5)  # half the store was grid
    assert s["ev_coverage_no_grid_charge"] == pytest.approx(0.5)
    assert s["ev_coverage_pro_rata"] == pytest.approx(0.5)
    assert s["ev_coverage_counterfactual"] == pytest.approx(0.5)


def test_counterfactual_counts_the_evs_last_and_pro_rata_shares() -> None:
    # local supply 60 kWh for a mall of 100 and EVs of 50: the EVs cause all 50 of import
    # beyond what the mall alone needs (counterfactual 0); pro rata they get 60 × 50/150
    ts = _ts(ev_kwh=[50.0], mall_kwh=[100.0], grid_import_kwh=[90.0], pv_to_ev_kwh=[50.0])
    s = ev_shares(ts, 1.0, 0.0)
    assert s["ev_coverage_counterfactual"] == pytest.approx(0.0)
    assert s["ev_coverage_pro_rata"] == pytest.approx(20.0 / 50.0)
    assert s["ev_coverage_no_grid_charge"] == pytest.approx(1.0)  # the seed allocation: EV first
    # local supply above the mall: the EVs' import is only what the mall leaves uncovered
    ts = _ts(ev_kwh=[50.0], mall_kwh=[100.0], grid_import_kwh=[30.0])
    assert ev_shares(ts, 1.0, 0.0)["ev_coverage_counterfactual"] == pytest.approx(20.0 / 50.0)


def test_initial_content_counts_as_grid_and_losses_keep_the_colour() -> None:
    ts = _ts(ev_kwh=[45.0, 0.0, 45.0], pv_to_bess_kwh=[0.0, 100.0, 0.0],
             bess_discharge_kwh=[45.0, 0.0, 45.0], bess_to_ev_kwh=[45.0, 0.0, 45.0],
             soc_kwh=[50.0, 140.0, 90.0])  # η_charge 0.9: 100 kWh of PV store 90
    s = ev_shares(ts, 0.9, 100.0)
    # step 0 takes 50 stored of grid colour; then 50 grid + 90 PV; step 2 takes 50 of 140
    assert s["bess_discharge_grid_share"] == pytest.approx((45 + 45 * 50 / 140) / 90)

"""Demand charges in the optimum (issue 19, point 4): on a tariff with a demand charge,
``optimal`` (and ``mpc``) lower the month's peak import against the plan that sees energy
prices only, and the bill under that tariff is lower."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT, SCENARIOS
from twin.config import load_scenario
from twin.engine import simulate
from twin.engine.results import build_results
from twin.tariff import bill, schedule

MT3 = ROOT / "config" / "tariffs" / "peru_mt3_example.yaml"


def _run(controller: str, days: int, energy_only: bool) -> tuple[Any, dict[str, Any], Any]:
    # an unserved-energy penalty above the demand charge's marginal cost: the peak must
    # come down with the battery, not by leaving vehicles uncharged (at the default
    # 1 PEN/kWh the LP may trade EV energy for kW of peak)
    sets: dict[str, Any] = {"controller": controller, "duration": f"{days}d",
                            "tariff.file": str(MT3),
                            "controller_params": {"unserved_penalty_per_kwh": 50.0}}
    if energy_only:
        sets["tariff.demand_charges"] = {}
    scn = load_scenario(SCENARIOS / "week.yaml", sets)
    res = build_results(simulate(scn))
    return scn, res.summary, res.timeseries


def _bill_under_mt3(ts: Any, scn: Any) -> float:
    """The bill of a run's import under the MT3 example with its demand charges."""
    demand_scn = load_scenario(SCENARIOS / "week.yaml",
                               {"duration": "1d", "tariff.file": str(MT3)})
    tar = demand_scn.site.tariff
    sch = schedule(tar, scn.index)
    return bill(sch, ts["grid_import_kwh"].to_numpy(), scn.config.dt).total


@pytest.mark.parametrize(("controller", "days"), [("optimal", 3), ("mpc", 2)])
def test_demand_aware_plan_lowers_the_peak_and_the_bill(controller: str, days: int) -> None:
    scn_e, s_e, ts_e = _run(controller, days, energy_only=True)
    scn_d, s_d, ts_d = _run(controller, days, energy_only=False)
    assert s_e["cost_demand_soles"] == 0.0 and s_d["cost_demand_soles"] > 0.0
    # the month's peak import falls by more than 10 %
    assert s_d["peak_grid_import_kw"] < 0.9 * s_e["peak_grid_import_kw"], \
        (s_d["peak_grid_import_kw"], s_e["peak_grid_import_kw"])
    # billed under the demand tariff, the energy-only plan costs more
    bill_e = _bill_under_mt3(ts_e, scn_e)
    assert s_d["cost_total_soles"] < bill_e, (s_d["cost_total_soles"], bill_e)
    # the summary's parts add up; the demand part is the bill of its own import
    assert s_d["cost_total_soles"] == pytest.approx(
        s_d["cost_grid_import_soles"] + s_d["cost_demand_soles"] + s_d["cost_fixed_soles"])
    assert _bill_under_mt3(ts_d, scn_d) == pytest.approx(s_d["cost_total_soles"], rel=1e-9)
    # the EV service stays close: the plan does not buy its peak with unserved energy
    assert s_d["ev_energy_delivered_kwh"] >= 0.97 * s_e["ev_energy_delivered_kwh"]
    assert s_d["sessions_total"] == s_e["sessions_total"]


def test_optimal_plans_the_demand_cost_it_is_billed() -> None:
    _, s, _ = _run("optimal", 2, energy_only=False)
    lp = s["lp"]
    assert lp["demand_cost_soles"] > 0.0
    assert lp["simulated_demand_cost_soles"] == pytest.approx(lp["demand_cost_soles"], rel=0.02)

"""The LP's demand slots (issue 19, point 4): a demand charge shaves the billed peak with
the battery; a slot prices only its own steps; a floor (the month so far) is kept."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.lp.ev import EvEnvelopes
from controllers.lp.model import BatteryData, DemandTerm, HorizonData, SiteLp, Weights
from twin.components.bess import BessParams

N = 4
BASE_KW = np.array([100.0, 500.0, 100.0, 500.0])
BAT = BatteryData(BessParams(e_capacity_kwh=1000.0, p_charge_max_kw=400.0, p_discharge_max_kw=400.0,
                             eta_charge=1.0, eta_discharge=1.0, soc_min_frac=0.0,
                             soc_max_frac=1.0, soc_initial_frac=0.0),
                  e_capacity_kwh=1000.0, fade_per_kwh=0.0)


def _data(demand: list[DemandTerm], e0_kwh: float = 0.0) -> HorizonData:
    z = np.zeros((1, N))  # one vehicle type, no vehicles
    ev = EvEnvelopes(z, z, z, 0.0, 0.0)
    return HorizonData(base_kw=BASE_KW.copy(), price_per_kwh=np.full(N, 0.2),
                       co2_kg_per_kwh=0.0, e0_kwh=e0_kwh, ev=ev, demand=demand)


def _lp(n_slots: int, steps: list[np.ndarray] | None = None) -> SiteLp:
    return SiteLp(N, 1.0, 1, BAT, Weights(), with_writeoff=False,
                  demand_steps=steps if steps is not None else [np.ones(N, bool)] * n_slots)


def test_demand_charge_flattens_the_import_with_the_battery() -> None:
    plan = _lp(1).solve(_data([DemandTerm(10.0, np.ones(N, bool))]))
    # 1,200 kWh over 4 h with an empty battery: the flattest import is 300 kW every hour
    assert plan.p_grid_kw.max() == pytest.approx(300.0, abs=1e-6)
    assert plan.info["demand_cost"] == pytest.approx(3000.0, rel=1e-9)
    assert plan.objective == pytest.approx(0.2 * 1200.0 + 3000.0, rel=1e-9)
    flat = _lp(0).solve(_data([]))  # energy only: flat price, the battery has no reason to move
    assert flat.p_grid_kw.max() == pytest.approx(500.0, abs=1e-6)


def test_a_slot_prices_only_its_steps() -> None:
    # the charge looks at steps 2-3 only: the battery charges in steps 0-1 (where import is
    # not billed) and covers step 3's 400 kW above 100: billed demand 100 kW
    on = np.array([False, False, True, True])
    plan = _lp(1).solve(_data([DemandTerm(10.0, on)]))
    assert plan.p_grid_kw[on].max() == pytest.approx(100.0, abs=1e-6)
    assert plan.p_grid_kw[~on].max() >= 500.0 - 1e-6
    assert plan.info["demand_cost"] == pytest.approx(1000.0, rel=1e-9)
    # a sparse structure (rows only for the slot's steps) gives the same optimum
    sparse = _lp(1, [on]).solve(_data([DemandTerm(10.0, on)]))
    assert sparse.objective == pytest.approx(plan.objective, rel=1e-9)


def test_floor_is_the_billed_demand_so_far() -> None:
    plan = _lp(1).solve(_data([DemandTerm(10.0, np.ones(N, bool), floor_kw=450.0)]))
    assert plan.info["demand_cost"] == pytest.approx(4500.0, rel=1e-9)  # never below 450 kW
    assert plan.p_grid_kw.max() <= 450.0 + 1e-6


def test_slot_outside_the_structure_is_refused() -> None:
    lp = _lp(1, [np.array([True, True, False, False])])
    with pytest.raises(ValueError, match="outside"):
        lp.solve(_data([DemandTerm(10.0, np.ones(N, bool))]))

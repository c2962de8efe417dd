"""Flow allocation: every step balances, flows are non-negative, order is the seeds'."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.engine.balance import allocate_flows, balance_residual

energy = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(pv=energy, ev=energy, mall=energy, bess=st.floats(-500.0, 500.0), export=st.floats(0.0, 100.0))
def test_balance_and_signs(pv: float, ev: float, mall: float, bess: float, export: float) -> None:
    ch = np.array([max(-bess, 0.0)])
    dis = np.array([min(max(bess, 0.0), ev + mall)])  # the plant never discharges past the load
    a = [np.array([x]) for x in (pv, ev, mall)]
    fl = allocate_flows(*a, ch, dis, export)
    assert abs(balance_residual(*a, ch, dis, fl)[0]) <= 1e-6
    for k, v in fl.items():
        assert v[0] >= -1e-9, k
    # PV = PV→EV + PV→BESS + PV→mall + curtailed + export
    assert abs(pv - (fl["pv_to_ev_kwh"] + fl["pv_to_bess_kwh"] + fl["pv_to_mall_kwh"]
                     + fl["pv_curtailed_kwh"] + fl["pv_export_kwh"])[0]) <= 1e-6
    # EV = PV→EV + BESS→EV + grid→EV; mall likewise
    assert abs(ev - (fl["pv_to_ev_kwh"] + fl["bess_to_ev_kwh"] + fl["grid_import_ev_kwh"])[0]) <= 1e-6
    assert abs(mall - (fl["pv_to_mall_kwh"] + fl["bess_to_mall_kwh"]
                       + fl["grid_import_mall_kwh"])[0]) <= 1e-6


def test_order_pv_to_ev_first_then_bess_then_mall() -> None:
    fl = allocate_flows(np.array([100.0]), np.array([30.0]), np.array([100.0]),
                        np.array([50.0]), np.array([0.0]), 0.0)
    assert fl["pv_to_ev_kwh"][0] == 30.0
    assert fl["pv_to_bess_kwh"][0] == 50.0
    assert fl["pv_to_mall_kwh"][0] == 20.0
    fl = allocate_flows(np.array([0.0]), np.array([30.0]), np.array([100.0]),
                        np.array([0.0]), np.array([50.0]), 0.0)
    assert fl["bess_to_ev_kwh"][0] == 30.0 and fl["bess_to_mall_kwh"][0] == 20.0

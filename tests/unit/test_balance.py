"""Flow allocation against the bus physics (not against its own sums); the one split gives
the same bits on floats (``Twin.step_record``, the RL reward) as on arrays (the results);
the order is the seeds'."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.engine.balance import allocate_flows, split_bus

energy = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(pv=energy, ev=energy, mall=energy, bess=st.floats(-500.0, 500.0), export=st.floats(0.0, 100.0))
def test_split_against_physics(pv: float, ev: float, mall: float, bess: float, export: float) -> None:
    ch = max(-bess, 0.0)
    # the plant never discharges past the load plus what the grid takes
    dis = min(max(bess, 0.0), max(ev + mall - pv, 0.0) + export)
    fl = allocate_flows(np.array([pv]), np.array([ev]), np.array([mall]), np.array([ch]),
                        np.array([dis]), export)
    for k, v in fl.items():
        assert v[0] >= -1e-9, k
    load, supply = ev + mall + ch, pv + dis
    surplus = max(supply - load, 0.0)
    tol = 1e-9 * max(pv, ev, mall, 1.0)
    assert abs(fl["grid_import_kwh"][0] - max(load - supply, 0.0)) <= tol
    assert abs(fl["grid_export_kwh"][0] - min(surplus, export)) <= tol
    assert abs(fl["pv_curtailed_kwh"][0] - (surplus - min(surplus, export))) <= tol
    used = fl["pv_to_ev_kwh"][0] + fl["pv_to_bess_kwh"][0] + fl["pv_to_mall_kwh"][0]
    assert abs(used - min(pv, load)) <= tol  # PV is used on site first
    # one split: the float form gives the array form's bits
    one = split_bus(pv, ev, mall, ch, dis, export, min, max)
    for name, v in one._asdict().items():
        assert v == fl[name][0] and isinstance(v, float), name


def test_order_pv_to_ev_first_then_bess_then_mall() -> None:
    fl = allocate_flows(np.array([100.0]), np.array([30.0]), np.array([100.0]),
                        np.array([50.0]), np.array([0.0]), 0.0)
    assert fl["pv_to_ev_kwh"][0] == 30.0
    assert fl["pv_to_bess_kwh"][0] == 50.0
    assert fl["pv_to_mall_kwh"][0] == 20.0
    fl = allocate_flows(np.array([0.0]), np.array([30.0]), np.array([100.0]),
                        np.array([0.0]), np.array([50.0]), 0.0)
    assert fl["bess_to_ev_kwh"][0] == 30.0 and fl["bess_to_mall_kwh"][0] == 20.0

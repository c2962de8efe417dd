"""The one battery envelope (``allowed_charge_kw`` / ``allowed_discharge_kw``) against the
battery's own physics: the allowed power, applied by ``Battery.apply`` for one tick, lands
on the SOC window's edge when the window binds and inside it otherwise; a little more
power would leave the window. Checked from the device model, not from the formula."""

from __future__ import annotations

import numpy as np
import pytest

from twin.components.bess import (
    Battery,
    BessParams,
    allowed_charge_kw,
    allowed_discharge_kw,
    no_reverse_flow_kw,
)


def _battery(rng: np.random.Generator) -> Battery:
    cap = float(rng.uniform(1.0, 5000.0))
    lo = float(rng.uniform(0.0, 0.4))
    hi = float(rng.uniform(lo + 0.05, 1.0))
    eta_c, eta_d = (float(x) for x in rng.uniform(0.8, 1.0, 2))
    return Battery(BessParams(e_capacity_kwh=cap, p_charge_max_kw=float(rng.uniform(1.0, 3000.0)),
                              p_discharge_max_kw=float(rng.uniform(1.0, 3000.0)),
                              eta_charge=eta_c, eta_discharge=eta_d, soc_min_frac=lo,
                              soc_max_frac=hi, soc_initial_frac=float(rng.uniform(lo, hi))))


@pytest.mark.parametrize("seed", range(6))
def test_allowed_power_lands_on_the_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(200):
        bat = _battery(rng)
        pr = bat.params
        dt_h = float(rng.choice([1 / 60, 0.25, 1.0]))
        st = bat.state()
        floor, ceil = pr.soc_min_frac * bat.cap_kwh, pr.soc_max_frac * bat.cap_kwh
        tol = 1e-9 * bat.cap_kwh
        for sign, allowed in ((1.0, allowed_discharge_kw(st, dt_h)),
                              (-1.0, allowed_charge_kw(st, dt_h))):
            rating = pr.p_discharge_max_kw if sign > 0 else pr.p_charge_max_kw
            assert 0.0 <= allowed <= rating
            b = Battery(pr)
            b.e_kwh = st.e_kwh
            b.apply(sign * allowed, dt_h)
            assert floor - tol <= b.e_kwh <= ceil + tol
            if allowed < rating:  # the window binds: the tick ends on its edge
                assert b.e_kwh == pytest.approx(floor if sign > 0 else ceil, abs=tol)
                over = Battery(pr)
                over.e_kwh = st.e_kwh
                over.apply(sign * allowed * 1.01 + sign * 1e-3, dt_h)
                assert (over.e_kwh < floor) if sign > 0 else (over.e_kwh > ceil)


def test_no_reverse_flow_limit() -> None:
    assert no_reverse_flow_kw(120.0, 0.0) == 120.0
    assert no_reverse_flow_kw(-50.0, 0.0) == 0.0  # PV surplus: nothing may be discharged
    assert no_reverse_flow_kw(-50.0, 30.0) == 30.0  # except what the grid takes

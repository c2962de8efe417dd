"""Arbitrage rules as a table."""

from __future__ import annotations

import pytest

from controllers.arbitrage import ArbitrageParams, arbitrage_rule

P = ArbitrageParams()

TABLE = [
    # hour, is_peak, pv, mall, ev, soc → phase, p_bess
    (2.0, False, 0.0, 900.0, 0.0, 0.5, 0, 0.0),          # night idle
    (23.5, False, 0.0, 900.0, 0.0, 0.5, 0, 0.0),
    (7.0, False, 100.0, 1000.0, 0.0, 0.5, 2, -400.0),    # grid top-up below 80 %
    (7.0, False, 100.0, 1000.0, 0.0, 0.85, 1, -100.0),   # above 80 %: PV surplus only
    (13.0, False, 2000.0, 1800.0, 100.0, 0.5, 1, -1900.0),
    (15.0, False, 50.0, 1800.0, 100.0, 0.5, 1, 0.0),     # no surplus
    (18.0, True, 0.0, 1800.0, 100.0, 0.5, 3, 1900.0),    # peak: EV deficit + mall
    (22.9, True, 0.0, 1000.0, 0.0, 0.5, 3, 1000.0),
]


@pytest.mark.parametrize(("hour", "peak", "pv", "mall", "ev", "soc", "phase", "p"), TABLE)
def test_arbitrage_table(hour: float, peak: bool, pv: float, mall: float, ev: float, soc: float,
                         phase: int, p: float) -> None:
    got_phase, got_p = arbitrage_rule(hour, peak, pv, mall, ev, soc, 400.0, P)
    assert got_phase == phase
    assert got_p == pytest.approx(p)

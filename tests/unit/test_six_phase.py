"""Six-phase precedence as a table: (time, PV, mall, EV, SOC) → (phase, setpoint)."""

from __future__ import annotations

import pytest

from controllers.six_phase import SixPhaseParams, six_phase_rule

P = SixPhaseParams()

# hour, pv, mall, ev, soc → phase, p_bess (before limits), chargers on
TABLE = [
    # phase 6: night closure, whatever the rest says
    (23.0, 0.0, 1500.0, 0.0, 0.5, 6, 0.0, False),
    (3.0, 0.0, 900.0, 0.0, 0.9, 6, 0.0, False),
    (23.0, 0.0, 2500.0, 50.0, 0.9, 6, 0.0, False),  # 23:00 (end of the peak) is the closure
    # 22:00-23:00: chargers off (station closed, EV demand ignored), battery still shaves
    (22.0, 0.0, 2500.0, 50.0, 0.9, 4, 600.0, False),
    (22.5, 0.0, 1500.0, 80.0, 0.995, 3, 0.0, False),
    (5.99, 10.0, 900.0, 0.0, 0.3, 6, 0.0, False),
    # phase 1: 06-09, BESS absorbs all PV, chargers off
    (6.0, 120.0, 1000.0, 0.0, 0.3, 1, -120.0, False),
    (8.75, 900.0, 1200.0, 30.0, 0.99, 1, -900.0, False),
    # phase 4: peak shaving beats everything from 10:00 (EV deficit covered too)
    (10.0, 500.0, 2100.0, 0.0, 0.5, 4, 0.0, True),      # grid draw 1,600 kW: nothing to shave
    (10.0, 100.0, 2100.0, 0.0, 0.5, 4, 100.0, True),    # grid draw 2,000 kW: shave 100 kW
    (18.5, 0.0, 2300.0, 100.0, 0.8, 4, 100.0 + 400.0, True),
    (14.0, 1000.0, 2000.0, 40.0, 0.995, 4, 0.0, True),
    # phase 4 needs SOC >= 50 %: falls to 5 (EV deficit) at 49 %
    (18.5, 0.0, 2300.0, 100.0, 0.49, 5, 100.0 + 2300.0, True),
    # phase 4 not before 10:00: 09:30 with a peak and an EV deficit → 5
    (9.5, 50.0, 2200.0, 80.0, 0.9, 5, 30.0 + 2200.0, True),
    # phase 4 needs PV < mall
    (12.0, 2500.0, 2000.0, 50.0, 0.8, 2, -2450.0, True),  # rule asks all; limits come later
    # phase 5 needs SOC above the minimum
    (20.0, 0.0, 1500.0, 100.0, 0.20, 2, 0.0, True),
    (20.0, 0.0, 1500.0, 100.0, 0.21, 5, 100.0 + 1500.0, True),
    # phase 3: full battery, no deficit → hold
    (11.0, 1500.0, 1500.0, 50.0, 0.99, 3, 0.0, True),
    (16.0, 900.0, 1700.0, 100.0, 1.0, 3, 0.0, True),
    # phase 5 beats phase 3 (full battery but EV deficit)
    (17.0, 20.0, 1700.0, 60.0, 1.0, 5, 40.0 + 1700.0, True),
    # phase 2: charge from the PV surplus after EV
    (11.0, 1500.0, 1500.0, 50.0, 0.6, 2, -1450.0, True),
    (9.0, 300.0, 1200.0, 300.0, 0.6, 2, 0.0, True),
]


@pytest.mark.parametrize(("hour", "pv", "mall", "ev", "soc", "phase", "p_bess", "on"), TABLE)
def test_six_phase_table(hour: float, pv: float, mall: float, ev: float, soc: float,
                         phase: int, p_bess: float, on: bool) -> None:
    got_phase, got_p, got_on = six_phase_rule(hour, pv, mall, ev, soc, P)
    assert (got_phase, got_on) == (phase, on)
    assert got_p == pytest.approx(p_bess)


# closure and drain rows: hour, pv, mall, ev, soc, capacity, params → phase, p_bess, on
E_CAP, ETA = 2000.0, 0.95
DRAIN_TABLE = [
    # 20:00, SOC 50 %: (0.5 − 0.2) × 2000 × 0.95 / 3 h = 190 kW beats phase 3/2 (0 kW)
    (20.0, 0.0, 1500.0, 0.0, 0.5, {}, 7, 0.3 * E_CAP * ETA / 3.0, True),
    # ... but not the EV-deficit discharge, which asks more
    (20.0, 0.0, 1500.0, 100.0, 0.5, {}, 5, 1600.0, True),
    # before the drain window (18:00): no drain
    (17.5, 0.0, 1500.0, 0.0, 0.5, {}, 2, 0.0, True),
    # at or below the closure SOC: no drain
    (21.0, 0.0, 1500.0, 0.0, 0.2, {}, 2, 0.0, True),
    # 22:30: chargers off, half an hour left → drain at 2 × the energy above the target
    (22.5, 0.0, 1500.0, 0.0, 0.3, {}, 7, 0.1 * E_CAP * ETA / 0.5, False),
    # drain off → the rules as before
    (20.0, 0.0, 1500.0, 0.0, 0.5, {"drain_to_closure": False}, 2, 0.0, True),
    # a closure SOC of its own
    (20.0, 0.0, 1500.0, 0.0, 0.5, {"closure_soc_frac": 0.4}, 7, 0.1 * E_CAP * ETA / 3.0, True),
    # the older 22:00 closure
    (22.0, 0.0, 2500.0, 50.0, 0.9, {"closure_h": 22.0}, 6, 0.0, False),
    (21.0, 0.0, 1500.0, 0.0, 0.5, {"closure_h": 22.0}, 7, 0.3 * E_CAP * ETA / 1.0, True),
]


@pytest.mark.parametrize(("hour", "pv", "mall", "ev", "soc", "params", "phase", "p_bess", "on"),
                         DRAIN_TABLE)
def test_six_phase_closure_and_drain(hour: float, pv: float, mall: float, ev: float,
                                     soc: float, params: dict[str, float], phase: int,
                                     p_bess: float, on: bool) -> None:
    prm = SixPhaseParams(**params)  # type: ignore[arg-type]
    got = six_phase_rule(hour, pv, mall, ev, soc, prm, E_CAP, ETA)
    assert (got[0], got[2]) == (phase, on)
    assert got[1] == pytest.approx(p_bess)


def test_site_defaults_follow_the_tariff() -> None:
    from controllers.six_phase import SixPhaseController
    from twin.config import SiteConfig

    prm = SixPhaseController(SiteConfig()).params
    assert (prm.closure_h, prm.drain_start_h, prm.closure_soc_frac) == (23.0, 18.0, 0.2)
    assert prm.ev_close_h == 22.0


def test_thresholds_are_parameters() -> None:
    prm = SixPhaseParams(mall_peak_kw=2500.0)
    # the same snapshot that shaves at 1,900 kW does not at 2,500 kW
    assert six_phase_rule(10.0, 500.0, 2100.0, 0.0, 0.5, P)[0] == 4
    assert six_phase_rule(10.0, 500.0, 2100.0, 0.0, 0.5, prm)[0] != 4

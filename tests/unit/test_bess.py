"""Battery model: efficiencies, round trip, fade, presets."""

from __future__ import annotations

import math

import pytest

from twin.components.bess import Battery, BessParams, bess_step, curve_efficiency
from twin.config import BessConfig


def test_round_trip_efficiency() -> None:
    b = Battery(BessParams.from_config(BessConfig(eta_roundtrip=0.95, capacity_loss_coefficient=0)))
    e0 = b.e_kwh
    b.apply(-100.0, 1.0)  # charge 100 kWh from the AC side
    stored = b.e_kwh - e0
    assert stored == pytest.approx(100.0 * math.sqrt(0.95))
    # discharge it all back: AC energy out = stored * eta_d
    p_out = stored * math.sqrt(0.95)
    b.apply(p_out, 1.0)
    assert b.e_kwh == pytest.approx(e0)
    assert p_out / 100.0 == pytest.approx(0.95)


def test_sign_convention() -> None:
    assert bess_step(1000.0, 2000.0, 100.0, 1.0, 0.9, 0.9) < 1000.0  # + = discharge
    assert bess_step(1000.0, 2000.0, -100.0, 1.0, 0.9, 0.9) > 1000.0  # − = charge


def test_cycle_ageing_per_equivalent_full_cycle() -> None:
    # LFP preset: 6,000 EFC to 80 % → 0.2 / 6000 of the nominal capacity per EFC
    cfg = BessConfig(calendar_fade_frac_per_year=0.0, ageing_model="linear")
    assert (cfg.chemistry, cfg.cycle_life_efc) == ("lfp", 6000.0)
    b = Battery(BessParams.from_config(cfg))
    for _ in range(20):
        b.apply(-400.0, 1.0)
        b.apply(380.0, 1.0)
    efc = b.throughput_kwh / (2.0 * 2000.0)
    assert efc > 3.0
    assert b.fade_calendar_kwh == 0.0
    assert 2000.0 - b.cap_kwh == pytest.approx(2000.0 * 0.2 / 6000.0 * efc, rel=1e-9)


def test_calendar_ageing_soc_and_temperature() -> None:
    def year_fade(soc: float, t_c: float, chem: str = "lfp") -> float:
        cfg = BessConfig(chemistry=chem, soc_initial_frac=soc, soc_min_frac=0.0, t_cell_c=t_c,
                         ageing_model="linear")
        b = Battery(BessParams.from_config(cfg))
        for _ in range(365):
            b.apply(0.0, 24.0)
        return (2000.0 - b.cap_kwh) / 2000.0

    # (SOC creeps up as the capacity shrinks under a constant stored energy)
    assert year_fade(0.5, 25.0) == pytest.approx(0.008, rel=5e-3)  # the LFP reference
    assert year_fade(1.0, 25.0) == pytest.approx(0.008 * 1.5, rel=1e-3)  # higher SOC: faster
    assert year_fade(0.5, 35.0) == pytest.approx(2.0 * year_fade(0.5, 25.0), rel=5e-3)  # Q10 = 2
    assert year_fade(0.5, 25.0, "nmc") > year_fade(0.5, 25.0, "lfp") > year_fade(0.5, 25.0, "lto")
    assert BessConfig(technology="standard").chemistry == "nmc"
    off = Battery(BessParams.from_config(BessConfig(ageing=False)))
    off.apply(-400.0, 1.0)
    off.apply(0.0, 1000.0)
    assert off.cap_kwh == 2000.0


def test_capacity_fade_follows_throughput() -> None:
    b = Battery(BessParams.from_config(BessConfig(capacity_loss_coefficient=1e-3, ageing=False)))
    cap0 = b.cap_kwh
    for _ in range(10):
        b.apply(-400.0, 1.0)
        b.apply(400.0, 1.0)
    assert b.cap_kwh < cap0
    # CityLearn form: Δcap = coeff × cap0 × |Δe| / (2 × cap)
    assert cap0 - b.cap_kwh == pytest.approx(1e-3 * b.throughput_kwh / 2.0, rel=0.02)


def test_presets_fill_and_explicit_wins() -> None:
    lfp = BessConfig(technology="modern_lfp")
    assert (lfp.eta_roundtrip, lfp.soc_min_frac, lfp.soc_max_frac) == (0.93, 0.10, 0.95)
    prem = BessConfig.model_validate({"technology": "premium", "soc_min_frac": 0.2})
    assert prem.soc_min_frac == 0.2 and prem.eta_roundtrip == 0.95


def test_c_rate_warning() -> None:
    assert BessConfig(e_capacity_kwh=100, p_charge_max_kw=400, p_discharge_max_kw=400).c_rate_warnings()
    assert not BessConfig().c_rate_warnings()


def test_efficiency_curve_and_self_discharge() -> None:
    assert curve_efficiency(0.5, (0.0, 1.0), (0.8, 0.9)) == pytest.approx(0.85)
    cfg = BessConfig(efficiency_curve=[(0.0, 0.83), (0.3, 0.83), (0.7, 0.9), (1.0, 0.85)],
                     self_discharge_frac_per_h=0.001, capacity_loss_coefficient=0)
    b = Battery(BessParams.from_config(cfg))
    e0 = b.e_kwh
    b.apply(0.0, 10.0)
    assert b.e_kwh == pytest.approx(e0 * (1 - 0.01))
    b2 = Battery(BessParams.from_config(cfg))
    b2.apply(-280.0, 1.0)  # 0.7 of nominal → 0.9
    assert b2.e_kwh == pytest.approx((e0 + 280.0 * 0.9) * (1 - 0.001), rel=1e-9)

"""The BLAST-Lite LFP ageing port (``twin.components.ageing``) against the package itself.

``blast-lite`` 1.1.1 pins numpy < 2 and calls ``np.trapz`` (gone in numpy 2.4): the
reference is installed without its dependencies (``pip install --no-deps blast-lite==1.1.1
h5pyd geopy``) and run here with ``np.trapz`` pointed at ``np.trapezoid`` (the same
function under its numpy-2 name). Without the package these tests are skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from twin.components.ageing import (
    BlastAgeing,
    BlastLfpAgeing,
    BlastLtoAgeing,
    BlastNmcAgeing,
    cell_temperature_c,
    power_state_step,
)
from twin.components.bess import Battery, BessParams
from twin.config import BessConfig


@pytest.fixture
def blast(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``blast.models`` of the installed BLAST-Lite (numpy-2 name of ``trapz`` restored)."""
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    return pytest.importorskip("blast.models")


def _series(days: int, dt_s: float = 900.0, seed: int = 7) -> tuple[np.ndarray, ...]:
    """A battery-like SOC series (a daily charge/discharge of random depth between 0.2 and
    1.0, rests between) and a warm, swinging cell temperature [°C]."""
    rng = np.random.default_rng(seed)
    per_day = round(86400 / dt_s)
    h = np.arange(per_day) * dt_s / 3600.0
    socs = []
    for _ in range(days):
        top = rng.uniform(0.7, 1.0)
        low = rng.uniform(0.2, 0.45)
        day = np.interp(h, [0, 8, 14, 17, 22, 24], [low, low, top, top, low, low])
        socs.append(day + rng.normal(0.0, 0.005, per_day))
    soc = np.clip(np.concatenate(socs), 0.0, 1.0)
    soc = np.concatenate(([soc[0]], soc))
    t_s = np.arange(soc.size) * dt_s
    temp = 26.0 + 3.0 * np.sin(2 * np.pi * t_s / 86400.0) + rng.normal(0.0, 0.2, soc.size)
    return t_s, soc, temp


def test_port_is_blast_lite_chunk_by_chunk(blast: Any) -> None:
    """LFP, fed the same daily chunks: the port's capacity states equal the package's (1e-9)
    and its resistance growth is the Sony-Murata LFP model's (1 %: EFCs scaled by the other
    model's state of health)."""
    t_s, soc, temp = _series(90)
    port = BlastLfpAgeing()
    ref = blast.Lfp_Gr_250AhPrismatic()
    ref_r = blast.Lfp_Gr_SonyMurata3Ah_Battery()
    for d in range(90):
        sl = slice(d * 96, d * 96 + 97)
        port.update(t_s[sl], soc[sl], temp[sl])
        ref.update_battery_state(t_s[sl], soc[sl], temp[sl])
        ref_r.update_battery_state(t_s[sl], soc[sl], temp[sl])
    assert port.q_loss_t == pytest.approx(ref.states["qLoss_t"][-1], rel=1e-9)
    assert port.q_loss_efc == pytest.approx(ref.states["qLoss_EFC"][-1], rel=1e-9)
    assert port.q == pytest.approx(ref.outputs["q"][-1], rel=1e-12)
    assert port.efc == pytest.approx(ref.stressors["efc"][-1], rel=1e-9)
    assert port.r - 1.0 == pytest.approx(ref_r.outputs["r"][-1] - 1.0, rel=1e-2)
    assert port.q_loss_t > 0 and port.q_loss_efc > 0 and port.r > 1.0


@pytest.mark.parametrize(("model", "ref_name", "has_r"), [
    (BlastNmcAgeing, "Nmc111_Gr_Kokam75Ah_Battery", True),
    (BlastLtoAgeing, "Nmc_Lto_10Ah_Battery", False),
], ids=["nmc", "lto"])
def test_nmc_and_lto_ports_are_blast_lite(blast: Any, model: type[BlastAgeing], ref_name: str,
                                          has_r: bool) -> None:
    """NMC (Kokam 75 Ah) and LTO (NMC/LTO 10 Ah), 400 days in daily chunks: capacity (and
    resistance where the model has one) equal the package's (1e-9)."""
    t_s, soc, temp = _series(400, dt_s=3600.0)
    port = model()
    ref = getattr(blast, ref_name)()
    for d in range(400):
        sl = slice(d * 24, d * 24 + 25)
        port.update(t_s[sl], soc[sl], temp[sl])
        ref.update_battery_state(t_s[sl], soc[sl], temp[sl])
    assert port.q == pytest.approx(ref.outputs["q"][-1], rel=1e-9)
    assert 1.0 - port.q == pytest.approx(1.0 - ref.outputs["q"][-1], rel=1e-6)
    assert port.fade_calendar + port.fade_cycle == pytest.approx(1.0 - port.q, rel=1e-12)
    if has_r:
        assert port.r == pytest.approx(ref.outputs["r"][-1], rel=1e-9)
        assert port.r is not None and port.r > 1.0
    else:
        assert port.r is None


def test_port_follows_blast_lite_over_ten_years(blast: Any) -> None:
    """A year's series repeated for ten years: the port fed daily is within 1 % of the
    package's own ``simulate_battery_life`` (its rainflow chunking), at 1 and 10 years,
    and calendar fade grows as √t, not linearly."""
    _, soc1, temp1 = _series(365, dt_s=3600.0)
    n = soc1.size - 1
    years = {}
    for y in (1, 10):
        soc = np.concatenate([soc1] + [soc1[1:]] * (y - 1))
        temp = np.concatenate([temp1] + [temp1[1:]] * (y - 1))
        t_s = np.arange(soc.size) * 3600.0
        port = BlastLfpAgeing()
        for d in range(365 * y):
            sl = slice(d * 24, d * 24 + 25)
            port.update(t_s[sl], soc[sl], temp[sl])
        ref = blast.Lfp_Gr_250AhPrismatic()
        ref.simulate_battery_life({"Time_s": t_s, "SOC": soc, "Temperature_C": temp},
                                  is_conserve_energy_throughput=False)
        assert 1.0 - port.q == pytest.approx(1.0 - ref.outputs["q"][-1], rel=0.01), y
        years[y] = port
        assert soc.size == y * n + 1
    assert years[10].q_loss_t < 10.0 ** 0.6 * years[1].q_loss_t  # ~√t (p = 0.526)
    assert 1.0 - years[10].q < 5.0 * (1.0 - years[1].q)


def test_warmer_cells_age_faster() -> None:
    """Same SOC series, 28 °C against 25 °C: more calendar fade."""
    t_s, soc, _ = _series(30)
    fade = {}
    for t_c in (25.0, 28.0):
        a = BlastLfpAgeing()
        for d in range(30):
            sl = slice(d * 96, d * 96 + 97)
            a.update(t_s[sl], soc[sl], np.full(97, t_c))
        fade[t_c] = a.q_loss_t
    assert fade[28.0] > 1.1 * fade[25.0]


def test_power_state_step_is_the_power_law() -> None:
    """First step: ``k·x^p``; then the state equation tracks ``k·x^p`` closely."""
    k, p = 1e-3, 0.5
    y = power_state_step(0.0, 4.0, k, p)
    assert y == pytest.approx(k * 2.0)
    for _ in range(96):
        y += power_state_step(y, 1.0, k, p)
    assert y == pytest.approx(k * 100 ** p, rel=0.03)
    assert power_state_step(0.3, 0.0, k, p) == 0.0


def test_container_model() -> None:
    """Coupling 0: the setpoint; coupling 1 without lag: the ambient; the lag damps the
    daily swing and keeps the mean."""
    dt = 900.0
    t = np.arange(96 * 20) * dt
    amb = 27.0 + 4.5 * np.cos(2 * np.pi * t / 86400.0)
    assert np.allclose(cell_temperature_c(amb, dt, 25.0, 0.0, 6.0), 25.0)
    assert np.allclose(cell_temperature_c(amb, dt, 25.0, 1.0, 0.0), amb)
    lag = cell_temperature_c(amb, dt, 25.0, 1.0, 6.0)[96 * 10:]
    assert np.ptp(lag) < 0.6 * np.ptp(amb)
    assert lag.mean() == pytest.approx(27.0, abs=0.05)
    half = cell_temperature_c(amb, dt, 25.0, 0.5, 6.0)[96 * 10:]
    assert half.mean() == pytest.approx(26.0, abs=0.05)


def test_battery_age_chunk_cuts_the_stored_energy() -> None:
    """A full battery loses what no longer fits; the linear per-step terms stay off."""
    b = Battery(BessParams.from_config(BessConfig(soc_initial_frac=1.0)))
    assert b.ageing is not None
    b.apply(0.0, 24.0)
    assert b.cap_kwh == 2000.0  # nothing per step
    t_s = np.arange(25) * 3600.0
    b.age_chunk(t_s, np.ones(25), np.full(25, 30.0))
    assert b.cap_kwh < 2000.0
    assert b.e_kwh == b.cap_kwh
    assert b.fade_calendar_kwh == pytest.approx(2000.0 - b.cap_kwh)
    idle = Battery(BessParams.from_config(BessConfig(), in_use=False))
    assert idle.ageing is None and idle.params.calendar_fade_per_h == 0.0


def test_lto_calendar_gain_is_not_credited() -> None:
    """BLAST-Lite's LTO model gains capacity at rest: the battery's capacity never rises
    above its previous value (the BMS keeps the rated capacity)."""
    b = Battery(BessParams.from_config(BessConfig(chemistry="lto")))
    assert b.ageing is not None
    t_s = np.arange(25) * 3600.0
    for d in range(30):
        b.age_chunk(t_s + d * 86400.0, np.full(25, 0.5), np.full(25, 25.0))
        assert b.cap_kwh <= 2000.0
    assert b.ageing.q > 1.0 and b.cap_kwh == 2000.0

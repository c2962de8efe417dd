"""Ageing of the default LFP battery in real runs against NREL BLAST-Lite run directly on
the same SOC and cell-temperature series (issue 19, point 2), EFC over the usable window and
no fade without a battery (point 5).

BLAST-Lite 1.1.1 is installed without its dependencies and run with ``np.trapz`` pointed at
``np.trapezoid`` (see ``tests/unit/test_ageing_blast.py``); skipped without the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import SCENARIOS
from twin.components.ageing import cell_temperature_c
from twin.config import load_scenario
from twin.engine import simulate
from twin.engine.driver import RunOutput
from twin.engine.results import build_results


@pytest.fixture
def blast(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``blast.models`` of the installed BLAST-Lite (numpy-2 name of ``trapz`` restored)."""
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    return pytest.importorskip("blast.models")


def _run(**sets: object) -> RunOutput:
    return simulate(load_scenario(SCENARIOS / "annual.yaml", dict(sets)))


def _series(out: RunOutput, n: int) -> dict[str, np.ndarray]:
    """The run's first ``n`` steps as BLAST-Lite input: time [s], SOC of the present
    capacity and the container model's cell temperature [°C] at the start and each step end."""
    rec, bess = out.rec, out.scenario.site.bess
    soc = np.concatenate(([bess.soc_initial_frac], rec.e_bess_stored_kwh[:n] / rec.cap_kwh[:n]))
    assert out.inputs.t_air_c is not None
    t_cell = cell_temperature_c(out.inputs.t_air_c, out.scenario.config.dt, bess.hvac_setpoint_c,
                                bess.hvac_coupling_frac, bess.container_tau_h)[:n]
    return {"Time_s": np.arange(n + 1) * out.scenario.config.dt, "SOC": soc,
            "Temperature_C": np.concatenate((t_cell[:1], t_cell))}


#: The BLAST-Lite class of each chemistry (capacity fade).
REF = {"lfp": "Lfp_Gr_250AhPrismatic", "nmc": "Nmc111_Gr_Kokam75Ah_Battery",
       "lto": "Nmc_Lto_10Ah_Battery"}


def _blast_fade(blast: Any, series: dict[str, np.ndarray], chem: str = "lfp") -> float:
    cell = getattr(blast, REF[chem])()
    cell.simulate_battery_life(series, is_conserve_energy_throughput=False)
    return float(1.0 - cell.outputs["q"][-1])


def test_year_one_fade_is_blast_lite_on_the_runs_series(blast: Any) -> None:
    """A year at 1-h ticks: the twin's fade within 10 % (it is ~0.1 %) of BLAST-Lite's on the
    run's own SOC and cell temperature; the temperature is used (warmer than 25 °C)."""
    out = _run(dt="1h")
    s = build_results(out).summary
    fade = s["capacity_fade_percent"] / 100.0
    ref = _blast_fade(blast, _series(out, out.steps_done))
    assert fade == pytest.approx(ref, rel=0.10)
    assert 0.015 < fade < 0.035
    # aged once a day during the run (not once at the end): the capacity steps down daily
    cap = out.rec.cap_kwh[:out.steps_done]
    assert np.count_nonzero(np.diff(cap) < 0) == 365  # each day's last step
    assert np.all(np.diff(cap)[np.diff(cap) != 0][:10] < 0)
    assert s["ageing_model"] == "blast"
    # the container: setpoint 25 °C plus half of the ambient's excess (the annual scenario's
    # ambient is the TMY's air temperature, mean ~25.7 °C)
    t_air = float(np.mean(out.inputs.t_air_c))
    assert s["t_cell_mean_c"] == pytest.approx(25.0 + 0.5 * (t_air - 25.0), abs=0.05)
    assert s["t_cell_mean_c"] > 25.1
    assert s["resistance_growth_percent"] > 0.0
    assert s["capacity_fade_cycle_percent"] + s["capacity_fade_calendar_percent"] == \
        pytest.approx(s["capacity_fade_percent"], rel=1e-9)


@pytest.mark.parametrize("chem", ["nmc", "lto"])
def test_nmc_and_lto_year_one_fade_is_blast_lite(blast: Any, chem: str) -> None:
    """The NMC and LTO batteries' year (1-h ticks) against their BLAST-Lite models."""
    out = _run(dt="1h", **{"bess.chemistry": chem})
    s = build_results(out).summary
    ref = _blast_fade(blast, _series(out, out.steps_done), chem)
    assert s["capacity_fade_percent"] / 100.0 == pytest.approx(ref, rel=0.10)
    assert (s["resistance_growth_percent"] is None) == (chem == "lto")


@pytest.mark.slow
def test_ten_years_fade_is_blast_lite_on_the_runs_series(blast: Any) -> None:
    """``twin run scenarios/annual.yaml --set duration=3650d``: year-1 and year-10 fade
    within 10 % of BLAST-Lite run directly on the same series; ten years fade far less than
    ten times a year (√t calendar law)."""
    out = _run(duration="3650d")
    s = build_results(out).summary
    per_year = round(365 * 86400 / out.scenario.config.dt)
    cap0 = out.scenario.site.bess.e_capacity_kwh
    fade1 = 1.0 - out.rec.cap_kwh[per_year - 1] / cap0
    fade10 = s["capacity_fade_percent"] / 100.0
    assert fade1 == pytest.approx(_blast_fade(blast, _series(out, per_year)), rel=0.10)
    assert fade10 == pytest.approx(_blast_fade(blast, _series(out, out.steps_done)), rel=0.10)
    assert 0.08 < fade10 < 0.15
    assert fade10 < 6.0 * fade1


def test_no_bess_has_no_battery_to_age() -> None:
    """no_bess: no fade, no cycles, no resistance or temperature rows; the same week with
    the battery in use fades."""
    base = build_results(_run(duration="7d", controller="no_bess"))
    s = base.summary
    assert s["bess_in_use"] is False and s["ageing_model"] == "none"
    assert s["capacity_fade_percent"] == 0.0 == s["capacity_fade_calendar_percent"]
    assert s["efc_usable"] == 0.0 == s["efc_usable_per_day"]
    assert s["resistance_growth_percent"] is None and s["t_cell_mean_c"] is None
    assert (base.timeseries["capacity_kwh"] == s["capacity_kwh"]).all()
    used = build_results(_run(duration="7d")).summary
    assert used["capacity_fade_percent"] > 0.0 and used["bess_in_use"] is True


def test_efc_over_the_usable_window() -> None:
    """EFC per day = AC discharge ÷ ((SOC max − SOC min) × capacity) ÷ days; the seeds'
    figure is kept only as 'discharge per nominal capacity per day'."""
    out = _run(duration="14d", dt="1h")
    s = build_results(out).summary
    b = out.scenario.site.bess
    usable = (b.soc_max_frac - b.soc_min_frac) * b.e_capacity_kwh
    assert s["efc_usable_per_day"] == pytest.approx(s["bess_discharge_kwh"] / usable / 14.0)
    assert s["efc_usable"] == pytest.approx(s["efc_usable_per_day"] * 14.0)
    assert s["discharge_per_nominal_capacity_per_day"] == pytest.approx(
        s["efc_usable_per_day"] * (b.soc_max_frac - b.soc_min_frac))
    assert "cycles_per_day" not in s

"""``twin hil --metrics-addr`` at the two-battery Nairobi site: the per-battery series come
from the same record as ``twin live`` (filled from the devices' telemetry here), scraped
over HTTP, and sum to the site totals."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from twin.app.hil import HilSettings, run_hil, serve_metrics
from twin.config import load_scenario
from twin.monitoring.metrics import J_PER_KWH, TwinMetrics

ROOT = Path(__file__).resolve().parents[2]
NAIROBI = ROOT / "config" / "sites" / "nairobi_mall.yaml"
NAMES = ["lfp_main", "nmc_second_life"]


def test_hil_two_batteries_export_per_battery_series(tmp_path: Path) -> None:
    p = tmp_path / "nairobi_evening.yaml"
    # the evening: the peak period (18-22) discharges both batteries
    p.write_text(yaml.safe_dump({"name": "nairobi_evening", "site": str(NAIROBI),
                                 "start": "2024-03-04T12:00:00", "duration": "8h",
                                 "dt": "15min", "seed": 1, "controller": "six_phase"}))
    m = TwinMetrics()
    server = serve_metrics("127.0.0.1:0", m.registry, quiet=True)
    try:
        run = run_hil(load_scenario(p), settings=HilSettings(timeout_s=2.0), metrics=m)
        # the server may serve a rendering up to ConsistentRegistry.MAX_AGE_S old: poll for
        # the last step (hang guard: 30 s)
        deadline = time.monotonic() + 30.0
        while True:
            text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics",
                                          timeout=10).read().decode()
            if "twin_sim_steps_total 32.0" in text or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        server.shutdown()
    out = run.output
    assert not out.interrupted and out.steps_done == 32
    assert "twin_sim_steps_total 32.0" in text
    got: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            got.setdefault(s.name, []).append((dict(s.labels), float(s.value)))

    def parts(name: str) -> dict[str, float]:
        return {lab["battery"]: v for lab, v in got.get(name, [])}

    def total(name: str) -> float:
        (v,) = [v for _, v in got[name]]
        return v

    units = out.rec.units
    assert units is not None and list(units.names) == NAMES
    for unit, tot in (("twin_bess_unit_discharge_joules_total",
                       "twin_energy_bess_discharge_joules_total"),
                      ("twin_bess_unit_charge_joules_total", "twin_energy_bess_charge_joules_total"),
                      ("twin_bess_unit_stored_energy_joules", "twin_bess_stored_energy_joules"),
                      ("twin_bess_unit_power_watts", "twin_bess_power_watts")):
        v = parts(unit)
        assert sorted(v) == NAMES, (unit, v)
        assert sum(v.values()) == pytest.approx(total(tot), rel=1e-9, abs=1e-6), unit
    dis = parts("twin_bess_unit_discharge_joules_total")
    for i, name in enumerate(NAMES):  # each battery's telemetry, as the record holds it
        assert dis[name] == pytest.approx(float(units.e_discharge_kwh[:, i].sum()) * J_PER_KWH,
                                          rel=1e-9)
        assert dis[name] > 0, name
    assert sorted(lab["period"] for lab, _ in got["twin_tariff_period"]) == \
        ["offpeak", "peak", "shoulder"]

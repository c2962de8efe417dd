"""``twin hil --metrics-addr``: the full metric catalogue, as ``twin live``, plus the links."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from twin.app.cli import main
from twin.app.hil import HilSettings, run_hil, serve_metrics
from twin.config import load_scenario
from twin.monitoring.catalogue import CATALOGUE
from twin.monitoring.metrics import J_PER_KWH, TwinMetrics

ROOT = Path(__file__).resolve().parents[2]
#: A morning: PV, EV sessions and the battery all move (the simulator runs the same).
SETS = ("start=2024-03-04T06:00:00", "duration=6h")


def _scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def test_hil_lockstep_exports_the_full_catalogue() -> None:
    """Every metric a running twin publishes (the catalogue's ``live`` rows) is exported by a
    lockstep run against the real simulator, and the energy counters are the run's record."""
    m = TwinMetrics()
    server = serve_metrics("127.0.0.1:0", m.registry, quiet=True)
    try:
        scn = load_scenario(ROOT / "scenarios" / "hil.yaml", dict(s.split("=", 1) for s in SETS))
        run = run_hil(scn, settings=HilSettings(sets=SETS), metrics=m)
        got = _scrape(server.server_port)
    finally:
        server.shutdown()
    out = run.output
    assert not out.interrupted and out.steps_done == 24
    want = {s.exposed for s in CATALOGUE if s.live}
    missing = sorted(n for n in want if not any(k == n or k.startswith(n + "_") for k in got))
    assert not missing, f"catalogue metrics not exported by twin hil: {missing}"

    def one(name: str, **labels: str) -> float:
        vals = [v for lab, v in got[name] if all(lab.get(k) == x for k, x in labels.items())]
        assert len(vals) == 1, (name, labels, got.get(name))
        return vals[0]

    rec = out.rec
    assert one("twin_sim_steps_total") == 24
    assert one("twin_energy_ev_joules_total") == pytest.approx(
        float(rec.e_ev_kwh.sum()) * J_PER_KWH, rel=1e-9) and rec.e_ev_kwh.sum() > 0
    assert one("twin_energy_pv_joules_total") == pytest.approx(
        float(rec.p_pv_kw.sum()) * 0.25 * J_PER_KWH, rel=1e-9) and rec.p_pv_kw.sum() > 0
    assert one("twin_bess_stored_energy_joules") == pytest.approx(
        float(rec.e_bess_stored_kwh[23]) * J_PER_KWH)
    assert one("twin_ev_sessions_arrived_total") > 0
    assert one("twin_comm_requests_total", device="bess") > 0
    assert one("twin_run_info", mode="hil") == 1.0
    # the links' own metrics, on the same registry
    assert one("twin_hil_step") == 24.0
    assert one("twin_hil_telemetry_valid", device="chargers") == 1.0
    assert one("twin_hil_cycle_seconds_count") == 24.0


def test_bad_metrics_addr_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["hil", str(ROOT / "scenarios" / "hil.yaml"), "--metrics-addr", "localhost:http"])
    assert rc == 2 and "--metrics-addr" in capsys.readouterr().err

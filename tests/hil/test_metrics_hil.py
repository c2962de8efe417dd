"""``twin hil --metrics-addr``: Prometheus metrics of the comm links."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client import start_http_server

from twin.app.cli import main
from twin.app.hil import HilSettings, run_hil
from twin.config import load_scenario
from twin.monitoring.hil import HilMetrics

ROOT = Path(__file__).resolve().parents[2]


def test_metrics_served_during_and_after_the_run() -> None:
    m = HilMetrics()
    server, _ = start_http_server(0, addr="127.0.0.1", registry=m.registry)
    try:
        scn = load_scenario(ROOT / "scenarios" / "hil.yaml", {"duration": "6h"})
        run_hil(scn, settings=HilSettings(sets=("duration=6h",)), metrics=m)
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    finally:
        server.shutdown()
    assert "twin_hil_step 24.0" in text
    assert 'twin_hil_requests_total{device="bess"}' in text
    assert 'twin_hil_telemetry_valid{device="chargers"} 1.0' in text
    assert "twin_hil_cycle_seconds_count 24.0" in text


def test_bad_metrics_addr_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["hil", str(ROOT / "scenarios" / "hil.yaml"), "--metrics-addr", "localhost:http"])
    assert rc == 2 and "--metrics-addr" in capsys.readouterr().err

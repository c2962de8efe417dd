"""``twin shadow --metrics-addr``: the live metric catalogue for the site as measured.

A shadow run follows our simulator (real time on loopback, the site's own EMS driving the
battery) for a few simulated hours and serves its metrics over HTTP; the scrape at the end
holds every live catalogue family except the controller-only ones (which it must not
hold), its energy counters are what the shadow's own per-step table
(``timeseries.parquet``) integrates, and no register was written.
"""

from __future__ import annotations

import math
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.hil.sim_process import start_simulator, stop_simulator
from twin.app.hil import HilSettings, serve_metrics
from twin.app.shadow import run_shadow, write_shadow
from twin.config import load_scenario
from twin.monitoring.catalogue import BY_NAME, CATALOGUE, CONTROLLER_ONLY
from twin.monitoring.metrics import J_PER_KWH
from twin.monitoring.shadow import ShadowMetrics

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "shadow.yaml"
SETS = {"start": "2024-03-04T08:00:00", "duration": "3h"}
N_TICKS = 12
DT_H = 0.25
SPEED = 900.0  # one 15-min step a wall second

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(port: int) -> Samples:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def _one(got: Samples, name: str, **labels: str) -> float:
    vals = [v for lab, v in got.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(vals) == 1, (name, labels, got.get(name))
    return vals[0]


def _simulator(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    """``python -m simulators`` in real time, its own EMS on the battery; its devices file."""
    return start_simulator(tmp, SCENARIO, SPEED, SETS)


def _stop(proc: subprocess.Popen[str]) -> dict[str, object]:
    return stop_simulator(proc)


def _scrape_settled(port: int, steps: int) -> Samples:
    """Scrape until the last settled step shows (renders lag a step by <= 0.1 s)."""
    end = time.monotonic() + 10.0
    while True:
        got = _scrape(port)
        if got.get("twin_sim_steps_total", [({}, -1.0)])[0][1] >= steps:
            return got
        assert time.monotonic() < end, got.get("twin_sim_steps_total")
        time.sleep(0.05)


def test_shadow_serves_the_live_catalogue_of_the_site_as_measured(tmp_path: Path) -> None:
    scn = load_scenario(SCENARIO, dict(SETS))
    assert scn.config.n_steps == N_TICKS
    proc, devices = _simulator(tmp_path)
    m = ShadowMetrics()
    server = serve_metrics("127.0.0.1:0", m.registry, quiet=True)
    try:
        st = HilSettings(timeout_s=1.0, read_only=True, clock="wall", speed=SPEED,
                         devices=devices)
        run = run_shadow(scn, st, metrics=m)
        got = _scrape_settled(server.server_port, N_TICKS - 1)
    finally:
        server.shutdown()
        report = _stop(proc)
    assert run.fault is None and run.steps_done == N_TICKS
    write_shadow(run, tmp_path / "out")
    # read-only: not one write reached any device
    servers = report["servers"]
    assert isinstance(servers, dict) and servers
    for dev, s in servers.items():
        assert s["write_requests"] == 0 and s["registers_written"] == 0, (dev, s)

    # the live catalogue, less the controller-only families (and none of those)
    assert CONTROLLER_ONLY and all(BY_NAME[n].live for n in CONTROLLER_ONLY)
    want = {s.exposed for s in CATALOGUE if s.live and s.name not in CONTROLLER_ONLY}

    def shown(n: str) -> bool:
        return any(k == n or k.startswith(n + "_") for k in got)

    assert not sorted(n for n in want if not shown(n)), "live metrics not exported by shadow"
    assert not sorted(BY_NAME[n].exposed for n in CONTROLLER_ONLY if shown(BY_NAME[n].exposed))
    assert all(not k.startswith("twin_shadow_") or k in got for k in m.names())
    assert _one(got, "twin_run_info", mode="shadow", controller="none") == 1.0
    # a step is settled by the next tick's read: N ticks, N - 1 steps
    assert _one(got, "twin_shadow_step") == N_TICKS
    assert _one(got, "twin_sim_steps_total") == N_TICKS - 1
    assert _one(got, "twin_sim_time_seconds") == scn.index[N_TICKS - 1].timestamp()

    # the energy counters are what the shadow's own per-step table integrates
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert len(ts) == N_TICKS - 1, "the per-step table lost a step at an end (see model.py)"

    def nz(col: str) -> np.ndarray:
        return np.nan_to_num(ts[col].to_numpy(dtype=float))  # not read: 0 kWh

    def joules(p_kw: np.ndarray) -> float:
        return float(math.fsum(p_kw * DT_H)) * J_PER_KWH

    pv, bess = nz("p_pv_kw"), nz("p_bess_kw")
    grid = np.maximum(nz("p_mall_kw") + nz("p_ev_kw") - pv - bess, 0.0)
    ok = ts["p_grid_kw"].notna().to_numpy()
    assert ok.sum() >= N_TICKS - 3 and np.allclose(grid[ok], ts["p_grid_kw"].to_numpy()[ok])
    for name, p_kw in (("pv", pv), ("grid_import", grid), ("ev", nz("p_ev_kw")),
                       ("mall", nz("p_mall_kw")), ("bess_discharge", np.maximum(bess, 0.0)),
                       ("bess_charge", np.maximum(-bess, 0.0))):
        assert _one(got, f"twin_energy_{name}_joules_total") == pytest.approx(
            joules(p_kw), rel=1e-9, abs=1e-3), name
    assert pv.sum() > 0 and grid.sum() > 0 and np.abs(bess).sum() > 0  # all of them moved
    # the battery state at the end of the last settled step, as the table's last row
    soc = float(ts["soc_percent"].iloc[-1]) / 100.0
    if math.isfinite(soc):
        assert _one(got, "twin_bess_soc_ratio") == pytest.approx(soc, rel=1e-6)
    assert _one(got, "twin_comm_requests_total", device="bess") >= N_TICKS

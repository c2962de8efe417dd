"""The shipped dashboard at the two-battery Nairobi site, in a real Prometheus (no mocks):
``twin run`` → ``twin export openmetrics`` → promtool blocks → Prometheus → the dashboard's
PromQL. The per-battery panels show each battery by its site-file name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from tests.conftest import ROOT, write_yaml
from tests.integration.test_monitoring import (
    DASHBOARD,
    PROMETHEUS,
    PROMTOOL,
    WAIT_S,
    Prom,
    dashboard_exprs,
    start_prometheus,
    stop_process,
    twin_cmd,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="needs Debian's prometheus package: run `bash scripts/sysdeps.sh` (make test does)")

NAIROBI = ROOT / "config" / "sites" / "nairobi_mall.yaml"
NAMES = ["lfp_main", "nmc_second_life"]


def _run(cmd: list[str]) -> None:
    import subprocess

    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=WAIT_S, check=False)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()[-2000:]


@pytest.fixture(scope="module")
def nairobi_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prom, Any, float]]:
    tmp = tmp_path_factory.mktemp("nairobi_backfill")
    scn = write_yaml(tmp / "nairobi_2d.yaml", {
        "name": "nairobi_2d", "site": str(NAIROBI), "start": "2024-03-04T00:00:00",
        "duration": "2d", "dt": "15min", "seed": 1, "controller": "six_phase"})
    run, om, data = tmp / "run", tmp / "run.om", tmp / "tsdb"
    _run(twin_cmd("run", str(scn), "--out", str(run), "-q"))
    _run(twin_cmd("export", "openmetrics", str(run), "-o", str(om)))
    data.mkdir()
    _run([str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", str(om), str(data)])
    prom = start_prometheus(tmp, "prom-nairobi", "global:\n  scrape_interval: 15s\n", data,
                            ("--storage.tsdb.retention.time=100y",))
    try:
        ts = pd.read_parquet(run / "timeseries.parquet")
        dt = json.loads((run / "summary.json").read_text())["dt_s"]
        t_last = float(pd.DatetimeIndex(ts["timestamp"]).as_unit("s").asi8[-1]) + dt
        wait_for("the backfilled blocks", lambda: prom.query("twin_sim_steps_total", time=t_last))
        yield prom, ts, t_last
    finally:
        stop_process(prom.proc)


def _panel_expr(title: str) -> str:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    (p,) = [p for p in panels if p.get("title") == title]
    return str(p["targets"][0]["expr"])


def test_per_battery_panels_show_each_battery(nairobi_prom: tuple[Prom, Any, float]) -> None:
    prom, ts, t_last = nairobi_prom
    k = len(ts) // 2 + 72  # the second day's 18:00 step: peak, both batteries discharge
    t = float(pd.DatetimeIndex(ts["timestamp"]).as_unit("s").asi8[k]) + 900.0
    res = prom.query(_panel_expr("Battery power by battery"), time=t)
    got = {r["metric"]["battery"]: float(r["value"][1]) for r in res}
    assert sorted(got) == NAMES
    for name in NAMES:
        want = (ts[f"bess_discharge_kwh_{name}"] - ts[f"bess_charge_kwh_{name}"]).iloc[k] * 4e3
        assert got[name] == pytest.approx(want, rel=1e-9, abs=1e-6), name
        assert got[name] > 0, name
    (diff,) = prom.query("sum(twin_bess_unit_power_watts) - on() twin_bess_power_watts", time=t)
    assert float(diff["value"][1]) == pytest.approx(0.0, abs=1e-6)
    res = prom.query(_panel_expr("State of charge by battery"), time=t_last)
    assert sorted(r["metric"]["battery"] for r in res) == NAMES


def test_every_dashboard_expression_returns_data_at_the_second_site(
        nairobi_prom: tuple[Prom, Any, float]) -> None:
    prom, _, t_last = nairobi_prom
    missing = [e for e in dashboard_exprs() if not prom.query(e, time=t_last)]
    assert not missing, f"dashboard expressions with no data at the Nairobi site: {missing}"
    periods = {r["metric"]["period"] for r in prom.query("twin_tariff_period", time=t_last)}
    assert periods == {"peak", "shoulder", "offpeak"}

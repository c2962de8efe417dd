"""Prometheus metrics of a site with several batteries (issue 17, point 4), scraped over a
real HTTP server (``twin.monitoring.http``) and checked with promtool.

With two or more batteries the sink publishes per-battery families (label ``battery`` = the
name in the site file) beside the site totals, and they sum to the totals at every step;
a one-battery site publishes exactly one per-battery series (``battery="bess"``), equal to
the totals. The tariff period gauge carries the site's own period names.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, write_yaml
from twin.app.hil import serve_metrics
from twin.config import load_scenario
from twin.engine import Twin
from twin.engine.results import build_results
from twin.monitoring.catalogue import CATALOGUE
from twin.monitoring.metrics import J_PER_KWH, MetricsSink, TwinMetrics, samples_by_name

NAIROBI = ROOT / "config" / "sites" / "nairobi_mall.yaml"
ONE_BATTERY = ROOT / "config" / "site.yaml"
NAMES = ["lfp_main", "nmc_second_life"]
UNIT_FAMILIES = [s.exposed for s in CATALOGUE if "battery" in s.labels]

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scenario(tmp: Path, site: Path, duration: str = "1d") -> Path:
    return write_yaml(tmp / "scenario.yaml", {
        "name": "metrics_batteries", "site": str(site), "start": "2024-03-04T00:00:00",
        "duration": duration, "dt": "15min", "seed": 1, "controller": "six_phase"})


def _scrape(port: int, steps: int) -> tuple[str, Samples]:
    """A scrape showing ``steps`` settled steps: the server may serve a rendering up to
    ``ConsistentRegistry.MAX_AGE_S`` old, so poll (hang guard: 30 s)."""
    deadline = time.monotonic() + 30.0
    while True:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                      timeout=10).read().decode()
        out: Samples = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        if _total(out, "twin_sim_steps_total") == steps or time.monotonic() > deadline:
            return text, out
        time.sleep(0.05)


def _total(s: Samples, name: str) -> float:
    vals = [v for _, v in s[name]]
    assert len(vals) == 1, (name, s.get(name))
    return vals[0]


def _by_battery(s: Samples, name: str) -> dict[str, float]:
    return {lab["battery"]: v for lab, v in s.get(name, [])}


def _check_sums(s: Samples, where: str, names: list[str] = NAMES) -> None:
    """Per-battery series sum to the site totals (powers, stored energy, capacity, counters)."""
    for unit, total in (("twin_bess_unit_power_watts", "twin_bess_power_watts"),
                        ("twin_bess_unit_stored_energy_joules", "twin_bess_stored_energy_joules"),
                        ("twin_bess_unit_capacity_joules", "twin_bess_capacity_joules"),
                        ("twin_bess_unit_charge_joules_total",
                         "twin_energy_bess_charge_joules_total"),
                        ("twin_bess_unit_discharge_joules_total",
                         "twin_energy_bess_discharge_joules_total")):
        parts = _by_battery(s, unit)
        assert sorted(parts) == names, (where, unit, parts)
        assert sum(parts.values()) == pytest.approx(_total(s, total), rel=1e-9, abs=1e-6), \
            (where, unit)


@pytest.fixture(scope="module")
def nairobi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One day at the two-battery Nairobi site with the sink, scraped over HTTP at the end;
    the per-battery sums are checked after every step."""
    tmp = tmp_path_factory.mktemp("nairobi_metrics")
    twin = Twin(load_scenario(_scenario(tmp, NAIROBI)))
    m = TwinMetrics()
    sink = MetricsSink(twin, m, run_id="nairobi")
    start = samples_by_name(m)
    moved = {"charge": 0, "discharge": 0}

    def on_step(k: int) -> None:
        sink(k)
        s = samples_by_name(m)
        _check_sums(s, f"step {k}")
        p = _by_battery(s, "twin_bess_unit_power_watts")
        moved["charge"] += all(v < 0 for v in p.values())
        moved["discharge"] += all(v > 0 for v in p.values())

    twin.on_step = on_step
    server = serve_metrics("127.0.0.1:0", m.registry, quiet=True)
    try:
        res = build_results(twin.run())
        text, got = _scrape(server.server_port, res.summary["steps_done"])
    finally:
        server.shutdown()
    return {"start": start, "text": text, "got": got, "res": res, "moved": moved}


def test_two_batteries_publish_per_battery_series_summing_to_the_totals(
        nairobi: dict[str, Any]) -> None:
    got, res = nairobi["got"], nairobi["res"]
    assert _total(got, "twin_sim_steps_total") == 96
    _check_sums(got, "HTTP scrape")
    # both batteries worked in both directions during the day (the sums are not 0 = 0)
    assert nairobi["moved"]["charge"] > 0 and nairobi["moved"]["discharge"] > 0
    # the counters are each battery's record, as summary["batteries"] states it
    units = {u["name"]: u for u in res.summary["batteries"]}
    for key, fam in (("bess_charge_kwh", "twin_bess_unit_charge_joules_total"),
                     ("bess_discharge_kwh", "twin_bess_unit_discharge_joules_total")):
        for name, v in _by_battery(got, fam).items():
            assert v == pytest.approx(units[name][key] * J_PER_KWH, rel=1e-9), (fam, name)
            assert v > 0, (fam, name)
    # each battery's SOC is its own stored energy over its own capacity, at the run's end
    ts = res.timeseries
    for name, soc in _by_battery(got, "twin_bess_unit_soc_ratio").items():
        assert soc * 100.0 == pytest.approx(float(ts[f"soc_percent_{name}"].iloc[-1]), rel=1e-9)
    cmd = _by_battery(got, "twin_bess_unit_command_watts")
    for name, w in cmd.items():
        assert w == pytest.approx(float(ts[f"p_bess_command_kw_{name}"].iloc[-1]) * 1e3)


def test_two_batteries_start_at_the_site_file_state(nairobi: dict[str, Any]) -> None:
    """Before the first step: each battery at its own initial SOC and capacity."""
    s = nairobi["start"]
    assert _by_battery(s, "twin_bess_unit_soc_ratio") == {"lfp_main": 0.5, "nmc_second_life": 0.5}
    assert _by_battery(s, "twin_bess_unit_capacity_joules") == {
        "lfp_main": 1000 * J_PER_KWH, "nmc_second_life": 500 * J_PER_KWH}


def test_tariff_period_gauge_names_the_sites_periods(nairobi: dict[str, Any]) -> None:
    periods = _by_battery_like(nairobi["got"], "twin_tariff_period", "period")
    assert sorted(periods) == ["offpeak", "peak", "shoulder"]
    assert sorted(periods.values()) == [0.0, 0.0, 1.0]
    # the run ends at midnight: the last step (23:45) is off-peak
    assert periods["offpeak"] == 1.0


def _by_battery_like(s: Samples, name: str, label: str) -> dict[str, float]:
    return {lab[label]: v for lab, v in s.get(name, [])}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs Debian's prometheus package")
def test_promtool_accepts_the_two_battery_exposition(nairobi: dict[str, Any]) -> None:
    r = subprocess.run(["promtool", "check", "metrics"], input=nairobi["text"], text=True,
                       capture_output=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_one_battery_site_publishes_one_series_equal_to_the_totals(tmp_path: Path) -> None:
    """The default (Iquitos) site: one series per family (``battery="bess"``, the name of a
    site's one battery), equal to the totals at every step, so a sum over batteries is the
    site total at any site. Its tariff periods stay HP / HFP."""
    twin = Twin(load_scenario(_scenario(tmp_path, ONE_BATTERY)))
    m = TwinMetrics()
    sink = MetricsSink(twin, m)
    moved = [0]

    def on_step(k: int) -> None:
        sink(k)
        s = samples_by_name(m)
        _check_sums(s, f"step {k}", ["bess"])
        moved[0] += _by_battery(s, "twin_bess_unit_power_watts")["bess"] != 0.0

    twin.on_step = on_step
    server = serve_metrics("127.0.0.1:0", m.registry, quiet=True)
    try:
        out = twin.run()
        _text, got = _scrape(server.server_port, out.steps_done)
    finally:
        server.shutdown()
    assert _total(got, "twin_sim_steps_total") == 96 and moved[0] > 0
    for fam in UNIT_FAMILIES:
        assert [lab["battery"] for lab, _ in got[fam]] == ["bess"], fam
    _check_sums(got, "HTTP scrape", ["bess"])
    assert _total(got, "twin_bess_unit_soc_ratio") == _total(got, "twin_bess_soc_ratio")
    assert sorted(_by_battery_like(got, "twin_tariff_period", "period")) == ["HFP", "HP"]


def test_export_backfills_the_per_battery_series_the_live_sink_ends_with(
        nairobi: dict[str, Any]) -> None:
    """``twin export openmetrics`` derives the same per-battery families from the run's
    per-battery columns; each ends at the value the live sink published last."""
    from twin.app.export import families

    res, got = nairobi["res"], nairobi["got"]
    fams = {f.name: f for f in families(res.timeseries, res.summary, labels={},
                                        dt_s=res.summary["dt_s"])}
    for spec in CATALOGUE:
        if "battery" not in spec.labels:
            continue
        f = fams[spec.name]
        last = {lab.split('"')[1]: float(v[-1]) for lab, v in f.series}
        assert sorted(last) == NAMES, spec.name
        live = _by_battery(got, spec.exposed)
        for name in NAMES:
            assert last[name] == pytest.approx(live[name], rel=1e-9, abs=1e-6), (spec.name, name)
    periods = [lab.split('"')[1] for lab, _ in fams["twin_tariff_period"].series]
    assert periods == ["peak", "shoulder", "offpeak"]  # the site file's order, no HP / HFP

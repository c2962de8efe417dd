"""Metrics sink, catalogue docs, OpenMetrics export, logs and the live clock (in-process)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from twin.app.export import families
from twin.app.live import LiveEnvironment, parse_addr
from twin.config import load_scenario
from twin.engine import Twin
from twin.engine.results import build_results
from twin.monitoring.logs import EventLog, SimClock, make_logger
from twin.monitoring.metrics import FLOWS, J_PER_KWH, MetricsSink, TwinMetrics, family_names, samples_by_name

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "data" / "monitoring_2d.yaml"
DOC = ROOT / "docs" / "metrics.md"


@pytest.fixture(scope="module")
def fed() -> tuple[MetricsSink, Any, list[dict[str, Any]]]:
    """A 2-day run with the metrics sink and the event log attached."""
    scn = load_scenario(SCENARIO)
    twin = Twin(scn)
    sink = MetricsSink(twin, run_id="test-run")
    buf = io.StringIO()
    log = make_logger("test-run", SimClock(twin.env, twin.start_utc, scn.site.location.tz),
                      stream=buf, json=True)
    events = EventLog(twin, log).attach()

    def on_step(k: int) -> None:
        sink(k)
        events.on_step(k)

    twin.on_step = on_step
    res = build_results(twin.run())
    lines = [json.loads(ln) for ln in buf.getvalue().splitlines()]
    return sink, res, lines


def _one(s: dict[str, list[tuple[dict[str, str], float]]], name: str,
         **labels: str) -> float:
    vals = [v for lab, v in s[name] if all(lab.get(k) == x for k, x in labels.items())]
    assert len(vals) == 1, (name, labels, s.get(name))
    return vals[0]


def test_sink_counters_equal_the_run_outputs(fed: tuple[MetricsSink, Any, Any]) -> None:
    sink, res, _ = fed
    s = samples_by_name(sink.m)
    ts = res.timeseries
    summ = res.summary
    for flow, col in FLOWS.items():
        assert _one(s, f"twin_energy_{flow}_joules_total") == pytest.approx(
            ts[col].sum() * J_PER_KWH, rel=1e-9, abs=1e-6), flow
    for name, key in (("pv", "pv_kwh"), ("ev", "ev_kwh"), ("mall", "mall_kwh"),
                      ("grid_import", "grid_import_kwh"), ("bess_charge", "bess_charge_kwh"),
                      ("bess_discharge", "bess_discharge_kwh")):
        assert _one(s, f"twin_energy_{name}_joules_total") == pytest.approx(
            summ[key] * J_PER_KWH, rel=1e-9, abs=1e-6), name
    assert _one(s, "twin_grid_cost_total", currency="PEN") == pytest.approx(
        summ["cost_grid_import_soles"], rel=1e-9)
    assert _one(s, "twin_co2_grid_grams_total") == pytest.approx(summ["co2_emissions_kg"] * 1e3,
                                                                 rel=1e-9)
    assert _one(s, "twin_co2_avoided_grams_total") == pytest.approx(
        summ["co2_avoided_bess_seed_formula_kg"] * 1e3, rel=1e-9)
    assert _one(s, "twin_bess_soc_ratio") == pytest.approx(ts["soc_percent"].iloc[-1] / 100.0)
    assert _one(s, "twin_ev_sessions_served_total") == summ["sessions_served"]
    assert _one(s, "twin_ev_sessions_turned_away_total") == summ["sessions_turned_away"]
    assert _one(s, "twin_ev_sessions_arrived_total") == summ["sessions_total"]
    assert _one(s, "twin_sim_steps_total") == summ["steps_done"] == 192
    t_end = pd.Timestamp(ts["timestamp"].iloc[-1]).timestamp() + summ["dt_s"]
    assert _one(s, "twin_sim_time_seconds") == t_end
    for reason, n in summ["safety_clamps_by_reason"].items():
        assert _one(s, "twin_safety_clamps_total", reason=reason) == n
    # the simulated day of the last step
    last_day = ts["timestamp"].dt.date == ts["timestamp"].iloc[-1].date()
    assert _one(s, "twin_today_grid_cost", currency="PEN") == pytest.approx(
        ts.loc[last_day, "grid_cost_soles"].sum(), rel=1e-9)
    assert _one(s, "twin_today_co2_grid_grams") == pytest.approx(
        ts.loc[last_day, "co2_grid_kg"].sum() * 1e3, rel=1e-9)
    # one acting phase, the last one
    phases = {lab["phase"]: v for lab, v in s["twin_controller_phase"]}
    assert sum(phases.values()) == 1.0
    assert phases[str(ts["phase_name"].iloc[-1])] == 1.0
    assert _one(s, "twin_tariff_period", period=str(ts["tariff_period"].iloc[-1])) == 1.0
    # powers of the last step [W]
    dt_h = summ["dt_s"] / 3600.0
    assert _one(s, "twin_pv_power_watts") == pytest.approx(ts["pv_kwh"].iloc[-1] / dt_h * 1e3)
    assert _one(s, "twin_bess_power_watts") == pytest.approx(ts["p_bess_kw"].iloc[-1] * 1e3)
    sock = [v for _lab, v in s["twin_socket_power_watts"]]
    assert len(sock) == 38
    assert _one(s, "twin_controller_decide_seconds_count") == 192
    assert _one(s, "twin_comm_requests_total", device="bess") > 0


def test_sink_does_not_change_the_run(fed: tuple[MetricsSink, Any, Any]) -> None:
    _, res, _ = fed
    plain = build_results(Twin(load_scenario(SCENARIO)).run())
    pd.testing.assert_frame_equal(plain.timeseries, res.timeseries)
    pd.testing.assert_frame_equal(plain.sessions, res.sessions)


def test_event_log_lines(fed: tuple[MetricsSink, Any, Any]) -> None:
    _, res, lines = fed
    assert lines and all(ln["run_id"] == "test-run" and "sim_time" in ln and "t_s" in ln
                         for ln in lines)
    by = {e: [ln for ln in lines if ln["event"] == e] for e in {ln["event"] for ln in lines}}
    assert len(by.get("session_turned_away", [])) == res.summary["sessions_turned_away"]
    assert len(by.get("safety_clamp", [])) == res.summary["safety_clamps_total"]
    changes = int((np.diff(res.timeseries["phase"].to_numpy()) != 0).sum()) + 1
    assert len(by["phase_changed"]) == changes
    first = by["phase_changed"][0]
    assert first["k"] == 0 and first["sim_time"] == "2024-03-04T00:00:00-05:00"


def test_every_metric_is_documented() -> None:
    doc = DOC.read_text()
    m = TwinMetrics()
    for name in family_names(m):
        assert f"`{name}`" in doc, f"{name} missing from docs/metrics.md"
    documented = set(re.findall(r"^\| `(twin_[a-z0-9_]+)`", doc, flags=re.M))
    assert documented == set(family_names(m))


def test_export_uses_the_live_names(fed: tuple[MetricsSink, Any, Any]) -> None:
    sink, res, _ = fed
    live = set(family_names(sink.m))
    fams = families(res.timeseries, res.summary, labels={"job": "twin"}, sockets=True,
                    dt_s=res.summary["dt_s"])
    for f in fams:
        exposed = f.name + ("_total" if f.kind == "counter" else "")
        assert exposed in live, exposed
        for _labels, values in f.series:
            assert len(values) == len(res.timeseries)


@pytest.mark.parametrize(("text", "want"), [
    ("127.0.0.1:9108", ("127.0.0.1", 9108)), (":0", ("127.0.0.1", 0)), ("9200", ("127.0.0.1", 9200)),
    ("0.0.0.0:9108", ("0.0.0.0", 9108)), ("[::1]:9108", ("::1", 9108)),
])
def test_parse_addr(text: str, want: tuple[str, int]) -> None:
    assert parse_addr(text) == want


@pytest.mark.parametrize("text", ["127.0.0.1:http", "host:99999", "[::1]9108"])
def test_parse_addr_rejects(text: str) -> None:
    from twin.errors import UserError

    with pytest.raises(UserError):
        parse_addr(text)


def test_live_clock_stops_between_events() -> None:
    """A stop flag set during step 5 ends the run cleanly after 6 settled steps."""
    scn = load_scenario(SCENARIO)
    env = LiveEnvironment(speed=1e9)
    twin = Twin(scn, env=env)

    def on_step(k: int) -> None:
        if k == 5:
            env.stop_flag = True

    twin.on_step = on_step
    out = twin.run()
    assert out.interrupted and out.steps_done == 6
    res = build_results(out)
    assert len(res.timeseries) == 6 and res.summary["steps_done"] == 6


def test_console_logs_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    buf = Tty()
    clock = SimClock(None, pd.Timestamp("2024-01-01T05:00:00Z").to_pydatetime(), "America/Lima")
    make_logger("rid", clock, stream=buf).info("run_started", scenario="x")
    text = buf.getvalue()
    assert "run_started" in text and "rid" in text and "2024-01-01T00:00:00-05:00" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_docs_tables_are_generated_from_the_catalogue() -> None:
    from twin.monitoring.catalogue import render_docs

    text = DOC.read_text()
    assert render_docs(text) == text, "run: python -m twin.monitoring.catalogue --write-docs"


def test_sink_and_export_help_and_labels_come_from_the_catalogue(
        fed: tuple[MetricsSink, Any, Any]) -> None:
    from twin.monitoring.catalogue import BY_NAME, CATALOGUE

    sink, res, _ = fed
    live = {fam.name: fam for fam in sink.m.registry.collect()}
    assert set(live) == {s.name for s in CATALOGUE}
    for name, fam in live.items():
        assert fam.documentation == BY_NAME[name].help and fam.type == BY_NAME[name].kind
    fams = families(res.timeseries, res.summary, labels={}, sockets=True,
                    dt_s=res.summary["dt_s"])
    for f in fams:
        spec = BY_NAME[f.name]
        assert (f.kind, f.help) == (spec.kind, spec.help), f.name
        for labels, _ in f.series:
            keys = set(re.findall(r'(\w+)="', labels))
            assert keys == set(spec.labels), (f.name, keys)  # e.g. twin_safety_clamps{reason}


def test_export_ends_where_the_live_sink_ends(fed: tuple[MetricsSink, Any, Any]) -> None:
    """The backfill series derived from the outputs (session counters by outcome, socket
    occupancy, the in-process links' request counters, steps planned) end at the values the
    live sink published after the last step."""
    sink, res, _ = fed
    s = samples_by_name(sink.m)
    fams = {f.name: f for f in families(res.timeseries, res.summary, labels={},
                                        dt_s=res.summary["dt_s"], sessions=res.sessions)}

    def last(name: str, **labels: str) -> float:
        f = fams[name]
        vals = [v[-1] for lab, v in f.series
                if all(f'{k}="{x}"' in lab for k, x in labels.items())]
        assert len(vals) == 1, (name, labels)
        return float(vals[0])

    for name in ("arrived", "served", "satisfied", "short", "refused_closing", "turned_away"):
        assert last(f"twin_ev_sessions_{name}") == \
            _one(s, f"twin_ev_sessions_{name}_total"), name
    summ = res.summary
    assert last("twin_ev_sessions_satisfied") == summ["sessions_satisfied"]
    assert last("twin_ev_sessions_refused_closing") == summ["sessions_refused_closing"] > 0
    for i, t in enumerate(sink.socket_types):
        assert last("twin_socket_occupied", socket=f"{i:02d}", type=t) == \
            _one(s, "twin_socket_occupied", socket=f"{i:02d}", type=t)
    for t in set(sink.socket_types):
        assert last("twin_ev_sockets_occupied", type=t) == \
            _one(s, "twin_ev_sockets_occupied", type=t)
    for dev in ("bess", "chargers", "meters"):
        assert last("twin_comm_requests", device=dev) == \
            _one(s, "twin_comm_requests_total", device=dev) > 0, dev
        assert last("twin_comm_errors", device=dev) == 0.0
    assert last("twin_sim_steps_planned") == _one(s, "twin_sim_steps_planned")
    # occupancy at each step end is the plugged count the next step starts with
    occ = sum(v for _, v in fams["twin_socket_occupied"].series)
    np.testing.assert_array_equal(occ[:-1], res.timeseries["n_plugged"].to_numpy()[1:])


def test_a_scrape_right_after_the_run_sees_its_last_step() -> None:
    """A served registry renders at most every ``MIN_REFRESH_S``; the run's last step is
    rendered at once, so one scrape just after the run (no polling) shows every step."""
    import urllib.request

    from twin.app.hil import serve_metrics

    twin = Twin(load_scenario(SCENARIO))
    m = TwinMetrics()
    twin.on_step = MetricsSink(twin, m)
    server = serve_metrics("127.0.0.1:0", m.registry, quiet=True)
    try:
        out = twin.run()  # 192 steps in well under MIN_REFRESH_S of wall time each
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics",
                                      timeout=10).read().decode()
    finally:
        server.shutdown()
    steps = re.search(r"^twin_sim_steps_total (\S+)$", text, re.M)
    assert steps is not None and float(steps.group(1)) == out.steps_done == 192

"""Monitoring with real parts: the live twin, a real Prometheus, promtool (no mocks).

Prometheus and promtool come from Debian's ``prometheus`` package (``scripts/sysdeps.sh``).
Every process started here is started on loopback with an ephemeral port and killed in a
``finally``; every wait polls a condition against a deadline (``WAIT_S``), never a fixed
sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "data" / "monitoring_2d.yaml"
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "twin-site.json"
PROM_CONFIG = ROOT / "config" / "prometheus" / "prometheus.yml"
J_PER_KWH = 3.6e6

#: Upper bound of every wait in this module [s].
WAIT_S = 60.0
#: Poll period of every wait [s].
POLL_S = 0.1
#: Live speed of the shared stack: 192 steps of 900 s take ~72 s of wall time.
LIVE_SPEED = 2400.0

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="needs Debian's prometheus package: run `bash scripts/sysdeps.sh` (make test does)")

T = TypeVar("T")


# ----------------------------------------------------------------------------- helpers
def wait_for(what: str, fn: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """Poll ``fn`` until it returns a truthy value; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError) as exc:
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 + (f" (last error: {last_exc})" if last_exc else ""))
        time.sleep(POLL_S)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for programs that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return bytes(r.read())


def stop_process(p: subprocess.Popen[Any]) -> None:
    """Terminate, then kill, a process we started (never by name)."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def twin_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "twin", *args]


@dataclass
class LiveTwin:
    proc: subprocess.Popen[bytes]
    port: int
    out: Path
    stderr: Path

    def metrics_text(self) -> str:
        return http_get(f"http://127.0.0.1:{self.port}/metrics").decode()


def start_live(tmp: Path, speed: float, name: str = "live") -> LiveTwin:
    """Start ``twin live`` on port 0 and read the port from its stdout."""
    out = tmp / f"{name}-out"
    err = tmp / f"{name}.stderr"
    fh = open(err, "wb")  # noqa: SIM115 - closed below / by the process end
    proc = subprocess.Popen(
        twin_cmd("live", str(SCENARIO), "--speed", str(speed), "--metrics-addr", "127.0.0.1:0",
                 "--out", str(out)),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=fh, stdin=subprocess.DEVNULL)
    fh.close()
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        buf = bytearray()

        def port() -> int | None:
            chunk = proc.stdout.read() if proc.stdout else None  # type: ignore[union-attr]
            if chunk:
                buf.extend(chunk)
            if proc.poll() is not None and b"\n" not in buf:
                raise AssertionError(f"twin live exited early: {err.read_text()[-2000:]}")
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith("metrics: "):
                    return int(urllib.parse.urlsplit(line.split(" ", 1)[1]).port or 0)
            return None

        p = wait_for("twin live to print its metrics URL", port)
    except BaseException:
        stop_process(proc)
        raise
    return LiveTwin(proc, p, out, err)


@dataclass
class Prom:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: Any) -> Any:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = json.loads(http_get(url))
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{url}: HTTP {exc.code}: {exc.read().decode()[:500]}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, **params: Any) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr, **params)["result"])

    def scalar(self, expr: str) -> float:
        res = self.query(expr)
        assert len(res) == 1, (expr, res)
        return float(res[0]["value"][1])


def start_prometheus(tmp: Path, name: str, config: str, data: Path,
                     extra: tuple[str, ...] = ()) -> Prom:
    cfg = tmp / f"{name}.yml"
    cfg.write_text(config)
    log = tmp / f"{name}.log"
    port = free_port()
    fh = open(log, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={cfg}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *extra],
        stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    fh.close()
    prom = Prom(proc, port, log)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {log.read_text()[-2000:]}")
            try:
                return http_get(f"{prom.base}/-/ready", timeout=2).startswith(b"Prometheus")
            except urllib.error.HTTPError:
                return False

        wait_for("prometheus to be ready", ready)
    except BaseException:
        stop_process(proc)
        raise
    return prom


def scrape_config(twin_port: int) -> str:
    """The shipped config with the twin's port (checks the shipped file is usable)."""
    text = PROM_CONFIG.read_text()
    assert "127.0.0.1:9108" in text
    return text.replace("127.0.0.1:9108", f"127.0.0.1:{twin_port}")


def dashboard_exprs() -> list[str]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[str]:
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    yield str(t["expr"])
            yield from walk(p.get("panels", []))

    return list(walk(json.loads(DASHBOARD.read_text())["panels"]))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]


# ---------------------------------------------------------------- live twin + Prometheus
@dataclass
class Stack:
    twin: LiveTwin
    prom: Prom
    t_start: float


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A live twin at high speed and a real Prometheus scraping it every second."""
    tmp = tmp_path_factory.mktemp("live_stack")
    t0 = time.monotonic()
    twin = start_live(tmp, LIVE_SPEED)
    prom: Prom | None = None
    try:
        prom = start_prometheus(tmp, "prom-live", scrape_config(twin.port), tmp / "tsdb")
        p = prom
        wait_for("the first scrape of the twin",
                 lambda: p.query('up{job="twin"} == 1') and p.query("twin_sim_steps_total"))
        yield Stack(twin, prom, t0)
    finally:
        stop_process(twin.proc)
        if prom is not None:
            stop_process(prom.proc)


def test_promtool_check_metrics_is_clean(stack: Stack) -> None:
    """(d) ``promtool check metrics`` finds no naming problem in a /metrics scrape."""
    text = stack.twin.metrics_text()
    assert "twin_bess_soc_ratio" in text
    r = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=WAIT_S)
    report = (r.stdout + r.stderr).decode()
    assert r.returncode == 0 and not report.strip(), report


def test_every_dashboard_expression_returns_data(stack: Stack) -> None:
    """(b) Each PromQL expression of the shipped dashboard returns a non-empty result."""
    exprs = dashboard_exprs()
    assert len(exprs) >= 25
    prom = stack.prom
    # rate() over [1m] needs two scrapes of the series: wait for that before judging.
    wait_for("two scrapes", lambda: prom.query("count_over_time(twin_sim_steps_total[1m]) >= 2"))
    missing: list[str] = []
    for e in exprs:
        try:
            wait_for(f"data for {e!r}", lambda e=e: prom.query(e), timeout=10.0)
        except AssertionError:
            missing.append(e)
    assert not missing, f"dashboard expressions with no data: {missing}"
    assert stack.twin.proc.poll() is None, "the live twin ended before the check; lower speed"


def test_live_counters_match_outputs_after_sigterm(stack: Stack) -> None:
    """(a) SOC and energy counters scraped by Prometheus agree with the written outputs."""
    prom = stack.prom
    wait_for("20 steps scraped", lambda: prom.query("twin_sim_steps_total >= 20"))
    soc_live = prom.scalar("twin_bess_soc_ratio")
    assert 0.0 <= soc_live <= 1.0
    assert prom.scalar("twin_energy_pv_joules_total") >= 0.0
    # stop the twin the way a service manager does
    twin = stack.twin
    assert twin.proc.poll() is None, "the live twin ended before SIGTERM; lower LIVE_SPEED"
    twin.proc.send_signal(signal.SIGTERM)
    rc = twin.proc.wait(timeout=WAIT_S)
    assert rc == 0, twin.stderr.read_text()[-2000:]
    summary = json.loads((twin.out / "summary.json").read_text())
    ts = pd.read_parquet(twin.out / "timeseries.parquet")
    n_done = summary["steps_done"]
    assert summary["interrupted"] is True and 20 <= n_done < summary["n_steps"]
    assert len(ts) == n_done

    # the last successful scrape (the series are stale now: take the last sample)
    def last(name: str) -> float:
        res = prom.query(f"last_over_time({name}[10m])")
        assert len(res) == 1, (name, res)
        return float(res[0]["value"][1])

    k = int(last("twin_sim_steps_total"))
    assert 20 <= k <= n_done
    dt = summary["dt_s"]
    t_end = pd.Timestamp(ts["timestamp"].iloc[k - 1]).timestamp() + dt
    assert last("twin_sim_time_seconds") == pytest.approx(t_end, abs=1e-6)
    soc = ts["soc_kwh"].iloc[k - 1] / ts["capacity_kwh"].iloc[k - 1]
    assert last("twin_bess_soc_ratio") == pytest.approx(soc, rel=1e-12, abs=1e-12)
    for flow, col in (("pv_to_ev", "pv_to_ev_kwh"), ("pv_to_bess", "pv_to_bess_kwh"),
                      ("pv_to_mall", "pv_to_mall_kwh"), ("pv_curtailed", "pv_curtailed_kwh"),
                      ("bess_to_ev", "bess_to_ev_kwh"), ("bess_to_mall", "bess_to_mall_kwh"),
                      ("grid_to_ev", "grid_import_ev_kwh"),
                      ("grid_to_mall", "grid_import_mall_kwh"),
                      ("grid_to_bess", "grid_to_bess_kwh")):
        want = float(ts[col].iloc[:k].sum()) * J_PER_KWH
        got = last(f"twin_energy_{flow}_joules_total")
        assert got == pytest.approx(want, rel=1e-9, abs=1e-3), flow
    cost = last("twin_grid_cost_total")
    assert cost == pytest.approx(float(ts["grid_cost_soles"].iloc[:k].sum()), rel=1e-9, abs=1e-9)


# --------------------------------------------------------- SIGTERM mid-step, JSON logs
@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[LiveTwin, int, float]:
    """``twin live`` at 1.5 s of wall time per step, SIGTERM while it waits inside a step."""
    tmp = tmp_path_factory.mktemp("sigterm")
    twin = start_live(tmp, speed=600.0, name="sigterm")
    try:
        def steps() -> float:
            for line in twin.metrics_text().splitlines():
                if line.startswith("twin_sim_steps_total "):
                    return float(line.split()[1])
            return 0.0

        wait_for("2 settled steps", lambda: steps() >= 2)
        t0 = time.monotonic()
        twin.proc.send_signal(signal.SIGTERM)
        rc = twin.proc.wait(timeout=WAIT_S)
        stop_s = time.monotonic() - t0
    finally:
        stop_process(twin.proc)
    return twin, rc, stop_s


def test_sigterm_mid_run_leaves_readable_outputs(stopped_run: tuple[LiveTwin, int, float]) -> None:
    """(e) SIGTERM stops promptly (not at the end of the 1.5 s step) with readable outputs."""
    twin, rc, stop_s = stopped_run
    assert rc == 0, twin.stderr.read_text()[-2000:]
    assert stop_s < 5.0  # the outputs are written in well under a second; a step is 1.5 s
    summary = json.loads((twin.out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert 2 <= summary["steps_done"] < summary["n_steps"] == 192
    assert summary["mode"] == "live" and summary["run_id"]
    ts = pd.read_parquet(twin.out / "timeseries.parquet")
    assert len(ts) == summary["steps_done"]
    assert np.isfinite(ts["soc_percent"]).all()
    pd.read_parquet(twin.out / "sessions.parquet")
    assert not list(twin.out.parent.glob(f".{twin.out.name}.tmp-*"))


def test_piped_logs_are_json_lines_with_run_id_and_sim_time(
        stopped_run: tuple[LiveTwin, int, float]) -> None:
    """(f) stderr piped → every line is JSON with run_id and the simulated time."""
    twin, _rc, _ = stopped_run
    lines = read_jsonl(twin.stderr)
    assert lines
    run_ids = {ln.get("run_id") for ln in lines}
    assert len(run_ids) == 1 and None not in run_ids
    for ln in lines:
        assert isinstance(ln["t_s"], int | float) and ln["t_s"] >= 0
        sim = pd.Timestamp(ln["sim_time"])
        assert sim.tzinfo is not None
        assert sim == pd.Timestamp("2024-03-04T00:00:00-05:00") + pd.Timedelta(seconds=ln["t_s"])
        assert ln["event"] and ln["level"]
    events = [ln["event"] for ln in lines]
    for e in ("metrics_listening", "run_started", "phase_changed", "stop_requested",
              "run_stopped", "outputs_written"):
        assert e in events, e
    stopped = next(ln for ln in lines if ln["event"] == "run_stopped")
    assert stopped["interrupted"] is True and stopped["steps_done"] >= 2
    assert next(ln for ln in lines if ln["event"] == "stop_requested")["signal"] == "SIGTERM"
    summary = json.loads((twin.out / "summary.json").read_text())
    assert summary["run_id"] in run_ids


# ------------------------------------------------------------------- backfill round trip
@dataclass
class Backfill:
    prom: Prom
    run: Path
    summary: dict[str, Any]
    ts: pd.DataFrame
    t_end: np.ndarray  # step ends [s, Unix time]


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfill]:
    """``twin run`` → ``twin export openmetrics`` → promtool blocks → a real Prometheus."""
    tmp = tmp_path_factory.mktemp("backfill")
    run = tmp / "run"
    r = subprocess.run(twin_cmd("run", str(SCENARIO), "--out", str(run), "-q"), cwd=ROOT,
                       capture_output=True, timeout=WAIT_S)
    assert r.returncode == 0, r.stderr.decode()
    om = tmp / "run.om"
    r = subprocess.run(twin_cmd("export", "openmetrics", str(run), "-o", str(om)), cwd=ROOT,
                       capture_output=True, timeout=WAIT_S)
    assert r.returncode == 0, r.stderr.decode()
    assert om.read_text().endswith("# EOF\n")
    data = tmp / "tsdb"
    data.mkdir()
    r = subprocess.run([str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", str(om),
                        str(data)], capture_output=True, timeout=WAIT_S)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    prom = start_prometheus(tmp, "prom-backfill", "global:\n  scrape_interval: 15s\n",
                            data, ("--storage.tsdb.retention.time=100y",))
    try:
        ts = pd.read_parquet(run / "timeseries.parquet")
        summary = json.loads((run / "summary.json").read_text())
        t_end = pd.DatetimeIndex(ts["timestamp"]).as_unit("s").asi8.astype(float) + \
            summary["dt_s"]
        yield Backfill(prom, run, summary, ts, t_end)
    finally:
        stop_process(prom.proc)


def test_backfill_round_trip_gives_back_the_soc_curve(backfill: Backfill) -> None:
    """(c) export → promtool blocks → Prometheus → query_range = the run's SOC curve."""
    prom, ts, summary, t_end = backfill.prom, backfill.ts, backfill.summary, backfill.t_end
    dt = summary["dt_s"]
    soc = (ts["soc_kwh"] / ts["capacity_kwh"]).to_numpy()

    def curve() -> list[dict[str, Any]] | None:
        res = prom.api("query_range", query="twin_bess_soc_ratio", start=t_end[0],
                       end=t_end[-1], step=dt)["result"]
        return res if res and len(res[0]["values"]) == len(t_end) else None

    res = wait_for("the backfilled SOC series", curve)
    assert len(res) == 1
    assert res[0]["metric"]["instance"] == "run" and res[0]["metric"]["job"] == "twin"
    got_t = np.array([float(t) for t, _ in res[0]["values"]])
    got_v = np.array([float(v) for _, v in res[0]["values"]])
    np.testing.assert_array_equal(got_t, t_end)
    np.testing.assert_array_equal(got_v, soc)  # exact: values are written with repr()
    np.testing.assert_allclose(got_v * 100.0, ts["soc_percent"].to_numpy(), rtol=1e-12)
    # a cumulative counter ends at the run's total
    res = prom.query("twin_energy_grid_import_joules_total", time=t_end[-1])
    assert float(res[0]["value"][1]) == pytest.approx(summary["grid_import_kwh"] * J_PER_KWH,
                                                      rel=1e-9)


def test_every_dashboard_expression_returns_data_after_backfill(backfill: Backfill) -> None:
    """Each PromQL expression of the shipped dashboard returns data on a backfilled run, at
    the middle and at the end of the run (series that are legitimately zero, such as the
    comm errors of in-process links, exist with value 0)."""
    prom, t_end = backfill.prom, backfill.t_end
    exprs = dashboard_exprs()
    assert len(exprs) >= 25
    wait_for("the backfilled blocks", lambda: prom.query("twin_sim_steps_total",
                                                         time=t_end[-1]))
    missing = [(e, t) for t in (t_end[len(t_end) // 2], t_end[-1]) for e in exprs
               if not prom.query(e, time=t)]
    assert not missing, f"dashboard expressions with no data after backfill: {missing}"


def test_backfilled_session_counters_tell_the_summary_story(backfill: Backfill) -> None:
    """The session counters at the run's end are the summary's outcome counts; the comm
    error counters of the in-process links are 0 (the series exist)."""
    prom, s, t = backfill.prom, backfill.summary, backfill.t_end[-1]

    def value(expr: str) -> float:
        res = prom.query(expr, time=t)
        assert len(res) == 1, (expr, res)
        return float(res[0]["value"][1])

    for metric, key in (("arrived", "sessions_total"), ("served", "sessions_served"),
                        ("satisfied", "sessions_satisfied"), ("short", "sessions_short"),
                        ("refused_closing", "sessions_refused_closing"),
                        ("turned_away", "sessions_turned_away")):
        assert value(f"twin_ev_sessions_{metric}_total") == s[key], metric
    assert value("sum(twin_comm_errors_total)") == 0.0
    assert value("sum(twin_comm_failsafe)") == 0.0
    assert value("twin_sim_steps_total / twin_sim_steps_planned") == 1.0
    assert value('twin_controller_decide_run_seconds{stat="median"}') == pytest.approx(
        s["decide_median_us"] * 1e-6, rel=1e-12)
    assert value("count(twin_socket_power_watts)") == value("count(twin_socket_occupied)") > 0


def test_export_bad_run_dir_is_a_user_error(tmp_path: Path) -> None:
    """A missing or broken run folder → exit 2 naming the file, nothing written."""
    out = tmp_path / "x.om"
    cases: list[tuple[Path, str]] = [(tmp_path / "nope", "nope")]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append((empty, "timeseries.parquet"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "timeseries.parquet").write_bytes(b"not parquet")
    cases.append((broken, str(broken / "timeseries.parquet")))
    for run_dir, named in cases:
        r = subprocess.run(twin_cmd("export", "openmetrics", str(run_dir), "-o", str(out)),
                           cwd=ROOT, capture_output=True, timeout=WAIT_S)
        err = r.stderr.decode()
        assert r.returncode == 2, err
        assert named in err and "Traceback" not in err
        assert not out.exists()
        assert not list(tmp_path.glob(".x.om.tmp"))


def test_live_bad_metrics_addr_is_a_user_error(tmp_path: Path) -> None:
    """A port that is not a number, or one already taken → exit 2, one paragraph."""
    r = subprocess.run(twin_cmd("live", str(SCENARIO), "--metrics-addr", "127.0.0.1:http"),
                       cwd=ROOT, capture_output=True, timeout=WAIT_S)
    assert r.returncode == 2 and "--metrics-addr" in r.stderr.decode()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run(twin_cmd("live", str(SCENARIO), "--metrics-addr", f"127.0.0.1:{port}",
                                    "--speed", "1e6", "--out", str(tmp_path / "out")),
                           cwd=ROOT, capture_output=True, timeout=WAIT_S)
    err = r.stderr.decode()
    assert r.returncode == 2 and "cannot listen" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ clean shutdown
def _keepalive_scrape(port: int) -> socket.socket:
    """An HTTP/1.1 keep-alive connection that has had one /metrics answer and stays open
    (as Prometheus keeps its scrape connection)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    assert buf.startswith(b"HTTP/1.1 200"), buf[:200]
    return s


def _assert_clean_stderr(twin: LiveTwin) -> None:
    """stderr holds only the JSON log lines: no asyncio warning, no traceback."""
    text = twin.stderr.read_text()
    for bad in ("Task was destroyed", "Traceback", "Exception ignored", "RuntimeWarning"):
        assert bad not in text, text[-3000:]
    for ln in text.splitlines():
        if ln.strip():
            json.loads(ln)  # every line is a log record


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "end"])
def test_live_shuts_down_cleanly_with_open_scrape_connections(tmp_path: Path, how: str) -> None:
    """``twin live`` stopped by SIGINT / SIGTERM or at the scenario's end, while scrapers
    hold keep-alive connections open: exit code as documented and nothing on stderr but
    the JSON log lines (no asyncio "Task was destroyed but it is pending!")."""
    speed = 1e5 if how == "end" else 600.0
    twin = start_live(tmp_path, speed, name=f"clean-{how}")
    conns: list[socket.socket] = []
    try:
        conns = [_keepalive_scrape(twin.port) for _ in range(3)]
        if how != "end":
            wait_for("a settled step", lambda: "twin_sim_steps_total 1" in twin.metrics_text()
                     or "twin_sim_steps_total 2" in twin.metrics_text())
            twin.proc.send_signal(getattr(signal, how))
        rc = twin.proc.wait(timeout=WAIT_S)
    finally:
        for c in conns:
            c.close()
        stop_process(twin.proc)
    assert rc == {"SIGINT": 130, "SIGTERM": 0, "end": 0}[how], twin.stderr.read_text()[-2000:]
    _assert_clean_stderr(twin)
    assert (twin.out / "summary.json").is_file()

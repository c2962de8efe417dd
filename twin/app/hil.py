"""``twin hil``: the controller against the Modbus device simulators (hardware in the loop).

The simulator (``python -m simulators``) runs as a subprocess on ephemeral loopback ports
with the plant inside, in lockstep: per step the control loop reads the battery, the
chargers and the meters over Modbus TCP (concurrently), decides, clamps, writes the
setpoints (concurrently), and writes the clock's ``tick`` register, which runs the plant
one step. The same ``twin.engine.ControlLoop`` and controller as ``twin run``; only the
adapters and the clock differ. At the end the simulator hands back the plant's record,
and the run writes the same files as ``twin run`` plus the communication statistics
(``summary.json`` key ``hil``) and a per-step communication log (``hil_steps.csv``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pickle
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import AdapterError
from twin.config import ConfigError, Scenario

log = logging.getLogger("twin.app.hil")

ROOT = Path(__file__).resolve().parents[2]
#: Simulator devices in port order (``python -m simulators --port P`` uses P..P+4).
DEVICES: tuple[str, ...] = ("bess", "chargers", "pv_inverter", "site_meter", "sim_clock")


class HilError(Exception):
    """The HIL run cannot go on (simulator did not start, stopped answering ...)."""


@dataclass
class HilSettings:
    """Link and adapter settings of a HIL run.

    Attributes
    ----------
    timeout_s : Modbus answer timeout per attempt [s wall clock].
    retries : bounded retries after a timeout.
    invalid_after_errors : consecutive errors before telemetry is marked invalid.
    stale_after_s : the device heartbeat must move within this [s simulated]; default
        1.5 × dt.
    read_only : the device adapters write nothing (the simulator clock is still driven).
    registers : folder of register maps (default ``config/registers``).
    simulator : (host, first port) of an already running ``python -m simulators`` instead
        of a subprocess; its ``--results`` file must be given as ``simulator_results``.
    simulator_results : where that simulator writes its results.
    sets : ``--set KEY=VALUE`` overrides the scenario was loaded with (passed on to the
        simulator so that both sides run the same scenario).
    """

    timeout_s: float = 0.25
    retries: int = 1
    invalid_after_errors: int = 2
    stale_after_s: float | None = None
    read_only: bool = False
    registers: Path | None = None
    simulator: tuple[str, int] | None = None
    simulator_results: Path | None = None
    sets: tuple[str, ...] = ()


class SimulatorProcess:
    """``python -m simulators`` in a subprocess on ephemeral loopback ports.

    Parameters
    ----------
    scenario : scenario file.
    results : where the simulator writes the plant's record when stopped.
    registers : register-map folder, or None for the shipped one.
    """

    def __init__(self, scenario: Path, results: Path, registers: Path | None = None,
                 clock: str = "lockstep", speed: float = 1.0, sets: Sequence[str] = ()) -> None:
        self.scenario = scenario
        self.sets = tuple(sets)
        self.results = results
        self.registers = registers
        self.clock = clock
        self.speed = speed
        self.proc: subprocess.Popen[str] | None = None
        self.ports: dict[str, int] = {}
        self.host = "127.0.0.1"
        self._stderr: list[str] = []

    def start(self, timeout_s: float = 120.0) -> dict[str, int]:
        """Start and wait for the READY line (an event, not a sleep); return the ports."""
        if not (ROOT / "simulators" / "__main__.py").exists():
            raise HilError(f"the simulators package is not in {ROOT}")
        cmd = [sys.executable, "-m", "simulators", "--scenario", str(self.scenario),
               "--host", self.host, "--port", "0", "--clock", self.clock,
               "--speed", str(self.speed), "--results", str(self.results)]
        if self.registers is not None:
            cmd += ["--registers", str(self.registers)]
        for item in self.sets:
            cmd += ["--set", item]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=str(ROOT), env=env)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump_out() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        def pump_err() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                self._stderr.append(line)

        threading.Thread(target=pump_out, daemon=True).start()
        threading.Thread(target=pump_err, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise HilError(f"the simulator did not get ready within {timeout_s:g} s") from None
            if line is None:
                rc = self.proc.wait()
                msg = "".join(self._stderr).strip() or f"exit status {rc}"
                raise HilError(f"the simulator did not start: {msg}")
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(msg, dict) and msg.get("ready"):
                self.ports = {k: int(v) for k, v in msg["ports"].items()}
                self.host = str(msg.get("host", self.host))
                return self.ports

    def wait(self, timeout_s: float = 60.0) -> int:
        """Wait for the simulator to exit; kill it after ``timeout_s``."""
        if self.proc is None:
            return 0
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        """Stop the simulator process (ours, by its handle)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def stderr(self) -> str:
        """What the simulator printed on stderr."""
        return "".join(self._stderr)


class _Deferred:
    """A device adapter as the control loop sees it in a HIL cycle.

    ``read()`` returns the snapshot fetched for this cycle (all devices are read
    concurrently before the controller runs); ``write()`` keeps the setpoint, and all
    devices are written concurrently after the safety layer. A failed write is logged and
    counted, never fatal: the device falls back on its own, the next cycle tries again.
    """

    def __init__(self, inner: Any, name: str) -> None:
        self.inner = inner
        self.name = name
        self.snapshot: Any = None
        self.pending: Any = None
        self.write_errors = 0
        self.step_error = False

    def read(self) -> Any:
        return self.snapshot

    def write(self, value: Any) -> None:
        self.pending = value

    async def fetch(self) -> None:
        self.snapshot = await self.inner.aread()

    async def flush(self) -> None:
        value, self.pending = self.pending, None
        if value is None:
            return
        try:
            await self.inner.awrite(value)
        except AdapterError as exc:
            self.write_errors += 1
            self.step_error = True
            log.warning("hil: %s write failed: %s", self.name, exc)


@dataclass
class _PlantFleetView:
    s: Any
    status: np.ndarray
    plug_s: np.ndarray
    leave_s: np.ndarray
    e_del_kwh: np.ndarray
    socket_of: np.ndarray
    events: int


@dataclass
class _PlantView:
    """What ``twin.engine.results`` reads of a plant, rebuilt from the simulator's record."""

    rec: Any
    fleet: _PlantFleetView | None
    n_reverse_flow_cuts: int


#: Recorder columns written by the control loop (controller side), the rest by the plant.
CONTROL_COLUMNS = ("phase", "p_bess_request_kw", "p_bess_command_kw", "n_clamps", "n_plugged",
                   "n_waiting", "decide_s")


@dataclass
class HilRun:
    """A finished HIL run: the ``RunOutput`` for the results plus the comm record."""

    output: Any
    comm: dict[str, Any]
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    simulator_log: str = ""


def _percentiles(x: np.ndarray) -> dict[str, float]:
    if not len(x):
        return {"median_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {"median_ms": float(np.median(x) * 1e3), "p99_ms": float(np.quantile(x, 0.99) * 1e3),
            "max_ms": float(np.max(x) * 1e3)}


class HilMetrics:
    """Prometheus metrics of a HIL run (own registry; base units: seconds, counts).

    ``twin_hil_step`` (steps done), ``twin_hil_cycle_seconds`` (histogram of control
    cycles), and per ``device``: ``twin_hil_requests_total``, ``twin_hil_comm_errors_total``,
    ``twin_hil_retries_total``, ``twin_hil_timeouts_total``, ``twin_hil_reconnects_total``,
    ``twin_hil_invalid_reads_total``, ``twin_hil_write_failures_total`` and the gauge
    ``twin_hil_telemetry_valid`` (1 valid, 0 invalid).
    """

    COUNTERS = (("requests", "requests"), ("comm_errors", "errors"), ("retries", "retries"),
                ("timeouts", "timeouts"), ("reconnects", "reconnects"),
                ("invalid_reads", "invalid_reads"), ("write_failures", "write_failures"))

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.cycle = Histogram("twin_hil_cycle_seconds", "Control cycle over Modbus (read all, "
                               "decide, clamp, write all) [s]", registry=self.registry,
                               buckets=(5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1,
                                        0.25, 0.5, 1.0, 2.5))
        self.step = 0
        self.devices: dict[str, dict[str, float]] = {}
        self.valid: dict[str, bool] = {}
        self.registry.register(self)

    def describe(self) -> list[Any]:
        """No fixed descriptions (collected at scrape time)."""
        return []

    def collect(self) -> Any:
        """The per-device families, from the last update."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        g = GaugeMetricFamily("twin_hil_step", "Steps done in the HIL run")
        g.add_metric([], float(self.step))
        yield g
        for name, key in self.COUNTERS:
            c = CounterMetricFamily(f"twin_hil_{name}", f"Modbus {name.replace('_', ' ')} "
                                    "per device", labels=["device"])
            for dev, d in sorted(self.devices.items()):
                c.add_metric([dev], float(d.get(key, 0.0)))
            yield c
        v = GaugeMetricFamily("twin_hil_telemetry_valid", "1 when the device's telemetry "
                              "was valid in the last cycle", labels=["device"])
        for dev, ok in sorted(self.valid.items()):
            v.add_metric([dev], 1.0 if ok else 0.0)
        yield v

    def update(self, k: int, cycle_s: float, devices: dict[str, dict[str, Any]],
               valid: dict[str, bool]) -> None:
        """Record step ``k`` (done) and its cycle time [s]."""
        self.step = k + 1
        self.cycle.observe(cycle_s)
        self.devices = {d: {k2: float(v) for k2, v in s.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)}
                        for d, s in devices.items()}
        self.valid = valid


def _wait_for_file(path: Path, timeout_s: float) -> None:
    """Wait for an external simulator to write its results (it renames a finished file)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_hil(scn: Scenario, controller: Any = None, settings: HilSettings | None = None,
            progress: Any = None, metrics: HilMetrics | None = None) -> HilRun:
    """Run ``scn`` through the Modbus simulators in lockstep.

    Raises
    ------
    ConfigError
        Bad register-map file (before anything starts).
    HilError
        The simulator cannot be started or reached, or stops answering the clock.
    """
    from adapters.modbus.devices import (
        ModbusBessAdapter,
        ModbusChargerAdapter,
        ModbusMeterAdapter,
        SimClockClient,
    )
    from adapters.modbus.regmap import REGISTER_DIR, load_register_map
    from adapters.modbus.transport import LinkSettings, LoopRunner, ModbusTransport
    from twin.components.bess import BessParams
    from twin.components.inputs import build_inputs
    from twin.engine import ControlLoop, RunOutput, get_controller
    from twin.engine.safety import SafetyLayer
    from twin.inputs import SocketSpec
    from twin.plant import Recorder
    from twin.types import ClampLog

    st = settings or HilSettings()
    folder = st.registers or REGISTER_DIR
    maps = {d: load_register_map(Path(folder) / f"{d}.yaml") for d in DEVICES}
    if controller is None:
        controller = get_controller(scn)
    controller.reset(seed=scn.config.seed)
    t0 = time.perf_counter()
    inputs = build_inputs(scn)
    inputs_wall = time.perf_counter() - t0
    n = scn.config.n_steps
    dt = scn.config.dt
    spec = SocketSpec.from_config(scn.site.ev)
    n_sock = int(spec.p_rating_kw.shape[0])
    if maps["chargers"].n_sockets != n_sock:
        raise ConfigError(f"{maps['chargers'].path}: field 'sockets': the map has "
                          f"{maps['chargers'].n_sockets} sockets, the site {n_sock}")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    tmpdir = Path(tempfile.mkdtemp(prefix="twin-hil-"))
    res_path = tmpdir / "plant.pkl"
    sim: SimulatorProcess | None = None
    if st.simulator is None:
        sim = SimulatorProcess(scn.path.resolve(), res_path, st.registers, sets=st.sets)
    elif st.simulator_results is None:
        raise HilError("an external simulator needs the file it writes its results to "
                       "(its --results, given here as --sim-results)")
    else:
        res_path = st.simulator_results
    now = [0.0]

    def clock() -> float:
        return now[0]

    runner = LoopRunner()
    links: dict[str, ModbusTransport] = {}
    finished = False
    try:
        if sim is not None:
            ports = sim.start()
            host = sim.host
        else:
            assert st.simulator is not None
            host, p0 = st.simulator
            ports = {d: p0 + i for i, d in enumerate(DEVICES)}
        ls = LinkSettings(timeout_s=st.timeout_s, retries=st.retries)
        # the clock's answer waits for a plant step: give it room, and a retried tick is
        # harmless (the simulator does not run a step twice)
        ls_clock = LinkSettings(timeout_s=max(10.0, st.timeout_s), retries=1)
        for d in DEVICES:
            links[d] = ModbusTransport(host, ports[d], maps[d], runner, clock,
                                       ls_clock if d == "sim_clock" else ls,
                                       read_only=st.read_only and d != "sim_clock", name=d,
                                       connections=3 if d == "chargers" else 1)
        clk = SimClockClient(links["sim_clock"])
        if not runner.run(links["sim_clock"].connect()):
            raise HilError(f"cannot reach the simulator clock at {host}:{ports['sim_clock']} "
                           "(nothing answers there; is the simulator running?)")
        info = clk.read()
        if info["n_steps"] != n or info["dt"] != dt:
            raise HilError(f"the simulator runs {info['n_steps']} steps of {info['dt']} s, "
                           f"the scenario {n} of {dt:g} s")
        bp = BessParams.from_config(scn.site.bess)
        stale = st.stale_after_s if st.stale_after_s is not None else 1.5 * dt
        bess = ModbusBessAdapter(links["bess"], eta_charge=bp.eta_charge,
                                 eta_discharge=bp.eta_discharge, clock=clock,
                                 invalid_after_errors=st.invalid_after_errors,
                                 stale_after_s=stale, read_only=st.read_only)
        chargers = ModbusChargerAdapter(links["chargers"], clock=clock, rating_kw=spec.p_rating_kw,
                                        type_code=spec.type_code,
                                        invalid_after_errors=st.invalid_after_errors,
                                        stale_after_s=stale, read_only=st.read_only)
        meters = ModbusMeterAdapter(links["pv_inverter"], links["site_meter"])
        tb, tc = _Deferred(bess, "bess"), _Deferred(chargers, "chargers")
        tm = _Deferred(meters, "meters")

        async def fetch_all() -> None:
            await asyncio.gather(tb.fetch(), tc.fetch(), tm.fetch())

        async def flush_all() -> None:
            await asyncio.gather(tb.flush(), tc.flush())

        clamps = ClampLog()
        grid = scn.site.grid
        safety = SafetyLayer(grid.export_limit_kw, grid.import_limit_kw,
                             socket_failsafe_kw=maps["chargers"].default("failsafe_power_w") / 1e3,
                             log=clamps)
        rec = Recorder(n, n_sock)
        loop = ControlLoop(controller, safety, tb, tc, tm, inputs, rec,
                           scn.site.location.tz, lambda: chargers.n_waiting)
        cycle_s = np.zeros(n)
        bess_valid = np.zeros(n, dtype=bool)
        sock_valid = np.zeros(n, dtype=bool)
        write_err = np.zeros(n, dtype=np.int8)
        wall0 = time.perf_counter()
        every = max(1, n // 200)
        for k in range(n):
            now[0] = k * dt
            tb.step_error = tc.step_error = False
            c0 = time.perf_counter()
            runner.run(fetch_all())
            loop.step(k)
            runner.run(flush_all())
            cycle_s[k] = time.perf_counter() - c0
            obs = loop.last_obs
            assert obs is not None
            bess_valid[k] = obs.bess.valid
            sock_valid[k] = obs.sockets.valid
            write_err[k] = int(tb.step_error) + 2 * int(tc.step_error)
            try:
                clk.tick(k + 1)
            except AdapterError as exc:
                raise HilError(f"the simulator stopped answering its clock at step {k}: {exc}") \
                    from None
            if metrics is not None:
                metrics.update(k, cycle_s[k], {
                    "bess": {**bess.summary(), "write_failures": tb.write_errors},
                    "chargers": {**chargers.summary(), "write_failures": tc.write_errors},
                    **meters.summary()},
                    {"bess": bool(bess_valid[k]), "chargers": bool(sock_valid[k])})
            if progress is not None and (k + 1) % every == 0:
                progress(k + 1, n)
        wall = time.perf_counter() - wall0
        try:
            clk.shutdown()
        except AdapterError as exc:
            raise HilError(f"cannot stop the simulator: {exc}") from None
        finished = True
        comm_adapters = {"bess": bess.summary(), "chargers": chargers.summary(),
                         **meters.summary()}
    finally:
        for lk in links.values():
            lk.close()
        runner.close()
        if sim is not None and not finished:
            sim.kill()
        rc = sim.wait() if sim is not None else 0
        if sim is None and finished:
            _wait_for_file(res_path, 60.0)
    if rc != 0 or not res_path.exists():
        err = sim.stderr[-2000:] if sim is not None else ""
        raise HilError(f"the simulator ended with status {rc} and no results {err}".strip())
    with open(res_path, "rb") as fh:
        data = pickle.load(fh)
    if sim is not None:
        res_path.unlink()
    shutil.rmtree(tmpdir, ignore_errors=True)
    prec = Recorder(n, n_sock)
    for name, arr in data["rec"].items():
        setattr(prec, name, arr)
    for name in CONTROL_COLUMNS:
        setattr(prec, name, getattr(rec, name))
    prec.k_done = data["k_done"]
    fl = data["fleet"]
    fleet = None if fl is None else _PlantFleetView(inputs.sessions, fl["status"], fl["plug_s"],
                                                   fl["leave_s"], fl["e_del_kwh"],
                                                   fl["socket_of"], fl["events"])
    plant = _PlantView(prec, fleet, data["n_reverse_flow_cuts"])
    out = RunOutput(scn, controller, inputs, plant, clamps, wall, inputs_wall,  # type: ignore[arg-type]
                    data["steps_done"], interrupted=data["steps_done"] < n)
    dlog = data["device_log"]
    from twin.faults import FAULT_KINDS

    faults = []
    for f in scn.config.faults:
        mask = dlog["faults"][f.device] & (1 << FAULT_KINDS.index(f.kind))
        on = np.flatnonzero(mask)
        faults.append({"time_s": f.time, "duration_s": f.duration, "device": f.device,
                       "kind": f.kind, "steps": len(on),
                       "first_step": int(on[0]) if len(on) else None,
                       "last_step": int(on[-1]) if len(on) else None})
    servers = data["servers"]
    comm = {
        "mode": "lockstep",
        "read_only": st.read_only,
        "settings": {"timeout_s": st.timeout_s, "retries": st.retries,
                     "invalid_after_errors": st.invalid_after_errors, "stale_after_s": stale},
        "cycle": _percentiles(cycle_s),
        "wall_s": wall,
        "wall_s_per_simulated_day": wall / (n * dt / 86400.0) if n else 0.0,
        "devices": {d: {**comm_adapters.get(d, {}), "server": servers.get(d, {})}
                    for d in DEVICES if d != "sim_clock"},
        "sim_clock_server": servers.get("sim_clock", {}),
        "faults": faults,
        "steps_bess_invalid": int((~bess_valid).sum()),
        "steps_sockets_invalid": int((~sock_valid).sum()),
        "steps_bess_write_failed": int((write_err & 1).astype(bool).sum()),
        "steps_chargers_write_failed": int((write_err & 2).astype(bool).sum()),
        "steps_bess_reverted": int(dlog["bess_reverted"].sum()),
        "steps_chargers_failsafe": int((dlog["chargers_failsafe"] > 0).sum()),
        "bess_ctrl_heartbeats_seen": int(dlog["bess_ctrl_heartbeats"]),
    }
    steps = {"cycle_ms": cycle_s * 1e3, "bess_valid": bess_valid, "sockets_valid": sock_valid,
             "write_errors": write_err, "bess_applied_kw": dlog["bess_applied_kw"],
             "bess_reverted": dlog["bess_reverted"],
             "chargers_failsafe": dlog["chargers_failsafe"],
             **{f"fault_{d}": a for d, a in dlog["faults"].items()}}
    return HilRun(out, comm, steps, sim.stderr if sim is not None else "")


def write_hil(run: HilRun, out_dir: Path, *, csv: bool = True,
              parquet: bool = True) -> dict[str, Any]:
    """Write the run's outputs (as ``twin run``) plus ``hil`` in the summary and
    ``hil_steps.csv``; return the summary."""
    import pandas as pd

    from twin.engine.results import build_results, write_results

    res = build_results(run.output)
    res.summary["hil"] = run.comm
    write_results(res, out_dir, csv=csv, parquet=parquet)
    steps = pd.DataFrame({"timestamp": res.timeseries["timestamp"].astype(str)
                          if len(res.timeseries) else [], **run.steps})
    steps.to_csv(out_dir / "hil_steps.csv", index=False)
    (out_dir / "hil_simulator.log").write_text(run.simulator_log, encoding="utf-8")
    return res.summary


def cmd_hil(args: argparse.Namespace) -> int:
    """``twin hil``."""
    from twin.app.table import kpi_table
    from twin.config import load_scenario, parse_set
    from twin.engine import get_controller
    from twin.errors import UserError

    scn = load_scenario(Path(args.scenario), parse_set(args.set or []))
    controller = get_controller(scn, args.controller)
    out_dir = Path(args.out) if args.out else (scn.config.output.dir
                                               or Path("runs") / scn.config.name)
    ext = None
    if args.simulator:
        host, _, port = args.simulator.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--simulator {args.simulator!r}: write HOST:PORT (the first port)")
        ext = (host, int(port))
    st = HilSettings(timeout_s=args.timeout, retries=args.retries, read_only=args.read_only,
                     registers=Path(args.registers) if args.registers else None,
                     simulator=ext, sets=tuple(args.set or ()),
                     simulator_results=Path(args.sim_results) if args.sim_results else None)
    if args.timeout <= 0 or args.retries < 0:
        raise UserError("--timeout must be > 0 and --retries >= 0")
    metrics = server = None
    if args.metrics_addr:
        from twin.app.live import parse_addr
        from twin.monitoring.http import start_metrics_server as start_http_server

        host, port = parse_addr(args.metrics_addr)
        metrics = HilMetrics()
        try:
            server, _ = start_http_server(port, addr=host, registry=metrics.registry)
        except OSError as exc:
            raise UserError(f"--metrics-addr {args.metrics_addr}: cannot listen on "
                            f"{host}:{port} ({exc.strerror or exc})") from None
        if not args.quiet:
            print(f"metrics: http://{host}:{server.server_port}/metrics", flush=True)
    try:
        run = run_hil(scn, controller, st, metrics=metrics)
    except HilError as exc:
        raise UserError(str(exc)) from None
    finally:
        if server is not None:
            server.shutdown()
    summary = write_hil(run, out_dir, csv=scn.config.output.csv, parquet=scn.config.output.parquet)
    if not args.quiet:
        print(kpi_table(summary))
        c = run.comm
        print(f"  HIL cycle {c['cycle']['median_ms']:.2f} ms median / "
              f"{c['cycle']['p99_ms']:.2f} ms "
              f"p99; {c['wall_s']:.1f} s wall; faults {len(c['faults'])}; "
              f"BESS invalid {c['steps_bess_invalid']} steps, sockets invalid "
              f"{c['steps_sockets_invalid']} steps")
        print(f"outputs: {out_dir}")
    return 0


def register(sub: Any) -> None:
    """Add ``twin hil`` to the CLI's subcommands."""
    h = sub.add_parser(
        "hil", help="run a scenario through the Modbus device simulators (hardware in the loop)",
        description="Start the Modbus TCP simulators (BESS, chargers, meters; plant inside, "
                    "lockstep) on ephemeral loopback ports, run the controller through the "
                    "Modbus adapters and write the same outputs as 'twin run' plus comm "
                    "statistics (summary.json 'hil', hil_steps.csv).")
    h.add_argument("scenario",
                   help="scenario YAML (e.g. scenarios/hil.yaml; faults: declared there)")
    h.add_argument("--out",
                   help="output folder (default: the scenario's output.dir, else runs/NAME)")
    h.add_argument("--controller", help="controller name (overrides the scenario)")
    h.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a value")
    h.add_argument("--read-only", action="store_true",
                   help="the adapters write nothing to the devices (monitoring only)")
    h.add_argument("--registers", help="folder of register maps (default config/registers)")
    h.add_argument("--simulator", metavar="HOST:PORT",
                   help="use a running 'python -m simulators --port PORT --results FILE' "
                        "instead of starting one")
    h.add_argument("--sim-results", metavar="FILE",
                   help="with --simulator: the simulator's --results file")
    h.add_argument("--timeout", type=float, default=0.25, help="Modbus answer timeout [s]")
    h.add_argument("--retries", type=int, default=1, help="retries after a timeout")
    h.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="serve Prometheus metrics of the run (see docs/metrics.md)")
    h.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    h.set_defaults(func=cmd_hil)


__all__ = ["HilError", "HilRun", "HilSettings", "SimulatorProcess", "register", "run_hil",
           "write_hil"]

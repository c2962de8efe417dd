"""``twin hil``: the controller + adapter stack against Modbus devices (hardware in the loop).

The same ``Twin`` tick driver and controller as ``twin run``; only the site's I/O and the
clock change:

* **lockstep** (default): ``twin hil`` starts ``python -m simulators`` as a child on
  ephemeral loopback ports (or uses one already running, ``--simulator HOST:PORT``, or
  the devices file's ``sim_clock``) and advances its plant one step per tick through the
  simulator's clock device — deterministic, as fast as Modbus allows;
* **wall** (``--clock wall --speed N``): the tick sleeps to the next step boundary while
  the devices run on their own — our simulator in real time (``python -m simulators
  --clock realtime --speed N``), or hardware named in a devices file (``--devices FILE``).

Either way the run's record is what the adapters read (meters, battery power and SoC,
per-socket power): nothing comes from inside the devices. The outputs are those of
``twin run`` plus ``summary.json["hil"]`` (comm statistics, faults) and ``hil_steps.csv``.
A run that loses its devices (the simulator dies or stalls, or a device answers nothing
for ``device_timeout_s``, whatever the clock) or is stopped (Ctrl-C, SIGTERM: both set
one stop flag, checked between steps) writes the steps done, marked partial, with the
cause in ``hil.fault``. A reading that is not a new sample (invalid, or held after a
failed read, or a heartbeat that did not move) is never integrated as energy
(``twin.engine.telemetry``). A simulator already past its horizon is refused up front.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.base import AdapterError, TimeSource
from adapters.modbus.simclock import SimClockClient
from adapters.modbus.site import CLOCK_DEVICE, SITE_DEVICES, check_simulator
from twin.app.simproc import HilError, SimulatorProcess
from twin.config import ConfigError, Scenario
from twin.errors import EXIT_INTERRUPTED, EXIT_OK, UserError

if TYPE_CHECKING:
    from adapters.modbus.site import ModbusSiteIO
    from twin.engine.sites import DeviceSiteIO

    HilSite = DeviceSiteIO[ModbusSiteIO]

log = logging.getLogger("twin.hil")

#: Simulator devices in port order (``python -m simulators --port P`` uses P..P+4).
DEVICES: tuple[str, ...] = (*SITE_DEVICES, CLOCK_DEVICE)
#: Upper bound of ``--device-timeout`` [s] (one day).
DEVICE_TIMEOUT_MAX_S = 86400.0


@dataclass
class HilSettings:
    """Link, adapter and clock settings of a HIL run.

    Attributes
    ----------
    timeout_s : Modbus answer timeout per attempt [s wall clock].
    retries : bounded retries after a timeout.
    invalid_after_errors : consecutive errors before telemetry is marked invalid.
    stale_after_s : the device heartbeat must move within this [s simulated]; default
        1.5 × dt.
    device_timeout_s : a site device that answers no request for this long ends the run
        as partial (``hil.fault``) [s wall clock].
    read_only : the device adapters write nothing (a simulator clock is still driven).
    registers : folder of register maps (default ``config/registers``).
    simulator : (host, first port) of an already running ``python -m simulators``.
    devices : a devices file (host/port/unit/map per device) instead of a simulator.
    clock : ``lockstep`` (advance the simulator's clock device) or ``wall``.
    speed : wall clock: simulated seconds per wall second.
    sets : ``--set KEY=VALUE`` overrides the scenario was loaded with (passed on to a
        simulator started here, so that both sides run the same scenario).
    """

    timeout_s: float = 0.25
    retries: int = 1
    invalid_after_errors: int = 2
    stale_after_s: float | None = None
    device_timeout_s: float = 30.0
    read_only: bool = False
    registers: Path | None = None
    simulator: tuple[str, int] | None = None
    devices: Path | None = None
    clock: str = "lockstep"
    speed: float = 1.0
    sets: tuple[str, ...] = ()


@dataclass
class HilRun:
    """A finished (or stopped) HIL run: the ``RunOutput`` and the comm record."""

    output: Any
    comm: dict[str, Any]
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    simulator_log: str = ""
    #: The folder the outputs went to (``OUT``, or ``OUT.partial`` for a partial run when
    #: ``OUT`` holds a complete one), once written.
    written_to: Path | None = None


def _lost_message(silent: dict[str, float], timeout_s: float, k: int) -> str:
    """``hil.fault`` for devices that stopped answering (``silent``: device → seconds)."""
    what = ", ".join(f"{d} for {s:.1f} s" for d, s in sorted(silent.items()))
    return (f"the devices stopped answering at step {k + 1}: no answer from {what} "
            f"(--device-timeout {timeout_s:g} s)")


def _percentiles(x: np.ndarray) -> dict[str, float]:
    if not len(x):
        return {"median_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {"median_ms": float(np.median(x)), "p99_ms": float(np.quantile(x, 0.99)),
            "max_ms": float(np.max(x))}


def _fit(a: Any, n: int, dtype: Any) -> np.ndarray:
    """``a`` cut or zero-padded to ``n`` elements."""
    arr = np.asarray(a if a is not None else [], dtype=dtype)[:n]
    if len(arr) < n:
        arr = np.concatenate([arr, np.zeros(n - len(arr), dtype=dtype)])
    return arr


def open_devices(scn: Scenario, st: HilSettings, sim: SimulatorProcess | None = None, *,
                 weather: bool = False) -> Any:
    """The site's devices: ``st.devices`` (a devices file), ``st.simulator`` (a running
    simulator's first port) or ``sim`` (started here); their charger map must match the site.

    Shared by ``twin hil`` and ``twin shadow`` (``weather``: our simulator's weather station
    too).

    Raises
    ------
    ConfigError
        A bad devices file or register map, or a charger map that does not fit the site.
    HilError
        A simulator started here that does not come up.
    """
    from adapters.modbus.site import (
        WEATHER_DEVICE,
        battery_device,
        load_devices,
        simulator_devices,
    )
    from twin.inputs import SocketSpec

    batteries = tuple(b.name for b in scn.site.batteries)
    n_sock = int(SocketSpec.from_config(scn.site.ev).p_rating_kw.shape[0])
    if st.devices is not None:
        devices = load_devices(st.devices, st.registers)
    elif st.simulator is not None:
        host, p0 = st.simulator
        # the simulator's port order: its six devices, then the further batteries
        names = (*DEVICES, WEATHER_DEVICE,
                 *(battery_device(b) for b in batteries[1:]))
        devices = simulator_devices(host, {d: p0 + i for i, d in enumerate(names)},
                                    st.registers, weather=weather, batteries=batteries,
                                    n_sockets=n_sock)
    else:
        assert sim is not None
        ports = sim.start()
        devices = simulator_devices(sim.host, ports, st.registers, weather=weather,
                                    batteries=batteries, n_sockets=n_sock)
    devices.check_batteries(batteries)
    cmap = devices.maps["chargers"]
    if cmap.n_sockets != n_sock:
        raise ConfigError(f"{cmap.path}: field 'sockets': the map has {cmap.n_sockets} "
                          f"sockets, the site {n_sock}")
    return devices


def connect_site(scn: Scenario, devices: Any, st: HilSettings, clock: TimeSource) -> Any:
    """A connected ``ModbusSiteIO`` over ``devices`` with the run's link settings; its
    adapters read the simulated time from ``clock.now_s()``.

    Raises
    ------
    HilError
        A device that does not answer (named).
    """
    from adapters.modbus.site import ModbusSiteIO
    from adapters.modbus.transport import LinkSettings
    from twin.components.bess import BessParams
    from twin.inputs import SocketSpec

    bp = BessParams.from_config(scn.site.batteries[0])
    etas = tuple((p.eta_charge, p.eta_discharge)
                 for p in (BessParams.from_config(b) for b in scn.site.batteries))
    spec = SocketSpec.from_config(scn.site.ev)
    stale = st.stale_after_s if st.stale_after_s is not None else 1.5 * scn.config.dt
    io = ModbusSiteIO(devices, clock=clock, eta_charge=bp.eta_charge,
                      eta_discharge=bp.eta_discharge, rating_kw=spec.p_rating_kw,
                      type_code=spec.type_code,
                      settings=LinkSettings(timeout_s=st.timeout_s, retries=st.retries),
                      invalid_after_errors=st.invalid_after_errors, stale_after_s=stale,
                      read_only=st.read_only, bess_etas=etas, dt_s=scn.config.dt)
    try:
        io.connect()
    except AdapterError as exc:
        io.close()
        raise HilError(str(exc)) from None
    return io


def open_site(scn: Scenario, st: HilSettings, sim: SimulatorProcess | None,
              stop: threading.Event) -> HilSite:
    """The devices as the tick driver's site: connected adapters and the run's clock
    (lockstep: our simulator's clock device, checked to be at step 0; wall: the wall
    clock, our realtime simulator checked not to be past its horizon).

    Raises
    ------
    ConfigError, HilError
        As ``open_devices`` and ``connect_site``; a simulator that does not fit the run.
    """
    from adapters.modbus.site import LockstepClock
    from twin.engine import DeviceSiteIO, WallClock
    from twin.inputs import SocketSpec

    n, dt = scn.config.n_steps, scn.config.dt
    clock: LockstepClock | WallClock = (LockstepClock(dt) if st.clock == "lockstep"
                                        else WallClock(dt, st.speed, stop))
    devices = open_devices(scn, st, sim)
    io = connect_site(scn, devices, st, clock)
    try:
        if isinstance(clock, LockstepClock):
            clock.connect(io).check(n)
        elif CLOCK_DEVICE in io.links:  # our realtime simulator: not past its horizon
            check_simulator(SimClockClient(io.links[CLOCK_DEVICE]), n, dt)
    except (AdapterError, ConfigError) as exc:
        io.close()
        if isinstance(exc, ConfigError):
            raise
        raise HilError(str(exc)) from None
    return DeviceSiteIO(io, clock, dt_s=dt,
                        type_code=SocketSpec.from_config(scn.site.ev).type_code,
                        socket_failsafe_kw=io.failsafe_kw)


def check_link_args(args: argparse.Namespace) -> None:
    """Bounds of the link options shared by ``twin hil`` and ``twin shadow`` (UserError)."""
    from twin.bounds import check_float, check_int

    check_float("--timeout", args.timeout, 0.0, 60.0, lo_open=True)
    check_int("--retries", args.retries, 0, 10)
    check_float("--speed", args.speed, 0.0, 1e6, lo_open=True)
    check_float("--device-timeout", args.device_timeout, 0.0, DEVICE_TIMEOUT_MAX_S,
                lo_open=True)


def serve_metrics(addr: str, registry: Any, quiet: bool) -> Any:
    """Serve ``registry`` on ``--metrics-addr`` ``addr``; return the HTTP server."""
    from twin.app.live import parse_addr
    from twin.monitoring.http import start_metrics_server

    host, port = parse_addr(addr)
    try:
        server, _ = start_metrics_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UserError(f"--metrics-addr {addr}: cannot listen on "
                        f"{host}:{port} ({exc.strerror or exc})") from None
    if not quiet:
        print(f"metrics: http://{host}:{server.server_port}/metrics", flush=True)
    return server


def add_link_args(h: Any) -> None:
    """The link options shared by ``twin hil`` and ``twin shadow``."""
    h.add_argument("--registers", help="folder of register maps (default config/registers)")
    h.add_argument("--timeout", type=float, default=0.25,
                   help="Modbus answer timeout [s], in (0, 60] (default 0.25)")
    h.add_argument("--retries", type=int, default=1, help="retries after a timeout, 0..10 (default 1)")
    h.add_argument("--device-timeout", type=float, default=30.0, metavar="S",
                   help="a device that answers nothing for S seconds (wall clock) ends the run "
                        "as partial, exit 130 (default 30; "
                        f"0 < S <= {DEVICE_TIMEOUT_MAX_S:g})")
    h.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="serve Prometheus metrics of the run (see docs/metrics.md)")


def _check_settings(st: HilSettings) -> None:
    """Bad settings and register maps are user errors before a process starts."""
    from adapters.modbus.regmap import REGISTER_DIR, load_register_map

    if st.clock not in ("lockstep", "wall"):
        raise ConfigError(f"--clock {st.clock!r}: use 'lockstep' or 'wall'")
    if not st.speed > 0:
        raise ConfigError(f"--speed {st.speed:g}: must be positive")
    if not 0 < st.device_timeout_s <= DEVICE_TIMEOUT_MAX_S:
        raise ConfigError(f"--device-timeout {st.device_timeout_s:g}: must be in "
                          f"(0, {DEVICE_TIMEOUT_MAX_S:g}] s")
    folder = st.registers or REGISTER_DIR
    if st.devices is None:
        for d in DEVICES:
            load_register_map(Path(folder) / f"{d}.yaml")


def _watch(twin: Any, site: HilSite, st: HilSettings, stop: threading.Event,
           metrics: Any, lost: list[str]) -> Any:
    """``Twin.on_step`` of a HIL run: publish the metrics, stop on lost devices or a stop
    request (between two steps; the steps done are kept)."""
    from twin.engine import WallClock
    from twin.monitoring.hil import HilMetrics
    from twin.monitoring.metrics import MetricsSink

    io = site.io
    sink = link = None
    if metrics is not None:
        sink = MetricsSink(twin, metrics, mode="hil", speed=st.speed if st.clock == "wall" else 0.0)
        link = HilMetrics(metrics.registry)
        if isinstance(site.clock, WallClock):
            wall = site.clock
            sink.lag_fn = lambda: wall.lag_s

    def on_step(k: int) -> None:
        if sink is not None and link is not None:
            sink(k)
            link.update(k, io.steps.cycle_s[-1] if io.steps.cycle_s else 0.0, io.summary(),
                        io.valid())
        silent = io.silent(st.device_timeout_s)
        if silent and not lost:
            lost.append(_lost_message(silent, st.device_timeout_s, k))
            log.error("hil: %s", lost[0])
            twin.stop_requested = True
        if stop.is_set():  # Ctrl-C / SIGTERM
            twin.stop_requested = True

    return on_step


def _stop_simulator(site: HilSite, sim: SimulatorProcess) -> tuple[str | None, Any]:
    """Ask the simulator started here to stop; (a fault, its report)."""
    from adapters.modbus.site import LockstepClock

    fault = None
    try:
        if isinstance(site.clock, LockstepClock):
            site.clock.shutdown()
        elif CLOCK_DEVICE in site.io.links:
            SimClockClient(site.io.links[CLOCK_DEVICE]).shutdown()
    except AdapterError as exc:
        fault = f"cannot stop the simulator: {exc}"
    return fault, sim.wait_report(30.0)


def run_hil(scn: Scenario, controller: Any = None, settings: HilSettings | None = None,
            progress: Any = None, metrics: Any = None,
            stop: threading.Event | None = None, on_start: Any = None) -> HilRun:
    """Run ``scn`` against Modbus devices (see the module docstring): wiring only — the
    devices' ``SiteIO`` handed to the one ``Twin``.

    ``metrics`` (a ``twin.monitoring.metrics.TwinMetrics``) gets the full metric catalogue,
    as ``twin live``, plus the links' ``twin_hil_*`` metrics on its registry.
    ``on_start(n_steps)`` is called once the devices answer, just before step 0.

    Raises
    ------
    ConfigError
        Bad register map or devices file (before anything starts).
    HilError
        The devices cannot be reached or do not match the scenario (before step 0).
    """
    from twin.engine import Twin, get_controller

    st = settings or HilSettings()
    _check_settings(st)
    controller = controller if controller is not None else get_controller(scn)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    stop = stop if stop is not None else threading.Event()
    sim: SimulatorProcess | None = None
    site: HilSite | None = None
    fault: str | None = None
    report: dict[str, Any] | None = None
    lost: list[str] = []
    try:
        if st.devices is None and st.simulator is None:
            sim = SimulatorProcess(scn.path.resolve(), st.registers,
                                   clock="realtime" if st.clock == "wall" else "lockstep",
                                   speed=st.speed, sets=st.sets)
        site = open_site(scn, st, sim, stop)
        twin = Twin(scn, controller, site=site)
        twin.on_step = _watch(twin, site, st, stop, metrics, lost)
        if on_start is not None:
            on_start(scn.config.n_steps)
        try:
            out = twin.run(progress)
        except AdapterError as exc:
            fault = f"the devices stopped answering at step {twin.k}: {exc}"
            log.error("hil: %s", fault)
            out = twin.record()
        if out.interrupted and fault is None:
            fault = lost[0] if lost else ("stopped (signal or Ctrl-C)" if twin.stop_requested
                                          else "stopped")
        if sim is not None:
            stop_fault, report = _stop_simulator(site, sim)
            fault = fault or stop_fault
    finally:
        if site is not None:
            site.close()
        if sim is not None:
            sim.kill()
    return _hil_run(scn, st, site, out, fault, report, sim)


def _device_log(scn: Scenario, report: dict[str, Any], steps: dict[str, np.ndarray],
                n: int) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The simulator's device log into ``steps``; (faults, comm extras, servers)."""
    from twin.faults import FAULT_KINDS

    dlog = report.get("device_log", {})
    fl = {d: _fit(a, n, np.int16) for d, a in dlog.get("faults", {}).items()}
    faults = []
    for f in scn.config.faults:
        mask = fl.get(f.device, np.zeros(n, np.int16)) & (1 << FAULT_KINDS.index(f.kind))
        on = np.flatnonzero(mask)
        faults.append({"time_s": f.time, "duration_s": f.duration, "device": f.device,
                       "kind": f.kind, "steps": len(on),
                       "first_step": int(on[0]) if len(on) else None,
                       "last_step": int(on[-1]) if len(on) else None})
    steps["bess_applied_kw"] = _fit(dlog.get("bess_applied_kw"), n, float)
    steps["bess_reverted"] = _fit(dlog.get("bess_reverted"), n, bool)
    steps["chargers_failsafe"] = _fit(dlog.get("chargers_failsafe"), n, np.int16)
    for d, a in fl.items():
        steps[f"fault_{d}"] = a
    servers = report.get("servers", {})
    extra = {
        "steps_bess_reverted": int(steps["bess_reverted"].sum()),
        "steps_chargers_failsafe": int((steps["chargers_failsafe"] > 0).sum()),
        "bess_ctrl_heartbeats_seen": int(dlog.get("bess_ctrl_heartbeats", 0)),
        "sim_clock_server": servers.get("sim_clock", {}),
        "simulator_steps_done": int(report.get("steps_done", 0)),
    }
    return faults, extra, servers


def _hil_run(scn: Scenario, st: HilSettings, site: HilSite | None, out: Any,
             fault: str | None, report: dict[str, Any] | None,
             sim: SimulatorProcess | None) -> HilRun:
    """The run's comm record (``summary.json["hil"]``) and per-step columns."""
    from twin.engine import WallClock

    dt = scn.config.dt
    n = out.steps_done
    io = site.io if site is not None else None
    steps = {k: _fit(v, n, v.dtype) for k, v in (io.steps.arrays() if io else {}).items()}
    faults: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    servers: dict[str, Any] = {}
    if report is not None:
        faults, extra, servers = _device_log(scn, report, steps, n)
    devs = io.summary() if io is not None else {}
    not_counted = site.not_counted if site is not None else {}
    wall = site.clock if site is not None and isinstance(site.clock, WallClock) else None

    def invalid(col: str) -> int:
        return int((~steps[col]).sum()) if col in steps else 0

    write_err = steps.get("write_errors", np.zeros(0, np.int8))
    comm = {
        "mode": st.clock,
        "speed": st.speed if wall is not None else None,
        "devices_file": str(st.devices) if st.devices is not None else None,
        "read_only": st.read_only,
        "settings": {"timeout_s": st.timeout_s, "retries": st.retries,
                     "device_timeout_s": st.device_timeout_s,
                     "invalid_after_errors": st.invalid_after_errors,
                     "stale_after_s": st.stale_after_s if st.stale_after_s is not None
                     else 1.5 * dt},
        "cycle": _percentiles(steps.get("cycle_ms", np.zeros(0))),
        "wall_s": out.sim_wall_s,
        "wall_s_per_simulated_day": out.sim_wall_s / (n * dt / 86400.0) if n else 0.0,
        "max_lag_s": wall.max_lag_s if wall is not None else 0.0,
        "devices": {d: {**devs.get(d, {}), "server": servers.get(d, {})}
                    for d in (*(d for d in DEVICES if d != "sim_clock"),
                              *(io.devices.battery_devices[1:] if io is not None else ()))},
        "faults": faults,
        "fault": fault,
        "steps_bess_invalid": invalid("bess_valid"),
        "steps_sockets_invalid": invalid("sockets_valid"),
        "steps_meters_invalid": invalid("meters_valid"),
        # steps whose energy was not counted: the reading was invalid or held (not new)
        "steps_energy_not_counted": {
            "bess": not_counted.get("bess", 0), "chargers": not_counted.get("chargers", 0),
            "meters": invalid("meters_valid")},
        "steps_bess_write_failed": int((write_err & 1).astype(bool).sum()),
        "steps_chargers_write_failed": int((write_err & 2).astype(bool).sum()),
        **extra,
    }
    return HilRun(out, comm, steps, sim.stderr if sim is not None else "")


def write_hil(run: HilRun, out_dir: Path, *, csv: bool = False,
              parquet: bool = True) -> dict[str, Any]:
    """Write the run's outputs (as ``twin run``) plus ``hil`` in the summary and
    ``hil_steps.csv``; return the summary."""
    import pandas as pd

    from twin.engine.results import build_results, write_results

    res = build_results(run.output)
    res.summary["hil"] = run.comm
    res.summary["clock"] = run.output.clock
    steps = pd.DataFrame({"timestamp": res.timeseries["timestamp"].astype(str)
                          if len(res.timeseries) else [], **run.steps})

    def hil_files(tmp: Path) -> None:
        steps.to_csv(tmp / "hil_steps.csv", index=False)
        (tmp / "hil_simulator.log").write_text(run.simulator_log, encoding="utf-8")

    run.written_to = write_results(res, out_dir, csv=csv, parquet=parquet, extra=hil_files)
    return res.summary


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM set ``stop`` while the block runs (main thread only)."""
    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the driver stops between two steps (a wall-clock sleep is cut short)

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread
            break
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_hil(args: argparse.Namespace) -> int:
    """``twin hil``."""
    from twin.app.table import kpi_table
    from twin.atomic import hold_output
    from twin.config import load_scenario, parse_set
    from twin.engine import get_controller

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
    if args.simulator and args.devices:
        raise UserError("--simulator and --devices name the devices twice: give one")
    check_link_args(args)
    hold_output(out_dir, "run")  # before any work: never lose a run at the end
    st = HilSettings(timeout_s=args.timeout, retries=args.retries, read_only=args.read_only,
                     device_timeout_s=args.device_timeout,
                     registers=Path(args.registers) if args.registers else None,
                     simulator=ext, devices=Path(args.devices) if args.devices else None,
                     clock=args.clock, speed=args.speed, sets=tuple(args.set or ()))
    metrics = server = None
    if args.metrics_addr:
        from twin.monitoring.metrics import TwinMetrics

        metrics = TwinMetrics()
        server = serve_metrics(args.metrics_addr, metrics.registry, args.quiet)
    stop = threading.Event()

    def on_start(n_steps: int) -> None:
        if not args.quiet:
            print(f"twin hil: devices answer; running {n_steps} steps ({st.clock} clock)",
                  file=sys.stderr, flush=True)

    # Ctrl-C and SIGTERM are handled here only: they set the stop flag, the driver stops
    # between two steps and the steps done are written (no exception raised at an
    # arbitrary point, e.g. inside a Modbus request); the handlers stay until written
    with stop_on_signals(stop):
        try:
            run = run_hil(scn, controller, st, metrics=metrics, stop=stop, on_start=on_start)
        except HilError as exc:
            raise UserError(str(exc)) from None
        finally:
            if server is not None:
                server.shutdown()
        summary = write_hil(run, out_dir, csv=args.csv or scn.config.output.csv,
                            parquet=scn.config.output.parquet)
    c = run.comm
    if not args.quiet:
        print(kpi_table(summary))
        print(f"  HIL {c['mode']}: cycle {c['cycle']['median_ms']:.2f} ms median / "
              f"{c['cycle']['p99_ms']:.2f} ms p99; {c['wall_s']:.1f} s wall; faults "
              f"{len(c['faults'])}; BESS invalid {c['steps_bess_invalid']} steps, sockets "
              f"invalid {c['steps_sockets_invalid']} steps, meters invalid "
              f"{c['steps_meters_invalid']} steps")
        print(f"outputs: {run.written_to or out_dir}")
    if run.output.interrupted:
        print(f"twin: hil run partial ({run.output.steps_done} of {scn.config.n_steps} steps): "
              f"{c['fault']}; outputs hold the steps done", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``twin hil`` to the CLI's subcommands."""
    h = sub.add_parser(
        "hil", help="run the controller against Modbus devices (simulator or hardware)",
        description="Run the controller and the Modbus adapters against devices: by default "
                    "start the Modbus simulators (plant inside, lockstep) on ephemeral "
                    "loopback ports; or --simulator HOST:PORT (a running one); or --devices "
                    "FILE (any devices: hardware or 'python -m simulators --clock realtime') "
                    "with --clock wall. The record is what the adapters read. Writes the "
                    "outputs of 'twin run' plus comm statistics (summary.json 'hil', "
                    "hil_steps.csv). Exit 0 done, 2 user error, 130 partial (devices lost, "
                    "Ctrl-C or SIGTERM: the steps done are written).")
    h.add_argument("scenario",
                   help="scenario YAML (e.g. scenarios/hil.yaml; faults: declared there)")
    h.add_argument("--out",
                   help="output folder (default: the scenario's output.dir, else runs/NAME)")
    h.add_argument("--controller", help="controller name (overrides the scenario)")
    h.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a value")
    h.add_argument("--read-only", action="store_true",
                   help="the adapters write nothing to the devices (monitoring only)")
    h.add_argument("--simulator", metavar="HOST:PORT",
                   help="use a running 'python -m simulators --port PORT' (ports PORT..PORT+4)")
    h.add_argument("--devices", metavar="FILE",
                   help="devices file: host/port/unit/map per device (see "
                        "config/devices.example.yaml)")
    h.add_argument("--clock", choices=("lockstep", "wall"), default="lockstep",
                   help="lockstep: advance the simulator's clock device one step per tick "
                        "(default); wall: sleep to each tick while the devices run on their own")
    h.add_argument("--speed", type=float, default=1.0,
                   help="wall clock: simulated seconds per wall second, in (0, 1e6] (default 1 = "
                        "real time)")
    add_link_args(h)
    h.add_argument("--csv", action="store_true",
                   help="also write timeseries.csv and sessions.csv (as 'twin run --csv')")
    h.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    h.set_defaults(func=cmd_hil)


__all__ = ["HilError", "HilRun", "HilSettings", "SimulatorProcess", "add_link_args",
           "check_link_args", "connect_site", "open_devices", "open_site", "register", "run_hil",
           "serve_metrics", "stop_on_signals", "write_hil"]

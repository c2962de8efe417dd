"""The device simulator: the twin's plant on a SimPy clock behind Modbus TCP servers.

``python -m simulators --scenario SCENARIO [--host 127.0.0.1] [--port 0] [--clock lockstep]``

Six servers, one per device (register maps in ``config/registers/``): ``bess``,
``chargers``, ``pv_inverter``, ``site_meter``, ``sim_clock`` and ``weather_station`` (SunSpec
308: GHI and temperatures from the scenario's weather, read-only). With ``--port 0`` each
gets an ephemeral port; with ``--port P`` they take P, P+1, ... in that order.

A site for shadow mode (``twin shadow``): ``--set`` gives the simulated site parameters the
twin does not know (``--set pv.p_dc_kwp=3900``), ``--fault pv_trip@TIME:FRACTION`` trips
that fraction of the PV array from TIME on (scenario time, e.g. ``pv_trip@10h:0.4``), and
``--local-ems`` lets the battery follow the site's own EMS schedule (charge 10:00-13:00,
discharge 18:00-21:00 local time, ``LOCAL_EMS_KW``) while no controller writes a setpoint. When all
listen, one JSON line goes to stdout: ``{"ready": true, "host": ..., "ports": {...}}``.

Clock modes
-----------
``lockstep``: the plant advances one step when the controller writes ``step + 1`` to the
clock's ``tick`` register (deterministic, as fast as Modbus allows). ``realtime``: the
engine's ``PacedEnvironment`` advances it at ``--speed`` times the wall clock, from the
first Modbus request on (``--start first-request``, the default) or at once (``--start now``).

Writing 1 to the clock's ``shutdown`` register (or SIGTERM / SIGINT) stops the simulator.
Its last line on stdout is a JSON report of the simulator's own diagnostics: steps run,
server-side request counts per device, and the per-step device log (BESS setpoint applied,
reverts, charger failsafe, active faults). A controller never needs it: a run against the
simulator records what its adapters read (``twin hil``), as against hardware. The plant
is advanced by the engine's ``SimPyClock`` (the same code as ``twin run``'s clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from adapters.modbus import codec
from adapters.modbus.regmap import REGISTER_DIR, RegisterMap, load_register_map
from adapters.modbus.site import CLOCK_DEVICE, SITE_DEVICES, battery_device
from simulators.devices import (
    BessDevice,
    ChargerDevice,
    ClockDevice,
    Device,
    MeterDevice,
    WeatherDevice,
)
from simulators.server import DeviceServer
from twin.components.inputs import build_inputs
from twin.config import ConfigError, Scenario, load_scenario, parse_set
from twin.engine.clocks import PacedEnvironment, SimPyClock
from twin.faults import FAULT_KINDS, FaultSpec
from twin.plant import Plant

log = logging.getLogger("simulators")

#: The weather station (after the clock: the older devices keep their ports).
WEATHER_DEVICE = "weather_station"
#: Devices in port order.
DEVICES: tuple[str, ...] = (*SITE_DEVICES, CLOCK_DEVICE, WEATHER_DEVICE)
FAULT_DEVICES: tuple[str, ...] = SITE_DEVICES
#: The local EMS schedule (``--local-ems``): (from hour, to hour, battery power [kW, +
#: discharge]) in local time; the power is a fraction of the battery's rated charge power.
LOCAL_EMS_KW: tuple[tuple[float, float, float], ...] = ((10.0, 13.0, -0.75), (18.0, 21.0, 0.75))


def parse_pv_trip(text: str, horizon_s: float) -> tuple[float, float]:
    """``pv_trip@TIME:FRACTION`` -> (time [s from the scenario start], fraction tripped [0-1]).

    Raises
    ------
    ConfigError
        Naming ``--fault`` and the expected form.
    """
    from twin.config import _parse_timedelta_s

    kind, _, rest = text.partition("@")
    when, _, frac = rest.partition(":")
    try:
        if kind != "pv_trip" or not when or not frac:
            raise ValueError(text)
        t_s = float(_parse_timedelta_s(when, "--fault TIME"))
        f = float(frac)
    except (ValueError, TypeError, ConfigError):
        raise ConfigError(f"--fault {text!r}: write pv_trip@TIME:FRACTION, e.g. pv_trip@10h:0.4 "
                          "(the fraction of the PV array tripped from TIME on)") from None
    if not 0.0 < f <= 1.0:
        raise ConfigError(f"--fault {text!r}: FRACTION must be in (0, 1]")
    if not 0.0 <= t_s < horizon_s:
        raise ConfigError(f"--fault {text!r}: TIME must be in [0, {horizon_s:g}) s (the horizon)")
    return t_s, f




def load_maps(folder: Path | None = None) -> dict[str, RegisterMap]:
    """The register maps from ``folder`` (default: the shipped ``config/registers``); the
    weather station's is optional (no file: no weather station)."""
    folder = Path(folder) if folder is not None else REGISTER_DIR
    return {name: load_register_map(folder / f"{name}.yaml") for name in DEVICES
            if name != WEATHER_DEVICE or (folder / f"{name}.yaml").is_file()}


class Simulator:
    """The plant and its simulated devices, stepped in lockstep or in real time.

    Parameters
    ----------
    scn : the scenario (site, horizon, seed, ``faults:``).
    maps : register maps by device name (see ``load_maps``).
    mode : ``lockstep`` or ``realtime``.
    speed : realtime only: simulated seconds per wall-clock second.
    """

    def __init__(self, scn: Scenario, maps: dict[str, RegisterMap], mode: str = "lockstep",
                 speed: float = 1.0, start: str = "first-request",
                 pv_trips: Sequence[tuple[float, float]] = (), local_ems: bool = False) -> None:
        if mode not in ("lockstep", "realtime"):
            raise ConfigError(f"--clock {mode!r}: use 'lockstep' or 'realtime'")
        if speed <= 0:
            raise ConfigError(f"--speed {speed:g}: must be positive")
        if start not in ("first-request", "now"):
            raise ConfigError(f"--start {start!r}: use 'first-request' or 'now'")
        self.start = start
        #: Set when the realtime clock may run (at once, or at the first Modbus request).
        self.started = threading.Event()
        if start == "now":
            self.started.set()
        self.scn = scn
        self.mode = mode
        self.speed = speed
        self.env: simpy.Environment = (simpy.Environment() if mode == "lockstep" else
                                       PacedEnvironment(speed))
        self.inputs = build_inputs(scn)
        self.pv_trips = list(pv_trips)
        self._trip_pv(self.inputs.p_pv_kw, scn.config.dt)
        self.plant = Plant(self.env, self.inputs, scn.site)
        self.n = scn.config.n_steps
        self.dt = scn.config.dt
        self.k = 0
        self.lock = threading.RLock()
        #: The engine's clock moves the plant (as in ``twin run``): the Modbus servers and
        #: the realtime thread share the plant under ``lock``.
        self.world = SimPyClock(self.env, self.plant, scn.config.dt, lock=self.lock)
        p = self.plant
        self.bess = BessDevice(maps["bess"], p)
        self.bess.immediate = mode == "realtime"
        cmap = maps["chargers"]
        if cmap.n_sockets != p.n_sockets:  # the simulated station has the site's sockets
            cmap = load_register_map(cmap.path, n_sockets=p.n_sockets)
        self.chargers = ChargerDevice(cmap, p)
        self.pv = MeterDevice(maps["pv_inverter"], p, "pv_inverter", "103", p.p_pv_kw, "WH")
        self.meter = MeterDevice(maps["site_meter"], p, "site_meter", "203", p.p_mall_kw,
                                 "TotWhImp", "TotWhExp")
        self.clock = ClockDevice(maps["sim_clock"], p, mode, self.n)
        self.clock.on_write = self._clock_write  # type: ignore[method-assign]
        self.weather = self._weather_device(maps.get(WEATHER_DEVICE), p)
        if local_ems:
            self.bess.local_kw = self._local_ems_kw()
        self.devices: dict[str, Device] = {"bess": self.bess, "chargers": self.chargers,
                                           "pv_inverter": self.pv, "site_meter": self.meter,
                                           "sim_clock": self.clock}
        if self.weather is not None:
            self.devices[WEATHER_DEVICE] = self.weather
        #: one SunSpec 802 battery per battery of the site: ``bess`` (the first) and
        #: ``bess.<name>`` for the others, served after the other devices' ports
        self.bess_units: list[BessDevice] = [self.bess]
        for i, b in enumerate(scn.site.batteries[1:], start=1):
            dev = BessDevice(maps["bess"], p, i)
            dev.immediate = self.bess.immediate
            self.bess_units.append(dev)
            self.devices[battery_device(b.name)] = dev
        self.servers = {name: DeviceServer(dev, self.lock, self.now_s)
                        for name, dev in self.devices.items()}
        if mode == "realtime" and not self.started.is_set():
            for srv in self.servers.values():
                srv.on_request = self.started.set
        self.faults: list[FaultSpec] = list(scn.config.faults)
        n = self.n
        self.log_bess_applied_kw = np.zeros(n)
        self.log_bess_reverted = np.zeros(n, dtype=bool)
        self.log_chargers_failsafe = np.zeros(n, dtype=np.int16)
        self.log_faults = {d: np.zeros(n, dtype=np.int16) for d in FAULT_DEVICES}
        self.stop_event: asyncio.Event | None = None
        self.stopped = False
        #: Called with the new step index after every step (tests wait on it).
        self.on_step: Callable[[int], None] | None = None
        self._apply_faults(0.0)
        self._publish()

    def _trip_pv(self, p_pv_kw: np.ndarray, dt_s: float) -> None:
        """A PV string trip: from its step on, the tripped fraction produces nothing."""
        for t_s, frac in self.pv_trips:
            k0 = int(np.ceil(t_s / dt_s - 1e-9))
            p_pv_kw[k0:] *= 1.0 - frac
            log.warning("t=%.0f s step %d: fault pv_trip: %.0f %% of the PV array trips",
                        t_s, k0, frac * 100.0)

    def _weather_device(self, regmap: RegisterMap | None, p: Plant) -> WeatherDevice | None:
        """The weather station fed by the scenario's weather (None: no map, or PV from a file)."""
        from twin.components.station import weather_series

        if regmap is None or self.scn.site.pv.source == "file":
            return None
        w = weather_series(self.scn)
        return WeatherDevice(regmap, p, w.ghi_w_m2, w.t_module_c, w.t_amb_c)

    def _local_ems_kw(self) -> np.ndarray:
        """The local EMS's battery setpoint per step [kW, + discharge]."""
        hour = self.inputs.hour
        p_max = self.plant.battery.params.p_charge_max_kw
        out = np.zeros(len(hour))
        for h0, h1, frac in LOCAL_EMS_KW:
            out[(hour >= h0) & (hour < h1)] = frac * p_max
        return out

    # ------------------------------------------------------------------ clock
    def now_s(self) -> float:
        """Simulated time now [s] (realtime: from the wall clock, inside the running step)."""
        env = self.env
        if isinstance(env, PacedEnvironment) and self.started.is_set():
            t = env.pacer.now_s()
            return float(min(max(t, env.now), (self.k + 1) * self.dt))
        return float(env.now)

    def _clock_write(self, address: int, values: Sequence[int], now_s: float) -> int | None:
        clk = self.clock
        mem = clk.mem
        if mem.touches(address, len(values), clk.p_shutdown):
            mem.store(address, values)
            if (mem.get(clk.p_shutdown) or 0) >= 1:
                self.request_stop()
            return None
        if mem.touches(address, len(values), clk.p_tick):
            if len(values) != 2 or address != clk.p_tick.address:
                return 3  # ILLEGAL_VALUE: write the whole uint32
            target = codec.decode_raw("uint32", values, mem.wo)
            if self.mode != "lockstep" or target == self.k:
                return None  # realtime ignores ticks; a retried tick is not run twice
            if target != self.k + 1 or self.k >= self.n:
                return 3
            self.step()
            return None
        return 2

    def step(self) -> None:
        """Run step ``k``: setpoints in force → plant over [t_k, t_k + dt] → telemetry."""
        self._begin_step()
        self.world.advance(self.k)
        self._end_step()
        if self.on_step is not None:
            self.on_step(self.k)

    def _begin_step(self) -> None:
        """Apply the devices' setpoints (or their fallbacks) for step ``k`` and log them."""
        t = float(self.env.now)
        for b in self.bess_units:
            b.begin_step(t)
        self.chargers.begin_step(t)
        self._log_step(self.k, t)

    def _end_step(self) -> None:
        """After the plant settled step ``k``: advance ``k``, apply faults, publish telemetry."""
        self.k += 1
        self._apply_faults(float(self.env.now))
        self._publish()

    def _log_step(self, k: int, t: float) -> None:
        """Record what the devices apply in step ``k``; log every fallback as it starts/ends."""
        b, c = self.bess, self.chargers
        self.log_bess_applied_kw[k] = b.applied_kw
        self.log_bess_reverted[k] = b.reverted
        self.log_chargers_failsafe[k] = c.n_failsafe
        was_r = bool(self.log_bess_reverted[k - 1]) if k else False
        was_f = bool(self.log_chargers_failsafe[k - 1]) if k else False
        if b.reverted != was_r:
            log.warning("t=%.0f s step %d: bess %s", t, k, "no WSet within WSetRvrtTms: "
                        "reverted to WSetRvrt (0 W)" if b.reverted else "setpoint control resumed")
        if bool(c.n_failsafe) != was_f:
            log.warning("t=%.0f s step %d: chargers %s", t, k, f"comm timeout: {c.n_failsafe} "
                        "sockets on failsafe power" if c.n_failsafe else "failsafe ended")

    def _apply_faults(self, t: float) -> None:
        k = self.k
        for name in FAULT_DEVICES:
            dev = self.devices[name]
            active = [f for f in self.faults if f.device == name and f.active(t)]
            kinds: set[str] = {str(f.kind) for f in active}
            for kind in sorted(kinds ^ dev.faults.kinds):
                log.warning("t=%.0f s step %d: fault %s on %s %s", t, k, kind, name,
                            "starts" if kind in kinds else "ends")
            dev.faults.kinds = kinds
            for f in active:
                if f.kind == "response_delay":
                    dev.faults.delay_s = f.delay_s
                if f.kind == "exception":
                    dev.faults.exception_code = f.exception_code
            if k < self.n:
                self.log_faults[name][k] = sum(1 << FAULT_KINDS.index(x) for x in dev.faults.kinds)
            self.servers[name].set_dropped("connection_drop" in dev.faults)

    def _publish(self) -> None:
        t = float(self.env.now)
        for dev in self.devices.values():
            dev.publish(t, self.k)

    def run_realtime(self) -> None:
        """Advance the plant with the wall clock until the horizon or a stop (thread body).

        The clock starts at the first Modbus request (``--start first-request``, so that a
        controller that connects late misses no step) or at once (``--start now``).
        """
        while not self.started.wait(0.1):
            if self.stopped:
                return
        env = self.env
        if isinstance(env, PacedEnvironment):
            env.sync()
        for srv in self.servers.values():
            srv.on_request = None
        while self.k < self.n and not self.stopped:
            with self.lock:
                self._begin_step()
            self.world.advance(self.k)  # waits unlocked; settles under the lock
            with self.lock:
                self._end_step()
            if self.on_step is not None:
                self.on_step(self.k)

    def request_stop(self) -> None:
        """Ask the server loop to stop (thread-safe)."""
        self.stopped = True
        ev = self.stop_event
        if ev is not None:
            srv = self.servers["sim_clock"]
            if srv.loop is not None:
                srv.loop.call_soon_threadsafe(ev.set)

    # ---------------------------------------------------------------- results
    def report(self) -> dict[str, Any]:
        """The simulator's own diagnostics (JSON-ready): steps, server counts, device log."""
        k = self.k
        return {
            "stopped": True,
            "steps_done": k,
            "n_steps": self.n,
            "mode": self.mode,
            "speed": self.speed,
            "servers": {name: s.stats.as_dict() for name, s in self.servers.items()},
            "device_log": {
                "bess_applied_kw": self.log_bess_applied_kw[:k].tolist(),
                "bess_reverted": self.log_bess_reverted[:k].astype(int).tolist(),
                "chargers_failsafe": self.log_chargers_failsafe[:k].tolist(),
                "faults": {d: a[:k].tolist() for d, a in self.log_faults.items()},
                "bess_ctrl_heartbeats": self.bess.n_ctrl_hb,
            },
        }


async def serve(sim: Simulator, host: str = "127.0.0.1", port: int = 0, ready: Any = None,
                report: Any = None) -> int:
    """Start the five servers, announce them, serve until stopped; report (one JSON line on
    stdout, or to ``report(dict)``)."""
    sim.stop_event = asyncio.Event()
    ports: dict[str, int] = {}
    names = [*DEVICES, *(d for d in sim.servers if d not in DEVICES)]  # extra batteries last
    try:
        for i, name in enumerate(names):
            if name in sim.servers:
                ports[name] = await sim.servers[name].start(host, port + i if port else 0)
    except (RuntimeError, OSError) as exc:
        for s in sim.servers.values():
            await s.stop()
        print(f"simulators: error: cannot listen on {host}:{port} ({exc}); pick another "
              "--port or 0 for ephemeral ports", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, sim.request_stop)
    msg = {"ready": True, "host": host, "ports": ports, "mode": sim.mode, "n_steps": sim.n,
           "dt_s": sim.dt}
    if ready is not None:
        ready(msg)
    else:
        print(json.dumps(msg), flush=True)
    thread = None
    if sim.mode == "realtime":
        thread = threading.Thread(target=sim.run_realtime, name="plant-realtime", daemon=True)
        thread.start()
    if sim.stopped:
        sim.stop_event.set()
    await sim.stop_event.wait()
    sim.stopped = True
    for s in sim.servers.values():
        await s.stop()
    if thread is not None:
        thread.join(timeout=5.0)
    with sim.lock:
        data = sim.report()
    if report is not None:
        report(data)
    else:
        print(json.dumps(data, separators=(",", ":")), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m simulators``."""
    ap = argparse.ArgumentParser(
        prog="python -m simulators",
        description="Modbus TCP simulators of the site's BESS, chargers and meters, backed by "
                    "the twin's plant (one port per device).")
    ap.add_argument("--scenario", required=True, help="scenario YAML (site, horizon, faults)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0,
                    help="first port (bess, chargers, pv_inverter, site_meter, sim_clock, "
                         "weather_station take PORT..PORT+5, a site's further batteries "
                         "PORT+6 ...); 0 = ephemeral ports, printed when ready")
    ap.add_argument("--clock", choices=("lockstep", "realtime"), default="lockstep",
                    help="lockstep: one step per write to the clock's tick register; "
                         "realtime: the engine's paced SimPy environment (--speed)")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="realtime: simulated seconds per wall-clock second")
    ap.add_argument("--start", choices=("first-request", "now"), default="first-request",
                    help="realtime: start the plant's clock at the first Modbus request "
                         "(default) or at once")
    ap.add_argument("--registers", type=Path, default=None,
                    help="folder of register maps (default config/registers)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                    help="override a scenario or site value, as 'twin run --set' (the "
                         "site's hidden parameters in shadow tests)")
    ap.add_argument("--fault", action="append", metavar="pv_trip@TIME:FRACTION", default=[],
                    help="trip FRACTION (0-1] of the PV array from TIME (scenario time, e.g. "
                         "10h) on; repeatable")
    ap.add_argument("--local-ems", action="store_true",
                    help="the battery follows the site's own EMS schedule (charge 10-13 h, "
                         "discharge 18-21 h) while no controller writes a setpoint")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m simulators``; exit 2 on a user error."""
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535 - len(DEVICES):
        print(f"simulators: error: --port {args.port} out of range", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="simulators: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        scn = load_scenario(Path(args.scenario), parse_set(args.set))
        horizon_s = scn.config.n_steps * scn.config.dt
        trips = [parse_pv_trip(f, horizon_s) for f in args.fault]
        sim = Simulator(scn, load_maps(args.registers), args.clock, args.speed, args.start,
                        pv_trips=trips, local_ems=args.local_ems)
    except ConfigError as exc:
        print(f"simulators: error: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(sim, args.host, args.port))
    except KeyboardInterrupt:
        return 130

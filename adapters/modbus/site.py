"""A site's Modbus devices as the tick driver sees them: ``ModbusSiteIO`` and the devices file.

A devices file names, per device, where it listens and which register map it speaks::

    devices:
      bess:        {host: 127.0.0.1, port: 5020, unit: 1, map: bess}
      chargers:    {host: 127.0.0.1, port: 5021, unit: 1, map: chargers}
      pv_inverter: {host: 127.0.0.1, port: 5022, unit: 1, map: pv_inverter}
      site_meter:  {host: 127.0.0.1, port: 5023, unit: 1, map: site_meter}
      sim_clock:   {host: 127.0.0.1, port: 5024, unit: 1, map: sim_clock}   # lockstep only

``map`` is a map name in the register folder (``config/registers/NAME.yaml``) or a path to
a map file (relative to the devices file). ``unit`` overrides the map's unit id.

``ModbusSiteIO.read`` reads the battery, the chargers and the meters concurrently (one
consistent snapshot a step); ``write`` sends the battery setpoint and the socket limits
concurrently. A failed write is logged and counted, never fatal: the device falls back on
its own (BESS revert timer, charger failsafe) and the next step tries again. Per step it
keeps the control-cycle time (read → write), the validity of each reading and the write
failures (``steps``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import AdapterError, Telemetry, TimeSource
from adapters.modbus.bess import ModbusBessAdapter
from adapters.modbus.chargers import ModbusChargerAdapter
from adapters.modbus.meters import ModbusMeterAdapter
from adapters.modbus.regmap import REGISTER_DIR, RegisterMap, load_register_map
from adapters.modbus.simclock import SimClockClient
from adapters.modbus.transport import LinkSettings, LoopRunner, ModbusTransport
from adapters.modbus.weather import ModbusWeatherAdapter
from twin.components.bess import aggregate_state, split_power_kw
from twin.config import read_device_yaml
from twin.errors import ConfigError
from twin.types import FloatArray

log = logging.getLogger("adapters.modbus")

#: Devices a site needs, and the optional simulator clock (lockstep).
SITE_DEVICES: tuple[str, ...] = ("bess", "chargers", "pv_inverter", "site_meter")
CLOCK_DEVICE = "sim_clock"
#: An optional site device: the weather station (SunSpec 308), read only.
WEATHER_DEVICE = "weather_station"


class DeviceEndpoint(BaseModel):
    """Where one device listens and which register map it speaks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)]
    unit: Annotated[int, Field(ge=0, le=247)] | None = None
    map: str


class BatteryEndpoint(DeviceEndpoint):
    """One battery of a site with several (``bess:`` as a list): its endpoint and the
    name of the site's battery it is (``bess:`` list of the site file)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")]


class DevicesFile(BaseModel):
    """The devices file: ``devices: {name: endpoint}``; ``bess`` may be a list of battery
    endpoints (each with ``name``: ``_BatteryList``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: dict[str, DeviceEndpoint]


class _BatteryList(BaseModel):
    """``devices.bess`` given as a list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bess: list[BatteryEndpoint]


def battery_device(name: str) -> str:
    """Device name of a site's further battery (the first is ``bess``)."""
    return f"bess.{name}"


def _battery_endpoints(path: Path, eps: list[BatteryEndpoint]) -> dict[str, DeviceEndpoint]:
    """``bess`` (the first) and ``bess.<name>`` (the others) of a list of batteries."""
    if not eps:
        raise ConfigError(f"{path}: field 'devices.bess': an empty list; name one battery "
                          "device (a mapping) or a list of them, each with the name of a "
                          "battery of the site")
    names = [e.name for e in eps]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{path}: field 'devices.bess': duplicate battery name(s) {dup}")
    out: dict[str, DeviceEndpoint] = {}
    for i, e in enumerate(eps):
        ep = DeviceEndpoint(host=e.host, port=e.port, unit=e.unit, map=e.map)
        out["bess" if i == 0 else battery_device(e.name)] = ep
    return out


@dataclass(frozen=True)
class SiteDevices:
    """A loaded devices file: endpoints and their register maps."""

    path: Path | None
    endpoints: dict[str, DeviceEndpoint]
    maps: dict[str, RegisterMap]
    #: the site's battery names when the devices list several (``bess`` the first,
    #: ``bess.<name>`` the others); empty: one battery device, ``bess``
    battery_names: tuple[str, ...] = ()

    @property
    def battery_devices(self) -> tuple[str, ...]:
        """Device names of the batteries, in the site's order."""
        if not self.battery_names:
            return ("bess",)
        return ("bess", *(battery_device(n) for n in self.battery_names[1:]))

    def check_batteries(self, names: tuple[str, ...]) -> None:
        """The battery devices must be the site's batteries (``names``, in order).

        Raises
        ------
        ConfigError
            Naming the devices file and the difference.
        """
        have = self.battery_names or ("(one device 'bess')",)
        if len(names) == 1 and not self.battery_names:
            return
        if tuple(names) != tuple(self.battery_names):
            where = self.path if self.path is not None else "the simulator"
            raise ConfigError(f"{where}: field 'devices.bess': battery devices {list(have)} do "
                              f"not match the site's batteries {list(names)} (list one device "
                              "per battery, each with the battery's name, in the site's order)")

    @property
    def has_clock(self) -> bool:
        """True when a simulator clock device is named (lockstep possible)."""
        return CLOCK_DEVICE in self.endpoints


def _map_path(spec: str, base: Path, registers: Path) -> Path:
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        p = Path(spec)
        return p if p.is_absolute() else base / p
    return registers / f"{spec}.yaml"


def load_devices(path: Path | str, registers: Path | None = None) -> SiteDevices:
    """Load and check a devices file and the register maps it names.

    Raises
    ------
    ConfigError
        Naming the file, the field and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: devices file not found (give --devices FILE; see "
                          "config/devices.example.yaml)")
    data = read_device_yaml(path)  # size checked before parsing; bounded values
    units_raw: Any = None
    devs = data.get("devices") if isinstance(data, dict) else None
    if isinstance(devs, dict) and isinstance(devs.get("bess"), list):
        units_raw = devs["bess"]  # several batteries: checked as a list below
        data = {**data, "devices": {k: v for k, v in devs.items() if k != "bess"}}
    try:
        df = DevicesFile.model_validate(data)
        units = _BatteryList.model_validate({"bess": units_raw}) if units_raw is not None \
            else None
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = [str(x) for x in e["loc"]]
        where = ".".join(["devices", *loc] if loc[:1] == ["bess"] else loc)
        raise ConfigError(f"{path}: field '{where}': {e['msg']} (see "
                          "config/devices.example.yaml)") from None
    endpoints = dict(df.devices)
    battery_names: tuple[str, ...] = ()
    if units is not None:
        battery_names = tuple(u.name for u in units.bess)
        endpoints = {**_battery_endpoints(path, units.bess), **endpoints}
    missing = [d for d in SITE_DEVICES if d not in endpoints]
    if missing:
        raise ConfigError(f"{path}: field 'devices': missing {missing}; a site needs "
                          f"{list(SITE_DEVICES)} (and optionally '{CLOCK_DEVICE}')")
    unknown = sorted(set(endpoints) - set(SITE_DEVICES) - {CLOCK_DEVICE, WEATHER_DEVICE}
                     - {battery_device(n) for n in battery_names[1:]})
    if unknown:
        raise ConfigError(f"{path}: field 'devices': unknown device(s) {unknown}; known: "
                          f"{[*SITE_DEVICES, CLOCK_DEVICE, WEATHER_DEVICE]}")
    regs = registers or REGISTER_DIR
    maps: dict[str, RegisterMap] = {}
    for name, ep in endpoints.items():
        mp = _map_path(ep.map, path.parent, regs)
        if not mp.is_file():
            raise ConfigError(f"{path}: field 'devices.{name}.map': register map {mp} not found")
        m = load_register_map(mp)
        if ep.unit is not None and ep.unit != m.unit_id:
            m = dataclasses.replace(m, unit_id=ep.unit)
        maps[name] = m
    return SiteDevices(path, endpoints, maps, battery_names)


def simulator_devices(host: str, ports: dict[str, int], registers: Path | None = None,
                      weather: bool = False, batteries: tuple[str, ...] = (),
                      n_sockets: int | None = None) -> SiteDevices:
    """The devices of our simulator (``python -m simulators``) at known ports (its weather
    station too with ``weather``; ``batteries``: the site's battery names when it has
    several, served as ``bess`` and ``bess.<name>`` with the battery map; ``n_sockets``: the
    site's sockets, which the simulated charge-point controller has)."""
    regs = registers or REGISTER_DIR
    extra = [battery_device(n) for n in batteries[1:]]
    names = [*SITE_DEVICES, CLOCK_DEVICE, *((WEATHER_DEVICE,) if weather else ()), *extra]
    eps = {d: DeviceEndpoint(host=host, port=ports[d], map="bess" if d in extra else d)
           for d in names if d in ports}
    return SiteDevices(None, eps, {d: load_register_map(
        regs / f"{eps[d].map}.yaml", n_sockets if d == "chargers" else None) for d in eps},
        tuple(batteries) if len(batteries) > 1 else ())


@dataclass
class StepLog:
    """Per-step communication record of a run against devices."""

    cycle_s: list[float] = field(default_factory=list)
    bess_valid: list[bool] = field(default_factory=list)
    sockets_valid: list[bool] = field(default_factory=list)
    meters_valid: list[bool] = field(default_factory=list)
    write_errors: list[int] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns as arrays (``cycle_ms`` in milliseconds)."""
        return {"cycle_ms": np.asarray(self.cycle_s) * 1e3,
                "bess_valid": np.asarray(self.bess_valid, dtype=bool),
                "sockets_valid": np.asarray(self.sockets_valid, dtype=bool),
                "meters_valid": np.asarray(self.meters_valid, dtype=bool),
                "write_errors": np.asarray(self.write_errors, dtype=np.int8)}


class ModbusSiteIO:
    """The site's devices over Modbus TCP (our simulator or hardware).

    Parameters
    ----------
    devices : endpoints and maps.
    clock : the run's clock: its ``now_s()`` [s] is what the adapters use for heartbeats,
        backoff and staleness (the simulated time in lockstep, the scenario time of the
        wall clock otherwise).
    eta_charge, eta_discharge : battery one-way efficiencies [0-1] (not in SunSpec 802).
    rating_kw, type_code : nameplate socket ratings [kW] and types (until read).
    settings : answer timeout and retries per request.
    invalid_after_errors : consecutive read errors before telemetry is marked invalid.
    stale_after_s : the device heartbeat must move within this time [s of ``clock``].
    read_only : the adapters write nothing (a simulator clock is still driven).
    bess_etas : per battery (several battery devices), the (charge, discharge) one-way
        efficiencies [0-1].
    dt_s : step length [s] (the default split of a total written without one).
    """

    def __init__(self, devices: SiteDevices, *, clock: TimeSource,
                 eta_charge: float, eta_discharge: float, rating_kw: FloatArray,
                 type_code: np.ndarray, settings: LinkSettings | None = None,
                 invalid_after_errors: int = 2, stale_after_s: float = 1800.0,
                 read_only: bool = False,
                 bess_etas: tuple[tuple[float, float], ...] = (), dt_s: float = 900.0) -> None:
        self.devices = devices
        self.clock = clock
        now_s = clock.now_s
        self.runner = LoopRunner()
        self.read_only = read_only
        ls = settings or LinkSettings()
        # the clock's answer waits for a plant step: give it room; a retried tick is
        # harmless (the simulator does not run a step twice)
        ls_clock = LinkSettings(timeout_s=max(10.0, ls.timeout_s), retries=1)
        self.links: dict[str, ModbusTransport] = {}
        for d, ep in devices.endpoints.items():
            self.links[d] = ModbusTransport(
                ep.host, ep.port, devices.maps[d], self.runner, now_s,
                ls_clock if d == CLOCK_DEVICE else ls,
                read_only=(read_only and d != CLOCK_DEVICE) or d == WEATHER_DEVICE, name=d,
                connections=3 if d == "chargers" else 1)
        self.bess = ModbusBessAdapter(self.links["bess"], eta_charge=eta_charge,
                                      eta_discharge=eta_discharge, clock=now_s,
                                      invalid_after_errors=invalid_after_errors,
                                      stale_after_s=stale_after_s, read_only=read_only)
        #: every battery (``devices.battery_devices``): ``bess`` first; ``bess_etas`` gives
        #: each one's (charge, discharge) efficiencies (default: ``eta_charge``, ...)
        self.bess_units = [self.bess]
        for i, d in enumerate(devices.battery_devices[1:], start=1):
            eta_c, eta_d = bess_etas[i] if i < len(bess_etas) else (eta_charge, eta_discharge)
            self.bess_units.append(ModbusBessAdapter(
                self.links[d], eta_charge=eta_c, eta_discharge=eta_d, clock=now_s,
                invalid_after_errors=invalid_after_errors, stale_after_s=stale_after_s,
                read_only=read_only))
        self.multi = len(self.bess_units) > 1
        self.chargers = ModbusChargerAdapter(self.links["chargers"], clock=now_s,
                                             rating_kw=rating_kw, type_code=type_code,
                                             invalid_after_errors=invalid_after_errors,
                                             stale_after_s=stale_after_s, read_only=read_only)
        self.meters = ModbusMeterAdapter(self.links["pv_inverter"], self.links["site_meter"])
        #: The weather station, when the devices name one (read only, never written).
        self.weather: ModbusWeatherAdapter | None = None
        if WEATHER_DEVICE in self.links:
            self.weather = ModbusWeatherAdapter(self.links[WEATHER_DEVICE])
        self.adapters: dict[str, object] = {"bess": self.bess, "chargers": self.chargers,
                                            "meters": self.meters}
        self.n_sockets = self.chargers.n
        self.steps = StepLog()
        self._dt_h = dt_s / 3600.0  # the step (a write without a split: the default split)
        self.write_failures = {"bess": 0, "chargers": 0}
        self._t_read = 0.0
        self._last: Telemetry | None = None

    @property
    def failsafe_kw(self) -> float:
        """Per-socket failsafe power of the chargers' map [kW]."""
        return float(self.devices.maps["chargers"].default("failsafe_power_w")) / 1e3

    def connect(self) -> None:
        """Open every link; raise ``AdapterError`` naming the first device that does not answer."""
        for name, link in self.links.items():
            if not self.runner.run(link.connect()):
                raise AdapterError(f"cannot reach {name} at {link.host}:{link.port} (nothing "
                                   "answers there; is the device or simulator running?)")

    def read(self) -> Telemetry:
        """Battery, chargers and meters, read concurrently (never raises)."""
        self._t_read = time.perf_counter()

        async def all_() -> list[Any]:
            return list(await asyncio.gather(self.chargers.aread(), self.meters.aread(),
                                             *(u.aread() for u in self.bess_units)))

        s, m, *bs = self.runner.run(all_())
        b_fresh = all(u.fresh for u in self.bess_units)
        held = tuple(d for d, fresh in (("bess", b_fresh), ("chargers", self.chargers.fresh))
                     if not fresh)
        if self.multi:
            units = tuple(bs)
            tel = Telemetry(m, aggregate_state(units), s, self.chargers.n_waiting, held, units)
        else:
            tel = Telemetry(m, bs[0], s, self.chargers.n_waiting, held)
        self._last = tel
        return tel

    async def _write_one(self, name: str, coro: Any) -> int:
        try:
            await coro
        except AdapterError as exc:
            self.write_failures[name] += 1
            log.warning("modbus %s: write failed: %s", name, exc)
            return 1
        return 0

    def write(self, p_bess_kw: float, p_socket_max_kw: FloatArray,
              p_bess_split_kw: tuple[float, ...] = ()) -> None:
        """Battery setpoint and socket limits, concurrently; failures counted, not raised."""

        parts = (tuple(float(q) for q in p_bess_split_kw)
                 if self.multi and len(p_bess_split_kw) == len(self.bess_units) else None)
        if self.multi and parts is None:  # no split given: the default split of the total
            last = self._last
            parts = (split_power_kw(p_bess_kw, last.batteries, self._dt_h)
                     if last is not None and len(last.batteries) == len(self.bess_units)
                     else (0.0,) * len(self.bess_units))

        async def all_() -> list[int]:
            bess = ([self._write_one("bess", self.bess.awrite(p_bess_kw))] if parts is None else
                    [self._write_one("bess", u.awrite(q))
                     for u, q in zip(self.bess_units, parts, strict=True)])
            return list(await asyncio.gather(
                self._write_one("chargers", self.chargers.awrite(p_socket_max_kw)), *bess))

        ec, *ebs = self.runner.run(all_())
        eb = min(1, sum(ebs))
        st = self.steps
        st.cycle_s.append(time.perf_counter() - self._t_read)
        tel = self._last
        st.bess_valid.append(bool(tel.bess.valid) if tel else False)
        st.sockets_valid.append(bool(tel.sockets.valid) if tel else False)
        st.meters_valid.append(bool(tel.meters.valid) if tel else False)
        st.write_errors.append(eb + 2 * ec)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per device: link and telemetry counts, write failures."""
        further = {d: u.summary() for d, u in zip(self.devices.battery_devices[1:],
                                                   self.bess_units[1:], strict=True)}
        return {"bess": {**self.bess.summary(), "write_failures": self.write_failures["bess"]},
                **further,
                "chargers": {**self.chargers.summary(),
                             "write_failures": self.write_failures["chargers"]},
                **self.meters.summary()}

    def silent(self, timeout_s: float) -> dict[str, float]:
        """Site devices that have not answered any request for ``timeout_s`` or longer.

        Returns
        -------
        {device: seconds without an answer [s wall clock]}; empty while all answer.
        """
        now = time.monotonic()
        out = {}
        for d in SITE_DEVICES:
            link = self.links.get(d)
            if link is not None and link.silent_s(now) >= timeout_s:
                out[d] = link.silent_s(now)
        return out

    def valid(self) -> dict[str, bool]:
        """Validity of the last reading per device."""
        t = self._last
        if t is None:
            return {}
        return {"bess": bool(t.bess.valid), "chargers": bool(t.sockets.valid),
                "meters": bool(t.meters.valid)}

    def close(self) -> None:
        """Close every link and the event loop."""
        for link in self.links.values():
            link.close()
        self.runner.close()


def check_simulator(client: SimClockClient, n_steps: int, dt_s: float) -> dict[str, Any]:
    """Our simulator must run the scenario's horizon and step and not be past its horizon.

    Raises
    ------
    AdapterError
        Naming what does not match, or that the horizon is already run.
    """
    info = client.read()
    if info["n_steps"] != n_steps or info["dt"] != dt_s:
        raise AdapterError(f"the simulator runs {info['n_steps']} steps of {info['dt']} s, "
                           f"the scenario {n_steps} of {dt_s:g} s")
    if (info["step"] or 0) >= n_steps:
        raise AdapterError(f"the simulator at {client.link.host}:{client.link.port} has already "
                           f"run its horizon ({n_steps} of {n_steps} steps): start a new one")
    return info


class LockstepClock:
    """Our simulator advanced one step per tick through its clock device.

    The clock owns the simulated time the adapters see (``now_s``): 0 at the start,
    ``t_{k+1}`` after the tick of step ``k``. Build it first (the site's adapters read its
    ``now_s``), then ``connect`` it to the site's ``sim_clock`` link.

    Parameters
    ----------
    dt_s : step length [s].
    """

    name = "lockstep"

    def __init__(self, dt_s: float) -> None:
        self.dt_s = dt_s
        self._t_s = 0.0
        self._client: SimClockClient | None = None

    def connect(self, io: ModbusSiteIO) -> LockstepClock:
        """Drive the simulator through ``io``'s ``sim_clock`` link; return self.

        Raises
        ------
        ConfigError
            The devices name no simulator clock.
        """
        if CLOCK_DEVICE not in io.links:
            raise ConfigError(f"lockstep needs the simulator's '{CLOCK_DEVICE}' device; name it "
                              "in the devices file or use --clock wall")
        self._client = SimClockClient(io.links[CLOCK_DEVICE])
        return self

    @property
    def client(self) -> SimClockClient:
        """The simulator's clock device."""
        if self._client is None:
            raise RuntimeError("LockstepClock.connect(io) before driving the simulator")
        return self._client

    def now_s(self) -> float:
        """Simulated time now [s]."""
        return self._t_s

    def check(self, n_steps: int) -> None:
        """The simulator must run the scenario's horizon and step, from its first step."""
        info = check_simulator(self.client, n_steps, self.dt_s)
        if info["step"]:
            raise AdapterError(f"the simulator at {self.client.link.host}:"
                               f"{self.client.link.port} has already run {info['step']:.0f} of "
                               f"its {n_steps} steps (another run drove it): start a new one")

    def start(self) -> None:
        """The simulated time starts at 0."""
        self._t_s = 0.0

    def advance(self, k: int) -> None:
        """One tick: the simulator runs step ``k`` and publishes ``t_{k+1}``."""
        self.client.tick(k + 1)
        self._t_s = (k + 1) * self.dt_s

    def shutdown(self) -> None:
        """Ask the simulator to stop."""
        self.client.shutdown()

    def close(self) -> None:
        """Nothing to release (the links belong to the site I/O)."""


__all__ = ["CLOCK_DEVICE", "SITE_DEVICES", "WEATHER_DEVICE", "DeviceEndpoint", "LockstepClock",
           "ModbusSiteIO", "SiteDevices", "StepLog", "check_simulator", "load_devices", "simulator_devices"]

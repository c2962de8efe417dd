"""The site's I/O, one object per mode, behind one protocol (``SiteIO``).

The tick driver (``twin.engine.driver.Twin``) holds one ``SiteIO`` and never asks which
mode it is in:

* :class:`PlantSiteIO` — the twin's own plant, in-process, on a SimPy environment moved by
  ``SimPyClock`` (``twin run``, ``twin live``, trials, RL). The plant records its exact
  energies into the run's ``Recorder``.
* :class:`DeviceSiteIO` — devices behind adapters (``adapters.modbus.site.ModbusSiteIO``:
  our Modbus simulator or hardware), moved by a lockstep or wall clock (``twin hil``). The
  record is what the adapters read (``twin.engine.telemetry``).

Each carries its clock (``clock.now_s()`` is the one simulated time the adapters see) and
the per-socket power the safety layer commands while the chargers' telemetry is invalid.
"""

from __future__ import annotations

from typing import Generic, NamedTuple, Protocol, TypeVar

import numpy as np
import simpy

from adapters.base import DeviceIO, Telemetry
from adapters.sim import SimDeviceIO
from twin.config import SiteConfig
from twin.engine.clocks import Clock, SimPyClock
from twin.engine.telemetry import TelemetryRecorder
from twin.inputs import PlantInputs, SessionTable
from twin.plant import Plant
from twin.record import Recorder
from twin.types import FloatArray


class SessionLog(Protocol):
    """What the results read of a run's EV sessions (the fleet, or telemetry's sessions)."""

    @property
    def s(self) -> SessionTable:
        """The sessions (arrival, planned departure, type, energy asked, power limit)."""
        ...

    @property
    def status(self) -> np.ndarray:
        """Outcome code per session."""
        ...

    @property
    def plug_s(self) -> FloatArray:
        """Plug-in time [s], NaN if never plugged."""
        ...

    @property
    def leave_s(self) -> FloatArray:
        """Leave time [s], NaN while plugged."""
        ...

    @property
    def e_del_kwh(self) -> FloatArray:
        """Energy delivered [kWh]."""
        ...

    @property
    def socket_of(self) -> np.ndarray:
        """Socket used, -1 if none."""
        ...

    @property
    def events(self) -> int:
        """EV events played: the fleet's arrivals, fulls and departures (``Fleet.events``);
        against devices the plug-ins and plug-outs seen."""
        ...


class SessionCounts(NamedTuple):
    """EV sessions so far, as the site reports them (the fleet in-process; against devices
    the vehicles the chargers saw: none turned away or refused is seen there).

    Attributes
    ----------
    arrived, turned_away, served, satisfied, short, refused_closing : vehicles.
    waiting : vehicles queueing for a socket now.
    satisfied_reduced : vehicles that got the reduced request of a late arrival (the
        chargers cannot tell one from a full request: 0 against devices).
    """

    arrived: int = 0
    turned_away: int = 0
    served: int = 0
    satisfied: int = 0
    short: int = 0
    refused_closing: int = 0
    waiting: int = 0
    satisfied_reduced: int = 0


class SiteIO(Protocol):
    """A site as the tick driver sees it: open, read, write, advance, finish.

    Attributes
    ----------
    name : ``in-process`` or ``devices``.
    clock : what moves the site over a step; ``clock.now_s()`` is the simulated time.
    adapters : the device adapters by name (``bess``, ``chargers``, ``meters``), whose
        ``health`` the metrics publish.
    socket_failsafe_kw : per-socket power the safety layer commands while the chargers'
        telemetry is invalid [kW].
    resettable : the world can be built again (a run against devices cannot).
    n_reverse_flow_cuts : battery discharge cut inside a step by the no-export limit.
    """

    name: str
    adapters: dict[str, object]
    socket_failsafe_kw: float
    resettable: bool

    @property
    def clock(self) -> Clock:
        """What moves the site over a step (built by ``open`` for a fresh world)."""
        ...

    @property
    def n_reverse_flow_cuts(self) -> int:
        """Battery discharge cuts so far."""
        ...

    def open(self, rec: Recorder, inputs: PlantInputs) -> None:
        """A fresh world whose plant-side record goes to ``rec`` (before ``start``)."""
        ...

    def session_counts(self) -> SessionCounts:
        """EV sessions so far (for the metrics)."""
        ...

    def start(self) -> Telemetry:
        """Start the clock and read ``t_0``."""
        ...

    def write(self, p_bess_kw: float, p_socket_max_kw: FloatArray,
              p_bess_split_kw: tuple[float, ...] = ()) -> None:
        """Send the (already clamped) setpoints of the step that starts now
        (``p_bess_split_kw``: per battery on a site with several, summing to the total)."""
        ...

    def advance(self, k: int) -> Telemetry:
        """Move the world over step ``k``, record it and return the read at ``t_{k+1}``."""
        ...

    def finish(self) -> SessionLog | None:
        """Close the books (vehicles still plugged are cut off); the run's sessions (None:
        an EV profile replayed, no sessions)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class PlantSiteIO:
    """The twin's own plant, in-process, on a SimPy environment (``SimPyClock``).

    Parameters
    ----------
    site : the site the plant models.
    dt_s : step length [s].
    battery_in_use : False: the battery idles (a controller that never uses it).
    env : the environment of the first world (``twin live`` passes a ``PacedEnvironment``);
        None, and every later world: a fresh ``simpy.Environment``.
    """

    name = "in-process"
    socket_failsafe_kw = 0.0
    resettable = True
    env: simpy.Environment
    plant: Plant
    clock: SimPyClock
    io: SimDeviceIO
    adapters: dict[str, object]

    def __init__(self, site: SiteConfig, dt_s: float, *, battery_in_use: bool = True,
                 env: simpy.Environment | None = None) -> None:
        self.site = site
        self.dt_s = dt_s
        self.battery_in_use = battery_in_use
        self._env_first = env

    @property
    def n_reverse_flow_cuts(self) -> int:
        """The plant's battery discharge cuts so far."""
        return self.plant.n_reverse_flow_cuts

    def open(self, rec: Recorder, inputs: PlantInputs) -> None:
        """A fresh plant on a fresh environment, recording into ``rec``."""
        env = self._env_first if self._env_first is not None else simpy.Environment()
        self._env_first = None  # a reset builds a fresh one
        self.env = env
        self.plant = Plant(env, inputs, self.site, rec=rec, battery_in_use=self.battery_in_use)
        self.io = SimDeviceIO(self.plant)
        self.adapters = self.io.adapters
        self.clock = SimPyClock(env, self.plant, self.dt_s)

    def session_counts(self) -> SessionCounts:
        """The fleet's counters."""
        fleet = self.plant.fleet
        if fleet is None:
            return SessionCounts()
        waiting = fleet.n_waiting
        arrived, away, refused = fleet.n_arrived, fleet.n_turned_away, fleet.n_refused_closing
        return SessionCounts(arrived, away, arrived - away - waiting - refused,
                             fleet.n_satisfied, fleet.n_short, refused, waiting,
                             fleet.n_satisfied_reduced)

    def start(self) -> Telemetry:
        """The plant at ``t_0``."""
        self.clock.start()
        return self.io.read()

    def read(self) -> Telemetry:
        """The plant's devices now."""
        return self.io.read()

    def write(self, p_bess_kw: float, p_socket_max_kw: FloatArray,
              p_bess_split_kw: tuple[float, ...] = ()) -> None:
        """Battery setpoint(s) and socket limits for the step that starts now."""
        self.io.write(p_bess_kw, p_socket_max_kw, p_bess_split_kw)

    def advance(self, k: int) -> Telemetry:
        """Run step ``k`` (the plant records it) and read ``t_{k+1}``."""
        self.clock.advance(k)
        return self.io.read()

    def finish(self) -> SessionLog | None:
        """Close the plant's books; the fleet's sessions (None: an EV profile replayed)."""
        self.clock.close()
        return self.plant.fleet

    def close(self) -> None:
        """Nothing to release."""


D = TypeVar("D", bound=DeviceIO)


class DeviceSiteIO(Generic[D]):
    """Devices behind adapters (Modbus), moved by a lockstep or wall clock.

    Parameters
    ----------
    io : the devices (``adapters.modbus.site.ModbusSiteIO``), connected; the adapters
        read ``clock.now_s()``.
    clock : ``adapters.modbus.site.LockstepClock`` or ``twin.engine.clocks.WallClock``.
    dt_s : step length [s].
    type_code : vehicle type per socket (the sessions rebuilt from telemetry).
    socket_failsafe_kw : per-socket failsafe power of the chargers [kW].
    """

    name = "devices"
    resettable = False

    def __init__(self, io: D, clock: Clock, *, dt_s: float, type_code: np.ndarray,
                 socket_failsafe_kw: float = 0.0) -> None:
        self.io = io
        self.clock = clock
        self.adapters = io.adapters
        self.dt_s = dt_s
        self.type_code = np.asarray(type_code)
        self.socket_failsafe_kw = socket_failsafe_kw
        self.trec: TelemetryRecorder | None = None
        self._waiting = 0

    @property
    def n_reverse_flow_cuts(self) -> int:
        """Not seen from outside the devices: 0."""
        return self.trec.n_reverse_flow_cuts if self.trec is not None else 0

    @property
    def not_counted(self) -> dict[str, int]:
        """Steps whose reading was not integrated as energy, per device (invalid or held)."""
        return dict(self.trec.not_counted) if self.trec is not None else {}

    def open(self, rec: Recorder, inputs: PlantInputs | None = None) -> None:
        """Record what the adapters read into ``rec`` (``inputs`` unused: the devices
        bring their own)."""
        if self.trec is not None:
            raise RuntimeError("a run against devices cannot be restarted; start a new Twin")
        self.trec = TelemetryRecorder(rec, self.dt_s, len(self.type_code), self.type_code)

    def session_counts(self) -> SessionCounts:
        """Vehicles the chargers saw plug in; those gone with (satisfied) or without (short)
        what they asked for at the last read while plugged; the queue last read."""
        rows = self.trec.sessions.rows if self.trec is not None else []
        sat = short = 0
        for r in rows:  # [plug, dep, type, e still asked, p, leave, e_del, socket, e_del read]
            if r[5] == r[5]:  # gone (leave time not NaN)
                if r[6] >= r[8] + r[3] - 1e-3:
                    sat += 1
                else:
                    short += 1
        return SessionCounts(arrived=len(rows), served=len(rows), satisfied=sat, short=short,
                             waiting=self._waiting)

    def _trec(self) -> TelemetryRecorder:
        if self.trec is None:
            raise RuntimeError("open() the site before starting it")
        return self.trec

    def start(self) -> Telemetry:
        """Start the clock, read ``t_0``; vehicles already plugged start their sessions."""
        self.clock.start()
        tel = self.io.read()
        self.take(-1, tel)
        return tel

    def read(self) -> Telemetry:
        """The devices now."""
        return self.io.read()

    def write(self, p_bess_kw: float, p_socket_max_kw: FloatArray,
              p_bess_split_kw: tuple[float, ...] = ()) -> None:
        """Send the setpoints (failures counted by the adapters, not raised)."""
        self.io.write(p_bess_kw, p_socket_max_kw, p_bess_split_kw)

    def advance(self, k: int) -> Telemetry:
        """Let the devices run step ``k``; record it from the read at ``t_{k+1}``."""
        self.clock.advance(k)
        tel = self.io.read()
        self.take(k, tel)
        return tel

    def take(self, k: int, tel: Telemetry) -> None:
        """Record step ``k`` from ``tel``, the read at ``t_{k+1}`` (``k = -1``: the read at
        ``t_0``). ``start`` and ``advance`` read and call it; ``twin shadow``, which reads
        on its own schedule and never writes, calls it with its own reads."""
        if k < 0:
            self._trec().start(tel)
        else:
            self._trec().record(k, tel)
        self._waiting = tel.n_waiting

    def finish(self) -> SessionLog:
        """Close the clock; the sessions seen by the chargers."""
        self.clock.close()
        return self._trec().finish()

    def close(self) -> None:
        """Close the device links."""
        self.io.close()


__all__ = ["DeviceSiteIO", "PlantSiteIO", "SessionCounts", "SessionLog", "SiteIO"]

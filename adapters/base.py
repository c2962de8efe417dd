"""Device adapter protocols: the only way the control loop reaches a device.

An adapter reads telemetry and writes setpoints. It never decides and never clamps
(that is the safety layer's job); on a communication failure it raises ``AdapterError``.
Implementations: ``adapters.sim`` (in-process device models) and ``adapters.modbus``
(Modbus TCP). ``DeviceIO`` bundles one site's adapters (one read and one write a step);
``twin.engine.sites`` wraps it into the tick driver's ``SiteIO`` for each mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from twin.types import BessState, FloatArray, SocketArrays


class AdapterError(RuntimeError):
    """A device could not be read or written (communication or device fault)."""


@dataclass(slots=True)
class CommHealth:
    """Communication health of one device link.

    Attributes
    ----------
    requests : requests sent.
    errors : requests that failed.
    retries : retries made.
    consecutive_errors : errors since the last success.
    comm_failed : the link is considered down.
    """

    requests: int = 0
    errors: int = 0
    retries: int = 0
    consecutive_errors: int = 0
    comm_failed: bool = False


@runtime_checkable
class BessAdapter(Protocol):
    """Battery: telemetry in, power setpoint out (+ discharge / − charge) [kW]."""

    def read(self) -> BessState:
        """Battery telemetry now."""
        ...

    def write(self, p_kw: float) -> None:
        """Command battery power [kW]; raises AdapterError; never clamps."""
        ...


@runtime_checkable
class ChargerAdapter(Protocol):
    """Chargers: socket states in, per-socket power limits out [kW]."""

    def read(self) -> SocketArrays:
        """Socket states now."""
        ...

    def write(self, p_max_kw: Sequence[float] | FloatArray) -> None:
        """Command per-socket power limits [kW]; raises AdapterError; never clamps."""
        ...


class MeterReading(NamedTuple):
    """The site meters at one instant.

    Attributes
    ----------
    p_pv_kw : PV AC power [kW] (mean over the coming step in the simulation).
    p_mall_kw : mall demand [kW].
    valid : False when either value cannot be trusted (comm failure, stale, garbage).
    """

    p_pv_kw: float
    p_mall_kw: float
    valid: bool = True


@runtime_checkable
class MeterAdapter(Protocol):
    """Site meters: PV plant output and mall demand [kW]."""

    def read(self) -> MeterReading:
        """(PV AC power, mall demand, valid) now [kW]."""
        ...


class Telemetry(NamedTuple):
    """Everything the driver reads from the site at one instant (one consistent snapshot).

    Attributes
    ----------
    meters : PV and mall meters.
    bess : battery telemetry (``p_kw`` = mean power over the step that just ended).
    sockets : socket states (``p_last_kw`` = mean power per socket over the step that
        just ended, when the chargers report it).
    n_waiting : vehicles waiting for a free socket (site sensor).
    held : devices (``bess``, ``chargers``) whose reading is not a new sample: values held
        after a failed read, or a heartbeat that did not move. They may steer the
        controller while valid; the record never integrates them as energy.
    batteries : each battery's telemetry on a site with two or more batteries (``bess`` is
        then their aggregate); empty with one battery.
    """

    meters: MeterReading
    bess: BessState
    sockets: SocketArrays
    n_waiting: int = 0
    held: tuple[str, ...] = ()
    batteries: tuple[BessState, ...] = ()


class TimeSource(Protocol):
    """Tells the simulated time (a clock of ``twin.engine.clocks``, or of ``LockstepClock``)."""

    def now_s(self) -> float:
        """Simulated time now [s from the run start]."""
        ...


@runtime_checkable
class DeviceIO(Protocol):
    """The devices of a site: one read and one write a step.

    Implementations: ``adapters.sim.SimDeviceIO`` (the twin's own plant, in-process) and
    ``adapters.modbus.site.ModbusSiteIO`` (Modbus TCP devices: our simulator or hardware).
    """

    #: The adapters by device name (for health metrics): ``bess``, ``chargers``, ``meters``.
    adapters: dict[str, object]

    def read(self) -> Telemetry:
        """Read every device (never raises: invalid values are marked ``valid=False``)."""
        ...

    def write(self, p_bess_kw: float, p_socket_max_kw: FloatArray,
              p_bess_split_kw: tuple[float, ...] = ()) -> None:
        """Send the (already clamped) setpoints to every device (``p_bess_split_kw``: per
        battery on a site with several, summing to ``p_bess_kw``)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

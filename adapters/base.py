"""Device adapter protocols: the only way the control loop reaches a device.

An adapter reads telemetry and writes setpoints. It never decides and never clamps
(that is the safety layer's job); on a communication failure it raises ``AdapterError``.
Implementations: ``adapters.sim`` (in-process device models) and, later,
``adapters.modbus`` (Modbus TCP).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class MeterAdapter(Protocol):
    """Site meters: PV plant output and mall demand [kW]."""

    def read(self) -> tuple[float, float]:
        """(PV AC power, mall demand) now [kW]."""
        ...

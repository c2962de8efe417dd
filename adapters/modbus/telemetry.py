"""Modbus device adapters: BESS (SunSpec 802 + 704), chargers (table map), site meters.

They implement the ``adapters.base`` protocols like the sim adapters. Reads never raise:
after a communication error the last good values are returned (still valid) until
``invalid_after_errors`` consecutive errors, then they are marked ``valid=False`` so the
safety layer commands safe setpoints. Telemetry is also invalid when it is garbage (a
value outside the map's ``valid_range`` or "not implemented"), frozen (the device
heartbeat has not moved for ``stale_after_s``) or when the device reports a fault.
``fresh`` says whether the last read gave a new sample (the device answered, the values
are valid and its heartbeat moved since the read before): a held or repeated sample may
still steer the controller while valid, but it is never integrated as energy.
Writes raise ``AdapterError`` on failure (as the protocol says) and never clamp; in
read-only mode they write nothing at all.
"""


from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.modbus import codec
from adapters.modbus.regmap import Point
from adapters.modbus.transport import ModbusTransport

log = logging.getLogger("adapters.modbus")

BESS_STATE_FAULT = 99
STATION_FAULT = 2
IEC_F = 6


@dataclass
class TelemetryHealth:
    """Why telemetry was marked invalid, and how often.

    Attributes
    ----------
    reads : reads made.
    invalid_reads : reads returned with ``valid=False``.
    stale_reads : reads answered from the last good values after an error.
    reasons : invalid reads by reason (``comm``, ``garbage``, ``frozen``, ``device_fault``).
    heartbeats : controller heartbeats written.
    """

    reads: int = 0
    invalid_reads: int = 0
    stale_reads: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    heartbeats: int = 0

    def invalid(self, reason: str) -> None:
        """Count an invalid read for ``reason``."""
        self.invalid_reads += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class DeviceReader:
    """Shared read bookkeeping: errors → stale → invalid, heartbeat watch."""

    def __init__(self, link: ModbusTransport, clock: Callable[[], float],
                 invalid_after_errors: int, stale_after_s: float) -> None:
        if invalid_after_errors < 1:
            raise ValueError("invalid_after_errors must be >= 1")
        self.link = link
        self.map = link.map
        self.clock = clock
        self.invalid_after_errors = invalid_after_errors
        self.stale_after_s = stale_after_s
        self.telemetry = TelemetryHealth()
        self._hb: int | None = None
        self._hb_t = 0.0
        self._was_valid = True
        #: The last read gave a new sample (answered, valid, heartbeat moved).
        self.fresh = False
        self._moved = False

    @property
    def heartbeat(self) -> int | None:
        """The device heartbeat (``Hb``) of the last answer that had one (None: none yet); it
        moves once per device update, so its change between two reads counts the updates."""
        return self._hb

    @property
    def health(self) -> Any:
        """Communication health of the link (``adapters.base.CommHealth``)."""
        return self.link.health

    def _frozen(self, hb: float | None) -> bool:
        now = self.clock()
        self._moved = False
        if hb is None:
            return True
        h = int(hb)
        if h != self._hb:
            self._moved = True
            self._hb = h
            self._hb_t = now
            return False
        return now - self._hb_t >= self.stale_after_s

    def _transition(self, valid: bool, reason: str) -> None:
        if valid != self._was_valid:
            if valid:
                log.warning("modbus %s: telemetry valid again", self.link.name)
            else:
                log.warning("modbus %s: telemetry invalid (%s)", self.link.name, reason)
            self._was_valid = valid

    def summary(self) -> dict[str, Any]:
        """Link and telemetry counts for the run summary."""
        t = self.telemetry
        return {**self.link.summary(), "reads": t.reads, "invalid_reads": t.invalid_reads,
                "stale_reads": t.stale_reads, "invalid_by_reason": dict(sorted(t.reasons.items())),
                "heartbeats_written": t.heartbeats}


def decode_point(regs: Sequence[int], base: int, p: Point, sf: int | None, wo: str) -> float | None:
    i = p.address - base
    return codec.decode(p.type, regs[i:i + p.size], sf, wo)

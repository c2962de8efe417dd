"""Site meters: PV inverter (SunSpec 103) and mall meter (SunSpec 203)."""

from __future__ import annotations

import logging
import math
from typing import Any

from adapters.base import AdapterError, MeterReading
from adapters.modbus import codec
from adapters.modbus.regmap import Point
from adapters.modbus.transport import ModbusTransport

log = logging.getLogger("adapters.modbus")

BESS_STATE_FAULT = 99
STATION_FAULT = 2
IEC_F = 6


class ModbusMeterAdapter:
    """PV inverter (SunSpec 103 ``W``) and mall meter (SunSpec 203 ``W``) [kW].

    A meter that cannot be read (or reads garbage) gives its last good value and marks the
    reading invalid (``MeterReading.valid``): the safety layer then works from the last
    valid values with a margin, and counts it. The link health and ``values_held`` say so.
    """

    def __init__(self, pv: ModbusTransport, mall: ModbusTransport, *,
                 pv_model: str = "103", mall_model: str = "203") -> None:
        self.pv = pv
        self.mall = mall
        self._pv = (pv.map.point(f"{pv_model}.W"), pv.map.point(f"{pv_model}.W_SF"))
        self._mall = (mall.map.point(f"{mall_model}.W"), mall.map.point(f"{mall_model}.W_SF"))
        self.last = [0.0, 0.0]
        self.held = [0, 0]
        self.ok = [True, True]
        self.invalid_reads = 0

    @property
    def health(self) -> Any:
        """Health of the PV link (the mall link: ``self.mall.health``)."""
        return self.pv.health

    async def _one(self, i: int, link: ModbusTransport, pts: tuple[Point, Point]) -> float:
        w, sf = pts
        lo = min(w.address, sf.address)
        hi = max(w.address + w.size, sf.address + sf.size)
        try:
            regs = await link.read(lo, hi - lo)
        except AdapterError:
            self.held[i] += 1
            self.ok[i] = False
            return self.last[i]
        s = codec.decode_raw("sunssf", regs[sf.address - lo:][:1], link.map.word_order)
        v = codec.decode(w.type, regs[w.address - lo:][:w.size], None if s is None else int(s),
                         link.map.word_order)
        if v is None or not math.isfinite(v) or \
                abs(v) >= 0x7FFE * 10.0 ** (int(s) if s is not None else 0):
            self.held[i] += 1
            self.ok[i] = False
            return self.last[i]
        self.ok[i] = True
        self.last[i] = v / 1000.0
        return self.last[i]

    async def aread(self) -> MeterReading:
        """(PV AC power, mall demand) [kW] and whether both are fresh and sane."""
        pv = await self._one(0, self.pv, self._pv)
        mall = await self._one(1, self.mall, self._mall)
        valid = self.ok[0] and self.ok[1]
        if not valid:
            self.invalid_reads += 1
        return MeterReading(pv, mall, valid)

    def read(self) -> MeterReading:
        """(PV AC power, mall demand, valid) now [kW] (never raises)."""
        return self.pv.runner.run(self.aread())

    def summary(self) -> dict[str, Any]:
        """Counts for the run summary."""
        return {"pv_inverter": {**self.pv.summary(), "values_held": self.held[0],
                                "invalid_readings": self.invalid_reads},
                "site_meter": {**self.mall.summary(), "values_held": self.held[1],
                               "invalid_readings": self.invalid_reads}}

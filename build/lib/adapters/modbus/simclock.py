"""The Modbus simulator's clock device (lockstep ticks, shutdown)."""

from __future__ import annotations

import logging

from adapters.modbus import codec
from adapters.modbus.telemetry import decode_point
from adapters.modbus.transport import ModbusTransport

log = logging.getLogger("adapters.modbus")

BESS_STATE_FAULT = 99
STATION_FAULT = 2
IEC_F = 6


class SimClockClient:
    """The simulator's clock: read the step, advance it (lockstep), stop the simulator."""

    def __init__(self, link: ModbusTransport) -> None:
        self.link = link
        c = link.map.blocks["clock"]
        self.block = c
        self.p = c.points

    async def aread(self) -> dict[str, float | None]:
        """mode (1 lockstep, 2 realtime), dt [s], n_steps, step, t [s]."""
        regs = await self.link.read(self.block.address, self.block.span)
        wo = self.link.map.word_order
        return {k: decode_point(regs, self.block.address, p, 0, wo) for k, p in self.p.items()}

    def read(self) -> dict[str, float | None]:
        """Clock registers now."""
        return self.link.runner.run(self.aread())

    async def atick(self, step: int) -> None:
        """Lockstep: run the plant to step ``step`` (= the step just controlled + 1)."""
        await self.link.write(self.p["tick"].address,
                              codec.encode("uint32", step, 0, self.link.map.word_order))

    def tick(self, step: int) -> None:
        """Lockstep: advance the plant by one step; returns when the devices are updated."""
        self.link.runner.run(self.atick(step))

    def shutdown(self) -> None:
        """Ask the simulator to stop (and write its results)."""
        self.link.runner.run(self.link.write(self.p["shutdown"].address, [1]))

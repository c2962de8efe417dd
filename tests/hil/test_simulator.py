"""The simulators on their own: lockstep clock semantics, realtime clock, device-side
safety seen through raw Modbus, server-side write counting."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from adapters.modbus import codec
from adapters.modbus.regmap import RegisterMap, load_register_map, shipped_map
from adapters.modbus.transport import (
    DeviceExceptionError,
    LinkSettings,
    LoopRunner,
    ModbusTransport,
)

from .conftest import InProcessSimulator

CLOCK = load_register_map(shipped_map("sim_clock"))
CHARGERS = load_register_map(shipped_map("chargers"))
TICK = CLOCK.point("clock.tick").address


class _Raw:
    """A raw register client over the project's transport (any address, no map checks)."""

    def __init__(self, port: int, regmap: RegisterMap) -> None:
        self.runner = LoopRunner()
        self.link = ModbusTransport("127.0.0.1", port, regmap, self.runner,
                                    settings=LinkSettings(timeout_s=5.0, retries=0))
        assert self.runner.run(self.link.connect())

    def read(self, address: int, count: int) -> list[int]:
        return self.runner.run(self.link.read(address, count))

    def write(self, address: int, values: Sequence[int]) -> None:
        """Write without the map's writable check (to see what the device does)."""
        self.runner.run(self.link._request("write", self.link._writer(address, list(values))))

    def close(self) -> None:
        self.link.close()
        self.runner.close()


def _client(port: int, regmap: RegisterMap = CLOCK) -> _Raw:
    return _Raw(port, regmap)


def test_lockstep_tick_is_idempotent_and_ordered(inproc_sim: InProcessSimulator) -> None:
    c = _client(inproc_sim.ports["sim_clock"])
    try:
        c.write(TICK, codec.encode("uint32", 1))
        assert inproc_sim.sim.k == 1
        # a retried tick (same value) does not run the step twice
        c.write(TICK, codec.encode("uint32", 1))
        assert inproc_sim.sim.k == 1
        # skipping a step is refused (exception 3, illegal data value)
        with pytest.raises(DeviceExceptionError) as ei:
            c.write(TICK, codec.encode("uint32", 5))
        assert ei.value.code == 3 and inproc_sim.sim.k == 1
        regs = c.read(0, CLOCK.end)
        step = CLOCK.point("clock.step")
        assert codec.decode("uint32", regs[step.address:step.address + 2]) == 1
        # a read-only register cannot be written (exception 2, illegal address)
        with pytest.raises(DeviceExceptionError) as ei:
            c.write(step.address, [0, 0])
        assert ei.value.code == 2
    finally:
        c.close()


def test_charger_failsafe_after_comm_timeout(inproc_sim: InProcessSimulator) -> None:
    lim = CHARGERS.blocks["socket_limit"].address
    hb = CHARGERS.point("control.controller_heartbeat").address
    cc = _client(inproc_sim.ports["chargers"], CHARGERS)
    ck = _client(inproc_sim.ports["sim_clock"])
    try:
        cc.write(hb, [1] + [2000] * 38)
        for k in range(1, 4):  # no more writes: 1800 s timeout = 2 steps of 900 s
            ck.write(TICK, codec.encode("uint32", k))
        sim = inproc_sim.sim
        assert list(sim.log_chargers_failsafe[:3]) == [0, 0, 38]
        regs = cc.read(0, 8)
        assert regs[CHARGERS.point("station.n_failsafe").address] == 38
        assert sim.chargers.limits_kw[0] == pytest.approx(1.4)
        # a write to the control block ends the failsafe at the next step
        cc.write(lim, [3000] * 38)
        ck.write(TICK, codec.encode("uint32", 4))
        assert sim.log_chargers_failsafe[3] == 0 and sim.chargers.limits_kw[0] == 3.0
        assert sim.servers["chargers"].stats.write_requests == 2
        assert sim.servers["chargers"].stats.registers_written == 39 + 38
    finally:
        cc.close()
        ck.close()


def test_realtime_clock_advances_on_its_own() -> None:
    done = threading.Event()
    with InProcessSimulator(mode="realtime", speed=9000.0) as s:  # 900 s step = 0.1 s
        s.sim.on_step = lambda k: done.set() if k >= 3 else None
        # the clock starts at the first Modbus request (a late controller misses no step)
        assert not done.wait(0.5) and s.sim.k == 0
        c = _client(s.ports["sim_clock"])
        c.read(0, 2)
        assert done.wait(30), "realtime clock did not advance"
        try:
            regs = c.read(0, CLOCK.end)
        finally:
            c.close()
        assert regs[CLOCK.point("clock.mode").address] == 2
        step = CLOCK.point("clock.step").address
        assert codec.decode("uint32", regs[step:step + 2]) >= 3

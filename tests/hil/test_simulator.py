"""The simulators on their own: lockstep clock semantics, realtime clock, device-side
safety seen through raw Modbus, server-side write counting."""

from __future__ import annotations

import threading

import pytest
from pymodbus.client import ModbusTcpClient

from adapters.modbus import codec
from adapters.modbus.regmap import load_register_map, shipped_map

from .conftest import InProcessSimulator

CLOCK = load_register_map(shipped_map("sim_clock"))
CHARGERS = load_register_map(shipped_map("chargers"))
TICK = CLOCK.point("clock.tick").address


def _client(port: int) -> ModbusTcpClient:
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
    assert c.connect()
    return c


def test_lockstep_tick_is_idempotent_and_ordered(inproc_sim: InProcessSimulator) -> None:
    c = _client(inproc_sim.ports["sim_clock"])
    try:
        assert not c.write_registers(TICK, codec.encode("uint32", 1), device_id=1).isError()
        assert inproc_sim.sim.k == 1
        # a retried tick (same value) does not run the step twice
        assert not c.write_registers(TICK, codec.encode("uint32", 1), device_id=1).isError()
        assert inproc_sim.sim.k == 1
        # skipping a step is refused (exception 3, illegal data value)
        rr = c.write_registers(TICK, codec.encode("uint32", 5), device_id=1)
        assert rr.isError() and rr.exception_code == 3 and inproc_sim.sim.k == 1
        regs = c.read_holding_registers(0, count=CLOCK.end, device_id=1).registers
        step = CLOCK.point("clock.step")
        assert codec.decode("uint32", regs[step.address:step.address + 2]) == 1
        # a read-only register cannot be written
        assert c.write_registers(step.address, [0, 0], device_id=1).isError()
    finally:
        c.close()


def test_charger_failsafe_after_comm_timeout(inproc_sim: InProcessSimulator) -> None:
    lim = CHARGERS.blocks["socket_limit"].address
    hb = CHARGERS.point("control.controller_heartbeat").address
    cc, ck = _client(inproc_sim.ports["chargers"]), _client(inproc_sim.ports["sim_clock"])
    try:
        assert not cc.write_registers(hb, [1] + [2000] * 38, device_id=1).isError()
        for k in range(1, 4):  # no more writes: 1800 s timeout = 2 steps of 900 s
            ck.write_registers(TICK, codec.encode("uint32", k), device_id=1)
        sim = inproc_sim.sim
        assert list(sim.log_chargers_failsafe[:3]) == [0, 0, 38]
        regs = cc.read_holding_registers(0, count=8, device_id=1).registers
        assert regs[CHARGERS.point("station.n_failsafe").address] == 38
        assert sim.chargers.limits_kw[0] == pytest.approx(1.4)
        # a write to the control block ends the failsafe at the next step
        assert not cc.write_registers(lim, [3000] * 38, device_id=1).isError()
        ck.write_registers(TICK, codec.encode("uint32", 4), device_id=1)
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
        assert done.wait(30), "realtime clock did not advance"
        c = _client(s.ports["sim_clock"])
        try:
            regs = c.read_holding_registers(0, count=CLOCK.end, device_id=1).registers
        finally:
            c.close()
        assert regs[CLOCK.point("clock.mode").address] == 2
        step = CLOCK.point("clock.step").address
        assert codec.decode("uint32", regs[step:step + 2]) >= 3

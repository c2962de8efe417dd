"""Transport: bounded retries, reconnect backoff on the adapter's clock, map-checked writes."""

from __future__ import annotations

import socket

import pytest

from adapters.base import AdapterError
from adapters.modbus.regmap import load_register_map, shipped_map
from adapters.modbus.transport import CommError, LinkSettings, LoopRunner, ModbusTransport

from .conftest import InProcessSimulator


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reconnect_backoff_doubles_on_the_adapter_clock() -> None:
    now = [0.0]
    runner = LoopRunner()
    link = ModbusTransport("127.0.0.1", _closed_port(), load_register_map(shipped_map("bess")),
                           runner, clock=lambda: now[0],
                           settings=LinkSettings(timeout_s=0.5, retries=3, backoff_min_s=1.0,
                                                 backoff_max_s=4.0))
    try:
        with pytest.raises(CommError, match="cannot connect"):
            runner.run(link.read(40000, 2))
        assert link.stats.connect_failures == 1 and link.health.retries == 0  # no hammering
        with pytest.raises(CommError, match="next attempt"):  # still backing off
            runner.run(link.read(40000, 2))
        assert link.stats.connect_failures == 1
        for t, fails in ((1.0, 2), (2.0, 2), (3.0, 3), (7.0, 4), (11.0, 5)):  # 1, 2, 4, 4 s
            now[0] = t
            with pytest.raises(CommError):
                runner.run(link.read(40000, 2))
            assert link.stats.connect_failures == fails, t
        assert link.health.comm_failed and link.health.consecutive_errors == 7
    finally:
        link.close()
        runner.close()


def test_writes_only_where_the_map_allows_and_never_read_only() -> None:
    with InProcessSimulator() as s:
        m = load_register_map(shipped_map("bess"))
        runner = LoopRunner()
        link = ModbusTransport("127.0.0.1", s.ports["bess"], m, runner)
        ro = ModbusTransport("127.0.0.1", s.ports["bess"], m, runner, read_only=True)
        try:
            with pytest.raises(AdapterError, match="not writable"):
                runner.run(link.write(m.point("802.SoC").address, [1]))
            runner.run(ro.write(m.point("704.WSet").address, [0, 5]))
            assert ro.stats.writes_skipped == 1 and ro.stats.writes == 0
            runner.run(link.write(m.point("704.WSet").address, [0, 5]))
            srv = s.sim.servers["bess"].stats
            assert srv.write_requests == 1 and srv.registers_written == 2
            assert s.sim.bess.mem.get(m.point("704.WSet")) == 5.0
        finally:
            link.close()
            ro.close()
            runner.close()

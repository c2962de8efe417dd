"""The simulator answers requests pipelined in one TCP write, each one, in order (issue 10)."""

from __future__ import annotations

import socket
import struct

import pytest

from adapters.modbus.regmap import load_register_map, shipped_map

from .conftest import InProcessSimulator

CLOCK = load_register_map(shipped_map("sim_clock"))


def _read_request(tid: int, unit: int, address: int, count: int) -> bytes:
    return struct.pack(">HHHBBHH", tid, 0, 6, unit, 3, address, count)


def _recv_frames(sock: socket.socket, n: int) -> list[tuple[int, int]]:
    """(transaction id, function code) of the next ``n`` Modbus TCP frames."""
    buf = b""
    out: list[tuple[int, int]] = []
    while len(out) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 7:
            tid, _pid, length = struct.unpack(">HHH", buf[:6])
            if len(buf) < 6 + length:
                break
            out.append((tid, buf[7]))
            buf = buf[6 + length:]
    return out


@pytest.mark.parametrize("n", [2, 5, 50])
def test_pipelined_requests_answered_in_order(inproc_sim: InProcessSimulator, n: int) -> None:
    address = CLOCK.point("clock.tick").address
    tids = [1000 + 7 * i for i in range(n)]
    with socket.create_connection(("127.0.0.1", inproc_sim.ports["sim_clock"]), timeout=10) as s:
        s.sendall(b"".join(_read_request(t, CLOCK.unit_id, address, 2) for t in tids))
        got = _recv_frames(s, n)
    assert [t for t, _ in got] == tids
    assert all(fc == 3 for _, fc in got)  # answers, not exceptions

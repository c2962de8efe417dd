"""Modbus TCP servers for the simulated devices (pymodbus ``SimDevice`` API, 3.16).

One server (one TCP port) per device, as on a real site where the battery, the charge-point
controller and each meter have their own address. Each server's register block is built
from the shared register map; an ``action`` hook serves reads from the device memory,
hands writes to the device, and plays the device's faults (drop, delay, exception).
Requests are counted server side (``ServerStats``), writes included, whatever their fate.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.devices import Device

#: Function codes that write (coils, registers, mask write, read/write multiple).
WRITE_FCS = frozenset({5, 6, 15, 16, 22, 23})


@dataclass
class ServerStats:
    """Server-side request counts of one device.

    Attributes
    ----------
    requests : request PDUs received.
    write_requests : write PDUs received (accepted or not).
    registers_written : registers carried in write PDUs received.
    writes_applied : writes handed to the device.
    exceptions_sent : requests answered with a Modbus exception by fault injection.
    delayed : requests answered late by fault injection.
    connections : TCP connections accepted.
    connections_dropped : connections aborted by a ``connection_drop`` fault.
    """

    requests: int = 0
    write_requests: int = 0
    registers_written: int = 0
    writes_applied: int = 0
    exceptions_sent: int = 0
    delayed: int = 0
    connections: int = 0
    connections_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict (for JSON)."""
        return asdict(self)


def _exc(code: int) -> ExcCodes:
    try:
        return ExcCodes(code)
    except ValueError:
        return ExcCodes.DEVICE_FAILURE


class _Handler(ServerRequestHandler):
    """Connection handler that hangs up at once while its device is "unplugged"."""

    def callback_connected(self) -> None:
        super().callback_connected()
        owner: DeviceServer = self.server.owner
        owner.stats.connections += 1
        if owner.dropped and self.transport is not None:
            owner.stats.connections_dropped += 1
            cast(asyncio.Transport, self.transport).abort()


class _Server(ModbusTcpServer):
    owner: DeviceServer

    def callback_new_connection(self) -> ServerRequestHandler:
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class DeviceServer:
    """A Modbus TCP server for one simulated device.

    Parameters
    ----------
    device : the simulated device (memory + behaviour).
    lock : serialises device access with the plant thread (realtime mode).
    now_s : simulated time now [s], stamped on writes.
    """

    def __init__(self, device: Device, lock: AbstractContextManager[Any],
                 now_s: Callable[[], float]) -> None:
        self.device = device
        self.lock = lock
        self.now_s = now_s
        self.stats = ServerStats()
        self.dropped = False
        self.server: _Server | None = None
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        #: Called on every request served (the realtime clock starts at the first one).
        self.on_request: Callable[[], None] | None = None

    def simdevice(self) -> SimDevice:
        """The pymodbus ``SimDevice``: the map's image, read-only where the map says so."""
        m = self.device.map
        blocks: list[SimData] = []
        i = 0
        size = len(m.image)
        while i < size:
            j = i
            while j < size and (m.valid[j], m.writable[j]) == (m.valid[i], m.writable[i]):
                j += 1
            if m.valid[i]:
                blocks.append(SimData(address=m.start + i, values=m.image[i:j],
                                      datatype=DataType.REGISTERS, readonly=not m.writable[i]))
            i = j
        return SimDevice(id=m.unit_id, simdata=blocks, action=self.action)

    async def action(self, function_code: int, start_address: int, address: int, count: int,
                     current_registers: list[int], set_values: Any) -> ExcCodes | None:
        """Serve one request: faults first, then the device memory."""
        if self.on_request is not None:
            self.on_request()
        dev = self.device
        flags = dev.faults
        if flags.kinds:
            if "connection_drop" in flags:
                return ExcCodes.GATEWAY_NO_RESPONSE
            if "response_delay" in flags:
                self.stats.delayed += 1
                await asyncio.sleep(flags.delay_s)
                return ExcCodes.DEVICE_BUSY  # answered too late; not carried out
            if "exception" in flags:
                self.stats.exceptions_sent += 1
                return _exc(flags.exception_code)
        mem = dev.mem
        if set_values is not None:
            with self.lock:
                code = dev.on_write(address, list(set_values), self.now_s())
            if code:
                return _exc(code)
            self.stats.writes_applied += 1
            return None
        i = address - start_address
        j = address - mem.start
        current_registers[i:i + count] = mem.regs[j:j + count]
        return None

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.stats.requests += 1
            if pdu.function_code in WRITE_FCS:
                self.stats.write_requests += 1
                regs = getattr(pdu, "registers", None)
                self.stats.registers_written += len(regs) if regs else 1
        return pdu

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = ephemeral); return the port."""
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.current_thread()
        srv = _Server(self.simdevice(), address=(host, port), trace_pdu=self._trace_pdu)
        srv.owner = self
        await srv.serve_forever(background=True)
        self.server = srv
        sock = cast(asyncio.Server, srv.transport).sockets[0]
        self.port = int(sock.getsockname()[1])
        return self.port

    def set_dropped(self, dropped: bool) -> None:
        """Unplug (abort every connection, refuse new ones) or plug the device back in."""
        if dropped == self.dropped:
            return
        self.dropped = dropped
        if dropped and self.server is not None:
            if self.loop is not None and threading.current_thread() is not self._loop_thread:
                self.loop.call_soon_threadsafe(self._abort_all)
            else:
                self._abort_all()

    def _abort_all(self) -> None:
        assert self.server is not None
        for conn in list(self.server.active_connections.values()):
            tr = getattr(conn, "transport", None)
            if tr is not None:
                self.stats.connections_dropped += 1
                with contextlib.suppress(Exception):
                    tr.abort()

    async def stop(self) -> None:
        """Stop listening and close connections."""
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

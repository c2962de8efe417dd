"""Transport: pymodbus's async TCP client with timeouts, bounded retries and reconnect backoff.

One ``ModbusTransport`` per device link (one TCP connection). The adapters call its
coroutines through ``LoopRunner`` (a private event loop driven from the calling thread),
so the control loop stays synchronous and several links can still be used concurrently.

* A request that gets no answer within ``timeout_s`` is retried up to ``retries`` times;
  after a timeout the connection is closed and opened again, so a late answer can never
  be taken for the answer to the next request.
* A failed connect is not retried before a backoff delay (doubling from
  ``backoff_min_s`` to ``backoff_max_s``, measured on the adapter's clock).
* A Modbus exception response is an answer: it is not retried, it is counted.
* ``silent_since`` is when the device stopped answering (the wall-clock start of the first
  unanswered request since its last answer), ``None`` while it answers; ``silent_s`` says
  for how long.
* Writes go only to registers the register map declares writable, never in read-only mode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from adapters.base import AdapterError, CommHealth
from adapters.modbus.regmap import RegisterMap

log = logging.getLogger("adapters.modbus")

#: Registers per read request (Modbus allows 125).
MAX_READ = 125
#: Registers per write request (Modbus allows 123).
MAX_WRITE = 123

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """How hard a link tries.

    Attributes
    ----------
    timeout_s : answer timeout per attempt [s] (also the connect timeout).
    retries : extra attempts after a timeout (bounded).
    backoff_min_s, backoff_max_s : reconnect backoff after a failed connect [s of the
        adapter's clock].
    """

    timeout_s: float = 0.1
    retries: int = 1
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0


class CommError(AdapterError):
    """The device did not answer (connection refused / lost, timeout)."""


class DeviceExceptionError(AdapterError):
    """The device answered with a Modbus exception response."""

    def __init__(self, msg: str, code: int) -> None:
        super().__init__(msg)
        self.code = code


class LoopRunner:
    """A private asyncio event loop run from the calling thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion and return its result."""
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        """Close the loop."""
        if not self.loop.is_closed():
            self.loop.close()


@dataclass
class LinkStats:
    """Counts beyond ``CommHealth`` (for the run summary).

    Attributes
    ----------
    timeouts : attempts that got no answer in time.
    exceptions : Modbus exception responses received.
    connect_failures : failed connects.
    reconnects : connections opened after the first one.
    writes : write requests sent.
    registers_written : registers written.
    writes_skipped : writes not sent because the adapter is read-only.
    """

    timeouts: int = 0
    exceptions: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    writes: int = 0
    registers_written: int = 0
    writes_skipped: int = 0


class ModbusTransport:
    """One device link.

    Parameters
    ----------
    host, port : where the device listens.
    regmap : the device's register map (unit id, writable registers).
    runner : the event loop the coroutines run on.
    clock : time now [s] for the backoff (the simulated clock in lockstep HIL).
    settings : timeouts, retries, backoff.
    read_only : never write anything.
    name : device name for logs.
    connections : TCP connections to open; a read longer than 125 registers sends its
        parts in parallel, one per connection (pymodbus does one request at a time per
        connection).
    """

    def __init__(self, host: str, port: int, regmap: RegisterMap, runner: LoopRunner,
                 clock: Callable[[], float] = time.monotonic,
                 settings: LinkSettings | None = None, read_only: bool = False,
                 name: str | None = None, connections: int = 1) -> None:
        if connections < 1:
            raise ValueError("connections must be >= 1")
        self.host = host
        self.port = port
        self.map = regmap
        self.unit = regmap.unit_id
        self.runner = runner
        self.clock = clock
        self.settings = settings or LinkSettings()
        self.read_only = read_only
        self.name = name or regmap.device
        self.health = CommHealth()
        self.stats = LinkStats()
        self._clients: list[AsyncModbusTcpClient | None] = [None] * connections
        self._connected_once = [False] * connections
        self._next_connect = -float("inf")
        self._backoff = self.settings.backoff_min_s
        #: ``time.monotonic()`` at the start of the first unanswered request since the
        #: device last answered; None while it answers.
        self.silent_since: float | None = None

    def silent_s(self, now: float | None = None) -> float:
        """How long the device has not answered any request [s wall clock]; 0 while it answers."""
        if self.silent_since is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.silent_since

    # ------------------------------------------------------------ connection
    def _new_client(self) -> AsyncModbusTcpClient:
        s = self.settings
        return AsyncModbusTcpClient(self.host, port=self.port, name=self.name,
                                    timeout=s.timeout_s, retries=0, reconnect_delay=0)

    async def _ensure(self, i: int = 0) -> AsyncModbusTcpClient:
        c = self._clients[i]
        if c is not None and c.connected:
            return c
        now = self.clock()
        if now < self._next_connect:
            raise CommError(f"{self.name}: not connected (next attempt in "
                            f"{self._next_connect - now:.3g} s)")
        if c is None:
            c = self._new_client()
            self._clients[i] = c
        ok = await c.connect()
        if not ok:
            self.stats.connect_failures += 1
            self._next_connect = now + self._backoff
            self._backoff = min(2.0 * self._backoff, self.settings.backoff_max_s)
            c.close()
            self._clients[i] = None
            raise CommError(f"{self.name}: cannot connect to {self.host}:{self.port}")
        if self._connected_once[i]:
            self.stats.reconnects += 1
            log.warning("modbus %s: reconnected to %s:%s", self.name, self.host, self.port)
        self._connected_once[i] = True
        self._backoff = self.settings.backoff_min_s
        self._next_connect = -float("inf")
        return c

    def _drop(self, i: int | None = None) -> None:
        for j in range(len(self._clients)) if i is None else (i,):
            c = self._clients[j]
            if c is not None:
                c.close()
                self._clients[j] = None

    async def connect(self) -> bool:
        """Open the link (no exception); True when connected."""
        try:
            await self._ensure()
        except CommError:
            return False
        self.silent_since = None
        return True

    def close(self) -> None:
        """Close the link."""
        self._drop()

    # -------------------------------------------------------------- requests
    async def _request(self, what: str, call: Callable[[AsyncModbusTcpClient], Awaitable[Any]],
                       conn: int = 0) -> Any:
        h = self.health
        h.requests += 1
        t_sent = time.monotonic()
        last: Exception | None = None
        for attempt in range(self.settings.retries + 1):
            if attempt:
                h.retries += 1
                log.info("modbus %s: %s: retry %d", self.name, what, attempt)
            try:
                c = await self._ensure(conn)
                rr = await call(c)
            except CommError as exc:
                last = exc
                break  # backoff: do not hammer a device that refused
            except (ModbusException, TimeoutError, OSError) as exc:
                self.stats.timeouts += 1
                last = CommError(f"{self.name}: {what}: no answer ({exc})")
                self._drop(conn)
                continue
            self.silent_since = None  # an answer, even an exception response
            if rr.isError():
                code = int(getattr(rr, "exception_code", 0))
                self.stats.exceptions += 1
                self._fail()
                raise DeviceExceptionError(f"{self.name}: {what}: Modbus exception {code}", code)
            self._ok()
            return rr
        self._fail()
        if self.silent_since is None:
            self.silent_since = t_sent
        assert last is not None
        raise last if isinstance(last, AdapterError) else CommError(str(last))

    def _ok(self) -> None:
        h = self.health
        if h.comm_failed:
            log.warning("modbus %s: communication restored after %d error(s)", self.name,
                        h.consecutive_errors)
        h.consecutive_errors = 0
        h.comm_failed = False

    def _fail(self) -> None:
        h = self.health
        h.errors += 1
        h.consecutive_errors += 1
        if not h.comm_failed:
            log.warning("modbus %s: communication error", self.name)
        h.comm_failed = True

    def _reader(self, a: int, n: int) -> Callable[[AsyncModbusTcpClient], Awaitable[Any]]:
        def call(c: AsyncModbusTcpClient) -> Awaitable[Any]:
            return c.read_holding_registers(a, count=n, device_id=self.unit)
        return call

    def _writer(self, a: int, regs: list[int]) -> Callable[[AsyncModbusTcpClient], Awaitable[Any]]:
        def call(c: AsyncModbusTcpClient) -> Awaitable[Any]:
            return c.write_registers(a, regs, device_id=self.unit)
        return call

    async def read(self, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers from ``address`` (split into ≤ 125-register reads)."""
        parts = [(a, min(MAX_READ, address + count - a))
                 for a in range(address, address + count, MAX_READ)]
        nc = len(self._clients)
        if nc == 1 or len(parts) == 1:
            out: list[int] = []
            for a, n in parts:
                rr = await self._request(f"read {a}+{n}", self._reader(a, n))
                out.extend(rr.registers)
            return out
        res = await asyncio.gather(*(self._request(f"read {a}+{n}", self._reader(a, n), i % nc)
                                     for i, (a, n) in enumerate(parts)), return_exceptions=True)
        out = []
        for r in res:
            if isinstance(r, BaseException):
                raise r
            out.extend(r.registers)
        return out

    async def write(self, address: int, values: Sequence[int]) -> None:
        """Write holding registers; only where the map allows, never when read-only.

        Raises
        ------
        AdapterError
            For a register the map does not declare writable (a programming error), or a
            communication failure.
        """
        if self.read_only:
            self.stats.writes_skipped += 1
            return
        vals = [int(v) for v in values]
        if not self.map.is_writable(address, len(vals)):
            raise AdapterError(f"{self.name}: registers {address}..{address + len(vals) - 1} "
                               f"are not writable in {self.map.path.name}")
        for i in range(0, len(vals), MAX_WRITE):
            chunk = vals[i:i + MAX_WRITE]
            self.stats.writes += 1
            self.stats.registers_written += len(chunk)
            await self._request(f"write {address + i}+{len(chunk)}",
                                self._writer(address + i, chunk))

    def summary(self) -> dict[str, Any]:
        """Counts for the run summary."""
        h = self.health
        return {"requests": h.requests, "errors": h.errors, "retries": h.retries,
                "comm_failed": h.comm_failed, **vars(self.stats)}

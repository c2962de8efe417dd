"""The ``/metrics`` endpoint: a small asyncio HTTP server in one background thread.

Replaces ``prometheus_client.start_http_server`` (one thread per connection, every path
answered with the metrics): here

* only ``GET``/``HEAD`` of ``/metrics`` (Prometheus text format) and ``/`` (a short HTML
  page linking to it) are served; any other path is ``404``, any other method ``405``;
* one thread serves every connection (asyncio), so idle or half-open connections cost a
  coroutine, not a thread; at most ``max_connections`` are kept open, more are closed at
  once; a connection that sends no complete request within ``read_timeout_s`` is
  closed;
* the exposition of a :class:`~twin.monitoring.metrics.ConsistentRegistry` is rendered
  by the sink's thread after a step when due (``ConsistentRegistry.exposition``: at most
  every 0.1 s, one consistent step) and shared by every scrape, so 50 concurrent scrapers
  cost no rendering at all; another registry is rendered per scrape.

Usage (same shape as ``start_http_server``)::

    server, thread = start_metrics_server(port, addr="127.0.0.1", registry=reg)
    server.server_port   # the bound port (port 0 = any free one)
    server.shutdown(); server.server_close()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

#: Largest request head accepted [bytes] (request line + headers).
MAX_HEAD_BYTES = 8192
#: Thread switch interval set while serving [s] (Python's default is 0.005).
SWITCH_INTERVAL_S = 0.0005

_INDEX = (b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>pvbess-twin</title></head>"
          b"<body><h1>pvbess-twin</h1><p>Prometheus metrics: <a href='/metrics'>/metrics</a>"
          b"</p></body></html>\n")


class _Renderer:
    """The exposition text: the registry's cached one when it has one, else rendered."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.cached = callable(getattr(registry, "exposition", None))
        if self.cached:
            registry.serving = True  # type: ignore[attr-defined]

    def body(self) -> bytes:
        if self.cached:
            return self.registry.exposition()  # type: ignore[attr-defined]
        return generate_latest(self.registry)


async def _cancel_others() -> None:
    """Cancel every task of the running loop but the current one, and wait for them."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


class MetricsServer:
    """``/metrics`` and ``/`` over HTTP/1.1 (keep-alive), served by one asyncio thread.

    Parameters
    ----------
    registry : the registry to expose.
    addr : address to bind (default loopback only).
    port : TCP port; 0 picks a free one (see :attr:`server_port`).
    max_connections : open connections kept at most; more are closed at once.
    read_timeout_s : time a connection may take to send a request head [s].
    idle_timeout_s : time a keep-alive connection may stay idle between requests [s].
    """

    def __init__(self, registry: CollectorRegistry, addr: str = "127.0.0.1", port: int = 0, *,
                 max_connections: int = 512, read_timeout_s: float = 5.0,
                 idle_timeout_s: float = 60.0) -> None:
        self.render = _Renderer(registry)
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        self.idle_timeout_s = idle_timeout_s
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        # bind here, in the caller's thread, so a busy port raises OSError to the caller
        self._sock = socket.create_server((addr, port), family=family, backlog=1024,
                                          reuse_port=False)
        self._sock.setblocking(False)
        self.server_port = int(self._sock.getsockname()[1])
        self.server_address = (addr, self.server_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._open = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="twin-metrics-http", daemon=True)
        self.requests = 0  # requests answered (any status)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> MetricsServer:
        """Start serving in the background thread; return self.

        The interpreter's thread switch interval is lowered to :data:`SWITCH_INTERVAL_S`
        so a twin running flat out in the main thread hands the GIL to the server within
        a fraction of a millisecond (the default, 5 ms, makes every scrape wait for it).
        """
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, sock=self._sock, limit=MAX_HEAD_BYTES))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(_cancel_others())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def shutdown(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        if not self.thread.is_alive():
            return

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            # end the open connections' handlers (a scraper's keep-alive connection waits
            # in a read): a task left pending when the loop closes is reported on stderr
            # as "Task was destroyed but it is pending!"
            await _cancel_others()
            if self._server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(stop()))
        self.thread.join(5.0)

    def server_close(self) -> None:
        """Close the listening socket (after :meth:`shutdown`)."""
        with contextlib.suppress(OSError):
            self._sock.close()

    # ------------------------------------------------------------------ serving
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self.max_connections:
            writer.close()
            return
        self._open += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            first = True
            while True:
                timeout = self.read_timeout_s if first else self.idle_timeout_s
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
                except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    return
                first = False
                keep = self._respond(head, writer)
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, OSError):
            return
        except asyncio.CancelledError:
            # cancelled by shutdown: end normally (Python 3.11's stream callback calls
            # exception() on a cancelled handler task and logs the CancelledError)
            return
        finally:
            self._open -= 1
            with contextlib.suppress(Exception):
                writer.close()

    def _respond(self, head: bytes, writer: asyncio.StreamWriter) -> bool:
        """Write the response to one request head; return whether to keep the connection."""
        self.requests += 1
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._send(writer, 400, b"text/plain; charset=utf-8", b"bad request\n", False)
            return False
        method, target, version = parts
        keep = version == b"HTTP/1.1"
        for h in lines[1:]:
            name, _, value = h.partition(b":")
            if name.strip().lower() == b"connection":
                v = value.strip().lower()
                keep = v == b"keep-alive" or (keep and v != b"close")
        path = target.split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            self._send(writer, 405, b"text/plain; charset=utf-8", b"method not allowed\n", keep,
                       extra=b"Allow: GET, HEAD\r\n")
            return keep
        if path == b"/metrics":
            body, ctype = self.render.body(), CONTENT_TYPE_LATEST.encode()
            status = 200
        elif path == b"/":
            body, ctype, status = _INDEX, b"text/html; charset=utf-8", 200
        else:
            body, ctype, status = b"not found; the metrics are at /metrics\n", \
                b"text/plain; charset=utf-8", 404
        self._send(writer, status, ctype, body, keep, head_only=method == b"HEAD")
        return keep

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: int, ctype: bytes, body: bytes, keep: bool,
              *, extra: bytes = b"", head_only: bool = False) -> None:
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found",
                  405: b"Method Not Allowed"}[status]
        head = (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                b"Connection: %s\r\n%s\r\n" % (status, reason, ctype, len(body),
                                               b"keep-alive" if keep else b"close", extra))
        writer.write(head if head_only else head + body)  # one write: no Nagle delay


def start_metrics_server(port: int, addr: str = "127.0.0.1",
                         registry: CollectorRegistry | None = None,
                         **kw: float) -> tuple[MetricsServer, threading.Thread]:
    """Serve ``registry`` on ``addr:port``; return (server, thread) like ``start_http_server``.

    Raises
    ------
    OSError
        When the address cannot be bound (port in use, no such address).
    """
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    srv = MetricsServer(registry, addr, port, **kw).start()  # type: ignore[arg-type]
    return srv, srv.thread


__all__ = ["MAX_HEAD_BYTES", "SWITCH_INTERVAL_S", "MetricsServer", "start_metrics_server"]

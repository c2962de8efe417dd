"""The /metrics endpoint (issue 10, case 8): only /metrics and /, bounded, one step per scrape."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from twin.monitoring.http import start_metrics_server
from twin.monitoring.metrics import TwinMetrics


@pytest.fixture
def served() -> Iterator[tuple[TwinMetrics, int]]:
    m = TwinMetrics()
    server, _ = start_metrics_server(0, addr="127.0.0.1", registry=m.registry)
    yield m, server.server_port
    server.shutdown()
    server.server_close()


def _get(port: int, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", body


def test_only_metrics_and_index_are_served(served: tuple[TwinMetrics, int]) -> None:
    _, port = served
    status, ctype, body = _get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain") and b"twin_bess_soc_ratio" in body
    assert _get(port, "/metrics?x=1")[0] == 200
    status, ctype, body = _get(port, "/")
    assert status == 200 and "html" in ctype and b"/metrics" in body
    for path in ("/../../etc/passwd", "/metricsx", "/favicon.ico", "//metrics", "/metrics/"):
        status, _, body = _get(port, path)
        assert status == 404 and b"twin_" not in body, path
    assert _get(port, "/metrics", "POST")[0] == 405
    assert _get(port, "/metrics", "HEAD")[:2] == (200, _get(port, "/metrics")[1])


def test_half_open_connections_hold_no_thread(served: tuple[TwinMetrics, int]) -> None:
    _, port = served
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    for s in socks[:50]:
        s.sendall(b"GET /metr")  # a request that never ends
    time.sleep(0.2)
    assert threading.active_count() == before
    assert _get(port, "/metrics")[0] == 200  # still serving
    for s in socks:
        s.close()


def test_a_scrape_after_a_step_shows_that_step(served: tuple[TwinMetrics, int]) -> None:
    m, port = served
    reg = m.registry
    with reg.update_lock:
        m.bess_soc.set(0.25)
        reg.version += 1
    time.sleep(reg.MIN_REFRESH_S)
    assert b"twin_bess_soc_ratio 0.25" in _get(port, "/metrics")[2]


def test_busy_port_is_an_oserror() -> None:
    m = TwinMetrics()
    server, _ = start_metrics_server(0, registry=m.registry)
    try:
        with pytest.raises(OSError):
            start_metrics_server(server.server_port, registry=m.registry)
    finally:
        server.shutdown()
        server.server_close()

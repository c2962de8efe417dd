"""Metrics-endpoint benchmark: 50 concurrent scrapers while the twin runs.

The twin simulates the annual scenario (15-min ticks) as fast as it can in this process,
publishing every step into its metrics registry (``MetricsSink``); a second process runs
``--scrapers`` threads that each scrape ``/metrics`` back to back (keep-alive, like
Prometheus) for ``--seconds``. Printed: scrapes, latency p50 / p90 / p99 / max [ms], the
server's thread count before and after ``--half-open`` idle connections, and the answer
to a path other than ``/metrics``. ``--server prometheus`` measures
``prometheus_client.start_http_server`` (the server the twin used before) for comparison.
The twin's steps/s while scraped is printed beside the same twin run without a sink or
scrapers in the same process (median of 3): their ratio is what the metrics cost the
simulation. Figures are printed, never asserted.

Usage: ``python benchmarks/metrics_scrape.py [--scrapers 50] [--seconds 10]
[--server twin|prometheus]``
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ref import load

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "annual.yaml"


def scrape_load(port: int, n: int, seconds: float, interval: float = 0.0) -> dict[str, object]:
    """(In the child process) ``n`` concurrent keep-alive scrapers for ``seconds``.

    One asyncio loop drives the ``n`` connections, so the load generator itself is cheap
    and the latencies [s] are the server's, not the client's thread switching.
    """
    import asyncio

    lat: list[float] = []
    errors = [0]
    req = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n"

    async def worker(stop: float, offset: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        nxt = time.monotonic() + offset
        while time.monotonic() < stop:
            if interval > 0:
                await asyncio.sleep(max(nxt - time.monotonic(), 0.0))
                nxt += interval
            t0 = time.perf_counter()
            try:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
                    raise OSError(head[:20])
            except (OSError, asyncio.IncompleteReadError):
                errors[0] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            lat.append(time.perf_counter() - t0)
        writer.close()

    async def run() -> None:
        stop = time.monotonic() + seconds
        await asyncio.gather(*(worker(stop, 0.0) for i in range(n)))

    asyncio.run(run())
    return {"latencies": lat, "errors": errors[0]}


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=1000)[int(q * 1000) - 1] if len(xs) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrapers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=0.0,
                    help="seconds between two scrapes of one scraper; 0 = back to back "
                         "(default); all scrapers fire together (a burst of --scrapers)")
    ap.add_argument("--half-open", type=int, default=200)
    ap.add_argument("--server", choices=["twin", "prometheus"], default="twin")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)  # load generator mode
    a = ap.parse_args()
    if a.child is not None:
        print(json.dumps(scrape_load(a.child, a.scrapers, a.seconds, a.interval)))
        return

    from twin.config import load_scenario
    from twin.engine import Twin, get_controller
    from twin.monitoring.metrics import MetricsSink, TwinMetrics

    scn = load_scenario(SCENARIO)
    bare_rates = []
    for _ in range(3):  # the reference: the same twin, no sink, no scrapers
        tw = Twin(scn, get_controller(scn))
        t0 = time.perf_counter()
        tw.run()
        bare_rates.append(scn.config.n_steps / (time.perf_counter() - t0))
    bare_rate = statistics.median(bare_rates)
    metrics = TwinMetrics()
    server: Any
    if a.server == "twin":
        from twin.monitoring.http import start_metrics_server

        server, _ = start_metrics_server(0, addr="127.0.0.1", registry=metrics.registry)
    else:
        from prometheus_client import start_http_server

        server, _ = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    port = int(server.server_port)

    # other paths
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/../../etc/passwd") as r:
            other = r.status
    except urllib.error.HTTPError as exc:
        other = exc.code

    # half-open connections: threads before / after
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(a.half_open)]
    for s in idle[: a.half_open // 2]:
        s.sendall(b"GET /metr")  # a request that never ends
    time.sleep(0.5)
    after = threading.active_count()
    for s in idle:
        s.close()

    stop = threading.Event()
    steps = [0]
    controller = get_controller(scn)
    child = subprocess.Popen([sys.executable, __file__, "--child", str(port), "--scrapers",
                              str(a.scrapers), "--seconds", str(a.seconds), "--interval",
                              str(a.interval)],
                             stdout=subprocess.PIPE, text=True)

    child_out: list[str] = []

    def wait_child() -> None:
        # read while waiting: the latencies can exceed the pipe's buffer (a deadlock
        # with wait() on a quiet machine, where many scrapes get through)
        child_out.append(child.communicate()[0])
        stop.set()

    waiter = threading.Thread(target=wait_child, daemon=True)
    waiter.start()
    t0 = time.perf_counter()
    while not stop.is_set():  # the twin runs (again and again) for the whole window
        twin = Twin(scn, controller)
        sink = MetricsSink(twin, metrics, run_id="bench", mode="run")

        def on_step(k: int, sink: MetricsSink = sink) -> None:
            sink(k)
            steps[0] += 1
            if stop.is_set():
                raise KeyboardInterrupt

        twin.on_step = on_step
        twin.run()
    sim_s = time.perf_counter() - t0
    waiter.join()
    data = json.loads(child_out[0])
    lat = sorted(data["latencies"])
    server.shutdown()
    server.server_close()
    ms = 1e3
    mode = f"every {a.interval:g} s, together" if a.interval > 0 else "back to back"
    print(f"server: {a.server} · {a.scrapers} concurrent scrapers ({mode}) for {a.seconds:g} s "
          "while the "
          f"twin ran {steps[0]} steps of {SCENARIO.name} ({steps[0] / sim_s:,.0f} steps/s; without sink "
          f"and scrapers {bare_rate:,.0f} steps/s: ratio {steps[0] / sim_s / bare_rate:.2f}) ({load()})")
    print(f"  scrapes           {len(lat):>8} ({len(lat) / a.seconds:,.0f}/s), errors "
          f"{data['errors']}")
    if lat:
        print(f"  latency p50       {_pct(lat, 0.5) * ms:8.2f} ms")
        print(f"  latency p90       {_pct(lat, 0.9) * ms:8.2f} ms")
        print(f"  latency p99       {_pct(lat, 0.99) * ms:8.2f} ms")
        print(f"  latency max       {lat[-1] * ms:8.2f} ms")
    print(f"  threads           {before} -> {after} with {a.half_open} idle/half-open "
          "connections")
    print(f"  GET /../../etc/passwd -> {other}")


if __name__ == "__main__":
    main()

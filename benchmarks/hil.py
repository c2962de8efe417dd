"""HIL benchmark: Modbus control-cycle latency and HIL wall time per simulated day.

A control cycle is what the issue counts: read the BESS (SunSpec 802, one request) and
38 sockets (station + socket table, three requests), write the BESS setpoint (704 WSet)
and 38 socket limits (+ heartbeat, one request) — against ``python -m simulators`` in
its own process on loopback. Measured sequentially (one request after the other) and
concurrently (the BESS and charger links in parallel, as ``twin hil`` does). Then one
``twin hil scenarios/hil.yaml`` day end to end (median of 3). Each latency is printed beside
the reference measured in the same run: one bare TCP request/response on loopback (a
thread echo server, 12-byte messages like a Modbus read). Figures are printed, never
asserted.

Usage: ``python benchmarks/hil.py [--cycles 2000] [--days 1]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ref import load  # noqa: E402

SCENARIO = ROOT / "scenarios" / "hil.yaml"


def _pct(x: list[float]) -> str:
    a = np.asarray(x) * 1e3
    return f"median {np.median(a):.3f} ms  p99 {np.quantile(a, 0.99):.3f} ms  max {a.max():.3f} ms"


def tcp_round_trip_s(n: int = 2000) -> float:
    """Median of one bare 12-byte request/response on loopback [s] (the reference)."""
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def echo() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while data := conn.recv(64):
                conn.sendall(data)

    th = threading.Thread(target=echo, daemon=True)
    th.start()
    times = []
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            t0 = time.perf_counter()
            c.sendall(b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x02")
            c.recv(64)
            times.append(time.perf_counter() - t0)
    th.join(5)
    srv.close()
    return float(np.median(times))


def cycle_latency(cycles: int) -> None:
    """Median / p99 of full control cycles against a simulator subprocess."""
    from adapters.modbus.bess import ModbusBessAdapter
    from adapters.modbus.chargers import ModbusChargerAdapter
    from adapters.modbus.regmap import load_register_map, shipped_map
    from adapters.modbus.transport import LinkSettings, LoopRunner, ModbusTransport
    from twin.app.simproc import SimulatorProcess

    sim = SimulatorProcess(SCENARIO)
    ports = sim.start()
    runner = LoopRunner()
    ls = LinkSettings(timeout_s=1.0, retries=0)
    try:
        lb = ModbusTransport(sim.host, ports["bess"], load_register_map(shipped_map("bess")),
                             runner, settings=ls)
        lc = ModbusTransport(sim.host, ports["chargers"],
                             load_register_map(shipped_map("chargers")), runner, settings=ls,
                             connections=3)  # the socket table's 3 reads in parallel
        bess = ModbusBessAdapter(lb, eta_charge=0.975, eta_discharge=0.975)
        ch = ModbusChargerAdapter(lc)
        limits = np.full(38, 3.7)
        for _ in range(50):  # warm up, configure
            bess.read()
            ch.read()
            bess.write(-100.0)
            ch.write(limits)
        seq: list[float] = []
        for i in range(cycles):
            t0 = time.perf_counter()
            bess.read()
            ch.read()
            bess.write(-100.0 - (i % 7))
            ch.write(limits)
            seq.append(time.perf_counter() - t0)

        async def conc_cycle(i: int) -> None:
            await asyncio.gather(bess.aread(), ch.aread())
            await asyncio.gather(bess.awrite(-100.0 - (i % 7)), ch.awrite(limits))

        par: list[float] = []
        for i in range(cycles):
            t0 = time.perf_counter()
            runner.run(conc_cycle(i))
            par.append(time.perf_counter() - t0)
        rtt = tcp_round_trip_s()
        print(f"reference: one bare TCP request/response on loopback, median {rtt * 1e3:.3f} ms")
        print(f"control cycle, sequential ({cycles}):  {_pct(seq)}  = {np.median(seq) / rtt:.1f}× the "
              "bare round trip (6 requests)")
        print(f"control cycle, concurrent ({cycles}):  {_pct(par)}  = {np.median(par) / rtt:.1f}× the "
              "bare round trip")
        print(f"  requests per cycle: BESS read 1, sockets read 3, BESS write 1 (+ CtrlHb "
              f"every {bess.hb_interval_s:g} s), socket limits + heartbeat write 1")
    finally:
        lb.close()
        lc.close()
        runner.close()
        sim.kill()


def hil_day(days: int) -> None:
    """``twin hil`` wall time per simulated day (lockstep)."""
    from twin.app.hil import HilSettings, run_hil
    from twin.config import load_scenario

    sets = (f"duration={days}d",)
    scn = load_scenario(SCENARIO, {"duration": f"{days}d"})
    walls, totals = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        run = run_hil(scn, settings=HilSettings(sets=sets))
        totals.append(time.perf_counter() - t0)
        walls.append(run.comm["wall_s"])
    total = float(np.median(totals))
    c = dict(run.comm)
    c["wall_s"] = float(np.median(walls))
    c["wall_s_per_simulated_day"] = c["wall_s"] / days
    print(f"twin hil {days} d lockstep: control loop {c['wall_s']:.2f} s "
          f"({c['wall_s_per_simulated_day']:.2f} s per simulated day), whole run with "
          f"simulator start {total:.2f} s; cycle incl. meters {c['cycle']['median_ms']:.2f} ms "
          f"median / {c['cycle']['p99_ms']:.2f} ms p99")
    print(f"  one year in lockstep ~ {c['wall_s_per_simulated_day'] * 365 / 60:.1f} min "
          "(extrapolated)")


def main() -> None:
    """Run both parts and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--days", type=int, default=1)
    args = ap.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    print(f"hil ({load()})")
    if args.cycles:
        cycle_latency(args.cycles)
    hil_day(args.days)
    print(f"  ({load()} at the end)")


if __name__ == "__main__":
    main()

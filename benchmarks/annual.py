"""Annual-run benchmark: the twin's simulation loop at 15-min and 1-min ticks.

Prints, per tick size: simulation-loop wall time (median of 3 runs, inputs built once),
ticks/s, events/s, peak RSS of a fresh process doing one full ``twin run``, the whole
``twin run`` process time, and the same year through a bare reference loop (plain Python,
same sessions, same PV and mall arrays, no SimPy, no adapters, no recording) measured in
the same process, for a ratio. Figures are printed, never asserted.

Usage: ``python benchmarks/annual.py [--dt 15min 1min] [--repeat 3] [--no-whole]``

The last lines are the figures to quote: per tick size, the simulation time, the bare loop
time and their ratio (medians; runs alternate bare / twin so both see the same load), with
``os.getloadavg()`` printed at the start and around each measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "annual.yaml"


def bare_loop(inputs, site) -> float:  # type: ignore[no-untyped-def]
    """A plain-Python year: arrivals into the first free socket, charge at full power,
    six-phase-like battery rule, no SimPy, no objects per step. Returns wall time [s]."""
    s = inputs.sessions
    arr = s.arrival_s.tolist()
    dep = s.departure_s.tolist()
    typ = s.type_code.tolist()
    ereq = s.e_req_kwh.tolist()
    pmax = s.p_max_kw.tolist()
    pv = inputs.p_pv_kw.tolist()
    mall = inputs.p_mall_kw.tolist()
    hour = inputs.hour.tolist()
    dt = inputs.dt_s
    dt_h = dt / 3600.0
    n_sock = site.ev.n_sockets
    stype = []
    for g in site.ev.sockets:
        stype += [0 if g.type == "moto" else 1] * g.count
    sock_dep = [math.inf] * n_sock
    sock_e = [0.0] * n_sock
    sock_p = [0.0] * n_sock
    occ = [False] * n_sock
    e_bat = 0.5 * site.bess.e_capacity_kwh
    e_min = site.bess.soc_min_frac * site.bess.e_capacity_kwh
    e_max = site.bess.soc_max_frac * site.bess.e_capacity_kwh
    eta = math.sqrt(site.bess.eta_roundtrip)
    i = 0
    n_s = len(arr)
    grid = 0.0
    t0 = time.perf_counter()
    for k in range(len(pv)):
        t = k * dt
        t1 = t + dt
        for j in range(n_sock):
            if occ[j] and sock_dep[j] <= t:
                occ[j] = False
        while i < n_s and arr[i] < t1:
            for j in range(n_sock):
                if not occ[j] and stype[j] == typ[i]:
                    occ[j] = True
                    sock_dep[j] = dep[i]
                    sock_e[j] = ereq[i]
                    sock_p[j] = pmax[i]
                    break
            i += 1
        ev = 0.0
        if 9.0 <= hour[k] < 22.0:
            for j in range(n_sock):
                if occ[j] and sock_e[j] > 0.0:
                    p = min(sock_p[j], sock_e[j] / dt_h)
                    sock_e[j] -= p * dt_h
                    ev += p
        p_b = 0.0
        if 6.0 <= hour[k] < 22.0:
            surplus = pv[k] - ev
            if surplus > 0:
                p_b = -min(surplus, 400.0, (e_max - e_bat) / eta / dt_h)
            else:
                p_b = min(-surplus + mall[k], 400.0, (e_bat - e_min) * eta / dt_h)
        e_bat -= p_b * dt_h / eta if p_b > 0 else p_b * dt_h * eta
        grid += max(ev + mall[k] - pv[k] - p_b, 0.0) * dt_h
    return time.perf_counter() - t0


def one(dt: str, repeat: int) -> dict[str, object]:
    """Measure the loop in this process (called in a fresh subprocess per tick size).

    Twin runs and bare loops alternate (bare, twin, bare, twin, …) so that both see the
    same load on a shared machine; the ratio is of the medians.
    """
    from twin.components.inputs import build_inputs
    from twin.config import load_scenario
    from twin.engine import Twin

    scn = load_scenario(SCENARIO, {"dt": dt})
    t = time.perf_counter()
    inputs = build_inputs(scn)
    t_inputs = time.perf_counter() - t
    walls: list[float] = []
    bare: list[float] = []
    events = 0
    load0 = os.getloadavg()
    cpu_bare: list[float] = []
    cpu_twin: list[float] = []
    cpu = time.process_time
    for _ in range(repeat):
        c0 = cpu()
        bare.append(bare_loop(inputs, scn.site))
        c1 = cpu()
        twin = Twin(scn, inputs=inputs)
        c2 = cpu()
        out = twin.run()
        cpu_twin.append(cpu() - c2)
        cpu_bare.append(c1 - c0)
        walls.append(out.sim_wall_s)
        events = (out.sessions.events if out.sessions else 0) + out.steps_done
    med = statistics.median(walls)
    bare_med = statistics.median(bare)
    noev = _no_ev_runs(scn, inputs, repeat)
    call = _numpy_call_costs(inputs.sessions)
    n_sessions = inputs.sessions.n if inputs.sessions is not None else 0
    return {"dt": dt, "steps": scn.config.n_steps, "sessions": n_sessions,
            "sim_wall_median_s": med, "sim_wall_runs_s": walls, "ticks_per_s": scn.config.n_steps / med,
            "events": events, "events_per_s": events / med, "inputs_s": t_inputs,
            "bare_median_s": bare_med, "bare_runs_s": bare, "ratio": med / bare_med,
            "pair_ratio_median": statistics.median(w / b for w, b in zip(walls, bare, strict=True)),
            "cpu_ratio": statistics.median(cpu_twin) / statistics.median(cpu_bare),
            "no_ev_median_s": noev, "numpy_call_us": call,
            "loadavg_before": load0, "loadavg_after": os.getloadavg()}


def _no_ev_runs(scn, inputs, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median wall time [s] of the same year with no EV session (the same PV, mall,
    controller and recording): the engine's tick without the fleet's work."""
    import dataclasses

    from twin.engine import Twin

    s = inputs.sessions
    empty = dataclasses.replace(s, **{f.name: getattr(s, f.name)[:0]
                                      for f in dataclasses.fields(s)
                                      if getattr(s, f.name) is not None})
    no_ev = dataclasses.replace(inputs, sessions=empty)
    return statistics.median(Twin(scn, inputs=no_ev).run().sim_wall_s for _ in range(repeat))


def _numpy_call_costs(sessions) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """What one numpy call on a 38-socket row costs here [µs] (median of 5 × 20,000):
    an element-wise ufunc with ``out=``, a sum (``np.add.reduce``), a 5-row copy."""
    import timeit

    import numpy as np

    n = 38
    a, b, o = np.linspace(0.0, 1.0, n), np.linspace(1.0, 0.0, n), np.empty(n)
    st = np.zeros((5, n))
    env = {"np": np, "a": a, "b": b, "o": o, "st": st}
    out = {}
    for key, stmt in (("ufunc", "np.minimum(a, b, out=o)"), ("sum", "np.add.reduce(a)"),
                      ("copy", "st.copy()"), ("float_op", "x = 1.5 * 2.5")):
        runs = timeit.repeat(stmt, globals=env, number=20_000, repeat=5)
        out[key] = statistics.median(runs) / 20_000 * 1e6
    return out


def whole_run(dt: str) -> tuple[float, float]:
    """Wall time [s] and peak RSS [MB] of one whole `twin run` process."""
    with tempfile.TemporaryDirectory() as tmp:
        code = ("import resource,sys,time;t=time.perf_counter();from twin.app.cli import main;"
                f"rc=main(['run',{str(SCENARIO)!r},'--out',{tmp + '/o'!r},'-q','--set','dt={dt}']);"
                "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024);"
                "sys.exit(rc)")
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        total = time.perf_counter() - t
        _, rss = r.stdout.split()
        return total, float(rss)


def _load(la: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in la)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dt", nargs="+", default=["15min", "1min"])
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure, median taken (1-9)")
    ap.add_argument("--no-whole", action="store_true",
                    help="skip the whole `twin run` process (wall time and peak RSS)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not 1 <= args.repeat <= 9:
        ap.error(f"--repeat {args.repeat}: must be 1 to 9")
    if args.one:
        print(json.dumps(one(args.one, args.repeat)))
        return
    print(f"annual benchmark: {SCENARIO.name}, six_phase, full recording; median of {args.repeat}")
    print(f"  load average (1/5/15 min) at start: {_load(list(os.getloadavg()))}  "
          f"({os.cpu_count()} CPUs; ratios to the bare loop of the same run carry across machines)")
    ratios: list[tuple[str, float, float, float, float, float]] = []
    for dt in args.dt:
        r = subprocess.run([sys.executable, __file__, "--one", dt, "--repeat", str(args.repeat)],
                           capture_output=True, text=True, check=True)
        m = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"\n[dt={dt}] {m['steps']:,} ticks, {m['sessions']:,} sessions, {m['events']:,} events")
        print(f"  sim loop wall        {m['sim_wall_median_s']:8.3f} s  (runs: "
              + ", ".join(f"{w:.3f}" for w in m["sim_wall_runs_s"]) + ")")
        print(f"  bare reference loop  {m['bare_median_s']:8.3f} s  (runs: "
              + ", ".join(f"{w:.3f}" for w in m["bare_runs_s"]) + ")")
        print(f"  twin / bare          {m['ratio']:8.2f} ×  (ratio of the medians; median of the "
              f"{args.repeat} bare/twin pairs' ratios {m['pair_ratio_median']:.2f} ×)")
        print(f"  twin / bare, CPU     {m['cpu_ratio']:8.2f} ×  (process CPU time, medians: "
              "steadier than wall time when other processes share the cores)")
        noev = m["no_ev_median_s"]
        print(f"  twin, no EV session  {noev:8.3f} s  ({noev / m['bare_median_s']:.2f} × bare: the "
              f"engine's tick alone; the fleet is {1 - noev / m['sim_wall_median_s']:.0%} of "
              "the year)")
        c = m["numpy_call_us"]
        print(f"  one numpy call on a 38-socket row: ufunc {c['ufunc']:.2f} µs, sum "
              f"{c['sum']:.2f} µs, 5-row copy {c['copy']:.2f} µs (a Python float op "
              f"{c['float_op'] * 1000:.0f} ns)")
        print(f"  ticks/s              {m['ticks_per_s']:10,.0f}")
        print(f"  events/s             {m['events_per_s']:10,.0f}")
        print(f"  inputs (PV, mall, sessions)  {m['inputs_s']:.3f} s")
        print(f"  load average         {_load(m['loadavg_before'])} → {_load(m['loadavg_after'])}")
        if not args.no_whole:
            total, rss = whole_run(dt)
            print(f"  whole `twin run`     {total:8.3f} s  (imports, inputs, loop, results, files)")
            print(f"  peak RSS             {rss:8.1f} MB")
        ratios.append((dt, m["sim_wall_median_s"], m["bare_median_s"], m["ratio"],
                       m["pair_ratio_median"], m["cpu_ratio"]))
    print("\nyear simulation vs bare Python loop (same run, medians):")
    for dt, sim, bare, ratio, pair, cpu in ratios:
        print(f"  {dt:>6}  sim {sim:7.3f} s   bare {bare:7.3f} s   ratio {ratio:5.2f} ×   "
              f"(paired {pair:5.2f} ×, CPU time {cpu:5.2f} ×)")


if __name__ == "__main__":
    main()

"""A/B trial benchmark: 20 seeds × 3 controllers on the week scenario, serial vs 2 workers.

Prints (never asserts):

* **bare**: the same 60 runs in a plain loop in this process (inputs built once per seed,
  ``Twin(...).run()`` + ``build_results`` per run, nothing stored) — the floor;
* **twin ab, --workers 1** (in-process, no Dask) and **--workers 2** (LocalCluster): wall
  time of the whole command (runs, records, statistics; figures off, then on);
* the per-run overhead of the trial machinery over the bare loop, and the speed-up of 2
  workers over 1;
* for scale, one bare ``twin run`` of the same scenario as a fresh process.

Usage: ``python benchmarks/trials.py [--seeds 20] [--controllers six_phase,arbitrage,no_bess]
[--duration 28d]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "week.yaml"


def bare(seeds: list[int], ctrls: list[str], sets: dict[str, str]) -> float:
    """The runs in a plain loop; returns wall time [s]."""
    from controllers.base import make_controller
    from twin.components.inputs import build_inputs
    from twin.config import load_scenario
    from twin.engine import Twin
    from twin.engine.results import build_results

    t0 = time.perf_counter()
    for s in seeds:
        scn = load_scenario(SCENARIO, {**sets, "seed": s})
        inputs = build_inputs(scn)
        for c in ctrls:
            build_results(Twin(scn, make_controller(c, scn.site), inputs=inputs).run())
    return time.perf_counter() - t0


def ab(seeds: int, ctrls: list[str], workers: int, figures: bool, out: Path, sets: dict[str, str]) -> float:
    """``twin ab`` in this process on a fresh output folder; returns wall time [s]."""
    from twin.app.cli import main

    shutil.rmtree(out, ignore_errors=True)
    args = ["ab", str(SCENARIO), "--controllers", ",".join(ctrls), "--seeds", str(seeds), "--workers",
            str(workers), "--out", str(out), "-q"]
    if not figures:
        args.append("--no-figures")
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    t0 = time.perf_counter()
    rc = main(args)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"twin ab exited {rc}")
    return wall


def _spin(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t0


def machine_ceiling(n: int = 10_000_000) -> float:
    """Speed-up of 2 processes over 1 on a pure-Python busy loop: what the cores give now."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    _spin(n)
    _spin(n)
    serial = time.perf_counter() - t0
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # start-up out of the timing
        t0 = time.perf_counter()
        pool.map(_spin, [n, n])
        par = time.perf_counter() - t0
    return serial / par


def dask_phases(seeds: list[int], ctrls: list[str], sets: dict[str, str]) -> dict[str, float]:
    """The runs as raw tasks on a 2-worker LocalCluster, timed by phase [s]: cluster start,
    first result (worker imports + first inputs build), the rest (steady state), close."""
    import logging

    from distributed import Client, LocalCluster, as_completed

    from twin.config import load_scenario
    from twin.trials.runner import RunTask, dask_inputs, dask_run, task_json
    from twin.trials.store import inputs_key

    t0 = time.perf_counter()
    lc = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1",
                      silence_logs=logging.CRITICAL)
    client = Client(lc)
    t1 = time.perf_counter()
    futs, inp = [], {}
    for s in seeds:
        scn = load_scenario(SCENARIO, {**sets, "seed": s})
        ik = inputs_key(scn)
        inp[ik] = client.submit(dask_inputs, scn.model_dump_json(), pure=False)
        futs += [client.submit(dask_run, task_json(RunTask(f"{s}-{c}", scn, c, ik)), inp[ik], pure=False)
                 for c in ctrls]
    t_first = 0.0
    walls = []
    for f in as_completed(futs):
        walls.append(f.result()["wall_s"])
        if not t_first:
            t_first = time.perf_counter()
    t2 = time.perf_counter()
    client.close()
    lc.close()
    t3 = time.perf_counter()
    return {"start": t1 - t0, "first": t_first - t1, "rest": t2 - t_first, "close": t3 - t2,
            "n_rest": float(len(futs) - 1), "run_wall_mean": sum(walls) / len(walls)}


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--controllers", default="six_phase,arbitrage,no_bess")
    ap.add_argument("--duration", default=None, help="horizon instead of the week's 7d, e.g. 28d")
    args = ap.parse_args()
    sets = {"duration": args.duration} if args.duration else {}
    ctrls = args.controllers.split(",")
    seeds = list(range(1, args.seeds + 1))
    n = len(seeds) * len(ctrls)
    tmp = Path(tempfile.mkdtemp(prefix="bench-trials-"))
    try:
        bare(seeds[:1], ctrls[:1], sets)  # warm the imports and pvlib caches
        import scipy.stats  # noqa: F401  (imported by the statistics; not part of a run)
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        lc = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1")
        with lc, Client(lc) as c:
            c.run(lambda: [__import__(m) for m in ("twin.engine.results", "twin.components.inputs")])
            t_cluster = time.perf_counter() - t0
        t_bare = bare(seeds, ctrls, sets)
        t1 = ab(args.seeds, ctrls, 1, False, tmp / "w1", sets)
        t2 = ab(args.seeds, ctrls, 2, False, tmp / "w2", sets)
        t1f = ab(args.seeds, ctrls, 1, True, tmp / "w1f", sets)
        t0 = time.perf_counter()
        extra = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
        subprocess.run([str(Path(sys.executable).with_name("twin")), "run", str(SCENARIO), "--out",
                        str(tmp / "run"), "-q", *extra], check=True)
        t_run = time.perf_counter() - t0
        ph = dask_phases(seeds, ctrls, sets)
        ceiling = machine_ceiling()
        same = (tmp / "w1" / "ab_summary.csv").read_text() == (tmp / "w2" / "ab_summary.csv").read_text()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cores = len(os.sched_getaffinity(0))
    horizon = args.duration or "7d"
    print(f"week scenario ({horizon}, 15-min ticks) · {len(seeds)} seeds × {len(ctrls)} controllers = "
          f"{n} runs · {cores} cores visible (load average {os.getloadavg()[0]:.1f})")
    print(f"  bare loop (inputs once per seed)     {t_bare:7.2f} s   {t_bare / n * 1000:6.0f} ms/run")
    print(f"  twin ab --workers 1 (no figures)     {t1:7.2f} s   {t1 / n * 1000:6.0f} ms/run   "
          f"overhead {(t1 - t_bare) / n * 1000:+.0f} ms/run ({(t1 / t_bare - 1) * 100:+.1f} %)")
    print(f"  twin ab --workers 2 (no figures)     {t2:7.2f} s   speed-up over 1 worker {t1 / t2:.2f}×")
    print(f"    of which LocalCluster start + worker imports ≈ {t_cluster:.2f} s; runs alone "
          f"{t2 - t_cluster:.2f} s, speed-up {t1 / max(t2 - t_cluster, 1e-9):.2f}×")
    serial_rate = n / t1
    print(f"  2-worker phases: cluster start {ph['start']:.2f} s, first result {ph['first']:.2f} s (worker "
          f"imports + first inputs), other {ph['n_rest']:.0f} runs {ph['rest']:.2f} s "
          f"= {ph['n_rest'] / ph['rest']:.1f} runs/s (serial {serial_rate:.1f} runs/s: steady-state "
          f"speed-up {ph['n_rest'] / ph['rest'] / serial_rate:.2f}×), close {ph['close']:.2f} s")
    print(f"  ceiling now: 2 processes of a bare Python loop run {ceiling:.2f}× faster than 1 (other jobs "
          "share the cores)")
    print(f"  twin ab --workers 1 with figures     {t1f:7.2f} s   (figures + page {t1f - t1:.2f} s)")
    print(f"  one 'twin run' process, same week    {t_run:7.2f} s   (imports, inputs, run, files)")
    print(f"  same ab_summary.csv with 1 and 2 workers: {same}")


if __name__ == "__main__":
    main()

"""A/B trial benchmark: serial vs 2 worker processes, beside two bare loops in parallel.

Two trials (issue 20): the annual scenario, 4 seeds × 2 controllers, and the week
scenario, 20 seeds × 2 controllers. Each is run as ``twin ab`` in this process (imports
warm, figures off) with ``--workers 1`` and ``--workers 2``, three times each, interleaved
with the reference: two bare Python loops in two forked processes vs one after the other
(:func:`_ref.parallel_speedup`, what the cores give at that moment). Printed (never
asserted), medians of 3:

* serial and 2-worker wall time [s] and the speed-up serial / parallel;
* the reference speed-up and the **efficiency** = trial speed-up / reference speed-up
  (target >= 0.85; and the trial never slower than serial);
* whether the two ``ab_summary.csv`` are identical;
* the CPU time of each (this process + its worker processes, ``getrusage``): the parallel
  run's extra CPU over the serial one is the pool's own cost (fork, pipes, JSON, cold
  caches), a figure that holds on a busy machine where the wall-time speed-up does not.

Usage: ``python benchmarks/trials.py [--only annual|week] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ref import load, median, parallel_speedup

ROOT = Path(__file__).resolve().parents[1]
TRIALS = {  # name: (scenario, seeds, controllers)
    "annual": (ROOT / "scenarios" / "annual.yaml", 4, "six_phase,arbitrage"),
    "week": (ROOT / "scenarios" / "week.yaml", 20, "six_phase,arbitrage"),
}


def _cpu_s() -> float:
    """CPU time of this process and of its waited-for children [s]."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


CPU: dict[str, list[float]] = {}


def ab(scn: Path, seeds: int, ctrls: str, workers: int, out: Path) -> float:
    """``twin ab`` in this process on a fresh output folder; wall time [s] (its CPU time
    [s], workers included, is appended to ``CPU[f"w{workers}"]``)."""
    from twin.app.cli import main

    shutil.rmtree(out, ignore_errors=True)
    c0 = _cpu_s()
    t0 = time.perf_counter()
    rc = main(["ab", str(scn), "--controllers", ctrls, "--seeds", str(seeds), "--workers", str(workers),
               "--first-seed", "1", "--out", str(out), "-q", "--no-figures"])
    wall = time.perf_counter() - t0
    CPU.setdefault(f"w{workers}", []).append(_cpu_s() - c0)
    if rc != 0:
        raise SystemExit(f"twin ab exited {rc}")
    return wall


def bench(name: str, repeats: int, tmp: Path) -> dict[str, float | bool]:
    """Serial, 2-worker and reference, interleaved ``repeats`` times; medians."""
    scn, seeds, ctrls = TRIALS[name]
    ser, par, ref = [], [], []
    CPU.clear()
    for _ in range(repeats):
        ref.append(parallel_speedup())
        ser.append(ab(scn, seeds, ctrls, 1, tmp / f"{name}-w1"))
        par.append(ab(scn, seeds, ctrls, 2, tmp / f"{name}-w2"))
    same = (tmp / f"{name}-w1" / "ab_summary.csv").read_bytes() == (tmp / f"{name}-w2" /
                                                                     "ab_summary.csv").read_bytes()
    s, p, r = median(ser), median(par), median(ref)
    return {"serial": s, "parallel": p, "speedup": s / p, "ref": r, "eff": s / p / r, "same": same,
            "runs": float(seeds * len(ctrls.split(","))), "cpu_serial": median(CPU["w1"]),
            "cpu_parallel": median(CPU["w2"])}


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(TRIALS))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import scipy.stats  # noqa: F401

    import controllers  # noqa: F401  (warm: imports are not the trial's cost)
    from twin.trials.runner import warm_imports

    warm_imports()
    print(f"trials: serial vs 2 worker processes, medians of {args.repeats} ({load()})")
    tmp = Path(tempfile.mkdtemp(prefix="bench-trials-"))
    try:
        for name in [args.only] if args.only else list(TRIALS):
            r = bench(name, args.repeats, tmp)
            _, seeds, ctrls = TRIALS[name]
            verdict = "ok" if r["eff"] >= 0.85 and r["speedup"] >= 1.0 else "BELOW TARGET"
            print(f"  {name:6s} {seeds} seeds × {len(ctrls.split(','))} controllers: serial "
                  f"{r['serial']:6.2f} s, 2 workers {r['parallel']:6.2f} s, speed-up {r['speedup']:.2f}× | "
                  f"two bare loops in parallel {r['ref']:.2f}× | efficiency {r['eff']:.2f} "
                  f"(target >= 0.85: {verdict}) | same ab_summary.csv: {r['same']}")
            print(f"         CPU time: serial {r['cpu_serial']:6.2f} s, 2 workers {r['cpu_parallel']:6.2f} s "
                  f"(workers and parent; the pool's own cost {r['cpu_parallel'] / r['cpu_serial'] - 1:+.1%})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  ({load()} at the end)")


if __name__ == "__main__":
    main()

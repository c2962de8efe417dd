"""Process-level benchmark: peak memory of a 1-min year, whole-process time of ``twin run``,
start-up time of ``twin --help`` — each beside a reference measured in the same run.

Prints (medians; figures are printed, never asserted):

* peak RSS of ``twin run scenarios/annual.yaml --set dt=1min`` (a fresh process, its
  ``ru_maxrss`` from ``wait4``) beside the peak RSS of ``python -c "import twin"``;
* wall time of a whole annual (15-min) ``twin run`` process beside its own simulation time
  (``summary.json``: ``sim_wall_s``, ``inputs_wall_s``) and beside ``python -c pass``;
* wall time of ``twin --help`` beside ``python -c pass``;
* the load average before and after (the machine may be shared).

The PV profile cache lives in a fresh temporary folder: the first run of each tick size
computes the PV (cold, printed apart), the measured runs read it (warm).

Usage: ``python benchmarks/memory.py [--repeat 3] [--help-repeat 5] [--skip-1min]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "annual.yaml"


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` as a child process; return (wall time [s], peak RSS [MiB])."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}")
    return wall, usage.ru_maxrss / 1024.0  # Linux: KiB


def twin_run(dt: str, out: Path, env: dict[str, str]) -> tuple[float, float, dict]:
    """One whole ``twin run`` process: (wall [s], peak RSS [MiB], summary)."""
    argv = [sys.executable, "-m", "twin", "run", str(SCENARIO), "--out", str(out), "-q"]
    if dt != "15min":
        argv += ["--set", f"dt={dt}"]
    wall, rss = measure(argv, env)
    return wall, rss, json.loads((out / "summary.json").read_text())


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median; default 3)")
    ap.add_argument("--help-repeat", type=int, default=5,
                    help="runs of 'twin --help' and 'python -c pass' (median; default 5)")
    ap.add_argument("--skip-1min", action="store_true", help="leave out the 1-min year")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="pvbess-bench-") as tmp:
        env = {**os.environ, "PVBESS_CACHE_DIR": str(Path(tmp) / "cache"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        py = sys.executable
        # start-up
        helps = [measure([py, "-m", "twin", "--help"], env)[0] for _ in range(args.help_repeat)]
        passes = [measure([py, "-c", "pass"], env) for _ in range(args.help_repeat)]
        imports = [measure([py, "-c", "import twin"], env) for _ in range(args.repeat)]
        pass_s = med([w for w, _ in passes])
        print(f"twin --help: {med(helps):.3f} s   python -c pass: {pass_s:.3f} s   "
              f"(medians of {args.help_repeat}; target <= 0.3 s)")
        # whole-process annual run at 15 min
        out = Path(tmp) / "run"
        cold = twin_run("15min", out, env)
        runs = [twin_run("15min", out, env) for _ in range(args.repeat)]
        wall = med([r[0] for r in runs])
        sim = med([r[2]["sim_wall_s"] for r in runs])
        inp = med([r[2]["inputs_wall_s"] for r in runs])
        print(f"annual 15-min twin run, whole process: {wall:.2f} s   its simulation "
              f"(sim_wall_s): {sim:.2f} s   ratio {wall / sim:.2f}x (target <= 2x)   "
              f"inputs {inp:.2f} s   python -c pass {pass_s:.3f} s   "
              f"[cold PV cache: {cold[0]:.2f} s, sim {cold[2]['sim_wall_s']:.2f} s, "
              f"inputs {cold[2]['inputs_wall_s']:.2f} s]")
        print(f"  peak RSS 15-min: {med([r[1] for r in runs]):.0f} MiB (cold {cold[1]:.0f} MiB)")
        # 1-min year peak memory
        ref_rss = med([r for _, r in imports])
        if not args.skip_1min:
            cold1 = twin_run("1min", out, env)
            runs1 = [twin_run("1min", out, env) for _ in range(args.repeat)]
            rss = med([r[1] for r in runs1])
            w1 = med([r[0] for r in runs1])
            s1 = med([r[2]["sim_wall_s"] for r in runs1])
            print(f"1-min year peak RSS: {rss:.0f} MiB (target <= 500; cold PV cache "
                  f"{cold1[1]:.0f} MiB)   python -c 'import twin': {ref_rss:.0f} MiB   "
                  f"whole process {w1:.1f} s, sim {s1:.1f} s ({w1 / s1:.2f}x)")
        else:
            print(f"python -c 'import twin': {ref_rss:.0f} MiB")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Benchmark: wall time of ``twin report`` on an annual run (median of 3) beside the bare loop
and a bare interpreter start measured in the same run. Printed, never asserted.

Usage::

    .venv/bin/python benchmarks/report.py [RUN_DIR]

Without RUN_DIR, the annual scenario is simulated first into a temporary folder (not timed).
Each repetition runs ``python -m twin report RUN_DIR --out <tmp>`` in a fresh process, so the
figure includes start-up, loading, drawing and writing. Target: < 30 s for a year.
References: the bare Python loop of ``benchmarks/_ref.py`` and ``python -c "import twin.report.build"``
(interpreter + imports), each a median of 3, so the ratios carry across machines.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ref import bare_loop_s, load, median

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
TARGET_S = 30.0


def twin(*args: str) -> None:
    """Run ``python -m twin ARGS`` and fail loudly if it fails."""
    subprocess.run([sys.executable, "-m", "twin", *args], cwd=ROOT, check=True)


def main() -> int:
    """Print the median wall time [s] of ``twin report`` over :data:`REPEATS` runs."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        if len(sys.argv) > 1:
            run_dir = Path(sys.argv[1])
        else:
            run_dir = Path(tmp) / "annual"
            print("simulating scenarios/annual.yaml (not timed) ...", flush=True)
            twin("run", "scenarios/annual.yaml", "--out", str(run_dir), "-q")
        times = []
        for i in range(REPEATS):
            t0 = time.perf_counter()
            twin("report", str(run_dir), "--out", str(Path(tmp) / "report"), "-q")
            times.append(time.perf_counter() - t0)
            print(f"  repetition {i + 1}: {times[-1]:.1f} s", flush=True)
        n_png = len(list((Path(tmp) / "report").glob("*.png")))
        med = statistics.median(times)
        bare = median([bare_loop_s() for _ in range(REPEATS)])
        imports = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import twin.report.build"], cwd=ROOT, check=True)
            imports.append(time.perf_counter() - t0)
        imp = median(imports)
        print(f"twin report, annual run ({n_png} figures + report.html): median of {REPEATS} = "
              f"{med:.1f} s (target < {TARGET_S:.0f} s: {'met' if med < TARGET_S else 'MISSED'}) | "
              f"bare loop {bare:.2f} s: ratio {med / bare:.1f}× | interpreter + report imports "
              f"{imp:.2f} s: ratio {med / imp:.1f}× ({load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

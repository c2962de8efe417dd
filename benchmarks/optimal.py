"""Benchmark of ``optimal`` and ``mpc`` on the annual scenario (figures printed, never asserted).

Prints, for the whole-year LP (35,040 steps at 15 min, aggregated EV): problem size, build
time (EV envelopes + sparse matrix + data), HiGHS solve time (all fade passes), playback time
(the simulation loop with the plan) and peak RSS; then the MPC year (hourly re-solve over
48 h, perfect forecasts): number of solves, solve times and total wall time. Wall times are
medians of 3 and each is printed beside the reference measured in the same run: the year
with ``six_phase`` on the same inputs (a rule controller: the engine's own cost).

    python benchmarks/optimal.py [--skip-mpc] [--repeats 3]
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ref import load  # noqa: E402

from controllers.lp import Weights, run_cost  # noqa: E402
from twin.components.inputs import build_inputs  # noqa: E402
from twin.config import load_scenario  # noqa: E402
from twin.engine import Twin, get_controller  # noqa: E402
from twin.engine.results import build_results  # noqa: E402


def rss_mb() -> float:
    """Peak resident set size of this process [MB]."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(scn, inputs, name: str):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = Twin(scn, get_controller(scn, name), inputs=inputs).run()
    return time.perf_counter() - t0, out


def main() -> None:
    """Run the benchmark and print the figures."""
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
    scn = load_scenario(ROOT / "scenarios" / "annual.yaml")
    inputs = build_inputs(scn)
    print(f"annual: {scn.config.n_steps:,} steps of {scn.config.dt:g} s; medians of {repeats} ({load()})")
    ref = statistics.median(_timed(scn, inputs, "six_phase")[0] for _ in range(repeats))
    print(f"  reference: the year with six_phase on the same inputs {ref:.2f} s")
    runs = [_timed(scn, inputs, "optimal") for _ in range(repeats)]
    t_all = statistics.median(t for t, _ in runs)
    out = runs[-1][1]
    s = build_results(out).summary
    t_play = s["sim_wall_s"]
    lp = s["lp"]
    print("optimal (perfect-foresight LP)")
    print(f"  variables · constraints      {lp['n_variables']:,} · {lp['n_constraints']:,}")
    print(f"  build (envelopes + matrix)   {lp['build_s']:.2f} s")
    print(f"  HiGHS solve                  {lp['solve_s']:.2f} s ({lp['fade_passes']} fade passes)")
    print(f"  set-up + solve + playback    {t_all:.2f} s = {t_all / ref:.1f}× the six_phase year")
    print(f"  playback (simulation loop)   {t_play:.2f} s")
    print(f"  peak RSS                     {rss_mb():.0f} MB")
    print(f"  LP objective · simulated     {lp['objective']:,.0f} · {lp['simulated_cost']:,.0f} "
          f"({lp['gap_percent']:+.3f} %)")
    if "--skip-mpc" in sys.argv:
        return
    runs = [_timed(scn, inputs, "mpc") for _ in range(repeats)]
    wall = statistics.median(t for t, _ in runs)
    m = build_results(runs[-1][1]).summary
    mp = m["mpc"]
    cost = run_cost(m, Weights())["cost"]
    print("mpc (48 h horizon, hourly re-solve, perfect forecasts)")
    print(f"  variables · constraints      {mp['n_variables']:,} · {mp['n_constraints']:,}")
    print(f"  solves · cold retries        {mp['n_solves']:,} · {mp['cold_retries']}")
    print(f"  solve median · max           {mp['solve_s_median'] * 1e3:.1f} ms · "
          f"{mp['solve_s_max'] * 1e3:.1f} ms (incl. forecasts and EV envelopes)")
    print(f"  solves total · run wall      {mp['solve_s_total']:.1f} s · {wall:.1f} s = {wall / ref:.1f}× "
          "the six_phase year")
    print(f"  cost vs the optimum          {cost:,.0f} ({(cost / lp['objective'] - 1) * 100:+.2f} %)")
    print(f"  ({load()} at the end)")


if __name__ == "__main__":
    main()

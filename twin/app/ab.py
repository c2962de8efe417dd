"""``twin ab SCENARIO --controllers A,B[,C...] --seeds N``: controller A/B trials.

Every controller runs on the same N seeds (common random numbers: the same PV clouds,
mall noise and EV sessions per seed), so the differences are paired. Writes into OUT
(default ``runs/NAME-ab``):

* ``runs/KEY.json`` — one record per finished run (resume: kept and skipped on rerun);
* ``trials.parquet`` — one row per run: ``controller``, ``seed``, every numeric KPI;
* ``ab_summary.csv`` / ``ab_summary.md`` — per KPI and pair: mean a − b, paired-t and
  bootstrap 95 % CIs, p-value, win rate, verdict;
* ``figures/*.png`` and ``ab.html`` — forest plot, per-seed paired dots, cumulative cost.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

#: Every entry ``twin ab`` writes in its folder (the output guard's marker lists them).
AB_FILES = ("runs", "trials.parquet", "ab_summary.csv", "ab_summary.md", "ab.html", "figures")
HELP = "controller A/B trial over many seeds with paired statistics"
DESCRIPTION = (
    "Run every controller on the same N seeds of SCENARIO (same PV clouds, mall noise and EV "
    "sessions per seed) and compare them pairwise per KPI: mean difference a − b, 95 % CI "
    "(paired t and seeded bootstrap), p-value, win rate and a verdict ('no detectable "
    "difference' when the CI covers 0). With 'optimal' in the set, each controller's gap to "
    "it. Runs go to worker processes (or a Dask cluster with --scheduler); finished runs are "
    "kept under OUT/runs and skipped on rerun (Ctrl-C keeps them). Exit 0 ok, 1 some runs "
    "failed (the others are reported), 2 user error, 130 interrupted."
)


def register(sub: Any) -> None:
    """Add the ``ab`` sub-parser."""
    from twin.app.trialrun import add_run_options
    from twin.bounds import MAX_RUNS, MAX_SEEDS, int_range

    p = sub.add_parser("ab", help=HELP, description=DESCRIPTION)
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument(
        "--controllers",
        required=True,
        metavar="A,B[,C...]",
        help="registered controllers, comma-separated (the same name twice = an A/A trial)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=20,
        metavar="N",
        help=f"number of seeds, {int_range(2, MAX_SEEDS)} (default 20; at most {MAX_RUNS:,} runs "
        "in all)",
    )
    p.add_argument(
        "--first-seed",
        type=int,
        default=None,
        metavar="S",
        help="seeds S .. S+N-1, S >= 0 (default: the scenario's seed)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/NAME-ab)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a scenario or site value for every run (repeatable)",
    )
    p.add_argument(
        "--boot-seed", type=int, default=0, help="seed of the bootstrap resampling, >= 0 (default 0)"
    )
    p.add_argument("--no-figures", action="store_true", help="skip the figures and ab.html")
    add_run_options(p)
    p.set_defaults(func=cmd_ab)


def cmd_ab(args: argparse.Namespace) -> int:
    """Run the trial and write its outputs."""
    from twin.app.trialrun import check_out, lost_cluster_exit, run_all
    from twin.errors import EXIT_INTERRUPTED, EXIT_OK
    from twin.trials.runner import RunTask
    from twin.trials.store import RunStore, inputs_key, run_key, scenario_hash

    names, ctrls = _arms(args)
    scn0, seeds = _scenario_and_seeds(args)
    out = Path(args.out) if args.out else Path("runs") / f"{scn0.config.name}-ab"
    check_out(out, "ab", AB_FILES)
    h = scenario_hash(scn0)
    tasks = []
    for s in seeds:  # the same scenario with another seed (validated like --set seed=S)
        scn = scn0.model_copy(update={"config": scn0.config.model_copy(update={"seed": s})})
        ik = inputs_key(scn)
        tasks += [RunTask(run_key(h, c, s), scn, c, ik) for c in ctrls]
    res = run_all(tasks, RunStore(out), workers=args.workers, scheduler=args.scheduler,
                  quiet=args.quiet, cluster_timeout_s=args.cluster_timeout)
    lost = lost_cluster_exit(res, out)
    if lost is not None:
        return lost
    done = _write_trial(args, out, res, scn0, names, ctrls, seeds, h)
    if res.interrupted:
        print(
            f"twin: interrupted; {res.ran + res.reused} finished runs are kept in {out / 'runs'}; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if res.failures:
        print(
            f"twin: {len(res.failures)} of {len(tasks)} runs failed (see above); the summary uses the "
            f"{done} seeds on which every controller finished",
            file=sys.stderr,
        )
        return 1
    return EXIT_OK


def _arms(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The controllers named by ``--controllers`` and one label per arm; bounds checked."""
    from controllers import REGISTRY
    from twin.app.trialrun import check_run_options
    from twin.bounds import MAX_RUNS, MAX_SEED, MAX_SEEDS, check_int
    from twin.errors import UserError

    names = [c.strip() for c in args.controllers.split(",") if c.strip()]
    if not names:
        raise UserError("--controllers: give at least one registered controller, e.g. six_phase,arbitrage")
    unknown = [c for c in names if c not in REGISTRY]
    if unknown:
        raise UserError(f"--controllers: unknown controller(s) {unknown}; registered: {sorted(REGISTRY)}")
    if len(names) == 1:
        names = names * 2
    ctrls = arm_labels(names)
    if args.seeds < 2:
        raise UserError(f"--seeds {args.seeds}: paired statistics need at least 2 seeds")
    check_int("--seeds", args.seeds, 2, MAX_SEEDS)
    check_int("--boot-seed", args.boot_seed, 0, MAX_SEED)
    if args.seeds * len(ctrls) > MAX_RUNS:
        raise UserError(f"--seeds {args.seeds} x {len(ctrls)} controllers = "
                        f"{args.seeds * len(ctrls):,} runs; at most {MAX_RUNS:,}")
    check_run_options(args)
    return names, ctrls


def _scenario_and_seeds(args: argparse.Namespace) -> tuple[Any, list[int]]:
    """The scenario (on the cloud model when several seeds need weather) and the seeds."""
    from twin.bounds import MAX_SEED, check_int
    from twin.config import load_scenario, parse_set, seeds_weather

    sets = parse_set(args.set or [])
    scn0 = load_scenario(Path(args.scenario), sets)
    extra, note = seeds_weather(scn0, args.seeds)
    if extra:
        scn0 = load_scenario(Path(args.scenario), {**sets, **extra})
    if note:
        print(f"twin: note: {note}", file=sys.stderr)
    for w in scn0.warnings:
        print(f"twin: warning: {w}", file=sys.stderr)
    first = scn0.config.seed if args.first_seed is None else args.first_seed
    check_int("--first-seed", first, 0, MAX_SEED - args.seeds + 1)
    return scn0, list(range(first, first + args.seeds))


def _write_trial(args: argparse.Namespace, out: Path, res: Any, scn0: Any, names: list[str],
                 ctrls: list[str], seeds: list[int], h: str) -> int:
    """Write the trial's tables, summary, page and terminal table; the complete seeds."""
    from twin.app.trialrun import run_counts, write_atomic
    from twin.trials.ab import complete_seeds, default_kpis, markdown_table, summarize, trials_frame

    trials = trials_frame(res.records, ctrls)
    kpis = default_kpis(scn0.site.tariff.currency)
    summary = summarize(trials, ctrls, kpis, boot_seed=args.boot_seed)
    buf = io.BytesIO()
    trials.to_parquet(buf, index=False)
    write_atomic(out / "trials.parquet", buf.getvalue())
    write_atomic(out / "ab_summary.csv", summary.to_csv(index=False))
    done = complete_seeds(trials, ctrls)
    meta: dict[str, Any] = {
        "scenario": scn0.config.name,
        "scenario_file": str(scn0.path),
        "scenario_hash": h,
        "controllers": ", ".join(names),
        "seeds": f"{len(done)} complete of {len(seeds)} ({seeds[0]}..{seeds[-1]})",
        "horizon": f"{scn0.index[0]} + {scn0.config.duration / 86400:g} d, dt {scn0.config.dt:g} s",
        "currency": scn0.site.tariff.currency,
        "runs": run_counts(res),
    }
    write_atomic(out / "ab_summary.md", _markdown(meta, summary, kpis))
    if not args.no_figures and len(trials):
        from twin.report.trials import ab_page
        from twin.trials.ab import card_data

        ab_page(out, summary, trials, _daily(res.records), ctrls, [k.key for k in kpis],
                {k.key: k.label for k in kpis}, meta,
                cards=card_data(summary, trials, ctrls, kpis))
    if not args.quiet:
        print(markdown_table(summary, kpis))
        print(f"outputs: {out} ({run_counts(res)})")
    return len(done)


def arm_labels(names: list[str]) -> list[str]:
    """One label per arm: a controller named again gets ``#2``, ``#3`` ... (an A/A trial runs
    ``six_phase`` and ``six_phase#2`` as separate runs on the same inputs)."""
    out: list[str] = []
    for n in names:
        k = 1
        label = n
        while label in out:
            k += 1
            label = f"{n}#{k}"
        out.append(label)
    return out


def _daily(records: list[dict[str, Any]]) -> Any:
    import pandas as pd

    rows = []
    for r in records:
        d = r.get("daily") or {}
        for i, (day, cost) in enumerate(zip(d.get("date", []), d.get("grid_cost_soles", []), strict=False)):
            rows.append(
                {
                    "controller": r["controller"],
                    "seed": r["seed"],
                    "day": i,
                    "date": day,
                    "grid_cost_soles": cost,
                }
            )
    return pd.DataFrame(rows, columns=["controller", "seed", "day", "date", "grid_cost_soles"])


def _markdown(meta: dict[str, Any], summary: Any, kpis: Any) -> str:
    from twin.trials.ab import markdown_table, optimal_gaps

    lines = [f"# A/B trial: {meta['scenario']}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += [
        "",
        "Differences are a − b over the same seeds (common random numbers). 95 % CIs: paired t "
        "and percentile bootstrap (10,000 resamples, seeded). 'a wins' = share of seeds where a is "
        "better (ties count half). p (Holm): the p-values Holm-adjusted across every KPI × pair "
        "below; '!' marks a small-sample warning (fewer than 10 seeds, or the t and bootstrap "
        "intervals disagree on 0).",
        "",
        markdown_table(summary, kpis),
        "",
    ]
    gaps = optimal_gaps(summary) if len(summary) else summary
    if len(gaps):
        lines += [
            "## Gap to optimal",
            "",
            "| KPI | controller | gap (mean diff) | gap [% of optimal] | 95 % CI |",
            "|---|---|---:|---:|---:|",
        ]
        for r in gaps.to_dict("records"):
            lines.append(
                f"| {r['kpi']} | {r['a']} | {r['mean_diff']:,.4g} | {r['gap_percent']:.3g} % | "
                f"[{r['ci_low']:,.4g}, {r['ci_high']:,.4g}] |"
            )
        lines.append("")
    return "\n".join(lines)

"""``twin sweep SCENARIO --set bess.e_capacity_kwh=500:4000:250 --set bess.p_nominal_kw=100:1000:100``:
the full twin over a grid of sizes (SPEC §6), with savings, CO2 avoided, EV service, peak
import and simple payback per point; heat maps with the sizing formulas' point marked."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

#: Every entry ``twin sweep`` writes in its folder (the output guard's marker lists them).
SWEEP_FILES = ("runs", "sweep.parquet", "sweep_summary.csv", "sizing_point.json", "sweep.html",
               "figures")

HELP = "the full twin over a grid of battery sizes (or any --set grid), with payback"
DESCRIPTION = (
    "Run SCENARIO for every point of the --set KEY=START:STOP:STEP grids (Cartesian "
    "product; plain --set KEY=VALUE items apply to every point), every controller and "
    "every seed (at most {points:,} grid points and {runs:,} runs; seeds are given with "
    "--seeds/--first-seed, not as a grid). 'bess.p_nominal_kw' sets both charge and discharge power. Writes "
    "sweep.parquet (one row per run), sweep_summary.csv (mean over seeds per point and "
    "controller: savings, CO2 avoided against the same site without a battery, EV "
    "service, peak import, CAPEX, OPEX, simple payback from the site's 'economics' "
    "section), heat maps (line plots for one axis) with the sizing formulas' point "
    "marked, and sweep.html. Resumable like 'twin ab'."
)

#: Metrics of the sweep summary: (column, label, unit); ``{cur}``: the site's currency.
METRICS = [
    ("savings_bess_soles", "savings from the BESS", "{cur}"),
    ("co2_avoided_bess_kg", "CO2 avoided by the BESS", "kg"),
    ("sessions_satisfied_frac", "EV sessions satisfied", "fraction"),
    ("ev_coverage", "EV energy from PV + BESS", "fraction"),
    ("peak_grid_import_kw", "peak grid import", "kW"),
    ("payback_years", "simple payback", "years"),
]


def register(sub: Any) -> None:
    """Add the ``sweep`` sub-parser."""
    from twin.app.trialrun import add_run_options
    from twin.bounds import MAX_GRID_POINTS, MAX_RUNS, MAX_SEEDS, int_range

    desc = DESCRIPTION.format(points=MAX_GRID_POINTS, runs=MAX_RUNS)
    p = sub.add_parser("sweep", help=HELP, description=desc)
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=START:STOP:STEP|KEY=VALUE",
        required=True,
        help="a grid axis (start:stop:step, finite numbers, step > 0, stop included) or a fixed "
        "override (repeatable)",
    )
    p.add_argument("--controllers", metavar="A[,B...]", help="controllers (default: the scenario's)")
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help=f"seeds per point, {int_range(1, MAX_SEEDS)} (default 1)",
    )
    p.add_argument(
        "--first-seed",
        type=int,
        default=None,
        metavar="S",
        help="seeds S .. S+N-1, S >= 0 (default: the scenario's seed)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/NAME-sweep)")
    p.add_argument(
        "--sizing-mode",
        default="ev_open_hours",
        help="sizing formula mode marked on the maps (see 'twin size'; default ev_open_hours)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the figures and sweep.html")
    add_run_options(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the grid and write its outputs."""
    import pandas as pd

    from controllers import REGISTRY
    from twin.app.trialrun import (
        check_out,
        check_run_options,
        lost_cluster_exit,
        run_all,
        run_counts,
        write_atomic,
    )
    from twin.bounds import MAX_RUNS, MAX_SEED, MAX_SEEDS, check_int
    from twin.config import load_scenario
    from twin.errors import EXIT_INTERRUPTED, EXIT_OK, UserError
    from twin.sizing import MODES
    from twin.trials.runner import RunTask
    from twin.trials.store import RunStore, inputs_key, run_key, scenario_hash
    from twin.trials.sweep import economics, expand, parse_sets, points

    _, fixed, axes = parse_sets(args.set or [])
    if not axes:
        raise UserError("twin sweep: give at least one grid, e.g. --set bess.e_capacity_kwh=500:4000:250")
    if args.sizing_mode not in MODES:
        raise UserError(f"--sizing-mode {args.sizing_mode}: one of {list(MODES)}")
    check_int("--seeds", args.seeds, 1, MAX_SEEDS)
    check_run_options(args)
    path = Path(args.scenario)
    scn0 = load_scenario(path, fixed)
    ctrls = [c.strip() for c in (args.controllers or scn0.config.controller).split(",") if c.strip()]
    unknown = [c for c in ctrls if c not in REGISTRY]
    if unknown:
        raise UserError(f"--controllers: unknown controller(s) {unknown}; registered: {sorted(REGISTRY)}")
    ctrls = list(dict.fromkeys(ctrls))
    first = scn0.config.seed if args.first_seed is None else args.first_seed
    check_int("--first-seed", first, 0, MAX_SEED - args.seeds + 1)
    seeds = list(range(first, first + args.seeds))
    out = Path(args.out) if args.out else Path("runs") / f"{scn0.config.name}-sweep"
    grid = points(axes)
    n_runs = len(grid) * len(seeds) * len(ctrls)
    if n_runs > MAX_RUNS:
        raise UserError(f"twin sweep: {len(grid):,} points x {len(seeds):,} seeds x {len(ctrls)} "
                        f"controllers = {n_runs:,} runs; at most {MAX_RUNS:,}")
    # validate every point before running anything (a bad value fails here, nothing written)
    tasks = []
    for pt in grid:
        for s in seeds:
            scn = load_scenario(path, {**fixed, **expand(pt), "seed": s})
            h = scenario_hash(scn)
            ik = inputs_key(scn)
            tasks += [RunTask(run_key(h, c, s), scn, c, ik, tags=dict(pt)) for c in ctrls]
    check_out(out, "sweep", SWEEP_FILES)
    mark = _formula_point(scn0, args.sizing_mode, [k for k, _ in axes])
    store = RunStore(out)
    res = run_all(tasks, store, workers=args.workers, scheduler=args.scheduler, quiet=args.quiet,
                  cluster_timeout_s=args.cluster_timeout)
    lost = lost_cluster_exit(res, out)
    if lost is not None:
        return lost
    keys = [k for k, _ in axes]
    rows = [{**r["tags"], "controller": r["controller"], "seed": r["seed"], **r["kpis"]} for r in res.records]
    runs = pd.DataFrame(rows)
    if runs.empty:
        print("twin: no run finished", file=sys.stderr)
        return EXIT_INTERRUPTED if res.interrupted else 1
    econ = scn0.site.economics
    eco = economics(
        runs["capacity_kwh"].to_numpy(float),
        runs["nominal_power_kw"].to_numpy(float),
        runs["savings_bess_soles"].to_numpy(float),
        runs["days"].to_numpy(float),
        econ,
    )
    for k, v in eco.items():
        runs[k] = v
    runs["_order"] = runs["controller"].map({c: i for i, c in enumerate(ctrls)})
    runs = runs.sort_values([*keys, "_order", "seed"], kind="stable").drop(columns="_order")
    runs = runs.reset_index(drop=True)
    buf = io.BytesIO()
    runs.to_parquet(buf, index=False)
    write_atomic(out / "sweep.parquet", buf.getvalue())
    cols = [m for m, _, _ in METRICS if m in runs.columns]
    agg = runs.groupby([*keys, "controller"], sort=False)
    summ = agg[[*cols, "capex", "opex_per_yr", "savings_per_yr"]].mean()
    summ["n_seeds"] = agg.size()
    # payback of the mean savings (a mean of paybacks is undefined when one never pays)
    summ["payback_years"] = [
        _pb(c, o, s)
        for c, o, s in zip(summ["capex"], summ["opex_per_yr"], summ["savings_per_yr"], strict=True)
    ]
    summ = summ.reset_index()
    write_atomic(out / "sweep_summary.csv", summ.to_csv(index=False, float_format="%.10g"))
    if mark is not None:
        import json

        write_atomic(out / "sizing_point.json", json.dumps(mark, indent=2) + "\n")
    if not args.no_figures:
        _figures(out, summ, keys, ctrls, mark, scn0, seeds, run_counts(res))
    if not args.quiet:
        print(_table(summ, keys))
        if mark is not None:
            print(
                f"sizing formulas ({mark['mode']}): {mark['capacity_kwh']:,.0f} kWh / "
                f"{mark['power_kw']:,.0f} kW"
            )
        print(f"outputs: {out} ({run_counts(res)})")
    if res.interrupted:
        print(
            f"twin: interrupted; finished runs are kept in {out / 'runs'}; rerun to resume", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    if res.failures:
        print(f"twin: {len(res.failures)} of {len(tasks)} runs failed (see above)", file=sys.stderr)
        return 1
    return EXIT_OK


def _pb(capex: float, opex: float, sav: float) -> float:
    from twin.trials.sweep import payback_years

    return payback_years(capex, opex, sav)


def _formula_point(scn: Any, mode: str, keys: list[str]) -> dict[str, Any] | None:
    """The sizing formulas' (capacity, power) when the axes are battery energy and/or power."""
    from twin.trials.sizing_profiles import size_scenario
    from twin.trials.sweep import ENERGY_KEYS, POWER_KEYS

    if not any(k in ENERGY_KEYS + POWER_KEYS for k in keys):
        return None
    _, res = size_scenario(scn)
    m = res.modes[mode]
    return {"mode": mode, "capacity_kwh": m.capacity_kwh, "power_kw": m.power_kw, "seed": scn.config.seed}


def _table(summ: Any, keys: list[str]) -> str:
    head = [*keys, "controller", "savings", "CO2 avoided", "satisfied", "peak import", "CAPEX", "payback"]
    w = [max(14, len(h)) for h in head]
    lines = ["  ".join(f"{h:>{n}}" for h, n in zip(head, w, strict=True))]
    for r in summ.to_dict("records"):
        pb = r["payback_years"]
        vals = [
            *(f"{r[k]:>{n},.6g}" for k, n in zip(keys, w, strict=False)),
            f"{r['controller']:>14}",
            f"{r.get('savings_bess_soles', float('nan')):>14,.0f}",
            f"{r.get('co2_avoided_bess_kg', float('nan')):>14,.0f}",
            f"{r.get('sessions_satisfied_frac', float('nan')):>14.3f}",
            f"{r.get('peak_grid_import_kw', float('nan')):>14,.0f}",
            f"{r['capex']:>14,.0f}",
            f"{'never':>14}" if pb == float("inf") else f"{pb:>14.1f}",
        ]
        lines.append("  ".join(vals))
    return "\n".join(lines)


def _figures(
    out: Path,
    summ: Any,
    keys: list[str],
    ctrls: list[str],
    mark: dict[str, Any] | None,
    scn: Any,
    seeds: list[int],
    counts: str,
) -> None:
    import numpy as np

    from twin.report.style import report_style
    from twin.report.trials import frame_html, heatmap, line_sweep, write_page
    from twin.trials.sweep import ENERGY_KEYS

    figs = []
    from twin.kpi_catalogue import unit_text

    cur = scn.site.tariff.currency
    with report_style():
        for m, label, unit in METRICS:
            if m not in summ.columns:
                continue
            unit = unit_text(unit, cur)
            if len(keys) == 1:
                mx = None
                if mark is not None:
                    mx = mark["capacity_kwh"] if keys[0] in ENERGY_KEYS else mark["power_kw"]
                figs.append(
                    (
                        f"sweep_{m}",
                        label,
                        f"Mean over seeds of {label} [{unit}] against "
                        f"{keys[0]}; dashed: the sizing formulas' value.",
                        line_sweep(summ, keys[0], m, f"{label} against {keys[0]}", unit, mx),
                    )
                )
            elif len(keys) == 2:
                mk = None
                if mark is not None:
                    x_e = keys[0] in ENERGY_KEYS
                    mk = (
                        (mark["capacity_kwh"], mark["power_kw"])
                        if x_e
                        else (mark["power_kw"], mark["capacity_kwh"])
                    )
                for c in ctrls:
                    g = summ[summ["controller"] == c].copy()
                    g[m] = g[m].replace([np.inf], np.nan)
                    figs.append(
                        (
                            f"sweep_{m}_{c}",
                            label,
                            f"{label} [{unit}] per point (mean over "
                            f"seeds), controller {c}; star: the sizing formulas' size"
                            + ("; blank: never pays back" if m == "payback_years" else ""),
                            heatmap(
                                g,
                                keys[0],
                                keys[1],
                                m,
                                f"{label} ({c})",
                                unit,
                                mk,
                                "viridis_r" if m in ("payback_years", "peak_grid_import_kw") else "viridis",
                            ),
                        )
                    )
    if not figs:
        return
    shown = summ.copy()
    write_page(
        out,
        "sweep.html",
        f"pvbess-twin sweep: {scn.config.name}",
        f"{' × '.join(keys)} · controllers {', '.join(ctrls)} · seeds {seeds[0]}..{seeds[-1]}",
        [("Per point (mean over seeds)", frame_html(shown))],
        figs,
        [
            "Savings and CO2 avoided compare each run with the same site, load and PV without a "
            "battery. Payback = CAPEX / (yearly savings − yearly OPEX), from the site's "
            "'economics' section; 'inf' = never pays back."
            + (
                f" Sizing formulas ({mark['mode']}): {mark['capacity_kwh']:,.0f} kWh / "
                f"{mark['power_kw']:,.0f} kW."
                if mark
                else ""
            ),
            f"Runs: {counts}.",
        ],
    )

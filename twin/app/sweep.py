"""``twin sweep SCENARIO --set bess.e_capacity_kwh=500:4000:250 --set bess.p_nominal_kw=100:1000:100``:
the full twin over a grid of sizes (docs/spec.md §6), with savings, CO2 avoided, EV service, peak
import and simple payback per point; heat maps with the sizing formulas' point marked."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

#: Every entry ``twin sweep`` writes in its folder (the output guard's marker lists them).
SWEEP_FILES = ("runs", "sweep.parquet", "sweep_summary.csv", "sizing_point.json", "sweep.html",
               "figures", "sizing.html")

#: The grid when no ``--set`` gives one: the battery capacity [kWh] at the site's power.
DEFAULT_GRID = "bess.e_capacity_kwh=0:3000:500"
#: The controller when ``--controllers`` is not given: the perfect-foresight plan, so the
#: battery (not a rule controller's thresholds) shapes the sizing curve.
DEFAULT_CONTROLLER = "optimal"

HELP = "the full twin over a grid of battery sizes (or any --set grid), with NPV, IRR, LCOS"
DESCRIPTION = (
    "Run SCENARIO for every point of the --set KEY=START:STOP:STEP grids (Cartesian "
    "product; plain --set KEY=VALUE items apply to every point; default grid "
    f"{DEFAULT_GRID}), every controller (default {DEFAULT_CONTROLLER}) and "
    "every seed (at most {points:,} grid points and {runs:,} runs; seeds are given with "
    "--seeds/--first-seed, not as a grid). 'bess.p_nominal_kw' sets both charge and discharge power. Writes "
    "sweep.parquet (one row per run), sweep_summary.csv (mean over seeds per point and "
    "controller: savings, CO2 avoided against the same site without a battery, EV "
    "service, peak import, CAPEX (0 without a battery), OPEX, simple and discounted payback, "
    "NPV, IRR, LCOS and cell replacements over the project life, from the site's "
    "'economics' section, --set economics.KEY=VALUE), heat maps (line plots for one axis) "
    "with the sizing formulas' point marked, sweep.html, and sizing.html (the sizing curve, "
    "its knee = the size of largest NPV, when a grid axis is the battery capacity). "
    "Resumable like 'twin ab'."
)

#: Metrics of the sweep's figures: (summary column, its KPI catalogue row or None).
METRICS: list[tuple[str, str | None]] = [
    ("savings_per_yr", "savings_bess_soles"),
    ("co2_avoided_per_yr_kg", "co2_avoided_bess_kg"),
    ("sessions_satisfied_frac", "sessions_satisfied_frac"),
    ("ev_coverage", "ev_coverage"),
    ("peak_grid_import_kw", "peak_grid_import_kw"),
    ("payback_years", None),
]
#: KPIs of the runs averaged over seeds per point and controller.
MEAN_KPIS = ("savings_bess_soles", "co2_avoided_bess_kg", "sessions_satisfied_frac", "ev_coverage",
             "peak_grid_import_kw")


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
        help="a grid axis (start:stop:step, finite numbers, step > 0, stop included) or a fixed "
        f"override, e.g. economics.discount_rate=0.06 (repeatable; default grid {DEFAULT_GRID})",
    )
    p.add_argument(
        "--controllers",
        action="append",
        metavar="A[,B...]",
        help=f"controllers, comma-separated or repeated (default {DEFAULT_CONTROLLER}); several "
        "show how much of the savings is the controller's",
    )
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
    from twin.app.trialrun import check_out, lost_cluster_exit, run_all
    from twin.errors import EXIT_INTERRUPTED, EXIT_OK
    from twin.trials.store import RunStore

    scn0, fixed, axes, ctrls, seeds = _plan(args)
    out = Path(args.out) if args.out else Path("runs") / f"{scn0.config.name}-sweep"
    tasks = _tasks(Path(args.scenario), fixed, axes, ctrls, seeds)
    check_out(out, "sweep", SWEEP_FILES)
    mark = _formula_point(scn0, args.sizing_mode, [k for k, _ in axes])
    res = run_all(tasks, RunStore(out), workers=args.workers, scheduler=args.scheduler,
                  quiet=args.quiet, cluster_timeout_s=args.cluster_timeout)
    lost = lost_cluster_exit(res, out)
    if lost is not None:
        return lost
    if not _write_sweep(args, out, res, scn0, [k for k, _ in axes], ctrls, seeds, mark):
        print("twin: no run finished", file=sys.stderr)
        return EXIT_INTERRUPTED if res.interrupted else 1
    if res.interrupted:
        print(
            f"twin: interrupted; finished runs are kept in {out / 'runs'}; rerun to resume", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    if res.failures:
        print(f"twin: {len(res.failures)} of {len(tasks)} runs failed (see above)", file=sys.stderr)
        return 1
    return EXIT_OK


def _plan(args: argparse.Namespace) -> tuple[Any, dict[str, Any], list, list[str], list[int]]:
    """The scenario, fixed overrides, grid axes, controllers and seeds; bounds checked."""
    from controllers import REGISTRY
    from twin.app.trialrun import check_run_options
    from twin.bounds import MAX_SEED, MAX_SEEDS, check_int
    from twin.config import load_scenario, seeds_weather
    from twin.errors import UserError
    from twin.sizing import MODES
    from twin.trials.sweep import parse_sets

    _, fixed, axes = parse_sets(args.set or [])
    if not axes:
        if DEFAULT_GRID.split("=")[0] in fixed:
            raise UserError(f"twin sweep: --set {DEFAULT_GRID.split('=')[0]} is fixed; give a grid, "
                            f"e.g. --set {DEFAULT_GRID}")
        _, fixed, axes = parse_sets([*(args.set or []), DEFAULT_GRID])
    if args.sizing_mode not in MODES:
        raise UserError(f"--sizing-mode {args.sizing_mode}: one of {list(MODES)}")
    check_int("--seeds", args.seeds, 1, MAX_SEEDS)
    check_run_options(args)
    path = Path(args.scenario)
    scn0 = load_scenario(path, fixed)
    extra, note = seeds_weather(scn0, args.seeds)
    if extra:
        fixed = {**fixed, **extra}
        scn0 = load_scenario(path, fixed)
    if note:
        print(f"twin: note: {note}", file=sys.stderr)
    ctrls = [c.strip() for c in ",".join(args.controllers or [DEFAULT_CONTROLLER]).split(",") if c.strip()]
    unknown = [c for c in ctrls if c not in REGISTRY]
    if unknown:
        raise UserError(f"--controllers: unknown controller(s) {unknown}; registered: {sorted(REGISTRY)}")
    first = scn0.config.seed if args.first_seed is None else args.first_seed
    check_int("--first-seed", first, 0, MAX_SEED - args.seeds + 1)
    return scn0, fixed, axes, list(dict.fromkeys(ctrls)), list(range(first, first + args.seeds))


def _tasks(path: Path, fixed: dict[str, Any], axes: list, ctrls: list[str],
           seeds: list[int]) -> list[Any]:
    """One task per point, seed and controller; every point validated before anything runs
    (a bad value fails here, nothing written)."""
    from twin.bounds import MAX_RUNS
    from twin.config import load_scenario
    from twin.errors import UserError
    from twin.trials.runner import RunTask
    from twin.trials.store import inputs_key, run_key, scenario_hash
    from twin.trials.sweep import expand, points

    grid = points(axes)
    n_runs = len(grid) * len(seeds) * len(ctrls)
    if n_runs > MAX_RUNS:
        raise UserError(f"twin sweep: {len(grid):,} points x {len(seeds):,} seeds x {len(ctrls)} "
                        f"controllers = {n_runs:,} runs; at most {MAX_RUNS:,}")
    tasks = []
    for pt in grid:
        for s in seeds:
            scn = load_scenario(path, {**fixed, **expand(pt), "seed": s})
            h = scenario_hash(scn)
            ik = inputs_key(scn)
            tasks += [RunTask(run_key(h, c, s), scn, c, ik, tags=dict(pt)) for c in ctrls]
    return tasks


def _write_sweep(args: argparse.Namespace, out: Path, res: Any, scn0: Any, keys: list[str],
                 ctrls: list[str], seeds: list[int], mark: dict | None) -> bool:
    """Write the sweep's tables, sizing point, page and terminal table; False if no run
    finished (nothing written)."""
    import pandas as pd

    from twin.app.trialrun import run_counts, write_atomic

    rows = [{**r["tags"], "controller": r["controller"], "seed": r["seed"], **r["kpis"]} for r in res.records]
    runs = pd.DataFrame(rows)
    if runs.empty:
        return False
    runs, summ = summarise(runs, keys, ctrls, scn0.site.economics)
    buf = io.BytesIO()
    runs.to_parquet(buf, index=False)
    write_atomic(out / "sweep.parquet", buf.getvalue())
    write_atomic(out / "sweep_summary.csv", summ.to_csv(index=False, float_format="%.10g"))
    if mark is not None:
        import json

        write_atomic(out / "sizing_point.json", json.dumps(mark, indent=2) + "\n")
    if not args.no_figures:
        _figures(out, summ, keys, ctrls, mark, scn0, seeds, run_counts(res))
    if not args.quiet:
        print(terminal_table(summ, keys, scn0.site.tariff.currency))
        if mark is not None:
            print(
                f"sizing formulas ({mark['mode']}): {mark['capacity_kwh']:,.0f} kWh / "
                f"{mark['power_kw']:,.0f} kW"
            )
        print(f"outputs: {out} ({run_counts(res)})")
    return True


#: Run KPIs averaged over seeds besides :data:`MEAN_KPIS`: the inputs of the economics.
ECON_INPUTS = ("capacity_kwh", "nominal_power_kw", "bess_discharge_kwh", "capacity_fade_percent",
               "capacity_fade_annualised_percent", "days")


def summarise(runs: Any, keys: list[str], ctrls: list[str], econ: Any) -> tuple[Any, Any]:
    """Per-run costs, then the mean over seeds per point and controller with its economics.

    Parameters
    ----------
    runs : one row per run (grid values, ``controller``, ``seed``, the run's KPIs).
    keys : the grid keys.
    ctrls : the controllers, in the order given.
    econ : the site's :class:`twin.config.Economics`.

    Returns
    -------
    The runs with ``capex``, ``opex_per_yr``, ``savings_per_yr``, ``payback_years`` added,
    sorted; and the summary (see :func:`twin.report.sizing.add_economics`).
    """
    import numpy as np

    from twin.report.sizing import add_economics
    from twin.sizing import EconParams, capex, opex_per_yr
    from twin.trials.sweep import payback_years

    ep = EconParams.from_config(econ)
    days = runs["days"].to_numpy(float)
    per_yr = np.where(days > 0, 365.0 / np.where(days > 0, days, 1.0), 0.0)
    e, p = runs["capacity_kwh"].to_numpy(float), runs["nominal_power_kw"].to_numpy(float)
    runs["capex"] = [capex(a, b, ep) for a, b in zip(e, p, strict=True)]
    runs["opex_per_yr"] = [opex_per_yr(a, b, ep) for a, b in zip(e, p, strict=True)]
    runs["savings_per_yr"] = runs["savings_bess_soles"].to_numpy(float) * per_yr
    runs["payback_years"] = _payback(runs, payback_years)
    runs["_order"] = runs["controller"].map({c: i for i, c in enumerate(ctrls)})
    runs = runs.sort_values([*keys, "_order", "seed"], kind="stable").drop(columns="_order")
    runs = runs.reset_index(drop=True)
    cols = [m for m in MEAN_KPIS if m in runs.columns]
    cols += [c for c in ECON_INPUTS if c in runs.columns and c not in keys]
    agg = runs.groupby([*keys, "controller"], sort=False)
    summ = agg[[*dict.fromkeys(cols), "capex", "opex_per_yr", "savings_per_yr"]].mean()
    summ["n_seeds"] = agg.size()
    # payback of the mean savings (a mean of paybacks is undefined when one never pays)
    summ["payback_years"] = _payback(summ, payback_years)
    summ = add_economics(summ.reset_index(), keys, ep)
    return runs, summ


def _payback(df: Any, payback_years: Any) -> list[float]:
    """Simple payback per row [yr]; NaN without an investment (no battery)."""
    return [
        payback_years(c, o, s) if c > 0 else float("nan")
        for c, o, s in zip(df["capex"], df["opex_per_yr"], df["savings_per_yr"], strict=True)
    ]


def _formula_point(scn: Any, mode: str, keys: list[str]) -> dict[str, Any] | None:
    """The sizing formulas' (capacity, power) when the axes are battery energy and/or power."""
    from twin.trials.sizing_profiles import size_scenario
    from twin.trials.sweep import ENERGY_KEYS, POWER_KEYS

    if not any(k in ENERGY_KEYS + POWER_KEYS for k in keys):
        return None
    _, res = size_scenario(scn)
    m = res.modes[mode]
    return {"mode": mode, "capacity_kwh": m.capacity_kwh, "power_kw": m.power_kw, "seed": scn.config.seed}


def terminal_table(summ: Any, keys: list[str], cur: str) -> str:
    """The terminal table: per point and controller, savings and CO2 per year, CAPEX, NPV,
    IRR, LCOS, discounted payback, replacement years; the knee marked *."""
    import math

    from twin.report.sizing import fmt_num

    life = int(summ["project_life_yr"].iloc[0])
    head = [*keys, "controller", f"sav k{cur}/yr", "extra k/yr", "CO2 t/yr", "satisfied",
            f"CAPEX k{cur}", f"NPV k{cur}", "IRR %", f"LCOS {cur}/kWh", "disc.pb yr", "replaced", ""]
    w = [max(11, len(h)) for h in head]
    for i, k in enumerate(keys):
        w[i] = max(w[i], *(len(f"{v:,.6g}" if isinstance(v, int | float) else str(v)) for v in summ[k]))
    lines = ["  ".join(f"{h:>{n}}" for h, n in zip(head, w, strict=True))]

    def num(v: float, fmt: str, n: int) -> str:
        return f"{fmt_num(v, fmt):>{n}}" if math.isfinite(v) else f"{'–':>{n}}"

    for r in summ.to_dict("records"):
        pb = float(r["discounted_payback_years"])
        pbs = f"{'> life':>11}" if (math.isinf(pb) or pb > life) else num(pb, ".1f", 11)
        vals = [
            *(f"{r[k]:>{n},.6g}" if isinstance(r[k], int | float) else f"{r[k]!s:>{n}}"
              for k, n in zip(keys, w, strict=False)),
            f"{r['controller']:>11}",
            num(r["savings_per_yr"] / 1e3, ",.1f", w[len(keys) + 1]),
            num(r["marginal_savings_per_yr"] / 1e3, ",.1f", 11),
            num(r.get("co2_avoided_per_yr_kg", math.nan) / 1e3, ",.1f", 11),
            num(r.get("sessions_satisfied_frac", math.nan), ".3f", 11),
            num(r["capex"] / 1e3, ",.0f", w[len(keys) + 6]),
            num(r["npv"] / 1e3, ",.0f", w[len(keys) + 7]),
            num(r["irr"] * 100, ".1f", 11),
            num(r["lcos_per_kwh"], ",.2f", w[len(keys) + 9]),
            pbs,
            f"{r['replacement_years'] or '–':>11}",
            "* knee" if r["knee"] else "",
        ]
        lines.append("  ".join(vals))
    return "\n".join(lines)


#: Axis labels of the usual grid keys (others are shown as their key).
KEY_LABELS = {
    "bess.e_capacity_kwh": "Battery capacity [kWh]",
    "bess.p_nominal_kw": "Battery power, charge and discharge [kW]",
    "bess.p_charge_max_kw": "Battery charge power [kW]",
    "bess.p_discharge_max_kw": "Battery discharge power [kW]",
}


def _metric_label(m: str, kpi: str | None, cur: str, life: int) -> tuple[str, str, float]:
    """(label, unit, scale) of a sweep metric, from the KPI catalogue where it has a row."""
    from twin.kpi_catalogue import by_key, unit_text

    if kpi is None:
        return "Simple payback", "yr", 1.0
    k = by_key()[kpi]
    unit = unit_text(k.display_unit, cur) + ("/yr" if m.endswith("_per_yr") or "_per_yr_" in m else "")
    return k.label, unit, k.scale


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
    from twin.report.sizing import ENERGY_KEY, curve_notes, table_html, write_sizing_page
    from twin.report.style import report_style
    from twin.report.trials import write_page
    from twin.sizing import EconParams

    ep = EconParams.from_config(scn.site.economics)
    cur = scn.site.tariff.currency
    with report_style():
        figs = _sweep_figures(summ, keys, ctrls, mark, cur, ep.project_life_yr)
    sub = f"{' × '.join(keys)} · controllers {', '.join(ctrls)} · seeds {seeds[0]}..{seeds[-1]}"
    formula = (f" Sizing formulas ({mark['mode']}): {mark['capacity_kwh']:,.0f} kWh / "
               f"{mark['power_kw']:,.0f} kW." if mark else "")
    if figs:
        write_page(
            out, "sweep.html", f"pvbess-twin sweep: {scn.config.name}", sub,
            [("Per point (mean over seeds)", table_html(summ, cur, keys))],
            figs,
            [
                "Savings and CO2 avoided compare each run with the same site, load and PV without "
                "a battery, scaled to a year. Simple payback = CAPEX / (yearly savings − yearly "
                "O&M), from the site's 'economics' section; '> life': not within the project "
                f"life ({ep.project_life_yr} yr). NPV, IRR, LCOS: sizing.html." + formula,
                *curve_notes(summ, keys, cur),
                f"Runs: {counts}.",
            ],
        )
    if ENERGY_KEY in keys:
        write_sizing_page(out, summ, keys, ep, cur, f"pvbess-twin sizing: {scn.config.name}", sub,
                          [formula.strip(), f"Runs: {counts}."] if formula else [f"Runs: {counts}."])


def _sweep_figures(summ: Any, keys: list[str], ctrls: list[str], mark: dict[str, Any] | None,
                   cur: str, life: int) -> list[Any]:
    """Line plots (one grid key) or heat maps per controller (two), labelled from the KPI
    catalogue; paybacks beyond the project life are left out of the scale."""
    import numpy as np

    from twin.report.trials import heatmap, line_sweep
    from twin.trials.sweep import ENERGY_KEYS

    figs: list[Any] = []
    for m, kpi in METRICS:
        if m not in summ.columns:
            continue
        label, unit, scale = _metric_label(m, kpi, cur, life)
        shown = summ.copy()
        shown[m] = shown[m].astype(float) * scale
        if m == "payback_years":
            shown[m] = shown[m].where(shown[m] <= life)
        xl = [KEY_LABELS.get(k, k) for k in keys]
        if len(keys) == 1:
            mx = None
            if mark is not None:
                mx = mark["capacity_kwh"] if keys[0] in ENERGY_KEYS else mark["power_kw"]
            fig = line_sweep(shown, keys[0], m, f"{label} against {xl[0].split(' [')[0].lower()}",
                             unit, mx)
            fig.axes[0].set_xlabel(xl[0])
            fig.axes[0].set_ylabel(f"{label} [{unit}]")
            figs.append((f"sweep_{m}", label, f"Mean over seeds of {label} [{unit}]; dashed: the "
                         "sizing formulas' value" + ("; missing points: not within the project life"
                                                     if m == "payback_years" else "") + ".", fig))
        elif len(keys) == 2:
            mk = None
            if mark is not None:
                x_e = keys[0] in ENERGY_KEYS
                mk = ((mark["capacity_kwh"], mark["power_kw"]) if x_e
                      else (mark["power_kw"], mark["capacity_kwh"]))
            for c in ctrls:
                g = shown[shown["controller"] == c].copy()
                g[m] = g[m].replace([np.inf], np.nan)
                fig = heatmap(g, keys[0], keys[1], m, f"{label} ({c})", unit, mk,
                              "viridis_r" if m in ("payback_years", "peak_grid_import_kw") else "viridis")
                fig.axes[0].set_xlabel(xl[0])
                fig.axes[0].set_ylabel(xl[1])
                if len(fig.axes) > 1:
                    fig.axes[-1].set_ylabel(f"{label} [{unit}]")
                figs.append((f"sweep_{m}_{c}", label, f"{label} [{unit}] per point (mean over "
                             f"seeds), controller {c}; star: the sizing formulas' size"
                             + ("; blank: not within the project life" if m == "payback_years" else ""),
                             fig))
    return figs

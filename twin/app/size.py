"""``twin size SCENARIO``: the seeds' battery sizing formulas (docs/spec.md §6) on the scenario's
own profiles, every mode, as a table and a JSON file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "battery size from the seeds' formulas (docs/spec.md §6) on the scenario's own profiles"
DESCRIPTION = (
    "Simulate SCENARIO without a battery (EVs at full power on arrival) to get its hourly EV "
    "demand and PV, then apply the seeds' sizing formulas in every mode (ev_open_hours, "
    "ev_deficit_100, surplus_only, autonomy, max): capacity = daily deficit (or surplus, or "
    "peak deficit x autonomy hours) / (DoD x efficiency), rounded up to 10 kWh, x design "
    "factor; power = capacity x C-rate, at least 1.1 x peak hourly deficit. DoD and "
    "efficiency come from the site's battery. Prints a table, writes JSON. With --economics, "
    "also runs the full twin at 0 kWh and at every mode's capacity and power (controller "
    "optimal by default, --controllers) and gives NPV, IRR, LCOS and discounted payback per "
    "mode from the site's 'economics' section (--set economics.KEY=VALUE)."
)


#: Ranges of the numeric options: option -> (low, high, low excluded).
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "--autonomy-hours": (0.0, 168.0, False),
    "--c-rate": (0.0, 10.0, True),
    "--design-factor": (0.0, 10.0, True),
}


def _rng(opt: str) -> str:
    from twin.bounds import float_range

    return float_range(*BOUNDS[opt])


def register(sub: Any) -> None:
    """Add the ``size`` sub-parser."""
    p = sub.add_parser("size", help=HELP, description=DESCRIPTION)
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a value (repeatable)")
    p.add_argument("--out", metavar="FILE", help="JSON output (default runs/NAME-sizing.json)")
    p.add_argument(
        "--autonomy-hours",
        type=float,
        default=4.0,
        help=f"hours of the 'autonomy' mode, {_rng('--autonomy-hours')} (default 4)",
    )
    p.add_argument(
        "--c-rate",
        type=float,
        default=0.36,
        help=f"power / capacity [1/h], {_rng('--c-rate')} (default 0.36)",
    )
    p.add_argument(
        "--design-factor",
        type=float,
        default=1.20,
        help=f"multiplier after rounding, {_rng('--design-factor')} (default 1.20)",
    )
    p.add_argument(
        "--economics",
        action="store_true",
        help="also simulate each mode's size (and 0 kWh) and give its NPV, IRR, LCOS and discounted "
        "payback (as 'twin sweep')",
    )
    p.add_argument(
        "--controllers",
        action="append",
        metavar="A[,B...]",
        help="controllers of --economics, comma-separated or repeated (default optimal)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_size)


def sizing_table(res: Any) -> str:
    """The modes as a plain-text table, the profile statistics above it."""
    st = res.stats
    p = res.params
    lines = [
        f"profiles: {st.n_days} d · EV deficit per day mean {st.deficit_mean_kwh:,.1f} / max "
        f"{st.deficit_max_kwh:,.1f} kWh · peak hourly deficit {st.peak_deficit_kw:,.1f} kW · PV surplus "
        f"after EV per day mean {st.surplus_mean_kwh:,.1f} kWh",
        f"DoD {p.dod_frac:.2f} · efficiency {p.eta_roundtrip:.2f} · autonomy {p.autonomy_h:g} h · "
        f"C-rate {p.c_rate_per_h:g} 1/h · design factor {p.design_factor:g} · rounding {p.round_kwh:g} kWh",
        "",
        f"{'mode':<16}{'raw [kWh]':>12}{'rounded [kWh]':>15}{'capacity [kWh]':>16}{'power [kW]':>12}"
        f"{'C-rate [1/h]':>14}",
    ]
    for m in res.modes.values():
        lines.append(
            f"{m.mode:<16}{m.raw_kwh:>12,.1f}{m.rounded_kwh:>15,.0f}{m.capacity_kwh:>16,.1f}"
            f"{m.power_kw:>12,.1f}{m.c_rate_per_h:>14.3f}"
        )
    return "\n".join(lines)


def cmd_size(args: argparse.Namespace) -> int:
    """Compute, print, write."""
    from twin.app.trialrun import write_atomic
    from twin.atomic import GENERATOR, hold_output
    from twin.bounds import check_float
    from twin.config import load_scenario, parse_set
    from twin.errors import EXIT_OK
    from twin.trials.sizing_profiles import size_scenario

    for opt, (lo, hi, lo_open) in BOUNDS.items():
        check_float(opt, getattr(args, opt[2:].replace("-", "_")), lo, hi, lo_open=lo_open)
    sets = parse_set(args.set or [])
    scn = load_scenario(Path(args.scenario), sets)
    ctrls = _controllers(args.controllers) if args.economics else []
    out = Path(args.out) if args.out else Path("runs") / f"{scn.config.name}-sizing.json"
    hold_output(out, "json")  # before the simulation
    prof, res = size_scenario(
        scn, autonomy_h=args.autonomy_hours, c_rate_per_h=args.c_rate, design_factor=args.design_factor
    )
    doc = {
        "generator": GENERATOR,
        "scenario": scn.config.name,
        "scenario_file": str(scn.path),
        "seed": scn.config.seed,
        "days": prof.dates,
        "ev_profile": "no_bess run of the scenario (EVs at full power on arrival)",
        **res.as_dict(),
    }
    table = None
    if args.economics:
        table = mode_economics(Path(args.scenario), sets, res, ctrls)
        doc["economics"] = {
            "controllers": ctrls,
            "rows": json.loads(table.to_json(orient="records")),
        }
    write_atomic(out, json.dumps(doc, indent=2) + "\n")
    if not args.quiet:
        print(sizing_table(res))
        if table is not None:
            from twin.app.sweep import terminal_table

            print()
            print(terminal_table(table, ["mode", "bess.e_capacity_kwh"], scn.site.tariff.currency))
        print(f"written: {out}")
    return EXIT_OK


def _controllers(items: list[str] | None) -> list[str]:
    from controllers import REGISTRY
    from twin.app.sweep import DEFAULT_CONTROLLER
    from twin.errors import UserError

    ctrls = [c.strip() for c in ",".join(items or [DEFAULT_CONTROLLER]).split(",") if c.strip()]
    unknown = [c for c in ctrls if c not in REGISTRY]
    if unknown:
        raise UserError(f"--controllers: unknown controller(s) {unknown}; registered: {sorted(REGISTRY)}")
    return list(dict.fromkeys(ctrls))


def mode_economics(path: Path, sets: dict[str, Any], res: Any, ctrls: list[str]) -> Any:
    """Run the twin at 0 kWh and at every mode's (capacity, power), in-process, and return
    the sweep's summary rows (economics included) with a ``mode`` column."""
    import pandas as pd

    from twin.app.sweep import summarise
    from twin.config import load_scenario
    from twin.errors import UserError
    from twin.trials.runner import RunTask, execute
    from twin.trials.store import inputs_key, run_key, scenario_hash

    sizes: dict[tuple[float, float], list[str]] = {(0.0, 0.0): ["no battery"]}
    for m in res.modes.values():
        sizes.setdefault((round(m.capacity_kwh, 6), round(m.power_kw, 6)), []).append(m.mode)
    tasks = []
    for (e, p), modes in sizes.items():
        scn = load_scenario(path, {**sets, "bess.e_capacity_kwh": e, "bess.p_charge_max_kw": p,
                                   "bess.p_discharge_max_kw": p})
        h, ik = scenario_hash(scn), inputs_key(scn)
        tags = {"mode": " = ".join(modes), "bess.e_capacity_kwh": e}
        tasks += [RunTask(run_key(h, c, scn.config.seed), scn, c, ik, tags=tags) for c in ctrls]
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    execute(tasks, records.append, lambda t, exc: errors.append(f"{t.controller} {t.tags['mode']}: {exc}"))
    if errors:
        raise UserError("twin size --economics: " + "; ".join(errors))
    runs = pd.DataFrame([{**r["tags"], "controller": r["controller"], "seed": r["seed"], **r["kpis"]}
                         for r in records])
    _, summ = summarise(runs.drop(columns="mode"), ["bess.e_capacity_kwh"], ctrls,
                        load_scenario(path, sets).site.economics)
    names = {e: " = ".join(m) for (e, _), m in sizes.items()}
    summ.insert(0, "mode", summ["bess.e_capacity_kwh"].map(names))
    return summ

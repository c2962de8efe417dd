"""``twin size SCENARIO``: the seeds' battery sizing formulas (SPEC §6) on the scenario's
own profiles, every mode, as a table and a JSON file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "battery size from the seeds' formulas (SPEC §6) on the scenario's own profiles"
DESCRIPTION = (
    "Simulate SCENARIO without a battery (EVs at full power on arrival) to get its hourly EV "
    "demand and PV, then apply the seeds' sizing formulas in every mode (ev_open_hours, "
    "ev_deficit_100, surplus_only, autonomy, max): capacity = daily deficit (or surplus, or "
    "peak deficit x autonomy hours) / (DoD x efficiency), rounded up to 10 kWh, x design "
    "factor; power = capacity x C-rate, at least 1.1 x peak hourly deficit. DoD and "
    "efficiency come from the site's battery. Prints a table, writes JSON."
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
    scn = load_scenario(Path(args.scenario), parse_set(args.set or []))
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
    write_atomic(out, json.dumps(doc, indent=2) + "\n")
    if not args.quiet:
        print(sizing_table(res))
        print(f"written: {out}")
    return EXIT_OK

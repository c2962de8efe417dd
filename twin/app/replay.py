"""``twin replay DATA_DIR --controller X [--out DIR]``: the twin on what a site measured.

DATA_DIR holds a manifest ``replay.yaml`` and the files it names (paths relative to it)::

    name: replay-example          # optional (default "replay")
    site: site.yaml               # the site file: battery, tariff, sockets, CO2 factor
    measured: measured.csv        # measured series (twin.components.measured): pv, mall,
                                  #   battery power (+ discharge), SOC, grid import
    sessions: sessions.csv        # charging-session log (twin.components.sessions)
    start: 2024-03-04T00:00:00-05:00   # optional: the measured file's first stamp
    duration: 2d                  # optional: the measured file's span
    dt: 15min                     # optional: the twin's tick (default 15 min)
    fill_max_steps: 4             # optional: longest gap filled, in file steps
    soc_initial_percent: 55       # optional: else from the first measured SOC

The twin runs twice on the measured PV, mall and sessions: with controller X (the
counterfactual) and with the measured battery power played back (``as_measured``: the
twin's own model of what the site did). Both beside the site's own numbers (measured grid
import, battery, SOC, session log) in one KPI table (terminal, ``replay.txt``) and a page
(``replay.html``); the output folder is X's run folder (``twin show``/``twin report`` read
it) plus ``replay.json`` and ``replay_timeseries.parquet``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twin.bounds import check_int, int_range
from twin.errors import EXIT_OK, ConfigError, UserError

HELP = "replay measured site data: a controller's counterfactual beside what the site did"
DESCRIPTION = (
    "Run the twin on DATA_DIR's measured PV, mall load and charging sessions with controller X "
    "(the counterfactual) and with the site's measured battery power played back, and compare "
    "both with what the site measured (grid import, cost, CO2, peak, battery, sessions): a KPI "
    "table on the terminal and replay.html in the output folder. DATA_DIR/replay.yaml names "
    "the site file, the measured series and the session log (see docs/measured-inputs-replay.md).")
#: Most file steps a gap may span to be filled (``--fill-max-steps``).
MAX_FILL_STEPS = 1000
MANIFEST = "replay.yaml"


class ReplayManifest(BaseModel):
    """``DATA_DIR/replay.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="replay", min_length=1, max_length=200)
    site: Path
    measured: Path
    sessions: Path
    start: datetime | None = None
    duration: str | float | None = None
    dt: str | float = "15min"
    fill_max_steps: int = Field(default=4, ge=0, le=MAX_FILL_STEPS)
    soc_initial_percent: float | None = Field(default=None, ge=0.0, le=100.0)


def register(sub: Any) -> None:
    """Add the ``replay`` sub-parser."""
    p = sub.add_parser("replay", help=HELP, description=DESCRIPTION)
    p.add_argument("data_dir", help=f"folder with {MANIFEST} and the measured files it names")
    p.add_argument("--controller", default="six_phase",
                   help="the counterfactual controller (default six_phase; see 'twin controllers')")
    p.add_argument("--out", help="output folder (default runs/replay-NAME)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a site value, e.g. --set bess.e_capacity_kwh=1500 (repeatable)")
    p.add_argument("--fill-max-steps", type=int, default=None,
                   help=f"longest gap filled, in file steps, {int_range(0, MAX_FILL_STEPS)} "
                        "(default: the manifest's, else 4)")
    p.add_argument("--csv", action="store_true", help="also write timeseries.csv and sessions.csv")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_replay)


def read_manifest(data_dir: Path) -> ReplayManifest:
    """The manifest with its paths made absolute (raises ConfigError)."""
    from twin.config import read_device_yaml

    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: not a folder (give a replay data folder with {MANIFEST})")
    path = data_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{data_dir}: no {MANIFEST} (it names the site file, the measured series "
                        "and the session log; see docs/measured-inputs-replay.md)")
    data = read_device_yaml(path)
    try:
        man = ReplayManifest.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise ConfigError(f"{path}: field '{where}': {e['msg']}") from None
    base = path.parent
    return man.model_copy(update={k: (base / getattr(man, k)).absolute()
                                  for k in ("site", "measured", "sessions")})


def _scenario(man: ReplayManifest, data_dir: Path, controller: str, fill: int,
              sets: dict[str, Any]) -> Any:
    from twin.components.measured import measured_span
    from twin.config import scenario_from_data

    first, span_s = measured_span(man.measured, fill)
    start = man.start if man.start is not None else first.to_pydatetime()
    duration: Any = man.duration if man.duration is not None else span_s
    if man.start is None and man.duration is None and not np.isclose(span_s % 900.0, 0.0):
        duration = span_s - span_s % 900.0
    data = {"name": man.name, "site": str(man.site), "start": start.isoformat(),
            "duration": duration, "dt": man.dt, "seed": 0, "controller": controller,
            "measured": {"file": str(man.measured), "use": ["pv", "mall"],
                         "fill_max_steps": fill}}
    over = {**sets, "ev.source": "sessions_file", "ev.sessions_file": str(man.sessions)}
    return scenario_from_data(data_dir / MANIFEST, data, over), over


def _soc_initial_frac(scn: Any, m: Any, man: ReplayManifest) -> float:
    """The battery's SOC before the first step: the manifest's, else the first measured SOC
    (the end of step 0) less that step's measured battery energy; inside the SOC window."""
    from twin.components.bess import BessParams

    b = scn.site.bess
    if man.soc_initial_percent is not None:
        f = man.soc_initial_percent / 100.0
    elif "soc" in m.values:
        bp = BessParams.from_config(b)
        e_h = float(m.values["bess"][0]) * scn.config.dt / 3600.0
        de = -e_h / bp.eta_discharge if e_h > 0 else -e_h * bp.eta_charge
        f = float(m.values["soc"][0]) / 100.0 - de / b.e_capacity_kwh
    else:
        f = b.soc_initial_frac
    return float(min(max(f, b.soc_min_frac), b.soc_max_frac))


def measured_columns(scn: Any, inputs: Any, m: Any, log: dict[str, float],
                     n: int) -> dict[str, Any]:
    """The site's KPIs from its measured series (first ``n`` steps) and session log, priced
    with the twin's tariff and CO2 factor."""
    from twin.tariff import bill, schedule

    dt_h = scn.config.dt / 3600.0
    grid = m.values["grid_import"][:n] * dt_h
    sched = schedule(scn.site.tariff, inputs.index[:n], inputs.hour[:n])
    b = bill(sched, grid, scn.config.dt)
    p = m.values["bess"][:n]
    out: dict[str, Any] = {
        "grid_import_kwh": float(grid.sum()),
        "cost_grid_import_soles": float((grid * inputs.price_per_kwh[:n]).sum()),
        "cost_total_soles": float(b.energy + b.demand + b.fixed),
        "co2_emissions_kg": float(grid.sum() * scn.site.grid.co2_kg_per_kwh),
        "peak_grid_import_kw": float(m.values["grid_import"][:n].max()) if n else 0.0,
        "bess_discharge_kwh": float(np.maximum(p, 0.0).sum() * dt_h),
        "bess_charge_kwh": float(np.maximum(-p, 0.0).sum() * dt_h),
        "soc_end_percent": float(m.values["soc"][n - 1]) if "soc" in m.values and n else None,
        "pv_kwh": float(m.values["pv"][:n].sum() * dt_h),
        "mall_kwh": float(m.values["mall"][:n].sum() * dt_h),
        **log,
    }
    return out


def _twin_columns(res: Any) -> dict[str, Any]:
    s = dict(res.summary)
    ts = res.timeseries
    s["soc_end_percent"] = float(ts["soc_percent"].iloc[-1]) if len(ts) else None
    return s


def _series(inputs: Any, m: Any, runs: dict[str, Any], n: int) -> Any:
    import pandas as pd

    df = pd.DataFrame({"timestamp": inputs.index[:n]})
    df["p_grid_kw_measured"] = m.values["grid_import"][:n]
    df["p_bess_kw_measured"] = m.values["bess"][:n]
    df["soc_percent_measured"] = m.values["soc"][:n] if "soc" in m.values else np.nan
    for sfx, res in runs.items():
        ts = res.timeseries
        k = min(n, len(ts))
        for col in ("p_grid_kw", "p_bess_kw", "soc_percent"):
            v = np.full(n, np.nan)
            v[:k] = ts[col].to_numpy(dtype=float)[:k]
            df[f"{col}_{sfx}"] = v
    return df


def _load(args: argparse.Namespace, data_dir: Path) -> tuple[Any, ...]:
    """Read the manifest and every file it names, checked, before the output is claimed:
    the manifest, the scenario, the measured series, the session log, the initial SOC
    [fraction], the gap-fill limit [steps] and the twin's inputs."""
    from twin.components.inputs import build_inputs
    from twin.components.measured import read_measured
    from twin.components.sessions import read_session_log
    from twin.config import parse_set, scenario_from_data
    from twin.engine import get_controller

    man = read_manifest(data_dir)
    fill = man.fill_max_steps if args.fill_max_steps is None else check_int(
        "--fill-max-steps", args.fill_max_steps, 0, MAX_FILL_STEPS)
    sets = parse_set(args.set or [])
    scn, over = _scenario(man, data_dir, args.controller, fill, sets)
    get_controller(scn, args.controller)  # an unknown controller fails before any output
    m = read_measured(man.measured, scn.index, scn.config.dt, fill_max_steps=fill,
                      need=("pv", "mall", "bess", "grid_import"))
    log = read_session_log(man.sessions, scn.site.ev, scn.index[0], scn.config.duration)
    soc0 = _soc_initial_frac(scn, m, man)
    scn = scenario_from_data(data_dir / MANIFEST, _data_of(scn),
                             {**over, "bess.soc_initial_frac": soc0})
    return man, scn, m, log, soc0, fill, build_inputs(scn)


def cmd_replay(args: argparse.Namespace) -> int:
    """``twin replay``."""
    from controllers.as_measured import AsMeasuredController
    from twin.app.cli import _sigterm_as_interrupt
    from twin.atomic import hold_output
    from twin.engine import Twin, get_controller
    from twin.engine.results import build_results, write_results

    data_dir = Path(args.data_dir)
    man, scn, m, log, soc0, fill, inputs = _load(args, data_dir)
    out_dir = Path(args.out) if args.out else Path("runs") / f"replay-{man.name}"
    out_abs = hold_output(out_dir, "run")
    with _sigterm_as_interrupt():
        cf = Twin(scn, get_controller(scn, args.controller), inputs=inputs).run()
        am = None
        if not cf.interrupted:
            am = Twin(scn, AsMeasuredController(scn.site, file=str(man.measured),
                                                fill_max_steps=fill), inputs=inputs).run()
        res_cf = build_results(cf)
        res_am = build_results(am) if am is not None else None
        n = cf.steps_done
        interrupted = cf.interrupted or (am is not None and am.interrupted)
        site_col = measured_columns(scn, inputs, m, log, n)
        cols = [site_col, _twin_columns(res_am) if res_am else {}, _twin_columns(res_cf)]
        heads = ["site (measured)", "twin, as measured", f"twin, {args.controller}"]
        cur = str(res_cf.summary.get("currency", ""))
        from twin.report.replay import page, text_table

        table = text_table(heads, cols, cur)
        runs = {"controller": res_cf, **({"as_measured": res_am} if res_am else {})}
        series = _series(inputs, m, runs, n)
        rep = _reproduction(site_col, cols[1])
        doc = {"format": 1, "manifest": str(data_dir / MANIFEST), "controller": args.controller,
               "interrupted": bool(interrupted), "steps_done": n, "n_steps": scn.config.n_steps,
               "soc_initial_frac": soc0, "input_filled_values": m.n_filled,
               "measured_columns": m.columns, "headers": heads,
               "columns": {"site": site_col, "as_measured": _plain(cols[1]),
                           "controller": _plain(cols[2])},
               "grid_import_as_measured_vs_site_percent": rep}
        notes = [f"Measured columns used: {m.columns}; {m.n_filled} values filled in short gaps.",
                 "The site's cost and CO2 are its measured grid import priced with the twin's "
                 "tariff and CO2 factor."]
        warns = [f"PARTIAL: interrupted after {n} of {scn.config.n_steps} steps"] \
            if interrupted else []

        def extra(tmp: Path) -> None:
            (tmp / "replay.json").write_text(json.dumps(doc, indent=2, default=str))
            (tmp / "replay.txt").write_text(table + "\n")
            series.to_parquet(tmp / "replay_timeseries.parquet", index=False)
            (tmp / "replay.html").write_text(page(
                f"Replay: {man.name}", f"{scn.index[0]} · {n} steps of {scn.config.dt:g} s · "
                f"site {scn.site.name}", heads, cols, cur, series, notes, warns))

        written = write_results(res_cf, out_dir, csv=args.csv, extra=extra)
    if not args.quiet:
        print(table)
        if rep is not None:
            print(f"twin as measured vs site: grid import {rep:+.2f} % (the twin's model error "
                  "on the site's own battery power)")
        print(f"outputs: {out_dir if written == out_abs else written} (replay.html)")
    if interrupted:
        print(f"twin: interrupted after {n} of {scn.config.n_steps} steps; {written} holds the "
              "replay so far, marked PARTIAL", file=sys.stderr)
        return 130
    return EXIT_OK


def _data_of(scn: Any) -> dict[str, Any]:
    """The scenario's fields as a mapping for :func:`twin.config.scenario_from_data`."""
    c = scn.config
    return {"name": c.name, "site": str(scn.site_path), "start": c.start.isoformat(),
            "duration": c.duration, "dt": c.dt, "seed": c.seed, "controller": c.controller,
            "measured": c.measured.model_dump(mode="json") if c.measured else None}


def _reproduction(site: dict[str, Any], twin: dict[str, Any]) -> float | None:
    a, b = site.get("grid_import_kwh"), twin.get("grid_import_kwh")
    if not isinstance(a, float) or not isinstance(b, float) or a == 0:
        return None
    return (b - a) / a * 100.0


def _plain(s: dict[str, Any]) -> dict[str, Any]:
    from twin.report.replay import ROWS

    return {k: s.get(k) for k, *_ in ROWS}


__all__ = ["HELP", "MANIFEST", "ReplayManifest", "cmd_replay", "measured_columns",
           "read_manifest", "register"]

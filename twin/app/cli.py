"""The ``twin`` command line.

Exit status: 0 success, 2 user error (bad config, missing or broken file: one paragraph,
no traceback, nothing written), 1 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from twin.app.table import kpi_table
from twin.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USER, UserError

__all__ = ["EXIT_INTERNAL", "EXIT_OK", "EXIT_USER", "UserError", "build_parser", "kpi_table",
           "main"]


def _err(msg: str) -> None:
    print(f"twin: error: {msg}", file=sys.stderr)


def _progress_bar(enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeRemainingColumn(), transient=True)
    task = prog.add_task("sim", total=1)

    def cb(done: int, total: int) -> None:
        prog.update(task, total=total, completed=done)

    return prog, cb


def cmd_run(args: argparse.Namespace) -> int:
    """``twin run``."""
    from twin.atomic import hold_output
    from twin.config import load_scenario, parse_set
    from twin.engine import Twin, get_controller
    from twin.engine.results import stream_results

    scn = load_scenario(Path(args.scenario), parse_set(args.set or []))
    controller = get_controller(scn, args.controller)
    out_dir = Path(args.out) if args.out else (scn.config.output.dir or Path("runs") / scn.config.name)
    out_abs = hold_output(out_dir, "run")
    for w in scn.warnings:
        print(f"twin: warning: {w}", file=sys.stderr)
    if scn.config.faults:
        print(f"twin: warning: {scn.path}: the {len(scn.config.faults)} 'faults' are injected by "
              "'twin hil' only; 'twin run' has no communication to fault", file=sys.stderr)
    twin = Twin(scn, controller)
    if args.log_events:
        from twin.monitoring.logs import EventLog, SimClock, make_logger, new_run_id

        log = make_logger(new_run_id(scn.config.name), SimClock(twin.env, twin.start_utc,
                                                                 scn.site.location.tz))
        twin.on_step = EventLog(twin, log).attach().on_step
    show = sys.stderr.isatty() and not args.quiet and not args.log_events
    prog, cb = _progress_bar(show)
    with _sigterm_as_interrupt():
        if prog is not None:
            with prog:
                out = twin.run(cb)
        else:
            out = twin.run()
        del twin  # the plant, its inputs as lists and the SimPy events are no longer needed
        res = stream_results(out)
        if args.gap and not out.interrupted:
            res.summary["gap"] = _gap_to_optimum(scn, res.summary)
        written = _write_run(res, out_dir, csv=args.csv or scn.config.output.csv,
                             parquet=scn.config.output.parquet)
    if not args.quiet:
        print(kpi_table(res.summary))
        lp = res.summary.get("lp")
        if lp and "simulated_cost" in lp:
            print(f"LP objective {lp['objective']:,.2f} · simulated cost {lp['simulated_cost']:,.2f} "
                  f"({lp['gap_percent']:+.3f} %) · build {lp['build_s']:.2f} s · solve "
                  f"{lp['solve_s']:.2f} s · {lp['n_variables']:,} variables")
        gap = res.summary.get("gap")
        if gap:
            print(f"gap to the optimum: cost {gap['cost']:,.2f} vs optimum {gap['optimum']:,.2f} "
                  f"(LP; optimal's own run {gap['optimal_simulated_cost']:,.2f}): "
                  f"{gap['gap']:+,.2f} ({gap['gap_percent']:+.2f} %)")
        print(f"outputs: {out_dir if written == out_abs else written}")
    if out.interrupted:
        kept = "" if written == out_abs else f"; the complete run in {out_dir} is kept"
        print(f"twin: interrupted after {out.steps_done} of {scn.config.n_steps} steps; "
              f"{written} holds the steps simulated so far, marked PARTIAL{kept}",
              file=sys.stderr)
        return 130
    if res.summary.get("import_limit_exceeded_steps"):
        print(f"twin: warning: grid import above the import limit "
              f"({res.summary['import_limit_kw']:g} kW) in "
              f"{res.summary['import_limit_exceeded_steps']} steps, "
              f"{res.summary['import_limit_exceeded_kwh']:,.1f} kWh above it: the mall's demand "
              "cannot be curtailed (KPIs import_limit_exceeded_steps / _kwh)", file=sys.stderr)
    if written != out_abs:
        print(f"twin: warning: {out_dir} changed during the run (files the twin did not "
              f"write appeared); the outputs are in {written}", file=sys.stderr)
    return EXIT_OK


def _write_run(res, out_dir: Path, *, csv: bool, parquet: bool) -> Path:  # type: ignore[no-untyped-def]
    """Write the run; a signal that lands once the complete run is in place is ignored.

    The run is then done: the exit is 0 (130 would tell a script the run was cut short),
    and Ctrl-C / SIGTERM are ignored for the few prints left.
    """
    from twin import atomic
    from twin.engine.results import write_results

    mark = atomic.publish_mark()
    try:
        written = write_results(res, out_dir, csv=csv, parquet=parquet)
        _ignore_signals()
    except KeyboardInterrupt:
        late = atomic.published_since(mark)
        if late is None or res.summary.get("interrupted", False):
            raise
        written = late
        while True:  # one more signal may land while they are being ignored
            try:
                _ignore_signals()
                break
            except KeyboardInterrupt:
                continue
    return written


def _ignore_signals() -> None:
    """Ignore Ctrl-C and SIGTERM from now on (the main thread's handlers only)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM acts like Ctrl-C while the block runs: the run stops cleanly and is written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    prev = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is on_term:  # not ignored since (see _write_run)
            signal.signal(signal.SIGTERM, prev)


def _gap_to_optimum(scn, summary: dict) -> dict:  # type: ignore[no-untyped-def]
    """Run ``optimal`` on the same scenario and seed; the gap of ``summary``'s run to it."""
    from controllers.lp import Weights, run_cost
    from twin.engine import simulate
    from twin.engine.results import build_results

    if summary.get("controller") == "optimal" and "lp" in summary:
        lp = summary["lp"]
        opt_summary = summary
    else:
        from controllers.optimal import OptimalController

        opt_summary = build_results(simulate(scn, OptimalController(scn.site))).summary
        lp = opt_summary["lp"]
    w = Weights(**lp["weights"])
    cost = run_cost(summary, w)["cost"]
    opt = float(lp["objective"])
    return {"weights": lp["weights"], "cost": cost, "optimum": opt,
            "optimal_simulated_cost": float(opt_summary["lp"]["simulated_cost"]),
            "gap": cost - opt, "gap_percent": (cost - opt) / abs(opt) * 100.0 if opt else 0.0}


def cmd_validate(args: argparse.Namespace) -> int:
    """``twin validate``."""
    from twin.components.inputs import build_inputs
    from twin.config import load_scenario, load_site, looks_like_scenario
    from twin.engine import get_controller

    path = Path(args.file)
    if looks_like_scenario(path):
        scn = load_scenario(path)
        get_controller(scn)
        build_inputs(scn)  # reads every profile and sessions file
        for w in scn.warnings:
            print(f"warning: {w}")
        print(f"{path}: OK (scenario '{scn.config.name}', {scn.config.n_steps} steps of "
              f"{scn.config.dt:g} s, site '{scn.site.name}', controller '{scn.config.controller}')")
    else:
        site = load_site(path)
        for w in (w for b in site.batteries for w in b.c_rate_warnings()):
            print(f"warning: {w}")
        n_bat = len(site.batteries)
        print(f"{path}: OK (site '{site.name}', {site.ev.n_sockets} sockets, "
              f"BESS {site.bess.e_capacity_kwh:g} kWh / {site.bess.p_discharge_max_kw:g} kW"
              + (f" in {n_bat} batteries)" if n_bat > 1 else ")"))
    return EXIT_OK


def cmd_controllers(args: argparse.Namespace) -> int:
    """``twin controllers``."""
    from controllers import REGISTRY

    width = max(len(n) for n in REGISTRY)
    for name in sorted(REGISTRY):
        print(f"{name:<{width}}  {REGISTRY[name].summary}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """``twin show RUN_DIR``: print the KPI table of a finished run (PARTIAL runs loudly)."""
    from twin.atomic import read_marker
    from twin.engine.results import read_summary

    summary = read_summary(Path(args.run_dir))
    marker = read_marker(Path(args.run_dir))
    if marker is not None and marker.get("complete") is False:
        summary = {**summary, "interrupted": True}
    print(kpi_table(summary))
    if summary.get("interrupted"):
        print(f"twin: warning: {args.run_dir} holds a PARTIAL run (interrupted after "
              f"{summary.get('steps_done', '?')} of {summary.get('n_steps', '?')} steps); its "
              "KPIs cover the steps done only", file=sys.stderr)
    return EXIT_OK


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The argument parser (also used to document the commands).

    Parameters
    ----------
    command : the contributed sub-command to make usable (its module is imported); ``"*"``
        every one, None none (``twin --help`` lists them all either way).
    """
    ap = argparse.ArgumentParser(
        prog="twin",
        description="pvbess-twin: discrete-event digital twin of a PV + battery + EV-charging site.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="simulate a scenario and write its outputs",
                       description="Simulate SCENARIO; write timeseries, sessions, daily profile "
                                   "and summary into the output folder; print the KPI table.")
    r.add_argument("scenario", help="scenario YAML file (e.g. scenarios/annual.yaml)")
    r.add_argument("--out", help="output folder (default: the scenario's output.dir, "
                                 "else runs/NAME)")
    r.add_argument("--controller", help="controller name (overrides the scenario; see 'twin controllers')")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a value, e.g. --set bess.e_capacity_kwh=1500 or --set seed=7 "
                        "(repeatable; scenario fields or site fields)")
    r.add_argument("--gap", action="store_true",
                   help="also run 'optimal' on the same scenario and seed and store / print the "
                        "gap of this run's cost to the optimum (summary.json 'gap')")
    r.add_argument("--csv", action="store_true",
                   help="also write timeseries.csv and sessions.csv (Parquet is always written "
                        "unless the scenario's output.parquet is false)")
    r.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    r.add_argument("--log-events", action="store_true",
                   help="log events (phase changes, safety clamps, vehicles turned away) to stderr: "
                        "JSON lines when piped, readable on a terminal; each with run_id and sim time")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="check a scenario or site file and say what is wrong")
    v.add_argument("file", help="scenario or site YAML file")
    v.set_defaults(func=cmd_validate)
    c = sub.add_parser("controllers", help="list the registered controllers")
    c.set_defaults(func=cmd_controllers)
    s = sub.add_parser("show", help="print the KPI table of a finished run")
    s.add_argument("run_dir", help="a run's output folder")
    s.set_defaults(func=cmd_show)
    _add_contributed(sub, command)
    return ap


#: Sub-commands contributed by other modules, in ``--help`` order: the module whose
#: ``register(sub)`` adds them and their one-line help (the same text as the module's; a
#: test checks). Only the module of the command being run is imported, so ``twin --help``
#: and ``twin run`` do not import pandas-heavy report, HIL or training code.
CONTRIBUTED: tuple[tuple[str, str, str], ...] = (
    ("report", "twin.report.cli",
     "figures and a self-contained HTML page from one run, or a comparison of several"),
    ("live", "twin.app.live",
     "run a scenario on a real-time clock and serve Prometheus metrics"),
    ("export", "twin.app.live", "export a finished run (openmetrics: for Prometheus backfilling)"),
    ("hil", "twin.app.hil",
     "run the controller against Modbus devices (simulator or hardware)"),
    ("shadow", "twin.app.shadow", "follow a site read-only: measured vs the twin's predictions"),
    ("ab", "twin.app.ab", "controller A/B trial over many seeds with paired statistics"),
    ("size", "twin.app.size",
     "battery size from the seeds' formulas (docs/spec.md §6) on the scenario's own profiles"),
    ("sweep", "twin.app.sweep",
     "the full twin over a grid of battery sizes (or any --set grid), with NPV, IRR, LCOS"),
    ("train", "twin.app.train", "train an RL policy on the twin and export it as ONNX"),
    ("replay", "twin.app.replay",
     "replay measured site data: a controller's counterfactual beside what the site did"),
    ("calibrate", "twin.app.calibrate",
     "fit PV size, battery capacity and efficiency, mall load to a run's measured data"),
)


def _add_contributed(sub: argparse._SubParsersAction, command: str | None) -> None:
    """Register the contributed sub-commands: fully for ``command``'s module (every module
    when ``command`` is ``"*"``), as a name and help line for the others."""
    import importlib

    wanted = {m for n, m, _ in CONTRIBUTED if command in ("*", n)}
    done: set[str] = set()
    for name, module, help_text in CONTRIBUTED:
        if module not in wanted:
            sub.add_parser(name, help=help_text, add_help=False)
        elif module not in done:
            importlib.import_module(module).register(sub)
            done.add(module)


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (its first word), if any."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``twin`` console command (Ctrl-C at any point: exit 130, no traceback)."""
    from twin.atomic import command_scope

    in_process = argv is not None and threading.current_thread() is threading.main_thread()
    prev_int, prev_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with _sigterm_as_interrupt(), command_scope():
            words = list(sys.argv[1:] if argv is None else argv)
            args = build_parser(_command_of(words)).parse_args(words)
            return int(args.func(args))
    except UserError as exc:  # ConfigError included
        _err(str(exc))
        return EXIT_USER
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except OSError as exc:  # e.g. an output folder that cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        _err(f"{where}{exc.strerror or exc}")
        return EXIT_USER
    finally:
        if in_process:  # a caller's handlers come back (the console command just exits)
            signal.signal(signal.SIGINT, prev_int)
            signal.signal(signal.SIGTERM, prev_term)
        if argv is None:  # the console command exits next: the objects still alive are the
            gc.freeze()  # OS's to free, not traversed by a last collection (~0.15 s of a year run)


if __name__ == "__main__":
    sys.exit(main())

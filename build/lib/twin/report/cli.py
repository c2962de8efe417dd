"""The ``twin report`` sub-command (registered by :func:`twin.app.cli.build_parser`).

Kept free of heavy imports: ``twin`` imports this module whenever it builds its parser.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "figures and a self-contained HTML page from one run, or a comparison of several"
DESCRIPTION = (
    "Read run folders written by 'twin run' and write PNG figures plus one self-contained "
    "report.html (images embedded, no network needed). With one RUN_DIR: about 20 figures "
    "(energy balance, profiles, source split, energy cascade, battery, phases, CO2, PV, "
    "tariff cost, EV sessions, grid peaks) and the KPI table; default output RUN_DIR/report. "
    "With several RUN_DIRs of the same site, start, length and step: comparison figures "
    "(KPI bars, daily cost difference, SOC overlays ...); default output "
    "<parent of the first>/compare_<names>. An existing report folder is replaced."
)


def register(sub: Any) -> None:
    """Add the ``report`` sub-parser to ``sub`` (the ``twin`` sub-parsers action)."""
    p = sub.add_parser("report", help=HELP, description=DESCRIPTION)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run folder(s) written by 'twin run' (e.g. runs/annual)")
    p.add_argument("--out", metavar="DIR",
                   help="report folder (default: RUN_DIR/report for one run, "
                        "<parent of the first RUN_DIR>/compare_<names> for several)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """``twin report``: write the report; user errors become :class:`twin.errors.UserError`."""
    from twin.errors import EXIT_OK, UserError
    from twin.report.build import build_report
    from twin.report.load import RunFolderError

    show = sys.stderr.isatty() and not args.quiet

    def progress(stem: str) -> None:
        print(f"\rdrawing {stem:<32}", end="", file=sys.stderr, flush=True)

    try:
        res = build_report(args.run_dirs, args.out, progress if show else None)
    except RunFolderError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        where = exc.filename or args.out or args.run_dirs[0]
        raise UserError(f"{where}: cannot write the report ({exc.strerror or exc}). "
                        "Check the folder's permissions and free space, or give another "
                        "--out.") from exc
    finally:
        if show:
            print("\r" + " " * 42 + "\r", end="", file=sys.stderr, flush=True)
    if not args.quiet:
        print(f"report: {res.html} ({len(res.pngs)} figures, {res.wall_s:.1f} s)")
    return EXIT_OK

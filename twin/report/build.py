"""Build a report: load the runs, draw the figures, write PNGs and ``report.html``.

Everything is written into a temporary sibling folder which then replaces the output
folder, so a failure (bad input, full disk, Ctrl-C) leaves no half-written report.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from twin.atomic import hold_output, replace_dir, temp_sibling, write_marker
from twin.errors import UserError
from twin.report import compare, kpis
from twin.report.figures import FIGURES, session_story
from twin.report.html import RenderedFigure, render_page
from twin.report.load import RunData, RunFolderError, load_run
from twin.report.style import report_style

HTML_NAME = "report.html"


@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    out_dir : the report folder.
    html : path of ``report.html``.
    pngs : paths of the PNG figures, in page order.
    wall_s : time taken [s].
    """

    out_dir: Path
    html: Path
    pngs: list[Path] = field(default_factory=list)
    wall_s: float = 0.0


def default_out(run_dirs: Sequence[Path]) -> Path:
    """``RUN_DIR/report`` for one run; ``<parent of the first>/compare_<a>_<b>...`` for several."""
    if len(run_dirs) == 1:
        return run_dirs[0] / "report"
    names = [p.resolve().name for p in run_dirs]
    stem = "compare_" + "_".join(names)
    if len(stem) > 80:
        stem = f"compare_{names[0]}_and_{len(names) - 1}_more"
    return run_dirs[0].resolve().parent / stem


def check_out_dir(out: Path, run_dirs: Sequence[Path]) -> None:
    """Refuse an output folder that would replace a run or a folder that is not a report."""
    o = out.resolve()
    for r in run_dirs:
        rr = r.resolve()
        if o == rr or o in rr.parents:
            raise RunFolderError(
                f"{out}: the report folder would replace the run folder {r}. "
                "Give another --out (the default is RUN_DIR/report).")
    try:
        hold_output(out, "report")
    except UserError as exc:
        raise RunFolderError(str(exc)) from None


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _title_of(fig: Figure, fallback: str) -> str:
    t = fig.get_suptitle().strip()
    return t or fallback


def _single(run: RunData, progress: Callable[[str], None] | None) -> list[RenderedFigure]:
    out = []
    for spec in FIGURES:
        if progress:
            progress(spec.stem)
        fig = spec.draw(run)
        out.append(RenderedFigure(spec.stem, spec.section, _title_of(fig, spec.stem),
                                  spec.caption_for(run), _png(fig)))
    return out


def _several(runs: Sequence[RunData],
             progress: Callable[[str], None] | None) -> list[RenderedFigure]:
    out = []
    for spec in compare.COMPARE_FIGURES:
        if progress:
            progress(spec.stem)
        fig = spec.draw(runs)
        out.append(RenderedFigure(spec.stem, spec.section, _title_of(fig, spec.stem),
                                  spec.caption, _png(fig)))
    return out


def _run_warnings(r: RunData) -> list[str]:
    """Banner lines of one run: partial (and why, for a run against devices), and the
    steps of a run against devices whose energy could not be counted."""
    s = r.summary
    raw = s.get("hil")
    hil: dict[str, Any] = raw if isinstance(raw, dict) else {}
    out = []
    if s.get("interrupted"):
        why = f" HIL fault: {hil['fault']}." if hil.get("fault") else ""
        out.append(f"PARTIAL RUN: {r.label} was interrupted after {s.get('steps_done', '?')} "
                   f"of {s.get('n_steps', '?')} steps; its figures and KPIs cover those steps "
                   f"only.{why}")
    if len(r.sessions):
        bad = session_story(r).mismatches(s)
        if bad:
            out.append(f"{r.label}: summary.json and sessions table disagree on the EV "
                       f"sessions (written by another version of the twin?): {'; '.join(bad)}. "
                       "The KPI table shows summary.json, the EV figures the sessions table.")
    nc = hil.get("steps_energy_not_counted")
    if isinstance(nc, dict) and any(isinstance(v, int) and v > 0 for v in nc.values()):
        parts = ", ".join(f"{d} {v}" for d, v in nc.items() if isinstance(v, int) and v > 0)
        out.append(f"{r.label}: steps whose device reading was invalid or not new, so their "
                   f"energy is not counted (0 kWh): {parts}.")
    return out


def _page(runs: Sequence[RunData], figures: list[RenderedFigure]) -> str:
    s = runs[0].summary
    horizon = f"{str(s.get('start', ''))[:10]} + {runs[0].days:.4g} d"
    notes = []
    if runs[0].days < 60:
        notes.append("Runs shorter than 60 days are shown per day where a year is shown per "
                     "month.")
    for r in runs:
        notes.append(f"{r.label}: " + ", ".join(str(p) for p in r.files.values()))
    if len(runs) == 1:
        title = f"pvbess-twin report: {s.get('scenario', runs[0].path.name)}"
        sub = (f"{s.get('site', '')} · controller {s.get('controller', '')} · seed "
               f"{s.get('seed', '')} · {horizon} · {runs[0].path}")
        tables = [("Run", kpis.run_table([s])),
                  ("Key performance indicators", kpis.kpi_table([s]))]
        units = kpis.battery_table(s)
        if units:  # a site with two or more batteries
            tables.append(("Per battery", units))
    else:
        labels = [r.label for r in runs]
        title = f"pvbess-twin comparison of {len(runs)} runs"
        sub = f"{s.get('site', '')} · {horizon} · " + " | ".join(labels)
        sums = [r.summary for r in runs]
        tables = [("Runs", kpis.run_table(sums, labels)),
                  ("Key performance indicators", kpis.kpi_table(sums, labels))]
    warnings = [w for r in runs for w in _run_warnings(r)]
    return render_page(title, sub, tables, figures, notes, warnings)


def build_report(run_dirs: Sequence[str | Path], out: str | Path | None = None,
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Write the report of one run, or the comparison of several runs.

    Parameters
    ----------
    run_dirs : run folders written by ``twin run``.
    out : report folder (default: :func:`default_out`); replaced if it holds a report.
    progress : called with each figure's stem before it is drawn.

    Returns
    -------
    ReportResult with the paths written.

    Raises
    ------
    RunFolderError
        When a run folder is unusable, the runs cannot be compared, or ``out`` is unsafe.
    """
    t0 = time.perf_counter()
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise RunFolderError("no run folder given. Give at least one folder written by 'twin run'.")
    runs = [load_run(d) for d in dirs]
    if len(runs) > 1:
        compare.check_comparable(runs)
        compare.label_runs(runs)
    out_dir = Path(out) if out is not None else default_out(dirs)
    check_out_dir(out_dir, dirs)
    with report_style():
        figures = _single(runs[0], progress) if len(runs) == 1 else _several(runs, progress)
    page = _page(runs, figures)
    tmp = temp_sibling(out_dir)
    try:
        pngs = []
        for f in figures:
            (tmp / f"{f.stem}.png").write_bytes(f.png)
            pngs.append(out_dir / f"{f.stem}.png")
        (tmp / HTML_NAME).write_text(page, encoding="utf-8")
        write_marker(tmp, "report", complete=True)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportResult(out_dir, out_dir / HTML_NAME, pngs, time.perf_counter() - t0)

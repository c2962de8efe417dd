"""Shared plumbing of ``twin ab`` and ``twin sweep``: output folder checks, the run loop
with its progress bar, resuming from the store, Ctrl-C, failures."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.errors import UserError

if TYPE_CHECKING:  # kept light: 'twin' imports this module whenever it builds its parser
    from twin.trials.runner import RunTask
    from twin.trials.store import RunStore


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``--workers``, ``--scheduler``, ``--set``, ``--out``, ``-q``."""
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"Dask LocalCluster worker processes (default: the core count, here "
        f"{_cores()}); 1 = in-process, without Dask",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run on an existing Dask cluster ('dask scheduler' + 'dask worker' processes "
        "with this project installed) instead of a LocalCluster",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no table")


def check_out(out: Path, kind: str, names: Sequence[str]) -> Path:
    """Lock and check a trial folder (``ab``/``sweep``) through the one output guard; mark it.

    ``names``: every entry the command may write there (``runs`` and its outputs).
    """
    from twin.atomic import hold_output, open_trial_dir

    hold_output(out, kind)
    return open_trial_dir(out, kind, names)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    from twin.atomic import write_file_atomic

    write_file_atomic(path, data)


@dataclass
class RunOutcome:
    """What the run loop did."""

    records: list[dict[str, Any]] = field(default_factory=list)
    reused: int = 0
    ran: int = 0
    #: (key, reason) of each stored record that did not match its task and was run again
    rejected: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[RunTask, str]] = field(default_factory=list)
    interrupted: bool = False


def run_all(
    tasks: Sequence[RunTask],
    store: RunStore,
    *,
    workers: int | None,
    scheduler: str | None,
    quiet: bool,
    what: str = "runs",
) -> RunOutcome:
    """Reuse the finished runs in ``store`` that prove to be these runs, run the others
    (a stored record that does not match is counted in ``rejected``), save each as it
    finishes."""
    from twin.trials.runner import default_workers, execute, expected_header

    res = RunOutcome()
    todo: list[RunTask] = []
    expect: dict[str, dict[str, Any]] = {}
    for t in tasks:
        expect[t.key] = exp = expected_header(t)
        if store.has(t.key):
            rec, why = store.check(exp)
            if rec is not None:
                res.records.append(rec)
                res.reused += 1
                continue
            res.rejected.append((t.key, why))
        todo.append(t)
    _report_rejected(res.rejected, store)
    n_workers = workers if workers is not None else default_workers()
    if n_workers < 1:
        raise UserError(f"--workers {n_workers}: give 1 or more")
    if not quiet:
        where = scheduler or ("in-process" if n_workers == 1 else f"LocalCluster, {n_workers} workers")
        print(
            f"{len(tasks)} {what}: {res.reused} finished before (reused), {len(todo)} to run ({where})",
            file=sys.stderr,
        )
    prog = None
    task_id = None
    if not quiet and sys.stderr.isatty() and todo:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        prog = Progress(
            TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
        )
        task_id = prog.add_task(what, total=len(todo))

    warned: list[str] = []

    def on_record(rec: dict[str, Any]) -> None:
        if rec.get("interrupted"):
            raise KeyboardInterrupt  # an in-process run stopped by Ctrl-C: not a finished run
        exp = expect[str(rec["key"])]
        rec = {**rec, "scenario_hash": exp["scenario_hash"]}
        if rec.get("code_version") != exp["code_version"] and not warned:
            warned.append(str(rec.get("code_version")))
            print(
                f"twin: warning: a worker runs code version {warned[0]}, this process "
                f"{exp['code_version']}; its records will not be reused by this code",
                file=sys.stderr,
            )
        store.save(rec)
        res.records.append(rec)
        res.ran += 1
        if prog is not None and task_id is not None:
            prog.advance(task_id)

    def on_error(t: RunTask, exc: BaseException) -> None:
        msg = f"{type(exc).__name__}: {exc}"
        res.failures.append((t, msg))
        print(
            f"twin: run {t.controller} seed {t.scenario.config.seed} {t.tags or ''} failed: {msg}",
            file=sys.stderr,
        )
        if prog is not None and task_id is not None:
            prog.advance(task_id)

    try:
        if prog is not None:
            with prog:
                execute(todo, on_record, on_error, workers=n_workers, scheduler=scheduler)
        else:
            execute(todo, on_record, on_error, workers=n_workers, scheduler=scheduler)
    except KeyboardInterrupt:
        res.interrupted = True
    except OSError as exc:  # e.g. a scheduler that cannot be reached
        if scheduler:
            raise UserError(
                f"--scheduler {scheduler}: cannot run there ({exc}). Start 'dask scheduler' and "
                "'dask worker' processes first, or leave --scheduler out."
            ) from exc
        raise
    return res


def run_counts(res: RunOutcome) -> str:
    """"N runs done now, M reused" (and how many stored records were refused and run again)."""
    text = f"{res.ran} runs done now, {res.reused} reused"
    if res.rejected:
        text += f", {len(res.rejected)} stored records did not match and were run again"
    return text


def _report_rejected(rejected: list[tuple[str, str]], store: RunStore, shown: int = 5) -> None:
    """One stderr line with the count of refused records, then the first few and why."""
    if not rejected:
        return
    n = len(rejected)
    lines = [f"twin: {n} record{'s' if n != 1 else ''} in the store did not match and "
             f"{'were' if n != 1 else 'was'} run again:"]
    lines += [f"  {store.path(k)}: {why}" for k, why in rejected[:shown]]
    if n > shown:
        lines.append(f"  ... and {n - shown} more")
    print("\n".join(lines), file=sys.stderr)


__all__ = ["RunOutcome", "add_run_options", "check_out", "run_all", "run_counts", "write_atomic"]

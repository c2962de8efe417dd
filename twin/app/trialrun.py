"""Shared plumbing of ``twin ab`` and ``twin sweep``: output folder checks, the run loop
with its progress bar, resuming from the store, Ctrl-C, failures."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.bounds import MAX_WORKERS, check_float, check_int
from twin.errors import UserError

if TYPE_CHECKING:  # kept light: 'twin' imports this module whenever it builds its parser
    from twin.trials.runner import RunTask
    from twin.trials.store import RunStore


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Default and range of ``--cluster-timeout`` [s].
CLUSTER_TIMEOUT_S, MAX_CLUSTER_TIMEOUT_S = 60.0, 3600.0

#: A Dask scheduler address: ``[tcp|tls://]HOST:PORT`` (HOST a name, IPv4 or [IPv6]).
_SCHEDULER = re.compile(r"^(?:(?:tcp|tls)://)?(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``--workers``, ``--scheduler``, ``--cluster-timeout``, ``-q``."""
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"worker processes (forked from this one), 1..{MAX_WORKERS} (default: the core "
        f"count, here {_cores()}, or 1 when the trial is too small to gain, with a note); "
        "1 = in-process",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run on an existing Dask cluster ('dask scheduler' + 'dask worker' processes "
        "with this project installed) instead of local worker processes",
    )
    p.add_argument(
        "--cluster-timeout",
        type=float,
        default=CLUSTER_TIMEOUT_S,
        metavar="S",
        help=f"on Dask: end the trial (exit 1, finished runs kept) when no worker has been "
        f"connected for S seconds, 1..{MAX_CLUSTER_TIMEOUT_S:g} (default {CLUSTER_TIMEOUT_S:g}); "
        "a lost scheduler ends it at once",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no table")


def check_run_options(args: argparse.Namespace) -> None:
    """Check ``--workers``, ``--scheduler`` and ``--cluster-timeout`` before anything is written."""
    if args.workers is not None:
        check_int("--workers", args.workers, 1, MAX_WORKERS)
    check_float("--cluster-timeout", args.cluster_timeout, 1.0, MAX_CLUSTER_TIMEOUT_S)
    sched = args.scheduler
    if sched is not None:
        m = _SCHEDULER.match(sched)
        if m is None or not 1 <= int(m.group(1)) <= 65535:
            raise UserError(
                f"--scheduler {sched}: not a Dask scheduler address; give tcp://HOST:PORT "
                "(or tls://HOST:PORT, port 1..65535), as printed by 'dask scheduler'"
            )


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
    lost: str | None = None  # why the Dask cluster was given up (the trial ends, exit 1)


def run_all(
    tasks: Sequence[RunTask],
    store: RunStore,
    *,
    workers: int | None,
    scheduler: str | None,
    quiet: bool,
    what: str = "runs",
    cluster_timeout_s: float = CLUSTER_TIMEOUT_S,
) -> RunOutcome:
    """Reuse the finished runs in ``store`` that prove to be these runs, run the others
    (a stored record that does not match is counted in ``rejected``), save each as it
    finishes.

    A lost Dask cluster (:class:`twin.trials.runner.ClusterLostError`) ends the loop with
    ``lost`` set; the runs finished before are in ``store``.
    """
    from twin.trials.runner import ClusterLostError, choose_workers, execute

    res = RunOutcome()
    todo, expect = _reuse(tasks, store, res)
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: give 1 or more")
    n_workers, note = (workers or 1, None) if scheduler else choose_workers(todo, workers)
    if not quiet:
        if note:
            print(note, file=sys.stderr)
        where = scheduler or ("in-process" if n_workers == 1 else f"{n_workers} worker processes")
        print(
            f"{len(tasks)} {what}: {res.reused} finished before (reused), {len(todo)} to run ({where})",
            file=sys.stderr,
        )
    prog, advance = _progress(what, len(todo), show=not quiet and sys.stderr.isatty() and bool(todo))
    on_record, on_error = _callbacks(res, store, expect, advance)
    try:  # the progress bar's thread starts after the workers have forked
        execute(todo, on_record, on_error, workers=n_workers, scheduler=scheduler,
                cluster_timeout_s=cluster_timeout_s, live=prog)
    except KeyboardInterrupt:
        res.interrupted = True
    except ClusterLostError as exc:
        res.lost = str(exc)
    except OSError as exc:  # e.g. a scheduler that cannot be reached
        if scheduler:
            raise UserError(
                f"--scheduler {scheduler}: cannot run there ({exc}). Start 'dask scheduler' and "
                "'dask worker' processes first, or leave --scheduler out."
            ) from exc
        raise
    return res


def _reuse(tasks: Sequence[RunTask], store: RunStore,
           res: RunOutcome) -> tuple[list[RunTask], dict[str, dict[str, Any]]]:
    """Take the stored runs that prove to be these tasks into ``res``; the tasks left to run
    and each task's expected record header."""
    from twin.trials.runner import expected_header

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
    return todo, expect


def _progress(what: str, total: int, *, show: bool) -> tuple[Any, Callable[[], None]]:
    """A progress bar on a terminal (None otherwise) and the call that advances it."""
    if not show:
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    )
    task_id = prog.add_task(what, total=total)
    return prog, lambda: prog.advance(task_id)


def _callbacks(res: RunOutcome, store: RunStore, expect: dict[str, dict[str, Any]],
               advance: Callable[[], None]) -> tuple[Callable[[dict[str, Any]], None],
                                                     Callable[[RunTask, BaseException], None]]:
    """What to do with each finished record (save it) and each failed run (report it)."""
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
        advance()

    def on_error(t: RunTask, exc: BaseException) -> None:
        msg = f"{type(exc).__name__}: {exc}"
        res.failures.append((t, msg))
        print(
            f"twin: run {t.controller} seed {t.scenario.config.seed} {t.tags or ''} failed: {msg}",
            file=sys.stderr,
        )
        advance()

    return on_record, on_error


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


def lost_cluster_exit(res: RunOutcome, out: Path) -> int | None:
    """When the cluster was lost: one line on stderr and exit status 1; else None."""
    if res.lost is None:
        return None
    print(f"twin: error: {res.lost}; the trial stopped after {res.ran} new runs ({res.reused} "
          f"reused), finished runs are kept in {out / 'runs'}; rerun to resume", file=sys.stderr)
    return 1


__all__ = ["CLUSTER_TIMEOUT_S", "RunOutcome", "add_run_options", "check_out", "check_run_options",
           "lost_cluster_exit", "run_all", "run_counts", "write_atomic"]

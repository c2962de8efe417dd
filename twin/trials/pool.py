"""A pool of worker processes forked from the trial's process, after it has imported the engine.

Each worker inherits the imported modules (twin, the controllers, pvlib, pandas) and the
list of units (:func:`twin.trials.runner.units_of`) from the fork, so what crosses a pipe
is small and plain: the parent sends ``{"unit": I}`` as JSON bytes, the worker builds that
seed's inputs, runs its tasks and sends back one JSON result per run as it finishes
(:func:`twin.trials.runner.result_json`), then ``{"done": I}``. ``Connection.send_bytes`` /
``recv_bytes`` carry bytes only: nothing is pickled.

Signals: the workers ignore SIGINT (Ctrl-C reaches the whole process group) and die on
SIGTERM; the parent stops them on Ctrl-C / SIGTERM / any error, hands on the results that
had already reached its pipes, and re-raises. A worker that dies (killed, out of memory)
fails the runs of its unit that had not come back; the other workers go on.
"""

from __future__ import annotations

import gc
import json
import multiprocessing as mp
import signal
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack, suppress
from multiprocessing.connection import Connection, wait
from typing import Any

from twin.trials.runner import (
    OnError,
    OnRecord,
    RunTask,
    hand_result,
    result_json,
    unit_results,
    warm_imports,
)

#: Seconds a worker gets to exit after SIGTERM before it is killed [s].
STOP_S = 5.0

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker(conn: Connection, others: list[Connection], units: Sequence[Sequence[RunTask]]) -> None:
    """A worker's loop: receive a unit index, run the unit, send its results; stop on EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    for c in others:  # the pipes of the other workers: their EOF must not wait for this one
        c.close()
    try:
        while True:
            i = int(json.loads(conn.recv_bytes())["unit"])
            if i < 0:
                return
            for t, res in unit_results(units[i]):
                conn.send_bytes(result_json(t, res).encode())
            conn.send_bytes(json.dumps({"done": i}).encode())
    except (EOFError, OSError):  # the parent is gone (killed): nobody to report to
        return


class _Worker:
    def __init__(self, proc: Any, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn
        self.unit: dict[str, RunTask] | None = None  # the tasks sent to it, not yet back
        #: the units sent to it and not yet done: the running one first, then the one
        #: waiting in its pipe
        self.queue: list[int] = []


def _start(n: int, units: Sequence[Sequence[RunTask]]) -> list[_Worker]:
    """Fork ``n`` workers with SIGINT/SIGTERM blocked (a signal during the fork is delivered to
    this process afterwards, never half-way into a worker)."""
    ctx = mp.get_context("fork")
    pipes = [ctx.Pipe(duplex=True) for _ in range(n)]
    workers: list[_Worker] = []
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    # the parent's objects (imported modules, the units) go to the collector's permanent
    # generation for the fork: a worker's collections then never write to their headers,
    # so their pages stay shared instead of being copied into every worker
    gc.freeze()
    try:
        for i, (mine, theirs) in enumerate(pipes):
            others = [c for j, pair in enumerate(pipes) if j != i for c in pair] + [mine]
            p = ctx.Process(target=_worker, args=(theirs, others, units), daemon=True,
                            name=f"twin-trial-worker-{i}")
            p.start()
            workers.append(_Worker(p, mine))
    finally:
        gc.unfreeze()  # the parent's own garbage is collected again
        for _, theirs in pipes:
            theirs.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return workers


def _stop(workers: list[_Worker], *, graceful: bool) -> None:
    """End the workers: ask them to stop (``graceful``) or SIGTERM them; kill stragglers."""
    for w in workers:
        if graceful:
            with suppress(OSError):
                w.conn.send_bytes(b'{"unit": -1}')
        elif w.proc.is_alive():
            w.proc.terminate()
    for w in workers:
        w.proc.join(STOP_S)
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(STOP_S)


def _drain(workers: list[_Worker], on_record: OnRecord, on_error: OnError) -> None:
    """After the workers were stopped: hand on the whole results still in the pipes."""
    for w in workers:
        try:
            while w.unit is not None and w.conn.poll():
                text = w.conn.recv_bytes().decode()
                if text.startswith('{"done"'):
                    w.queue.pop(0)
                    if not w.queue:
                        break
                    continue
                hand_result(text, w.unit, on_record, on_error)
        except (EOFError, OSError):  # a worker killed mid-message: the rest is lost
            continue


def run_forked(units: Sequence[Sequence[RunTask]], on_record: OnRecord, on_error: OnError,
               n_workers: int, live: AbstractContextManager[Any] | None = None) -> None:
    """Run ``units`` on ``n_workers`` forked processes (at most one per unit).

    Parameters
    ----------
    units : groups of tasks that share their inputs (:func:`twin.trials.runner.units_of`).
    on_record, on_error : called in this process as each run's result arrives.
    n_workers : worker processes, >= 1.
    live : entered once the workers run (e.g. a progress bar, whose thread must not exist
        at the fork).
    """
    warm_imports()
    workers = _start(max(1, min(n_workers, len(units))), units)
    todo = list(range(len(units)))
    try:
        with ExitStack() as stack:
            if live is not None:
                stack.enter_context(live)
            _loop(workers, units, todo, on_record, on_error)
    except BaseException:
        _stop(workers, graceful=False)
        _drain(workers, on_record, on_error)
        raise
    _stop(workers, graceful=True)


def _give(w: _Worker, units: Sequence[Sequence[RunTask]], todo: list[int]) -> bool:
    """Send the next unit of ``todo`` to ``w``; False (the unit back in ``todo``) when its
    pipe is broken (the worker died)."""
    i = todo.pop(0)
    try:
        w.conn.send_bytes(json.dumps({"unit": i}).encode())
    except OSError:
        todo.insert(0, i)
        return False
    if w.unit is None:
        w.unit = {}
    w.unit.update({t.key: t for t in units[i]})
    w.queue.append(i)
    return True


def _loop(workers: list[_Worker], units: Sequence[Sequence[RunTask]], todo: list[int],
          on_record: OnRecord, on_error: OnError) -> None:
    """Hand out the units and collect the results. A worker holds its running unit and,
    while at least one unit per worker is left, the next one in its pipe: it starts that
    one without waiting for this process to be scheduled; the last units go one at a time
    to whichever worker is free, for an even finish."""
    alive = list(workers)
    while alive:
        for w in list(alive):
            # every idle worker takes the next unit, and one more waits in its pipe while
            # at least one unit per worker is left
            while todo and (not w.queue or (len(w.queue) == 1 and len(todo) >= len(alive))):
                if not _give(w, units, todo):
                    todo[:0] = _lost(w, units, on_error)
                    alive.remove(w)
                    break
        busy = [w for w in alive if w.queue]
        if not busy:
            return
        ready = wait([w.conn for w in busy])
        for w in busy:
            if w.conn not in ready or w.unit is None:
                continue
            try:
                text = w.conn.recv_bytes().decode()
            except (EOFError, OSError):
                todo[:0] = _lost(w, units, on_error)
                alive.remove(w)
                continue
            if text.startswith('{"done"'):
                w.queue.pop(0)
                if not w.queue:
                    w.unit = None
            else:
                hand_result(text, w.unit, on_record, on_error)
    for i in todo:  # every worker died
        for t in units[i]:
            on_error(t, RuntimeError("no trial worker process left"))


def _lost(w: _Worker, units: Sequence[Sequence[RunTask]], on_error: OnError) -> list[int]:
    """A worker died: fail the runs of its running unit that had not come back; return
    the units that waited in its pipe (they go to the other workers)."""
    w.proc.join(STOP_S)
    code = w.proc.exitcode
    why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    pending = w.unit or {}
    running, waiting = (w.queue[0], w.queue[1:]) if w.queue else (None, [])
    for t in units[running] if running is not None else ():
        if pending.pop(t.key, None) is not None:
            on_error(t, RuntimeError(f"the trial worker process (pid {w.proc.pid}) died ({why})"))
    w.unit = None
    w.queue = []
    return waiting


__all__ = ["STOP_S", "run_forked"]

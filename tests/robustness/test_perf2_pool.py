"""The trial pool's hand-out (issue 20, round three): a worker holds its next unit in its
pipe while enough are left, so it never waits for the parent between units; a worker that
dies fails only its running unit's runs, and the unit waiting in its pipe goes to the others.

Real pipes; the workers here are threads speaking the pool's JSON protocol (the forked
processes are exercised end to end in ``test_perf_trials.py``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from twin.trials import pool
from twin.trials.runner import RunTask

from .conftest import day_scenario


def _units(tmp_path: Path, n: int) -> list[list[RunTask]]:
    from twin.config import load_scenario

    scn = load_scenario(day_scenario(tmp_path))
    return [[RunTask(f"u{i}-{c}", scn, c, f"ik{i}") for c in ("a", "b")] for i in range(n)]


def _fake_worker(conn: Connection, units: list[list[RunTask]], log: list[tuple[int, bool]]) -> None:
    """Answer like ``pool._worker``; log (unit, was the next unit already in the pipe when
    this one started)."""
    while True:
        i = int(json.loads(conn.recv_bytes())["unit"])
        if i < 0:
            return
        log.append((i, conn.poll(2.0)))  # hang guard only: the next unit is there or never
        for t in units[i]:
            conn.send_bytes(json.dumps({"rec": {"key": t.key}}).encode())
        conn.send_bytes(json.dumps({"done": i}).encode())


class _Proc:
    exitcode = -9
    pid = 0

    def join(self, timeout: float | None = None) -> None:
        """Nothing to wait for."""


def test_a_worker_finds_its_next_unit_in_its_pipe(tmp_path: Path) -> None:
    units = _units(tmp_path, 6)
    workers, threads, logs = [], [], []
    for _ in range(2):
        mine, theirs = mp.Pipe(duplex=True)
        log: list[tuple[int, bool]] = []
        th = threading.Thread(target=_fake_worker, args=(theirs, units, log), daemon=True)
        th.start()
        workers.append(pool._Worker(_Proc(), mine))
        threads.append(th)
        logs.append(log)
    got: list[str] = []
    try:
        pool._loop(workers, units, list(range(6)), lambda rec: got.append(rec["key"]),
                   lambda t, e: got.append(f"error {t.key}"))
    finally:
        for w in workers:
            w.conn.send_bytes(b'{"unit": -1}')
        for th in threads:
            th.join(10)
    assert sorted(got) == sorted(t.key for u in units for t in u)  # each run once, no error
    first = [log[0] for log in logs]
    assert all(prefetched for _, prefetched in first), logs  # the second unit was waiting


def test_a_dead_workers_waiting_unit_goes_to_the_others(tmp_path: Path) -> None:
    units = _units(tmp_path, 4)
    w = pool._Worker(_Proc(), None)
    w.queue = [1, 3]
    w.unit = {t.key: t for i in (1, 3) for t in units[i]}
    w.unit.pop(units[1][0].key)  # the running unit's first run came back
    failed: list[str] = []
    back = pool._lost(w, units, lambda t, e: failed.append(t.key))
    assert back == [3]  # re-run elsewhere, not failed
    assert failed == [units[1][1].key]
    assert w.unit is None and w.queue == []


def test_a_worker_dead_before_its_unit_is_sent_loses_nothing(tmp_path: Path) -> None:
    units = _units(tmp_path, 6)
    mine, theirs = mp.Pipe(duplex=True)
    dead = pool._Worker(_Proc(), mine)
    theirs.close()  # the worker is gone: its pipe reads EOF
    m2, t2 = mp.Pipe(duplex=True)
    log: list[tuple[int, bool]] = []
    th = threading.Thread(target=_fake_worker, args=(t2, units, log), daemon=True)
    th.start()
    good = pool._Worker(_Proc(), m2)
    got: list[str] = []
    errors: list[str] = []
    try:
        pool._loop([dead, good], units, list(range(6)), lambda rec: got.append(rec["key"]),
                   lambda t, e: errors.append(t.key))
    finally:
        m2.send_bytes(b'{"unit": -1}')
        th.join(10)
    assert errors == []  # nothing had started there: every run goes to the live worker
    assert sorted(got) == sorted(t.key for u in units for t in u)



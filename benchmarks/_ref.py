"""References measured in the same run as a benchmark's figures, so that the printed ratios
carry across machines (and across the load of a shared one).

* :func:`bare_loop_s`: a fixed pure-Python loop (the "bare loop" the issue compares with);
* :func:`parallel_speedup`: how much faster two such loops finish in two forked processes
  than one after the other — what the cores give right now (1.0 on a busy machine, ~2 on
  two idle cores); a trial's parallel speed-up is judged against it;
* :func:`median3` and :func:`load`: medians of 3 and the machine's load average.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Iterations of the bare loop (~0.5 s on this machine).
N_BARE = 6_000_000


def _spin(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t0


def bare_loop_s(n: int = N_BARE) -> float:
    """Wall time of the bare loop [s]."""
    return _spin(n)


def parallel_speedup(n: int = N_BARE) -> float:
    """Serial time of two bare loops / their time in two forked processes."""
    t0 = time.perf_counter()
    _spin(n)
    _spin(n)
    serial = time.perf_counter() - t0
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_spin, [1000, 1000])  # start-up out of the timing, like a trial's warm pool
        t0 = time.perf_counter()
        pool.map(_spin, [n, n], chunksize=1)
        par = time.perf_counter() - t0
    return serial / par


def median3(fn: Callable[[], T]) -> list[T]:
    """``fn()`` three times; the results in call order (take the median of what you need)."""
    return [fn() for _ in range(3)]


def median(xs: list[float]) -> float:
    """The median."""
    return float(statistics.median(xs))


def load() -> str:
    """The load average (1, 5, 15 min) and the core count, for the header of a benchmark."""
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} on {len(os.sched_getaffinity(0))} cores"

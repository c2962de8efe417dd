"""Bounds of numeric command-line options, in one place (no imports of the project but errors).

Every numeric option of the trial, sizing and training commands is checked here: finite,
inside its documented range, else a :class:`twin.errors.UserError` that names the option,
the value and the range (the command line exits 2, nothing written). The maxima of the
trials are here too, so ``--help``, the README and the checks say the same numbers.
"""

from __future__ import annotations

import math

from twin.errors import UserError

#: Most seeds of one ``twin ab`` / ``twin sweep`` (``--seeds``).
MAX_SEEDS = 10_000
#: Most runs of one trial (seeds x controllers, x grid points for a sweep).
MAX_RUNS = 100_000
#: Most points of a ``twin sweep`` grid (the product of the axes' lengths).
MAX_GRID_POINTS = 10_000
#: Most Dask LocalCluster worker processes (``--workers``).
MAX_WORKERS = 256
#: Largest seed (the scenario's ``seed`` field is a 63-bit integer).
MAX_SEED = 2**63 - 1


def check_int(option: str, value: int, lo: int, hi: int) -> int:
    """``value`` when ``lo <= value <= hi``, else a ``UserError`` naming ``option`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UserError(f"{option} {value}: must be a whole number from {lo:,} to {hi:,}")
    return value


def check_float(option: str, value: float, lo: float, hi: float, *, lo_open: bool = False) -> float:
    """``value`` when finite and inside ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``), else a
    ``UserError`` naming ``option`` and the range."""
    v = float(value)
    ok = math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi
    if not ok:
        raise UserError(f"{option} {value}: must be a finite number {float_range(lo, hi, lo_open)}")
    return v


def int_range(lo: int, hi: int) -> str:
    """The range as ``--help`` shows it, e.g. ``1..10,000``."""
    return f"{lo:,}..{hi:,}"


def float_range(lo: float, hi: float, lo_open: bool = False) -> str:
    """The range as ``--help`` and the messages show it, e.g. ``> 0 and <= 10``."""
    return f"{'>' if lo_open else '>='} {lo:g} and <= {hi:g}"


__all__ = ["MAX_GRID_POINTS", "MAX_RUNS", "MAX_SEED", "MAX_SEEDS", "MAX_WORKERS", "check_float",
           "check_int", "float_range", "int_range"]

"""Sizing sweeps: ``--set key=start:stop:step`` grids, and the simple payback of a size.

A grid value ``start:stop:step`` covers ``start, start + step, ...`` up to and including
``stop``; several grid keys give their Cartesian product (at most
:data:`twin.bounds.MAX_GRID_POINTS` points; start, stop and step finite). ``bess.p_nominal_kw``
is a shorthand that sets both ``bess.p_charge_max_kw`` and ``bess.p_discharge_max_kw``. The
seeds are not a grid axis (``--seeds`` / ``--first-seed`` give them).
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import numpy as np

from twin.bounds import MAX_GRID_POINTS
from twin.errors import UserError

#: Shorthand keys and the site fields they set.
ALIASES: dict[str, tuple[str, ...]] = {
    "bess.p_nominal_kw": ("bess.p_charge_max_kw", "bess.p_discharge_max_kw"),
}

#: Keys that are a battery energy / power axis (for marking the sizing formulas' point).
ENERGY_KEYS = ("bess.e_capacity_kwh",)
POWER_KEYS = ("bess.p_nominal_kw", "bess.p_discharge_max_kw", "bess.p_charge_max_kw")

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUM})\s*:\s*({_NUM})\s*:\s*({_NUM})\s*$")


def grid_values(key: str, text: str, max_points: int = MAX_GRID_POINTS) -> list[float]:
    """The values of ``start:stop:step`` (``stop`` included when on the grid)."""
    m = _RANGE.match(text)
    if not m:
        raise UserError(f"--set {key}={text}: a grid is start:stop:step, e.g. 500:4000:250")
    a, b, st = (float(g) for g in m.groups())
    if not all(math.isfinite(x) for x in (a, b, st)):
        raise UserError(f"--set {key}={text}: start, stop and step must be finite numbers")
    if st <= 0 or b < a:
        raise UserError(f"--set {key}={text}: need step > 0 and stop >= start")
    q = (b - a) / st
    if not q < max_points:  # also catches inf from a tiny step
        raise UserError(f"--set {key}={text}: more than {max_points:,} values; at most "
                        f"{max_points:,} grid points in all (a larger step)")
    n = math.floor(q + 1e-9) + 1
    vals = [round(a + i * st, 10) for i in range(n)]
    return [int(v) if float(v).is_integer() else v for v in vals]


def parse_sets(items: list[str]) -> tuple[list[str], dict[str, Any], list[tuple[str, list[float]]]]:
    """Split ``--set`` items into fixed ``key=value`` items and grid axes ``key=a:b:c``."""
    fixed: list[str] = []
    axes: list[tuple[str, list[float]]] = []
    for item in items:
        if "=" in item and _RANGE.match(item.split("=", 1)[1]):
            k, v = item.split("=", 1)
            k = k.strip()
            if k == "seed":
                raise UserError(f"--set {item}: the seeds are not a grid axis; give them with "
                                "--first-seed START --seeds N (seeds START .. START+N-1)")
            if any(k == a for a, _ in axes):
                raise UserError(f"--set {k}: given twice as a grid")
            axes.append((k, grid_values(k, v)))
            n_points = math.prod(len(vals) for _, vals in axes)
            if n_points > MAX_GRID_POINTS:
                raise UserError(f"--set {item}: the grid has {n_points:,} points "
                                f"({' x '.join(str(len(vals)) for _, vals in axes)}); at most "
                                f"{MAX_GRID_POINTS:,}")
        else:
            fixed.append(item)
    from twin.config import parse_set

    return fixed, expand(parse_set(fixed)), axes


def expand(sets: dict[str, Any]) -> dict[str, Any]:
    """Replace shorthand keys (:data:`ALIASES`) by the site fields they stand for."""
    out: dict[str, Any] = {}
    for k, v in sets.items():
        for real in ALIASES.get(k, (k,)):
            out[real] = v
    return out


def points(axes: list[tuple[str, list[float]]]) -> list[dict[str, float]]:
    """Every combination of the axes' values, as ``{key: value}``."""
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))]


def payback_years(capex: float, opex_per_yr: float, savings_per_yr: float) -> float:
    """Simple payback [years]: ``capex / (savings − opex)``; ``inf`` when that never pays.

    Parameters
    ----------
    capex : investment [currency].
    opex_per_yr : yearly operation and maintenance [currency/yr].
    savings_per_yr : yearly saving on the grid bill [currency/yr].
    """
    net = savings_per_yr - opex_per_yr
    if capex <= 0:
        return 0.0
    return capex / net if net > 0 else math.inf


def economics(
    e_kwh: np.ndarray, p_kw: np.ndarray, savings: np.ndarray, days: np.ndarray, econ: Any
) -> dict[str, np.ndarray]:
    """CAPEX, yearly OPEX, yearly savings and payback for arrays of sizes and run savings.

    Parameters
    ----------
    e_kwh, p_kw : battery capacity [kWh] and nominal power [kW].
    savings : the run's savings from the battery [currency] over ``days`` [d].
    econ : the site's :class:`twin.config.Economics`.
    """
    capex = e_kwh * econ.bess_capex_per_kwh + p_kw * econ.bess_capex_per_kw
    opex = e_kwh * econ.bess_opex_per_kwh_yr + p_kw * econ.bess_opex_per_kw_yr
    sav_yr = np.where(days > 0, savings * 365.0 / np.where(days > 0, days, 1.0), 0.0)
    pb = np.array([payback_years(c, o, s) for c, o, s in zip(capex, opex, sav_yr, strict=True)])
    return {"capex": capex, "opex_per_yr": opex, "savings_per_yr": sav_yr, "payback_years": pb}


__all__ = [
    "ALIASES",
    "ENERGY_KEYS",
    "POWER_KEYS",
    "economics",
    "expand",
    "grid_values",
    "parse_sets",
    "payback_years",
    "points",
]

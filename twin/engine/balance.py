"""Flow allocation at the site bus (docs/spec.md §5), vectorised over all steps.

Order (the seeds'): PV → EV, then → BESS, then → mall, then export / curtailment;
BESS discharge → EV, then → mall; the grid covers the rest (EV, mall, BESS charging).

Balance at every step:
``PV + BESS discharge + grid import = EV + mall + BESS charge + export + curtailment``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from twin.types import FloatArray


class BusFlows(NamedTuple):
    """One split of the site bus (``split_bus``): source → sink energies [kWh], arrays over
    steps or floats of one step. Field names are the output columns."""

    pv_to_ev_kwh: Any
    pv_to_bess_kwh: Any
    pv_to_mall_kwh: Any
    pv_curtailed_kwh: Any
    pv_export_kwh: Any
    bess_to_ev_kwh: Any
    bess_to_mall_kwh: Any
    bess_to_export_kwh: Any
    grid_import_ev_kwh: Any
    grid_import_mall_kwh: Any
    grid_to_bess_kwh: Any
    grid_import_kwh: Any
    grid_export_kwh: Any


def split_bus(e_pv: Any, e_ev: Any, e_mall: Any, e_charge: Any, e_discharge: Any,
              e_export_max: Any, minimum: Callable[[Any, Any], Any] = np.minimum,
              maximum: Callable[[Any, Any], Any] = np.maximum) -> BusFlows:
    """The one split of the step energies [kWh] into source → sink flows [kWh].

    Used by the results (arrays over the run), ``Twin.step_record`` and the RL reward (one
    step, Python floats with ``minimum=min, maximum=max``: the same operations in the same
    order, so the same bits as the array form).

    Parameters
    ----------
    e_pv : PV energy available [kWh].
    e_ev, e_mall : EV and mall energy [kWh].
    e_charge, e_discharge : battery AC charge / discharge energy [kWh] (not both > 0).
    e_export_max : energy that may be exported per step [kWh].
    minimum, maximum : elementwise min / max (``np.minimum`` / ``np.maximum`` for arrays,
        the builtins for floats).
    """
    pv_to_ev = minimum(e_pv, e_ev)
    rest = e_pv - pv_to_ev
    pv_to_bess = minimum(rest, e_charge)
    rest = rest - pv_to_bess
    pv_to_mall = minimum(rest, e_mall)
    rest = rest - pv_to_mall
    grid_to_bess = e_charge - pv_to_bess
    bess_to_ev = minimum(e_discharge, e_ev - pv_to_ev)
    bess_to_mall = minimum(e_discharge - bess_to_ev, e_mall - pv_to_mall)
    bess_to_export = e_discharge - bess_to_ev - bess_to_mall
    pv_export = minimum(rest, maximum(e_export_max - bess_to_export, 0.0))
    curtailed = rest - pv_export
    grid_ev = e_ev - pv_to_ev - bess_to_ev
    grid_mall = e_mall - pv_to_mall - bess_to_mall
    return BusFlows(pv_to_ev, pv_to_bess, pv_to_mall, curtailed, pv_export, bess_to_ev,
                    bess_to_mall, bess_to_export, grid_ev, grid_mall, grid_to_bess,
                    grid_ev + grid_mall + grid_to_bess, pv_export + bess_to_export)


def allocate_flows(e_pv: FloatArray, e_ev: FloatArray, e_mall: FloatArray, e_charge: FloatArray,
                   e_discharge: FloatArray, e_export_max: FloatArray | float) -> dict[str, FloatArray]:
    """``split_bus`` over arrays of steps, as a dict of flow arrays [kWh] keyed by output
    column name (see ``split_bus`` for the parameters)."""
    return split_bus(e_pv, e_ev, e_mall, e_charge, e_discharge, e_export_max)._asdict()


def balance_residual(e_pv: FloatArray, e_ev: FloatArray, e_mall: FloatArray, e_charge: FloatArray,
                     e_discharge: FloatArray, flows: dict[str, FloatArray]) -> FloatArray:
    """Bus balance residual per step [kWh] (should be ~0)."""
    return (e_pv + e_discharge + flows["grid_import_kwh"]
            - e_ev - e_mall - e_charge - flows["grid_export_kwh"] - flows["pv_curtailed_kwh"])

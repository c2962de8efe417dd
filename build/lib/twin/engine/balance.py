"""Flow allocation at the site bus (SPEC §5), vectorised over all steps.

Order (the seeds'): PV → EV, then → BESS, then → mall, then export / curtailment;
BESS discharge → EV, then → mall; the grid covers the rest (EV, mall, BESS charging).

Balance at every step:
``PV + BESS discharge + grid import = EV + mall + BESS charge + export + curtailment``.
"""

from __future__ import annotations

import numpy as np

from twin.types import FloatArray


def allocate_flows(e_pv: FloatArray, e_ev: FloatArray, e_mall: FloatArray, e_charge: FloatArray,
                   e_discharge: FloatArray, e_export_max: FloatArray | float) -> dict[str, FloatArray]:
    """Split the step energies [kWh] into source → sink flows [kWh].

    Parameters
    ----------
    e_pv : PV energy available [kWh].
    e_ev, e_mall : EV and mall energy [kWh].
    e_charge, e_discharge : battery AC charge / discharge energy [kWh] (not both > 0).
    e_export_max : energy that may be exported per step [kWh].

    Returns
    -------
    dict of flow arrays [kWh], keyed by output column name.
    """
    pv_to_ev = np.minimum(e_pv, e_ev)
    rest = e_pv - pv_to_ev
    pv_to_bess = np.minimum(rest, e_charge)
    rest = rest - pv_to_bess
    pv_to_mall = np.minimum(rest, e_mall)
    rest = rest - pv_to_mall
    grid_to_bess = e_charge - pv_to_bess
    bess_to_ev = np.minimum(e_discharge, e_ev - pv_to_ev)
    bess_to_mall = np.minimum(e_discharge - bess_to_ev, e_mall - pv_to_mall)
    bess_to_export = e_discharge - bess_to_ev - bess_to_mall
    pv_export = np.minimum(rest, np.maximum(e_export_max - bess_to_export, 0.0))
    curtailed = rest - pv_export
    grid_ev = e_ev - pv_to_ev - bess_to_ev
    grid_mall = e_mall - pv_to_mall - bess_to_mall
    return {
        "pv_to_ev_kwh": pv_to_ev,
        "pv_to_bess_kwh": pv_to_bess,
        "pv_to_mall_kwh": pv_to_mall,
        "pv_curtailed_kwh": curtailed,
        "pv_export_kwh": pv_export,
        "bess_to_ev_kwh": bess_to_ev,
        "bess_to_mall_kwh": bess_to_mall,
        "bess_to_export_kwh": bess_to_export,
        "grid_import_ev_kwh": grid_ev,
        "grid_import_mall_kwh": grid_mall,
        "grid_to_bess_kwh": grid_to_bess,
        "grid_import_kwh": grid_ev + grid_mall + grid_to_bess,
        "grid_export_kwh": pv_export + bess_to_export,
    }


def balance_residual(e_pv: FloatArray, e_ev: FloatArray, e_mall: FloatArray, e_charge: FloatArray,
                     e_discharge: FloatArray, flows: dict[str, FloatArray]) -> FloatArray:
    """Bus balance residual per step [kWh] (should be ~0)."""
    return (e_pv + e_discharge + flows["grid_import_kwh"]
            - e_ev - e_mall - e_charge - flows["grid_export_kwh"] - flows["pv_curtailed_kwh"])

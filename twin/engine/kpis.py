"""KPI formulas: the one place where a KPI that compares with a counterfactual is defined.

Every function is vectorised over per-step arrays (energies [kWh per step], prices
[currency/kWh], factors [kg/kWh]) and returns per-step arrays; a run's KPI is their sum.
``twin.engine.results`` (summary), ``twin.monitoring.metrics`` (live counters),
``twin.app.export`` (metrics from a finished run) and ``twin.report`` (figures, tables)
call these functions instead of writing the formulas again.

Counterfactuals
---------------
* **All from the grid** (no PV, no BESS): import = load.
* **No battery** (the same site, the same loads, PV, no BESS): import =
  ``max(load − PV, 0)``. This is exactly the import of a ``no_bess`` run when the EV
  energy is the same (as with ``six_phase``, whose chargers run at their rating whenever
  the station is open): PV first serves the load, surplus is exported or curtailed, the
  rest is imported. Controllers that move EV energy in time are compared with the same
  loads without the battery.

Both the battery's saving and its avoided CO2 use the no-battery counterfactual, so
``co2_avoided_bess_kg / savings_bess_soles`` is the grid factor over the (price-weighted)
import avoided. The seeds' formulas are kept under names that say so
(``..._seed_formula``): they credit the battery with everything it discharges into the
loads, whatever would have served those loads without it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twin.types import FloatArray

#: Per-step values: an array, or one step's scalar (the live metrics sink).
Values = npt.ArrayLike


def _a(x: Values) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def import_no_bess_kwh(load_kwh: Values, pv_kwh: Values) -> FloatArray:
    """Grid import of the same site without the battery [kWh per step]: ``max(load − PV, 0)``."""
    return np.maximum(_a(load_kwh) - _a(pv_kwh), 0.0)


def import_avoided_bess_kwh(load_kwh: Values, pv_kwh: Values,
                            grid_import_kwh: Values) -> FloatArray:
    """Grid import the battery avoided [kWh per step] (negative while it charges from what
    would have served a load)."""
    return import_no_bess_kwh(load_kwh, pv_kwh) - _a(grid_import_kwh)


def cost_no_bess(load_kwh: Values, pv_kwh: Values, price_per_kwh: Values) -> FloatArray:
    """Grid cost without the battery (PV only) [currency per step]."""
    return import_no_bess_kwh(load_kwh, pv_kwh) * _a(price_per_kwh)


def cost_all_grid(load_kwh: Values, price_per_kwh: Values) -> FloatArray:
    """Grid cost without PV and battery [currency per step]."""
    return _a(load_kwh) * _a(price_per_kwh)


def savings_bess(load_kwh: Values, pv_kwh: Values, grid_import_kwh: Values,
                 price_per_kwh: Values) -> FloatArray:
    """Saving of the battery against the no-battery counterfactual [currency per step]."""
    return import_avoided_bess_kwh(load_kwh, pv_kwh, grid_import_kwh) * _a(price_per_kwh)


def co2_avoided_bess_kg(load_kwh: Values, pv_kwh: Values, grid_import_kwh: Values,
                        co2_kg_per_kwh: float) -> FloatArray:
    """CO2 the battery avoided against the no-battery counterfactual [kg per step]."""
    return import_avoided_bess_kwh(load_kwh, pv_kwh, grid_import_kwh) * co2_kg_per_kwh


def co2_no_bess_kg(load_kwh: Values, pv_kwh: Values, co2_kg_per_kwh: float) -> FloatArray:
    """CO2 of grid imports without the battery [kg per step]."""
    return import_no_bess_kwh(load_kwh, pv_kwh) * co2_kg_per_kwh


def co2_all_grid_kg(load_kwh: Values, co2_kg_per_kwh: float) -> FloatArray:
    """CO2 if every load came from the grid [kg per step]."""
    return _a(load_kwh) * co2_kg_per_kwh


def co2_avoided_bess_seed_formula_kg(bess_to_loads_kwh: Values,
                                     co2_kg_per_kwh: float) -> FloatArray:
    """The seeds' indirect formula: battery energy into the loads × grid factor [kg per step].

    Not a with-vs-without difference: it also credits the battery for PV it stored that
    would otherwise have served the mall directly.
    """
    return _a(bess_to_loads_kwh) * co2_kg_per_kwh


def cost_savings_hp_seed_formula(bess_to_loads_kwh: Values, is_peak: Values,
                                 peak_price: float | Values, offpeak_price: float) -> FloatArray:
    """The seeds' HP saving: battery energy into the loads in HP × (HP − HFP price)
    [currency per step] (``peak_price`` may be the price per step)."""
    return np.where(_a(is_peak) > 0, _a(bess_to_loads_kwh) * (_a(peak_price) - offpeak_price), 0.0)


def reduction_percent(reference: float, actual: float) -> float:
    """``(reference − actual) / reference × 100`` [%]; 0 when the reference is 0."""
    return (reference - actual) / reference * 100.0 if reference else 0.0


__all__ = [
    "co2_all_grid_kg", "co2_avoided_bess_kg", "co2_avoided_bess_seed_formula_kg",
    "co2_no_bess_kg", "cost_all_grid", "cost_no_bess", "cost_savings_hp_seed_formula",
    "import_avoided_bess_kwh", "import_no_bess_kwh", "reduction_percent", "savings_bess",
]

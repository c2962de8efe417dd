"""The LP's objective evaluated on a finished run (any controller), from its summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.lp.model import Weights


def run_cost(summary: Mapping[str, Any], w: Weights) -> dict[str, float]:
    """Weighted cost of a run [currency] and its parts.

    ``cost = grid energy cost + demand charges of the tariff + co2_price × CO2
    + peak_charge × peak import + unserved_penalty × (EV energy asked − delivered)`` — the
    objective of ``optimal`` (the tariff's fixed charge is left out: no plan changes it).
    """
    energy = float(summary["cost_grid_import_soles"])
    demand = float(summary.get("cost_demand_soles", 0.0))
    co2 = float(summary["co2_emissions_kg"]) * w.co2_price_per_kg
    peak = float(summary["peak_grid_import_kw"]) * w.peak_charge_per_kw
    unserved_kwh = max(float(summary.get("ev_energy_requested_kwh", 0.0))
                       - float(summary.get("ev_energy_delivered_kwh", 0.0)), 0.0)
    unserved = unserved_kwh * w.unserved_penalty_per_kwh
    return {"cost": energy + demand + co2 + peak + unserved, "energy_cost": energy,
            "demand_cost": demand, "co2_cost": co2,
            "peak_cost": peak, "unserved_cost": unserved, "unserved_kwh": unserved_kwh}


__all__ = ["run_cost"]

"""The KPI table printed after a run (``twin run``, ``twin hil``, ``twin show``)."""

from __future__ import annotations

from typing import Any

KPI_ROWS: tuple[tuple[str, str, str, float], ...] = (
    # (summary key, label, unit, scale)
    ("pv_kwh", "PV energy", "MWh", 1e-3),
    ("pv_specific_yield_kwh_per_kwp", "PV specific yield", "kWh/kWp/yr", 1.0),
    ("mall_kwh", "Mall demand", "MWh", 1e-3),
    ("ev_kwh", "EV energy delivered", "MWh", 1e-3),
    ("grid_import_kwh", "Grid import", "MWh", 1e-3),
    ("pv_curtailed_kwh", "PV curtailed", "MWh", 1e-3),
    ("pv_self_consumption", "PV self-consumption", "%", 100.0),
    ("self_sufficiency", "Self-sufficiency", "%", 100.0),
    ("ev_coverage", "EV from PV + BESS", "%", 100.0),
    ("bess_discharge_kwh", "BESS discharge", "MWh", 1e-3),
    ("cycles_per_day", "BESS cycles per day", "1/d", 1.0),
    ("cost_grid_import_soles", "Grid cost", "kPEN", 1e-3),
    ("savings_bess_soles", "Savings from the BESS", "kPEN", 1e-3),
    ("cost_savings_hp_soles", "HP savings (seed formula)", "kPEN", 1e-3),
    ("co2_emissions_kg", "CO2 emitted", "t", 1e-3),
    ("co2_avoided_bess_kg", "CO2 avoided by the BESS", "t", 1e-3),
    ("co2_avoided_bess_seed_formula_kg", "  seed formula (BESS->loads x factor)", "t", 1e-3),
    ("co2_reduction_percent_pv_and_bess", "CO2 reduction by PV + BESS", "%", 1.0),
    ("co2_reduction_percent_bess", "CO2 reduction by the BESS", "%", 1.0),
    ("peak_grid_import_kw", "Peak grid import", "kW", 1.0),
    ("import_limit_exceeded_steps", "  steps above the import limit", "", 1.0),
    ("import_limit_exceeded_kwh", "  energy above the import limit", "MWh", 1e-3),
    ("sessions_total", "EV sessions", "", 1.0),
    ("sessions_satisfied", "  satisfied (full energy)", "", 1.0),
    ("sessions_turned_away", "  turned away", "", 1.0),
    ("sessions_refused_closing", "  refused (too close to closing)", "", 1.0),
    ("capacity_fade_percent", "Capacity fade", "%", 1.0),
    ("safety_clamps_total", "Safety clamps", "", 1.0),
    ("energy_balance_residual_max_kwh", "Max balance residual", "kWh", 1.0),
    ("sim_wall_s", "Simulation wall time", "s", 1.0),
)


def kpi_table(summary: dict[str, Any]) -> str:
    """The short KPI table printed after a run (plain text, aligned)."""
    lines = [f"{summary.get('scenario', '')} · controller {summary.get('controller', '')} · "
             f"seed {summary.get('seed', '')} · {str(summary.get('start', ''))[:10]} + "
             f"{float(summary.get('days', 0) or 0):.0f} d"]
    if summary.get("interrupted"):
        lines.append(f"  *** PARTIAL RUN: interrupted after {summary.get('steps_done', '?')} of "
                     f"{summary.get('n_steps', '?')} steps; the KPIs cover those steps only ***")
        hil = summary.get("hil")
        if isinstance(hil, dict) and hil.get("fault"):
            lines.append(f"  *** HIL fault: {hil['fault']} ***")
    width = max(len(r[1]) for r in KPI_ROWS)
    for key, label, unit, scale in KPI_ROWS:
        if not isinstance(summary.get(key), int | float):
            continue
        if key.startswith("import_limit_") and summary.get("import_limit_kw") is None:
            continue
        v = float(summary[key]) * scale
        if key == "energy_balance_residual_max_kwh":
            txt = f"{v:.1e}"
        elif abs(v) >= 100 or unit == "" or float(v).is_integer():
            txt = f"{v:,.0f}"
        else:
            txt = f"{v:,.2f}"
        lines.append(f"  {label:<{width}}  {txt:>12} {unit}".rstrip())
    return "\n".join(lines)


__all__ = ["KPI_ROWS", "kpi_table"]

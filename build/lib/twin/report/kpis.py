"""The KPI table of the report, built from ``summary.json``.

Every number cell is machine-checkable: it carries the summary key (``data-key``, dotted
for nested values such as ``phase_hours.night_idle``), the raw value (``data-value``), the
display scale (``data-scale``) and the format spec (``data-format``), and shows exactly
``format(raw × scale, spec)``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KpiRow:
    """One table row.

    Attributes
    ----------
    key : summary key (dotted for nested dicts).
    label : row label.
    unit : unit shown after the value ("" for counts; "{cur}" is replaced by the currency).
    scale : factor from the summary's unit to the shown unit (e.g. 1e-3 kWh → MWh).
    fmt : Python format spec of the shown value.
    """

    key: str
    label: str
    unit: str
    scale: float = 1.0
    fmt: str = ",.2f"


def _mwh(key: str, label: str) -> KpiRow:
    return KpiRow(key, label, "MWh", 1e-3, ",.1f")


def _pct(key: str, label: str) -> KpiRow:
    """A fraction (0-1) shown in percent."""
    return KpiRow(key, label, "%", 100.0, ".1f")


def _kcur(key: str, label: str) -> KpiRow:
    return KpiRow(key, label, "k{cur}", 1e-3, ",.1f")


def _tonne(key: str, label: str) -> KpiRow:
    return KpiRow(key, label, "t", 1e-3, ",.1f")


def _count(key: str, label: str) -> KpiRow:
    return KpiRow(key, label, "", 1.0, ",.0f")


#: Sections of the KPI table: (title, rows).
KPI_SECTIONS: tuple[tuple[str, tuple[KpiRow, ...]], ...] = (
    ("Energy", (
        _mwh("pv_kwh", "PV generation"),
        KpiRow("pv_specific_yield_kwh_per_kwp", "PV specific yield", "kWh/kWp/yr", 1.0, ",.0f"),
        _mwh("mall_kwh", "Mall demand"),
        _mwh("ev_kwh", "EV energy delivered"),
        _mwh("load_kwh", "Total load (mall + EV)"),
        _mwh("grid_import_kwh", "Grid import"),
        _mwh("grid_export_kwh", "Grid export"),
        _mwh("pv_curtailed_kwh", "PV curtailed"),
        _mwh("bess_charge_kwh", "BESS charge"),
        _mwh("bess_discharge_kwh", "BESS discharge"),
    )),
    ("Performance", (
        _pct("self_sufficiency", "Self-sufficiency"),
        _pct("pv_self_consumption", "PV self-consumption"),
        _pct("ev_coverage", "EV energy from PV + BESS"),
        _pct("ev_coverage_bess", "EV energy from the BESS"),
    )),
    ("Battery", (
        KpiRow("capacity_kwh", "Capacity", "kWh", 1.0, ",.0f"),
        KpiRow("nominal_power_kw", "Nominal power", "kW", 1.0, ",.0f"),
        _pct("dod", "Depth of discharge"),
        _pct("eta_roundtrip", "Round-trip efficiency"),
        KpiRow("cycles_per_day", "Equivalent cycles per day", "1/d", 1.0, ".3f"),
        KpiRow("soc_min_percent", "SOC minimum", "%", 1.0, ".1f"),
        KpiRow("soc_mean_percent", "SOC mean", "%", 1.0, ".1f"),
        KpiRow("soc_max_percent", "SOC maximum", "%", 1.0, ".1f"),
        KpiRow("capacity_fade_percent", "Capacity fade", "%", 1.0, ".3f"),
    )),
    ("Cost", (
        _kcur("cost_baseline_soles", "Cost without PV and BESS"),
        _kcur("cost_pv_only_soles", "Cost without the BESS (PV only)"),
        _kcur("cost_grid_import_soles", "Cost with PV + BESS"),
        _kcur("savings_bess_soles", "Savings from the BESS"),
        _kcur("savings_total_soles", "Savings from PV + BESS"),
        _kcur("cost_savings_hp_soles", "HP savings (seed formula)"),
    )),
    ("CO₂", (
        _tonne("co2_baseline_kg", "CO₂ if all from the grid"),
        _tonne("co2_emissions_kg", "CO₂ emitted (grid import)"),
        _tonne("co2_no_bess_kg", "CO₂ without the BESS (PV only)"),
        _tonne("co2_avoided_kg", "CO₂ avoided by PV + BESS"),
        KpiRow("co2_reduction_percent_pv_and_bess", "CO₂ reduction by PV + BESS (vs all-grid)",
               "%", 1.0, ".1f"),
        _tonne("co2_avoided_bess_kg", "CO₂ avoided by the BESS (vs PV only)"),
        KpiRow("co2_reduction_percent_bess", "CO₂ reduction by the BESS (vs PV only)", "%", 1.0,
               ".1f"),
        _tonne("co2_avoided_bess_seed_formula_kg",
               "CO₂ avoided by the BESS (seed formula: BESS→loads × factor)"),
    )),
    ("Grid", (
        KpiRow("peak_grid_import_kw", "Peak grid import", "kW", 1.0, ",.0f"),
        _count("reverse_flow_cuts", "Reverse-flow cuts"),
    )),
    ("EV sessions", (
        _count("sessions_total", "Sessions (arrivals)"),
        _count("sessions_served", "Served (plugged in)"),
        _count("sessions_satisfied", "Satisfied (full energy)"),
        _pct("sessions_satisfied_share", "Satisfied share"),
        _count("sessions_turned_away", "Turned away (no socket)"),
        _count("sessions_refused_closing", "Refused (too close to closing)"),
        _count("sessions_unfinished", "Unfinished at the end"),
        _mwh("ev_energy_requested_kwh", "EV energy requested"),
        _mwh("ev_energy_delivered_kwh", "EV energy delivered"),
        KpiRow("wait_mean_min", "Mean wait for a socket", "min", 1.0, ".2f"),
        KpiRow("wait_p95_min", "95th-percentile wait", "min", 1.0, ".2f"),
    )),
    ("Controller and safety", (
        _count("safety_clamps_total", "Safety clamps"),
        KpiRow("energy_balance_residual_max_kwh", "Max energy-balance residual", "kWh", 1.0,
               ".1e"),
        KpiRow("sim_wall_s", "Simulation wall time", "s", 1.0, ".2f"),
    )),
)

#: Run identity shown above the KPI table: (key, label).
RUN_FIELDS: tuple[tuple[str, str], ...] = (
    ("scenario", "Scenario"), ("site", "Site"), ("controller", "Controller"), ("seed", "Seed"),
    ("start", "Start"), ("end", "End"), ("days", "Days"), ("dt_s", "Step [s]"),
)


def lookup(summary: dict[str, Any], key: str) -> Any:
    """``summary[key]`` with dotted keys reaching into nested dicts; None when absent."""
    cur: Any = summary
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def number(summary: dict[str, Any], key: str) -> float | None:
    """The finite number at ``key``, else None."""
    v = lookup(summary, key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def phase_rows(summaries: Sequence[dict[str, Any]]) -> tuple[KpiRow, ...]:
    """One row per controller phase found in ``phase_hours`` of any summary [h]."""
    names: list[str] = []
    for s in summaries:
        ph = s.get("phase_hours")
        if isinstance(ph, dict):
            names += [n for n in ph if n not in names and "." not in n]
    return tuple(KpiRow(f"phase_hours.{n}", f"Hours in phase {n}", "h", 1.0, ",.2f")
                 for n in names)


def cell(summary: dict[str, Any], row: KpiRow, run_index: int | None = None) -> str:
    """The ``<td>`` of one value ("–" when the summary lacks it)."""
    v = number(summary, row.key)
    run_attr = f' data-run="{run_index}"' if run_index is not None else ""
    if v is None:
        return f'<td class="num missing"{run_attr}>–</td>'
    shown = format(v * row.scale, row.fmt)
    return (f'<td class="num" data-key="{html.escape(row.key)}" data-value="{v!r}" '
            f'data-scale="{row.scale!r}" data-format="{html.escape(row.fmt)}"{run_attr}>'
            f"{html.escape(shown)}</td>")


def kpi_table(summaries: Sequence[dict[str, Any]], headers: Sequence[str] | None = None) -> str:
    """The KPI table as HTML: one value column per summary.

    Parameters
    ----------
    summaries : one ``summary.json`` dict per run.
    headers : column titles (run labels); omitted for a single run.
    """
    multi = len(summaries) > 1
    cur = str(summaries[0].get("currency", "PEN"))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (headers or []))
    out = ['<table class="kpi" id="kpi-table">',
           f"<thead><tr><th>KPI</th>{head if multi else '<th>Value</th>'}<th>Unit</th>"
           "</tr></thead><tbody>"]
    sections = (*KPI_SECTIONS, ("Controller phases", phase_rows(summaries)))
    for title, rows in sections:
        present = [r for r in rows if any(number(s, r.key) is not None for s in summaries)]
        if not present:
            continue
        out.append(f'<tr class="section"><th colspan="{len(summaries) + 2}">'
                   f"{html.escape(title)}</th></tr>")
        for r in present:
            cells = "".join(cell(s, r, i if multi else None) for i, s in enumerate(summaries))
            unit = r.unit.replace("{cur}", cur)
            out.append(f"<tr><td>{html.escape(r.label)}</td>{cells}"
                       f'<td class="unit">{html.escape(unit)}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def run_table(summaries: Sequence[dict[str, Any]], headers: Sequence[str] | None = None) -> str:
    """The run identity (scenario, site, controller, seed, start, horizon) as HTML."""
    multi = len(summaries) > 1
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (headers or [])) if multi else ""
    out = ['<table class="runinfo" id="run-table">']
    if multi:
        out.append(f"<thead><tr><th></th>{head}</tr></thead>")
    out.append("<tbody>")
    for key, label in RUN_FIELDS:
        vals = [s.get(key) for s in summaries]
        if all(v is None for v in vals):
            continue
        cells = "".join(f'<td data-key="{key}">{html.escape("" if v is None else str(v))}</td>'
                        for v in vals)
        out.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)

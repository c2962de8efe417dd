"""The KPI table printed after a run (``twin run``, ``twin hil``, ``twin show``).

Its rows are the ``table`` rows of the KPI catalogue (:mod:`twin.kpi_catalogue`).
"""

from __future__ import annotations

from typing import Any

from twin import kpi_catalogue
from twin.kpi_catalogue import Kpi, unit_text


def _value_text(row: Kpi, v: float, unit: str) -> str:
    """A shown value: the row's format when it is scientific, else whole numbers from 100."""
    if row.fmt.endswith("e"):
        return format(v, row.fmt)
    if abs(v) >= 100 or unit == "" or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}"


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
    rows = kpi_catalogue.rows("table")
    width = max(len(r.table_label) for r in rows)
    for row in rows:
        if not _is_number(summary.get(row.key)):
            continue
        if row.requires is not None and not _is_number(summary.get(row.requires)):
            continue
        v = float(summary[row.key]) * row.scale
        unit = unit_text(row.display_unit, summary.get("currency"))
        lines.append(f"  {row.table_label:<{width}}  {_value_text(row, v, unit):>12} {unit}".rstrip())
    lines.extend(battery_lines(summary))
    return "\n".join(lines)


def battery_lines(summary: dict[str, Any]) -> list[str]:
    """One line per battery of a site with two or more (``summary['batteries']``)."""
    units = summary.get("batteries")
    if not isinstance(units, list):
        return []
    out = ["  Per battery"]
    for u in units:
        if not isinstance(u, dict):
            continue
        try:
            out.append(
                f"    {u['name']} ({u['capacity_kwh']:,.0f} kWh / {u['p_discharge_max_kw']:,.0f} kW): "
                f"charge {u['bess_charge_kwh'] / 1000:,.2f} MWh, discharge "
                f"{u['bess_discharge_kwh'] / 1000:,.2f} MWh, SOC {u['soc_min_percent']:.0f}-"
                f"{u['soc_max_percent']:.0f} % (mean {u['soc_mean_percent']:.0f} %), "
                f"{u['equivalent_full_cycles']:.2f} EFC, fade {u['capacity_fade_percent']:.2f} %")
        except (KeyError, TypeError, ValueError):
            continue  # a damaged entry is not shown
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


__all__ = ["battery_lines", "kpi_table"]

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
    return "\n".join(lines)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


__all__ = ["kpi_table"]

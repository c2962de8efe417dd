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

from twin import kpi_catalogue
from twin.kpi_catalogue import Kpi, unit_text


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
    requires : shown only for a summary holding a number at this key (None: always).
    """

    key: str
    label: str
    unit: str
    scale: float = 1.0
    fmt: str = ",.2f"
    requires: str | None = None

    def shown(self, summary: dict[str, Any]) -> bool:
        """Whether ``summary`` has a value for this row."""
        return number(summary, self.key) is not None and (
            self.requires is None or number(summary, self.requires) is not None)


def _row(k: Kpi) -> KpiRow:
    return KpiRow(k.key, k.label, k.display_unit, k.scale, k.fmt, k.requires)


def kpi_sections() -> tuple[tuple[str, tuple[KpiRow, ...]], ...]:
    """Sections of the KPI table: (title, rows), from the ``report`` rows of the KPI
    catalogue (:mod:`twin.kpi_catalogue`) in its order, grouped by section."""
    sections: dict[str, list[KpiRow]] = {}
    for k in kpi_catalogue.rows("report"):
        sections.setdefault(k.section, []).append(_row(k))
    return tuple((title, tuple(rs)) for title, rs in sections.items())


#: Run identity shown above the KPI table: (key, label).
RUN_FIELDS: tuple[tuple[str, str], ...] = (
    ("scenario", "Scenario"), ("site", "Site"), ("controller", "Controller"), ("seed", "Seed"),
    ("start", "Start"), ("end", "End"), ("days", "Days"), ("dt_s", "Step [s]"),
)


def lookup(summary: dict[str, Any], key: str) -> Any:
    """``summary[key]`` with dotted keys reaching into nested dicts (and, by a number, into
    lists: ``batteries.0.capacity_kwh``); None when absent."""
    cur: Any = summary
    for part in key.split("."):
        if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return None
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
    cur = summaries[0].get("currency")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (headers or []))
    out = ['<table class="kpi" id="kpi-table">',
           f"<thead><tr><th>KPI</th>{head if multi else '<th>Value</th>'}<th>Unit</th>"
           "</tr></thead><tbody>"]
    sections = (*kpi_sections(), ("Controller phases", phase_rows(summaries)))
    for title, rows in sections:
        present = [r for r in rows if any(r.shown(s) for s in summaries)]
        if not present:
            continue
        out.append(f'<tr class="section"><th colspan="{len(summaries) + 2}">'
                   f"{html.escape(title)}</th></tr>")
        for r in present:
            cells = "".join(cell(s, r, i if multi else None) for i, s in enumerate(summaries))
            unit = unit_text(r.unit, cur)
            out.append(f"<tr><td>{html.escape(r.label)}</td>{cells}"
                       f'<td class="unit">{html.escape(unit)}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def battery_table(summary: dict[str, Any]) -> str:
    """The per-battery KPIs of a site with two or more batteries (``summary["batteries"]``)
    as HTML, one column per battery, rows from
    :data:`twin.kpi_catalogue.BATTERY_CATALOGUE` (``report`` rows); "" without them."""
    units = summary.get("batteries")
    if not isinstance(units, list) or not units or not all(isinstance(u, dict) for u in units):
        return ""
    head = "".join(f"<th>{html.escape(str(u.get('name', i)))}</th>" for i, u in enumerate(units))
    out = ['<table class="kpi" id="battery-table">',
           f"<thead><tr><th>Battery</th>{head}<th>Unit</th></tr></thead><tbody>"]
    for k in kpi_catalogue.BATTERY_CATALOGUE:
        if "report" not in k.views:
            continue
        rows = [KpiRow(f"batteries.{i}.{k.key}", k.label, k.display_unit, k.scale, k.fmt)
                for i in range(len(units))]
        if not any(r.shown(summary) for r in rows):
            continue
        cells = "".join(cell(summary, r) for r in rows)
        unit = unit_text(k.display_unit, summary.get("currency"))
        out.append(f"<tr><td>{html.escape(k.label)}</td>{cells}"
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

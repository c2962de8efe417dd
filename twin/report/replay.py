"""The replay comparison: what the site did, the twin on its battery, and a controller.

Three columns of one KPI table (terminal text and an HTML page): ``site (measured)`` —
computed from the measured series and the session log with the twin's tariff and CO2
factor; ``twin, as measured`` — the twin played the measured battery power (its model
error is the gap to the first column); ``twin, CONTROLLER`` — the counterfactual. The
difference column is controller − site.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Rows of the comparison: (summary key, label, unit, scale to the shown unit, format).
ROWS: tuple[tuple[str, str, str, float, str], ...] = (
    ("grid_import_kwh", "Grid import", "MWh", 1e-3, ",.3f"),
    ("cost_grid_import_soles", "Grid energy cost", "{cur}", 1.0, ",.0f"),
    ("cost_total_soles", "Grid bill (energy + demand + fixed)", "{cur}", 1.0, ",.0f"),
    ("co2_emissions_kg", "CO2 emitted (grid import)", "t", 1e-3, ",.3f"),
    ("peak_grid_import_kw", "Peak grid import (tick mean)", "kW", 1.0, ",.0f"),
    ("bess_discharge_kwh", "Battery discharge", "MWh", 1e-3, ",.3f"),
    ("bess_charge_kwh", "Battery charge", "MWh", 1e-3, ",.3f"),
    ("soc_end_percent", "SOC at the end", "%", 1.0, ".1f"),
    ("sessions_total", "EV sessions (arrivals)", "", 1.0, ",.0f"),
    ("ev_energy_delivered_kwh", "EV energy delivered", "MWh", 1e-3, ",.3f"),
    ("pv_kwh", "PV energy", "MWh", 1e-3, ",.3f"),
    ("mall_kwh", "Mall demand", "MWh", 1e-3, ",.3f"),
)


def _cell(v: Any, scale: float, fmt: str) -> str:
    if v is None or not isinstance(v, int | float) or not np.isfinite(v):
        return "–"
    return format(v * scale, fmt)


def table_rows(columns: Sequence[Mapping[str, Any]], currency: str) -> list[list[str]]:
    """The comparison as text cells: label [unit], one cell per column, last − first."""
    out = []
    for key, label, unit, scale, fmt in ROWS:
        u = unit.replace("{cur}", currency)
        vals = [c.get(key) for c in columns]
        cells = [_cell(v, scale, fmt) for v in vals]
        a, b = vals[0], vals[-1]
        diff = (_cell(b - a, scale, "+" + fmt) if isinstance(a, int | float)
                and isinstance(b, int | float) else "–")
        out.append([f"{label} [{u}]" if u else label, *cells, diff])
    return out


def text_table(headers: Sequence[str], columns: Sequence[Mapping[str, Any]],
               currency: str) -> str:
    """The comparison for the terminal (aligned columns)."""
    rows = [["KPI", *headers, f"{headers[-1]} − {headers[0]}"],
            *table_rows(columns, currency)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                               for i, c in enumerate(r)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def html_table(headers: Sequence[str], columns: Sequence[Mapping[str, Any]],
               currency: str) -> str:
    """The comparison as an HTML table."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in
                   ["KPI", *headers, f"{headers[-1]} − {headers[0]}"])
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                   for r in table_rows(columns, currency))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(series: pd.DataFrame, headers: Sequence[str]) -> list[Any]:
    """Grid import and SOC over time, one line per column."""
    from twin.report.html import RenderedFigure
    from twin.report.style import TALL, new_figure, report_style

    with report_style():
        fig, axes = new_figure(TALL, nrows=2, sharex=True)
        t = pd.DatetimeIndex(series["timestamp"])
        for i, (h, sfx) in enumerate(zip(headers, ("measured", "as_measured", "controller"),
                                         strict=False)):
            style = {"lw": 1.4 if i == 0 else 1.0, "ls": "-" if i != 1 else "--"}
            col = f"p_grid_kw_{sfx}"
            if col in series:
                axes[0].plot(t, series[col], label=h, **style)
            col = f"soc_percent_{sfx}"
            if col in series and series[col].notna().any():
                axes[1].plot(t, series[col], label=h, **style)
        axes[0].set_ylabel("grid import [kW]")
        axes[1].set_ylabel("SOC [%]")
        axes[0].legend(loc="upper left", fontsize=9)
        fig.suptitle("Grid import and battery SOC: the site and the twin")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return [RenderedFigure("01_replay_grid_soc", "Replay", "Grid import and SOC",
                           "Measured (site), the twin on the measured battery power, and the "
                           "counterfactual controller, at the twin's tick.", buf.getvalue())]


def page(title: str, subtitle: str, headers: Sequence[str],
         columns: Sequence[Mapping[str, Any]], currency: str, series: pd.DataFrame,
         notes: Sequence[str] = (), warnings: Sequence[str] = ()) -> str:
    """The replay page (self-contained HTML)."""
    from twin.report.html import render_page

    return render_page(title, subtitle, [("Site vs twin", html_table(headers, columns, currency))],
                       _figures(series, headers), notes=list(notes), warnings=list(warnings))


__all__ = ["ROWS", "html_table", "page", "table_rows", "text_table"]

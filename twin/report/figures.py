"""The single-run figures: one function per figure, each ``f(run) -> Figure``.

Energies are shown in MWh (sums) or kW (mean power over a step or an hour), costs in
thousands of the site's currency (``summary["currency"]``), CO2 in tonnes.
:data:`FIGURES` lists them in report order with the file stem, the section and a caption
used by the HTML page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import BoundaryNorm, ListedColormap, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from twin.kpi_catalogue import SESSION_OUTCOMES, outcome_counts, unit_text
from twin.report import aggregate as agg
from twin.report.load import RunData
from twin.report.sankey import Flow, draw_sankey
from twin.report.style import (
    COLORS,
    HP_SHADE,
    TALL,
    WIDE,
    date_axis,
    empty_note,
    legend_below,
    new_figure,
    thousands,
)

MWH = 1e-3  # kWh → MWh
K_CUR = 1e-3  # currency → thousands
T = 1e-3  # kg → t
#: Colours of the vehicle classes, by their position in the site file (``ev.vehicles``).
VEHICLE_PALETTE: tuple[str, ...] = (COLORS["ev"], COLORS["accent"], COLORS["bess"], COLORS["pv"],
                                    COLORS["mall"], COLORS["export"], "#A8DADC", "#6C757D")


# ---------------------------------------------------------------- helpers


def _naive(t: pd.Series | pd.Index) -> pd.DatetimeIndex:
    """Local wall-clock times without the zone (matplotlib would plot them in UTC)."""
    idx = pd.DatetimeIndex(t)
    return idx.tz_localize(None) if idx.tz is not None else idx


def _subtitle(run: RunData) -> str:
    s = run.summary
    return (f"{s.get('site', '')} · {s.get('scenario', '')} · controller "
            f"{s.get('controller', '')} · seed {s.get('seed', '')} · {str(s['start'])[:10]} "
            f"+ {run.days:.4g} d")


def _title(fig: Figure, title: str, run: RunData) -> None:
    # the blank second line of the title reserves room (constrained layout) for the subtitle
    fig.suptitle(f"{title}\n", fontsize=13, fontweight="bold")
    fig.text(0.5, 1.0, _subtitle(run), ha="center", va="top", fontsize=9, color="#555555",
             transform=fig.transFigure + ScaledTranslation(0, -20 / 72, fig.dpi_scale_trans))


def _bars_stacked(ax: Axes, x: np.ndarray, layers: list[tuple[str, np.ndarray, str]],
                  width: float, bottom0: np.ndarray | None = None) -> np.ndarray:
    bottom = np.zeros(len(x)) if bottom0 is None else bottom0.copy()
    for label, vals, color in layers:
        ax.bar(x, vals, width, bottom=bottom, label=label, color=color, edgecolor="white",
               linewidth=0.4)
        bottom = bottom + vals
    return bottom


def _stack_steps(ax: Axes, t: pd.DatetimeIndex, layers: list[tuple[str, np.ndarray, str]]) -> None:
    """Stacked areas drawn as steps (each value holds for its whole step)."""
    base = np.zeros(len(t))
    for label, vals, color in layers:
        top = base + vals
        ax.fill_between(t, base, top, step="post", color=color, alpha=0.85, label=label,
                        linewidth=0)
        base = top


def _is_peak(run: RunData, d: pd.DataFrame) -> np.ndarray:
    """True on the steps of ``d`` in the site's most expensive tariff period(s)."""
    return d["tariff_period"].isin(run.peak_tariff_periods).to_numpy()


def _peak_patch(run: RunData) -> Patch:
    """Legend entry of the shading by :func:`_shade_hp`: the site's own period name(s)."""
    return Patch(color=HP_SHADE, label=f"Peak tariff ({', '.join(run.peak_tariff_periods)})")


def _shade_hp(ax: Axes, t: pd.DatetimeIndex, is_hp: np.ndarray, dt: pd.Timedelta) -> None:
    """Shade the intervals of the site's most expensive tariff period (:func:`_is_peak`)."""
    if not is_hp.any():
        return
    edges = np.diff(np.concatenate([[0], is_hp.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    x = _edges(t, dt)
    for a, b in zip(starts, ends, strict=True):
        ax.axvspan(float(x[a]), float(x[b]), color=HP_SHADE, zorder=0, linewidth=0)


def _edges(t: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """Bin edges (matplotlib date numbers): the times ``t`` plus one ``step`` after the last."""
    return np.asarray(mdates.date2num(t.append(pd.DatetimeIndex([t[-1] + step])).to_numpy()))


def _day_edges(t: pd.DatetimeIndex) -> np.ndarray:
    """Bin edges (matplotlib date numbers) of consecutive days starting at ``t``."""
    return _edges(t, pd.Timedelta(days=1))


def _day_bars(ax: Axes, t: pd.DatetimeIndex, values: np.ndarray, color: str, label: str,
              baseline: np.ndarray | float = 0.0) -> None:
    """Per-day bars drawn as one filled step outline (fast for a year of days)."""
    ax.stairs(np.asarray(values, dtype=float) + baseline, _day_edges(t), baseline=baseline,
              fill=True, color=color, label=label)


def _period_axis(ax: Axes, labels: list[str], n: int, flat_up_to: int = 12) -> np.ndarray:
    """Category x positions 0..n-1 with ``labels``; rotated when more than ``flat_up_to``."""
    x = np.arange(n, dtype=float)
    ax.set_xticks(x)
    flat = n <= flat_up_to
    ax.set_xticklabels(labels, rotation=0 if flat else 45, ha="center" if flat else "right")
    ax.set_xlim(-0.6, n - 0.4)
    return x


def _phase_order(run: RunData) -> list[str]:
    names = run.summary.get("phase_names")
    present = list(dict.fromkeys(run.ts["phase_name"].tolist()))
    if isinstance(names, dict):
        try:
            ordered = [str(names[k]) for k in sorted(names, key=lambda k: int(k))]
        except (TypeError, ValueError):
            ordered = [str(v) for v in names.values()]
        return [n for n in ordered if n in present] + [n for n in present if n not in ordered]
    return sorted(present)


def _phase_colors(order: list[str]) -> dict[str, str]:
    palette = ["#F4A300", "#2A9D8F", "#8AB17D", "#E76F51", "#7B2CBF", "#264653", "#E9C46A",
               "#A8DADC", "#D62828", "#6C757D"]
    return {n: palette[i % len(palette)] for i, n in enumerate(order)}


def _period_title(period: agg.Period) -> str:
    return f"per {period.noun}"


# ---------------------------------------------------------------- energy balance


def _tz_name(run: RunData) -> str:
    """The site's time zone, as the run's timestamps carry it."""
    tz = pd.DatetimeIndex(run.ts["timestamp"]).tz
    return str(getattr(tz, "key", None) or tz or "UTC")


def fig_annual_balance(run: RunData) -> Figure:
    """Supply (PV, BESS discharge, grid) next to use (mall, EV, BESS charge, curtailment)."""
    period = agg.period_of(run)
    p = agg.by_period(run, period.freq)
    fig, (ax, ax2) = new_figure(TALL, nrows=2, height_ratios=[3, 1.3])
    x = _period_axis(ax, agg.period_labels(pd.DatetimeIndex(p.index), period), len(p))
    w = 0.38
    _bars_stacked(ax, x - w / 2 - 0.01, [
        ("PV generation", p["pv_kwh"].to_numpy() * MWH, COLORS["pv"]),
        ("BESS discharge", p["bess_discharge_kwh"].to_numpy() * MWH, COLORS["bess"]),
        ("Grid import", p["grid_import_kwh"].to_numpy() * MWH, COLORS["grid"]),
    ], w)
    _bars_stacked(ax, x + w / 2 + 0.01, [
        ("Mall demand", p["mall_kwh"].to_numpy() * MWH, COLORS["mall"]),
        ("EV charging", p["ev_kwh"].to_numpy() * MWH, COLORS["ev"]),
        ("BESS charge", p["bess_charge_kwh"].to_numpy() * MWH, COLORS["bess_charge"]),
        ("PV curtailed", p["pv_curtailed_kwh"].to_numpy() * MWH, COLORS["curtailed"]),
        ("Grid export", p["grid_export_kwh"].to_numpy() * MWH, COLORS["export"]),
    ], w)
    ax.set_ylabel(f"Energy {_period_title(period)} [MWh]")
    ax.set_title(f"Left bar: supply · right bar: use ({_period_title(period)})", fontsize=10,
                 fontweight="normal")
    thousands(ax)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    tot = p.sum()
    sup = [("PV", tot["pv_kwh"], COLORS["pv"]), ("BESS", tot["bess_discharge_kwh"], COLORS["bess"]),
           ("Grid", tot["grid_import_kwh"], COLORS["grid"])]
    use = [("Mall", tot["mall_kwh"], COLORS["mall"]), ("EV", tot["ev_kwh"], COLORS["ev"]),
           ("BESS ch.", tot["bess_charge_kwh"], COLORS["bess_charge"]),
           ("Curtailed", tot["pv_curtailed_kwh"], COLORS["curtailed"]),
           ("Export", tot["grid_export_kwh"], COLORS["export"])]
    total = max(sum(v for _, v, _ in sup), 1e-9)
    for row, parts in ((1, sup), (0, use)):
        left = 0.0
        for name, v, color in parts:
            mwh = v * MWH
            ax2.barh(row, mwh, left=left, color=color, edgecolor="white", height=0.6)
            if v / total > 0.06:
                ax2.text(left + mwh / 2, row, f"{name}\n{mwh:,.0f}", ha="center", va="center",
                         fontsize=8, color="white")
            left += mwh
    ax2.set_yticks([1, 0])
    ax2.set_yticklabels(["Supply", "Use"])
    ax2.set_xlabel(f"Total over the run [MWh] (supply {sum(v for _, v, _ in sup) * MWH:,.0f} "
                   f"MWh = use {sum(v for _, v, _ in use) * MWH:,.0f} MWh)")
    thousands(ax2, "x")
    ax2.grid(axis="y", visible=False)
    _title(fig, "Energy balance of the site", run)
    return fig


def fig_profile_5days(run: RunData) -> Figure:
    """Five days of supply to the loads (stacked) against load and PV, with the SOC."""
    d = agg.first_days(run, 5)
    t = _naive(d["timestamp"])
    k = 1.0 / run.dt_h
    fig, (ax, ax2) = new_figure(TALL, nrows=2, sharex=True, height_ratios=[3, 1.2])
    dt = pd.Timedelta(hours=run.dt_h)
    _shade_hp(ax, t, _is_peak(run, d), dt)
    _stack_steps(ax, t, [
        ("PV → loads", (d["pv_to_ev_kwh"] + d["pv_to_mall_kwh"]).to_numpy() * k, COLORS["pv"]),
        ("BESS → loads", (d["bess_to_ev_kwh"] + d["bess_to_mall_kwh"]).to_numpy() * k,
         COLORS["bess"]),
        ("Grid → loads", (d["grid_import_ev_kwh"] + d["grid_import_mall_kwh"]).to_numpy() * k,
         COLORS["grid"]),
    ])
    ax.step(t, d["load_kwh"].to_numpy() * k, where="post", color="black", lw=1.2,
            label="Load (mall + EV)")
    ax.step(t, d["pv_kwh"].to_numpy() * k, where="post", color="#B07000", lw=1.2, ls="--",
            label="PV generation")
    ax.step(t, d["ev_kwh"].to_numpy() * k, where="post", color=COLORS["ev"], lw=1.0,
            label="EV charging")
    ax.set_ylabel("Power [kW]")
    thousands(ax)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(_peak_patch(run))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax2.step(t, d["soc_percent"].to_numpy(), where="post", color=COLORS["soc"], lw=1.3)
    ax2.set_ylabel("SOC [%]")
    ax2.set_ylim(0, 105)
    date_axis(ax2, 5)
    ax2.set_xlabel(f"Local time ({_tz_name(run)})")
    _title(fig, f"{min(5.0, run.days):g}-day profile: sources vs loads", run)
    return fig


def _daily_panel(ax: Axes, prof: pd.DataFrame, name: str) -> None:
    h = prof["hour"].to_numpy()
    _bars_stacked(ax, h, [
        ("PV → loads", (prof["pv_to_ev_kwh"] + prof["pv_to_mall_kwh"]).to_numpy(), COLORS["pv"]),
        ("BESS → loads", (prof["bess_to_ev_kwh"] + prof["bess_to_mall_kwh"]).to_numpy(),
         COLORS["bess"]),
        ("Grid → loads", (prof["grid_import_ev_kwh"] + prof["grid_import_mall_kwh"]).to_numpy(),
         COLORS["grid"]),
    ], 0.85)
    ax.plot(h, (prof["ev_kwh"] + prof["mall_kwh"]).to_numpy(), color="black", lw=1.4,
            marker="o", ms=3, label="Load (mall + EV)")
    ax.plot(h, prof["pv_kwh"].to_numpy(), color="#B07000", lw=1.4, ls="--",
            label="PV generation")
    ax.plot(h, -prof["bess_charge_kwh"].to_numpy(), color=COLORS["bess_charge"], lw=0,
            marker="s", ms=4, label="BESS charge (shown < 0)")
    ax.bar(h, -prof["bess_charge_kwh"].to_numpy(), 0.85, color=COLORS["bess_charge"])
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("Hour of day (local)")
    ax.set_xticks(range(0, 24, 2))
    thousands(ax)
    ax2 = ax.twinx()
    ax2.plot(h, prof["soc_percent"].to_numpy(), color=COLORS["soc"], lw=1.5, ls=":",
             label="SOC (right axis)")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("SOC [%]")
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)


def fig_typical_day(run: RunData) -> Figure:
    """Mean 24-hour profile (weekday and weekend) from ``daily_profile.csv``."""
    types = [t for t in ("weekday", "weekend") if (run.daily["day_type"] == t).any()]
    if len(types) < 2:
        types = ["all"]
    fig, axes = new_figure(WIDE, ncols=len(types), sharey=True, squeeze=False)
    names = {"weekday": "Weekdays (Mon-Fri)", "weekend": "Weekends (Sat-Sun)", "all": "All days"}
    for ax, dtp in zip(axes[0], types, strict=True):
        prof = run.daily[run.daily["day_type"] == dtp].sort_values("hour")
        _daily_panel(ax, prof, names[dtp])
    axes[0][0].set_ylabel("Mean power [kW] (= kWh per hour)")
    h1, l1 = axes[0][0].get_legend_handles_labels()
    h2, l2 = axes[0][-1].figure.axes[-1].get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, loc="outside lower center", ncol=6, frameon=False)
    _title(fig, "Typical day: sources vs loads", run)
    return fig


def fig_source_split(run: RunData) -> Figure:
    """Where the EV and mall energy comes from (PV, BESS, grid)."""
    s = run.ts
    fig, (ax, ax2) = new_figure(WIDE, ncols=2, width_ratios=[1.1, 1])
    rows = [("EV charging", ("pv_to_ev_kwh", "bess_to_ev_kwh", "grid_import_ev_kwh")),
            ("Mall", ("pv_to_mall_kwh", "bess_to_mall_kwh", "grid_import_mall_kwh"))]
    names = ("PV", "BESS", "Grid")
    colors = (COLORS["pv"], COLORS["bess"], COLORS["grid"])
    for i, (_, cols) in enumerate(rows):
        vals = np.array([float(s[c].sum()) for c in cols])
        tot = vals.sum()
        left = 0.0
        for name, v, color in zip(names, vals, colors, strict=True):
            share = v / tot * 100 if tot > 0 else 0.0
            ax.barh(i, share, left=left, color=color, edgecolor="white", height=0.55,
                    label=name if i == 0 else None)
            if share >= 7:
                ax.text(left + share / 2, i, f"{share:.1f} %\n{v * MWH:,.0f} MWh", ha="center",
                        va="center", fontsize=9, color="white")
            left += share
        ax.text(101, i, f"{tot * MWH:,.0f} MWh", va="center", fontsize=9)
    ax.set_yticks([0, 1])
    ax.set_yticklabels([r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 118)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("Share of the load's energy [%]")
    ax.grid(axis="y", visible=False)
    ax.set_title("Over the whole run", fontsize=10)
    legend_below(ax, ncol=3)
    period = agg.period_of(run)
    p = agg.by_period(run, period.freq)
    x = _period_axis(ax2, agg.period_labels(pd.DatetimeIndex(p.index), period), len(p), 7)
    ev = p["ev_kwh"].to_numpy()
    ev_safe = np.where(ev > 0, ev, 1.0)
    _bars_stacked(ax2, x, [
        ("PV", p["pv_to_ev_kwh"].to_numpy() / ev_safe * 100, COLORS["pv"]),
        ("BESS", p["bess_to_ev_kwh"].to_numpy() / ev_safe * 100, COLORS["bess"]),
        ("Grid", p["grid_import_ev_kwh"].to_numpy() / ev_safe * 100, COLORS["grid"]),
    ], 0.7)
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("Share of EV energy [%]")
    ax2.set_title(f"EV charging sources {_period_title(period)}", fontsize=10)
    _title(fig, "Source split: PV, BESS and grid for EV and mall", run)
    return fig


def fig_energy_cascade(run: RunData) -> Figure:
    """Sankey of PV → EV/BESS/mall/curtailed, BESS → EV/mall, grid → EV/mall/BESS."""
    s = {c: float(run.ts[c].sum()) * MWH for c in run.ts.columns
         if c.endswith("_kwh") and c != "soc_kwh"}
    flows = [
        Flow("PV", "EV", s["pv_to_ev_kwh"], COLORS["pv"]),
        Flow("PV", "BESS", s["pv_to_bess_kwh"], COLORS["pv"]),
        Flow("PV", "Mall", s["pv_to_mall_kwh"], COLORS["pv"]),
        Flow("PV", "Curtailed", s["pv_curtailed_kwh"], COLORS["pv"]),
        Flow("PV", "Export", s["pv_export_kwh"], COLORS["pv"]),
        Flow("Grid", "EV", s["grid_import_ev_kwh"], COLORS["grid"]),
        Flow("Grid", "BESS", s["grid_to_bess_kwh"], COLORS["grid"]),
        Flow("Grid", "Mall", s["grid_import_mall_kwh"], COLORS["grid"]),
        Flow("BESS", "EV", s["bess_to_ev_kwh"], COLORS["bess"]),
        Flow("BESS", "Mall", s["bess_to_mall_kwh"], COLORS["bess"]),
    ]

    def split(node: str, parts: list[tuple[str, float]]) -> str:
        tot = sum(v for _, v in parts)
        share = " · ".join(f"{n} {v / tot * 100:.0f} %" for n, v in parts if tot > 0 and v > 0)
        return f"{node}  {tot:,.0f} MWh\n{share}"

    labels = {
        "PV": f"PV  {s['pv_kwh']:,.0f} MWh",
        "Grid": f"Grid import  {s['grid_import_kwh']:,.0f} MWh",
        "BESS": f"BESS  in {s['bess_charge_kwh']:,.0f} / out {s['bess_discharge_kwh']:,.0f} MWh",
        "EV": split("EV", [("PV", s["pv_to_ev_kwh"]), ("BESS", s["bess_to_ev_kwh"]),
                           ("grid", s["grid_import_ev_kwh"])]),
        "Mall": split("Mall", [("PV", s["pv_to_mall_kwh"]), ("BESS", s["bess_to_mall_kwh"]),
                               ("grid", s["grid_import_mall_kwh"])]),
        "Curtailed": f"PV curtailed  {s['pv_curtailed_kwh']:,.0f} MWh",
        "Export": f"Grid export  {s['pv_export_kwh']:,.0f} MWh",
    }
    colors = {"PV": COLORS["pv"], "Grid": COLORS["grid"], "BESS": COLORS["bess"],
              "EV": COLORS["ev"], "Mall": COLORS["mall"], "Curtailed": COLORS["curtailed"],
              "Export": COLORS["export"]}
    fig, ax = new_figure((11.0, 6.0))
    draw_sankey(ax, [["PV", "Grid"], ["BESS"], ["EV", "Mall", "Curtailed", "Export"]], flows,
                colors, labels)
    fig.legend(handles=[Patch(color=COLORS["pv"], alpha=0.55, label="from PV"),
                        Patch(color=COLORS["bess"], alpha=0.55, label="from BESS"),
                        Patch(color=COLORS["grid"], alpha=0.55, label="from grid")],
               loc="outside lower center", ncol=3, frameon=False)
    _title(fig, "Energy cascade over the run [MWh]", run)
    return fig


# ---------------------------------------------------------------- battery


def _heatmap(ax: Axes, run: RunData, values: np.ndarray, **kw: Any) -> QuadMesh:
    days, mat = agg.day_slot_matrix(run, values)
    d = _naive(days)
    x = _day_edges(d)
    y = np.linspace(0, 24, mat.shape[0] + 1)
    mesh = ax.pcolormesh(x, y, mat, shading="flat", rasterized=True, **kw)
    ax.xaxis_date()
    date_axis(ax, len(d) + (3 if len(d) <= 10 else 0))
    if len(d) <= 10:
        ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=[12]))
    ax.set_yticks(range(0, 25, 3))
    ax.set_ylabel("Hour of day (local)")
    ax.set_xlabel("Day")
    ax.grid(False)
    return mesh


def fig_soc_heatmap(run: RunData) -> Figure:
    """SOC [%] as a heat-map, hour of day × day."""
    fig, ax = new_figure(WIDE)
    mesh = _heatmap(ax, run, run.ts["soc_percent"].to_numpy(), cmap="viridis", vmin=0, vmax=100)
    fig.colorbar(mesh, ax=ax, label="State of charge [%]", pad=0.01)
    _title(fig, "Battery state of charge: hour of day × day", run)
    return fig


def fig_bess_power_heatmap(run: RunData) -> Figure:
    """BESS power [kW] (+ discharge / − charge) as a heat-map, hour of day × day."""
    p = (run.ts["bess_discharge_kwh"] - run.ts["bess_charge_kwh"]).to_numpy() / run.dt_h
    lim = max(float(np.nanmax(np.abs(p))), 1.0)
    fig, ax = new_figure(WIDE)
    mesh = _heatmap(ax, run, p, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim))
    fig.colorbar(mesh, ax=ax, label="BESS power [kW]\n(+ discharge / − charge)", pad=0.01)
    _title(fig, "Battery charge and discharge: hour of day × day", run)
    return fig


def fig_bess_week(run: RunData) -> Figure:
    """A week zoom: BESS power, SOC and the acting controller phase."""
    d = agg.first_days(run, 7)
    t = _naive(d["timestamp"])
    dt = pd.Timedelta(hours=run.dt_h)
    fig, (ax, ax2, ax3) = new_figure(TALL, nrows=3, sharex=True, height_ratios=[2.2, 1.4, 0.45])
    p = (d["bess_discharge_kwh"] - d["bess_charge_kwh"]).to_numpy() / run.dt_h
    _shade_hp(ax, t, _is_peak(run, d), dt)
    ax.fill_between(t, 0, np.where(p > 0, p, 0), step="post", color=COLORS["bess"],
                    label="Discharge", linewidth=0)
    ax.fill_between(t, 0, np.where(p < 0, p, 0), step="post", color=COLORS["bess_charge"],
                    label="Charge", linewidth=0)
    ax.step(t, d["pv_kwh"].to_numpy() / run.dt_h / 10.0, where="post", color="#B07000", lw=0.9,
            ls="--", label="PV generation ÷ 10")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("BESS power [kW]\n(+ discharge / − charge)")
    thousands(ax)
    h, _ = ax.get_legend_handles_labels()
    h.append(_peak_patch(run))
    ax.legend(handles=h, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    units = run.battery_soc_columns
    ax2.step(t, d["soc_percent"].to_numpy(), where="post", color=COLORS["soc"], lw=1.4,
             label="all batteries" if units else None)
    for c in units:  # two or more batteries: each one's SOC
        ax2.step(t, d[c].to_numpy(), where="post", lw=0.9, ls="--",
                 label=c[len("soc_percent_"):])
    if units:
        ax2.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("SOC [%]")
    order = _phase_order(run)
    colors = _phase_colors(order)
    code = pd.Categorical(d["phase_name"], categories=order).codes
    cmap = ListedColormap([colors[n] for n in order])
    x = _edges(t, dt)
    ax3.pcolormesh(x, [0, 1], code[None, :].astype(float), cmap=cmap,
                   norm=BoundaryNorm(np.arange(len(order) + 1) - 0.5, len(order)),
                   shading="flat", rasterized=True)
    ax3.set_yticks([])
    ax3.set_ylabel("Phase", rotation=0, ha="right", va="center")
    ax3.grid(False)
    ax3.legend(handles=[Patch(color=colors[n], label=n) for n in order],
               loc="upper center", bbox_to_anchor=(0.5, -0.9), ncol=3, frameon=False)
    ax3.xaxis_date()
    date_axis(ax3, 7)
    _title(fig, f"Battery, {min(7.0, run.days):g}-day zoom: power, SOC and controller phase", run)
    return fig


def fig_bess_daily(run: RunData) -> Figure:
    """Daily BESS charge / discharge energy and the daily SOC range."""
    dd = agg.daily(run)
    t = _naive(dd.index)
    fig, (ax, ax2) = new_figure(TALL, nrows=2, sharex=True)
    _day_bars(ax, t, dd["bess_discharge_kwh"].to_numpy() * MWH, COLORS["bess"], "Discharge")
    _day_bars(ax, t, -dd["bess_charge_kwh"].to_numpy() * MWH, COLORS["bess_charge"],
              "Charge (shown < 0)")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("Energy per day [MWh]")
    cap = float(run.summary.get("capacity_kwh", 0.0) or 0.0)
    dod = float(run.summary.get("dod", 1.0) or 1.0)
    if cap > 0:
        # equivalent full cycles over the usable window (as the summary's efc_usable_per_day)
        cyc = dd["bess_discharge_kwh"].sum() / (dod * cap) / max(len(dd), 1)
        ax.set_title(f"Mean {cyc:.2f} full cycles per day over the usable SOC window "
                     f"({dod:.0%} of {cap:,.0f} kWh)", fontsize=10, fontweight="normal")
    ax.legend(loc="upper right", ncol=2)
    lo, hi = dd["soc_min"].to_numpy(), dd["soc_max"].to_numpy()
    ax2.stairs(hi, _day_edges(t), baseline=lo, fill=True, color=COLORS["soc"], alpha=0.35,
               label="Daily SOC range (min-max)")
    ax2.stairs(hi, _day_edges(t), baseline=lo, color=COLORS["soc"], lw=0.8)
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("SOC [%]")
    ax2.legend(loc="lower right")
    ax2.xaxis_date()
    date_axis(ax2, run.days + 3 if run.days <= 10 else run.days)
    _title(fig, "Battery energy per day and daily SOC range", run)
    return fig


def fig_phase_occupancy(run: RunData) -> Figure:
    """Share of time spent in each controller phase, per hour of day."""
    order = _phase_order(run)
    colors = _phase_colors(order)
    h = run.ts["timestamp"].dt.hour.to_numpy()
    tab = pd.crosstab(h, run.ts["phase_name"].to_numpy(), normalize="index").reindex(
        index=range(24), columns=order, fill_value=0.0) * 100
    fig, ax = new_figure(WIDE)
    _bars_stacked(ax, np.arange(24), [(n, tab[n].fillna(0).to_numpy(), colors[n])
                                      for n in order], 0.85)
    ax.set_xticks(range(24))
    ax.set_xlabel("Hour of day (local)")
    ax.set_ylabel("Share of time [%]")
    ax.set_ylim(0, 100)
    hours = run.ts.groupby("phase_name")["pv_kwh"].size() * run.dt_h
    ax.legend(handles=[Patch(color=colors[n], label=f"{n} ({hours.get(n, 0):,.0f} h)")
                       for n in order], loc="center left", bbox_to_anchor=(1.01, 0.5),
              frameon=False, title="Phase (hours in run)")
    _title(fig, "Controller phase occupancy by hour of day", run)
    return fig


# ---------------------------------------------------------------- CO2, PV, cost


def fig_co2(run: RunData) -> Figure:
    """CO2 emitted by grid imports and avoided by PV + BESS, per period."""
    period = agg.period_of(run)
    p = agg.by_period(run, period.freq)
    fig, ax = new_figure(WIDE)
    x = _period_axis(ax, agg.period_labels(pd.DatetimeIndex(p.index), period), len(p))
    w = 0.2
    em = p["co2_grid_kg"].to_numpy() * T
    av = (p["co2_baseline_kg"] - p["co2_grid_kg"]).to_numpy() * T
    avb = p["co2_avoided_bess_kg"].to_numpy() * T
    ind = p["co2_avoided_indirect_kg"].to_numpy() * T
    ax.bar(x - 1.5 * w, em, w, color=COLORS["co2"], label="Emitted (grid import)")
    ax.bar(x - 0.5 * w, av, w, color="#52B788", label="Avoided by PV + BESS (vs all-grid)")
    ax.bar(x + 0.5 * w, avb, w, color=COLORS["bess"], label="Avoided by the BESS (vs PV only)")
    ax.bar(x + 1.5 * w, ind, w, color="#B8C0FF",
           label="BESS, seed formula (BESS→loads × factor)")
    ax.set_ylabel(f"CO₂ {_period_title(period)} [t]")
    thousands(ax)
    f = agg.co2_factor(run)
    ax.set_title(f"Grid factor {f:.4f} kg/kWh · emitted {em.sum():,.0f} t · avoided "
                 f"{av.sum():,.0f} t ({av.sum() / max(em.sum() + av.sum(), 1e-9) * 100:.1f} %), "
                 f"by the BESS {avb.sum():,.1f} t (seed formula {ind.sum():,.0f} t)",
                 fontsize=10, fontweight="normal")
    legend_below(ax, ncol=2)
    _title(fig, f"CO₂ emitted and avoided {_period_title(period)}", run)
    return fig


def fig_pv_utilisation(run: RunData) -> Figure:
    """Where the PV energy goes, per period, and the share used on site."""
    period = agg.period_of(run)
    p = agg.by_period(run, period.freq)
    fig, ax = new_figure(WIDE)
    x = _period_axis(ax, agg.period_labels(pd.DatetimeIndex(p.index), period), len(p))
    _bars_stacked(ax, x, [
        ("PV → EV", p["pv_to_ev_kwh"].to_numpy() * MWH, COLORS["ev"]),
        ("PV → BESS", p["pv_to_bess_kwh"].to_numpy() * MWH, COLORS["bess"]),
        ("PV → mall", p["pv_to_mall_kwh"].to_numpy() * MWH, COLORS["mall"]),
        ("Exported", p["pv_export_kwh"].to_numpy() * MWH, COLORS["export"]),
        ("Curtailed", p["pv_curtailed_kwh"].to_numpy() * MWH, COLORS["curtailed"]),
    ], 0.7)
    ax.set_ylabel(f"PV energy {_period_title(period)} [MWh]")
    thousands(ax)
    pv = p["pv_kwh"].to_numpy()
    used = (p["pv_to_ev_kwh"] + p["pv_to_bess_kwh"] + p["pv_to_mall_kwh"]).to_numpy()
    share = np.where(pv > 0, used / np.where(pv > 0, pv, 1.0) * 100, np.nan)
    ax2 = ax.twinx()
    ax2.plot(x, share, color="black", marker="o", lw=1.4, label="Used on site (right axis)")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("PV used on site [%]")
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=6,
              frameon=False)
    _title(fig, f"PV utilisation {_period_title(period)}", run)
    return fig


def fig_pv_hourly(run: RunData) -> Figure:
    """Mean PV use by hour of day (from ``daily_profile.csv``, all days)."""
    prof = run.daily[run.daily["day_type"] == "all"].sort_values("hour")
    h = prof["hour"].to_numpy()
    fig, ax = new_figure(WIDE)
    _bars_stacked(ax, h, [
        ("PV → EV", prof["pv_to_ev_kwh"].to_numpy(), COLORS["ev"]),
        ("PV → BESS", prof["pv_to_bess_kwh"].to_numpy(), COLORS["bess"]),
        ("PV → mall", prof["pv_to_mall_kwh"].to_numpy(), COLORS["mall"]),
        ("Curtailed / exported", prof["pv_curtailed_kwh"].to_numpy(), COLORS["curtailed"]),
    ], 0.85)
    ax.plot(h, prof["mall_kwh"].to_numpy(), color="black", lw=1.2, ls=":",
            label="Mall demand")
    ax.set_xticks(range(24))
    ax.set_xlabel("Hour of day (local)")
    ax.set_ylabel("Mean power [kW] (= kWh per hour)")
    thousands(ax)
    legend_below(ax, ncol=5)
    _title(fig, "PV use by hour of day (mean day)", run)
    return fig


def fig_tariff_cost(run: RunData) -> Figure:
    """Grid energy cost per period: without PV/BESS, with PV only, with PV + BESS."""
    period = agg.period_of(run)
    p = agg.by_period(run, period.freq)
    fig, ax = new_figure(WIDE)
    x = _period_axis(ax, agg.period_labels(pd.DatetimeIndex(p.index), period), len(p))
    w = 0.27
    base = p["cost_baseline_soles"].to_numpy() * K_CUR
    pvo = p["cost_pv_only_soles"].to_numpy() * K_CUR
    act = p["grid_cost_soles"].to_numpy() * K_CUR
    ax.bar(x - w, base, w, color="#ADB5BD", label="Without PV and BESS (all from grid)")
    ax.bar(x, pvo, w, color=COLORS["pv"], label="Without the BESS (PV only)")
    ax.bar(x + w, act, w, color=COLORS["bess"], label="With PV + BESS (simulated)")
    for xi, a, b in zip(x, pvo, act, strict=True):
        ax.text(xi + w, b, f"−{a - b:,.1f}", ha="center", va="bottom", fontsize=7.5,
                color=COLORS["bess"])
    cur = unit_text("{cur}", run.summary.get("currency"))
    ax.set_ylabel(f"Grid energy cost {_period_title(period)} [k{cur}]")
    thousands(ax, decimals=0 if base.max(initial=0) >= 10 else 1)
    tar = run.tariff_prices
    tar_txt = (" / ".join(f"{name} {price:g}" for name, price in tar.items())
               + f" {cur}/kWh · " if tar else "")
    ax.set_title(f"{tar_txt}BESS saves {pvo.sum() - act.sum():,.1f} k{cur} over the run "
                 f"(numbers above the bars: saving by the BESS [k{cur}])", fontsize=10,
                 fontweight="normal")
    legend_below(ax, ncol=3)
    _title(fig, f"Tariff cost {_period_title(period)} with and without the BESS", run)
    return fig


def fig_grid_peak(run: RunData) -> Figure:
    """Peak grid import power per day [kW], and the hour of day at which it happens."""
    dd = agg.daily(run)
    t = _naive(dd.index)
    fig, (ax, ax2) = new_figure(WIDE, ncols=2, width_ratios=[3, 1])
    pk = dd["peak_grid_kw"].to_numpy()
    ax.stairs(pk, _day_edges(t), color=COLORS["grid"], lw=1.3,
              label="Daily peak (mean power of the worst step)")
    imax = int(np.nanargmax(pk))
    ax.axhline(pk[imax], color=COLORS["accent"], lw=1.2, ls="--",
               label=f"Run peak {pk[imax]:,.0f} kW on {t[imax]:%d %b %Y}")
    if len(pk) > 14:
        roll = pd.Series(pk).rolling(7, min_periods=1, center=True).mean().to_numpy()
        ax.plot(t + pd.Timedelta(hours=12), roll, color="black", lw=1.2, label="7-day mean")
    lo = float(np.nanmin(pk))
    ax.set_ylim(max(0.0, lo - 0.15 * (pk[imax] - lo) - 1), pk[imax] * 1.04 + 1)
    ax.set_ylabel("Peak grid import [kW]")
    thousands(ax)
    ax.xaxis_date()
    date_axis(ax, run.days + 3 if run.days <= 10 else run.days)
    ax.legend(loc="lower left", fontsize=8.5)
    g = run.ts.set_index("timestamp")["p_grid_kw"]
    at = g.groupby(pd.DatetimeIndex(g.index).normalize()).idxmax()
    hours = pd.DatetimeIndex(at.to_numpy()).hour
    ax2.bar(range(24), np.bincount(hours, minlength=24)[:24], 0.85, color=COLORS["grid"])
    ax2.set_xticks(range(0, 24, 3))
    ax2.set_xlabel("Hour of day (local)")
    ax2.set_ylabel("Days with the peak in that hour")
    ax2.set_title("When the daily peak occurs", fontsize=10, fontweight="normal")
    _title(fig, "Peak grid import per day", run)
    return fig


# ---------------------------------------------------------------- EV sessions


def _no_sessions(run: RunData, title: str) -> Figure:
    fig, ax = new_figure(WIDE)
    empty_note(ax, "No EV sessions in this run")
    _title(fig, title, run)
    return fig


def fig_ev_arrivals(run: RunData) -> Figure:
    """EV arrivals per hour of day (mean per day), per vehicle type, and turned away."""
    title = "EV arrivals by hour of day"
    s = run.sessions
    if s.empty:
        return _no_sessions(run, title)
    h = s["arrival"].dt.hour.to_numpy()
    n_days = max(run.days, 1e-9)
    classes = run.vehicle_classes  # the site's order: class i keeps colour i in every run
    vt = s["vehicle_type"].astype(str).to_numpy()
    fig, ax = new_figure(WIDE)
    _bars_stacked(ax, np.arange(24), [
        (c, np.bincount(h[vt == c], minlength=24)[:24] / n_days,
         VEHICLE_PALETTE[i % len(VEHICLE_PALETTE)]) for i, c in enumerate(classes)], 0.85)
    ta = pd.Series(h[(s["status"] == "turned_away").to_numpy()]).value_counts().reindex(
        range(24), fill_value=0) / n_days
    ax.plot(range(24), ta.to_numpy(), color=COLORS["curtailed"], marker="o", lw=1.2,
            label="Turned away (all types)")
    ax.set_xticks(range(24))
    ax.set_xlabel("Hour of arrival (local)")
    ax.set_ylabel("Arrivals per day [vehicles/h]")
    ax.legend(loc="upper left")
    ax.set_title(f"{len(s):,} sessions · {len(s) / n_days:,.0f} per day on average",
                 fontsize=10, fontweight="normal")
    _title(fig, title, run)
    return fig


def fig_ev_wait(run: RunData) -> Figure:
    """Distribution of the wait for a free socket [min]."""
    title = "EV waiting time for a socket"
    s = run.sessions
    if s.empty:
        return _no_sessions(run, title)
    plugged = s["plug_in"].notna().to_numpy()
    w = s.loc[plugged, "wait_min"].to_numpy()
    fig, ax = new_figure(WIDE)
    zero = float((w <= 1e-9).mean() * 100) if len(w) else 0.0
    pos = w[w > 1e-9]
    if len(pos):
        bins = np.linspace(0, max(float(np.quantile(pos, 0.995)), 1.0), 40)
        ax.hist(np.clip(pos, 0, bins[-1]), bins=bins, color=COLORS["ev"], alpha=0.85,
                label="Sessions that waited")
        ax.set_yscale("log")
    else:
        empty_note(ax, "No session had to wait")
    if len(w):
        ax.axvline(float(w.mean()), color="black", ls="--", lw=1.2,
                   label=f"Mean (all plugged) {w.mean():.1f} min")
        ax.axvline(float(np.quantile(w, 0.95)), color=COLORS["accent"], ls="--", lw=1.2,
                   label=f"95th percentile {np.quantile(w, 0.95):.1f} min")
    away = s.loc[~plugged, "wait_min"].to_numpy()
    ax.set_title(f"{zero:.1f} % of plugged sessions did not wait · {len(away):,} left without "
                 f"a socket (mean wait before leaving {away.mean() if len(away) else 0:.0f} min)",
                 fontsize=10, fontweight="normal")
    ax.set_xlabel("Wait from arrival to plug-in [min] (last bin includes longer waits)")
    ax.set_ylabel("Sessions (log scale)")
    ax.legend(loc="upper right")
    _title(fig, title, run)
    return fig


#: Colours of the session outcomes (:data:`twin.kpi_catalogue.SESSION_OUTCOMES`).
OUTCOME_COLORS: dict[str, str] = {
    "satisfied": COLORS["bess"], "satisfied_reduced": COLORS["ev"], "short": COLORS["pv"],
    "unfinished": COLORS["losses"],
    "refused_closing": COLORS["accent"], "turned_away": COLORS["curtailed"],
}


@dataclass(frozen=True)
class SessionStory:
    """The EV numbers the report's figures 18 and 19 show, by the KPI catalogue's
    definitions (the same as ``summary.json`` and the KPI table).

    Attributes
    ----------
    counts : ``{summary key: sessions}`` per outcome (they sum to :attr:`total`).
    total : sessions (arrivals).
    e_requested_kwh : energy requested by all arrivals [kWh].
    e_requested_socket_kwh : energy requested by the sessions that got a socket [kWh].
    e_delivered_kwh : energy delivered to the sessions [kWh].
    """

    counts: dict[str, int]
    total: int
    e_requested_kwh: float
    e_requested_socket_kwh: float
    e_delivered_kwh: float

    @property
    def satisfied_share(self) -> float:
        """Satisfied sessions / arrivals (0 without sessions)."""
        return self.counts["sessions_satisfied"] / self.total if self.total else 0.0

    def mismatches(self, summary: dict[str, Any]) -> list[str]:
        """Where ``summary`` (the KPI table's source) tells another story than the sessions
        table: ``"key: summary X, sessions table Y"`` per differing count or energy; also
        when the summary's outcome counts do not sum to its ``sessions_total``."""
        want: dict[str, float] = {"sessions_total": self.total, **self.counts,
                                  "ev_energy_requested_kwh": self.e_requested_kwh,
                                  "ev_energy_delivered_kwh": self.e_delivered_kwh}
        out = []
        for key, v in want.items():
            got = summary.get(key)
            if not isinstance(got, int | float) or isinstance(got, bool):
                out.append(f"{key}: missing from summary.json, sessions table {v:,.6g}")
            elif abs(float(got) - v) > 1e-6 * max(abs(v), 1.0):
                out.append(f"{key}: summary.json {got:,.6g}, sessions table {v:,.6g}")
        parts = [summary.get(o.key) for o in SESSION_OUTCOMES]
        tot = summary.get("sessions_total")
        if all(isinstance(x, int) for x in parts) and isinstance(tot, int) \
                and sum(parts) != tot:  # type: ignore[arg-type]
            out.append(f"summary.json: the outcome counts sum to {sum(parts)} "  # type: ignore[arg-type]
                       f"but sessions_total is {tot}")
        return out


def session_story(run: RunData) -> SessionStory:
    """The outcome counts and energies of ``run``'s sessions table (:class:`SessionStory`)."""
    s = run.sessions
    socket = s["status"].isin(["served", "plugged"]).to_numpy()
    req = s["e_req_kwh"].to_numpy(dtype=float)
    return SessionStory(outcome_counts(s["outcome"].to_numpy()), len(s), float(req.sum()),
                        float(req[socket].sum()), float(s["e_delivered_kwh"].sum()))


def _outcome_bars(ax: Axes, story: SessionStory) -> None:
    """One horizontal bar per outcome: sessions and share of arrivals."""
    y = np.arange(len(SESSION_OUTCOMES))
    n = np.array([story.counts[o.key] for o in SESSION_OUTCOMES], dtype=float)
    ax.barh(y, n, color=[OUTCOME_COLORS[o.name] for o in SESSION_OUTCOMES], height=0.65)
    for yi, ni in zip(y, n, strict=True):
        ax.text(float(ni), float(yi), f" {ni:,.0f} ({ni / max(story.total, 1) * 100:.1f} %)",
                va="center", fontsize=9)
    ax.set_yticks(y)
    ax.set_yticklabels([o.label.split(":")[0] for o in SESSION_OUTCOMES])
    ax.invert_yaxis()
    ax.set_xlim(0, max(float(n.max(initial=0)), 1.0) * 1.35)
    ax.set_xlabel("Sessions")
    thousands(ax, "x")
    ax.grid(axis="y", visible=False)
    ax.set_title(f"{story.satisfied_share * 100:.1f} % of {story.total:,} arrivals satisfied",
                 fontsize=10, fontweight="normal")


def fig_ev_energy(run: RunData) -> Figure:
    """Energy delivered vs requested per session, and the outcome of every arrival."""
    title = "EV energy delivered vs requested"
    s = run.sessions
    if s.empty:
        return _no_sessions(run, title)
    story = session_story(run)
    sock = s[s["status"].isin(["served", "plugged"])]
    fig, (ax, ax2) = new_figure(WIDE, ncols=2)
    if len(sock):
        req = sock["e_req_kwh"].to_numpy()
        dl = sock["e_delivered_kwh"].to_numpy()
        hb = ax.hexbin(req, dl, gridsize=40, mincnt=1, bins="log", cmap="Purples")
        top = float(max(req.max(), dl.max(), 1e-3))
        ax.plot([0, top], [0, top], color="black", lw=1.0, ls="--",
                label="Delivered = requested")
        ax.legend(loc="upper left")
        fig.colorbar(hb, ax=ax, label="Sessions per cell", pad=0.01)
    else:
        empty_note(ax, "No session got a socket")
    ax.set_xlabel("Energy requested [kWh] (sessions that got a socket)")
    ax.set_ylabel("Energy delivered [kWh]")
    ax.set_title(f"Delivered {story.e_delivered_kwh * MWH:,.1f} of "
                 f"{story.e_requested_socket_kwh * MWH:,.1f} MWh requested with a socket\n"
                 f"({story.e_requested_kwh * MWH:,.1f} MWh requested by all arrivals)",
                 fontsize=10, fontweight="normal")
    _outcome_bars(ax2, story)
    _title(fig, title, run)
    return fig


def fig_ev_daily(run: RunData) -> Figure:
    """Sessions per day by outcome: got a socket (top), no socket (bottom)."""
    title = "EV sessions per day by outcome"
    s = run.sessions
    if s.empty:
        return _no_sessions(run, title)
    day = _naive(s["arrival"]).normalize()
    days = pd.date_range(_naive(run.ts["timestamp"]).normalize()[0], periods=max(
        int(np.ceil(run.days)), 1), freq="D")
    oc = s["outcome"].to_numpy().astype(str)

    def per_day(name: str) -> np.ndarray:
        return pd.Series(day[oc == name]).value_counts().reindex(days, fill_value=0).to_numpy()

    label = {o.name: o.label.split(":")[0] for o in SESSION_OUTCOMES}
    fig, (ax, ax2) = new_figure(TALL, nrows=2, sharex=True, height_ratios=[2, 1.2])
    for axis, names in ((ax, ("satisfied", "short", "unfinished")),
                        (ax2, ("refused_closing", "turned_away"))):
        base = np.zeros(len(days))
        for name in names:
            v = per_day(name)
            _day_bars(axis, days, v, OUTCOME_COLORS[name], label[name], baseline=base)
            base = base + v
        axis.legend(loc="lower right", ncol=len(names))
    story = session_story(run)
    ax.set_ylabel("Sessions per day\n(got a socket)")
    thousands(ax)
    no_sock = story.counts["sessions_refused_closing"] + story.counts["sessions_turned_away"]
    ax2.set_ylabel("Sessions per day\n(no socket)")
    ax2.set_title(f"{story.counts['sessions_turned_away']:,} turned away and "
                  f"{story.counts['sessions_refused_closing']:,} refused at closing "
                  f"({no_sock / max(story.total, 1) * 100:.2f} % of arrivals)", fontsize=10,
                  fontweight="normal")
    ax2.xaxis_date()
    date_axis(ax2, run.days + 3 if run.days <= 10 else run.days)
    _title(fig, title, run)
    return fig


def fig_socket_use(run: RunData) -> Figure:
    """Mean charging power per socket and hour of day [kW]."""
    title = "Charging power per socket by hour of day"
    cols = run.socket_columns
    if not cols:
        fig, ax = new_figure(WIDE)
        empty_note(ax, "No per-socket columns in the timeseries")
        _title(fig, title, run)
        return fig
    h = run.ts["timestamp"].dt.hour.to_numpy()
    m = run.ts[cols].groupby(h).mean().reindex(range(24)).to_numpy().T
    fig, ax = new_figure(WIDE)
    mesh = ax.pcolormesh(np.arange(25), np.arange(len(cols) + 1), m, cmap="magma_r",
                         shading="flat", vmin=0)
    ax.set_xticks(range(0, 25, 2))
    ax.set_xlabel("Hour of day (local)")
    ax.set_ylabel("Socket number")
    step = max(1, len(cols) // 12)
    ax.set_yticks(np.arange(0, len(cols), step) + 0.5)
    ax.set_yticklabels([str(i) for i in range(0, len(cols), step)])
    ax.grid(False)
    fig.colorbar(mesh, ax=ax, label="Mean power [kW]", pad=0.01)
    _title(fig, title, run)
    return fig


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class FigureSpec:
    """One report figure: file stem, HTML section, caption and the drawing function.

    ``{tariff}`` in a caption stands for the site's tariff periods (:meth:`caption_for`).
    """

    stem: str
    section: str
    caption: str
    draw: Callable[[RunData], Figure]

    def caption_for(self, run: RunData) -> str:
        """The caption of this figure for ``run``: its site's tariff period names (in the
        site file's order, e.g. ``HP/HFP``) in place of ``{tariff}``."""
        names = "/".join(run.tariff_prices)
        return self.caption.replace("{tariff}", f"{names} tariff" if names else "site's tariff")


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("01_energy_balance", "Energy balance",
               "Supply (PV, battery discharge, grid import) next to use (mall, EV, battery "
               "charge, curtailment, export); both bars of a period have the same height.",
               fig_annual_balance),
    FigureSpec("02_profile_5days", "Energy balance",
               "Power over the first five days: the coloured layers supply the load (black).",
               fig_profile_5days),
    FigureSpec("03_typical_day", "Energy balance",
               "Mean day from daily_profile.csv; the battery charge is drawn below zero.",
               fig_typical_day),
    FigureSpec("04_source_split", "Energy balance",
               "Which source covers the EV chargers and the mall.", fig_source_split),
    FigureSpec("05_energy_cascade", "Energy balance",
               "Energy cascade (Sankey): band widths are proportional to the energy.",
               fig_energy_cascade),
    FigureSpec("06_soc_heatmap", "Battery", "State of charge at every step.", fig_soc_heatmap),
    FigureSpec("07_bess_power_heatmap", "Battery",
               "Battery power at every step (red: discharge, blue: charge).",
               fig_bess_power_heatmap),
    FigureSpec("08_bess_week", "Battery",
               "First week in detail: battery power, SOC and the controller phase acting.",
               fig_bess_week),
    FigureSpec("09_bess_daily", "Battery",
               "Energy charged and discharged per day, and the SOC range of each day.",
               fig_bess_daily),
    FigureSpec("10_phase_occupancy", "Battery",
               "Share of the time each controller phase acts, per hour of day.",
               fig_phase_occupancy),
    FigureSpec("11_co2", "CO₂, PV and cost",
               "CO₂ from grid imports, and CO₂ avoided compared with taking all energy from the "
               "grid.", fig_co2),
    FigureSpec("12_pv_utilisation", "CO₂, PV and cost",
               "Where the PV energy goes, and the share used on site.", fig_pv_utilisation),
    FigureSpec("13_pv_hourly", "CO₂, PV and cost", "PV use over the mean day.", fig_pv_hourly),
    FigureSpec("14_tariff_cost", "CO₂, PV and cost",
               "Grid energy cost at the {tariff}; 'without the BESS' = Σ max(load − PV, 0) "
               "× tariff.", fig_tariff_cost),
    FigureSpec("15_grid_peak", "CO₂, PV and cost", "Highest grid import of each day.",
               fig_grid_peak),
    FigureSpec("16_ev_arrivals", "EV sessions", "When vehicles arrive.", fig_ev_arrivals),
    FigureSpec("17_ev_wait", "EV sessions", "How long vehicles wait for a free socket.",
               fig_ev_wait),
    FigureSpec("18_ev_energy", "EV sessions",
               "Energy delivered against energy requested by the sessions that got a socket, "
               "and the outcome of every arrival (the same counts as the KPI table).",
               fig_ev_energy),
    FigureSpec("19_ev_daily", "EV sessions",
               "Sessions per day by outcome: with a socket (satisfied, short, unfinished) and "
               "without (refused at closing, turned away).",
               fig_ev_daily),
    FigureSpec("20_socket_use", "EV sessions", "Mean charging power of each socket.",
               fig_socket_use),
)

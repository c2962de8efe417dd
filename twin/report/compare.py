"""Several runs of the same site and horizon: compatibility check, labels, figures.

Runs are comparable when ``site``, ``start``, ``days`` and ``dt_s`` of their summaries
agree (controller, seed, battery size ... may differ: that is what is being compared).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation

from twin import kpi_catalogue
from twin.kpi_catalogue import Kpi, unit_text
from twin.report import aggregate as agg
from twin.report.load import RunData, RunFolderError
from twin.report.style import (
    COLORS,
    TALL,
    WIDE,
    date_axis,
    empty_note,
    legend_below,
    new_figure,
    thousands,
)

#: Summary keys that must agree for runs to be compared.
SAME_KEYS: tuple[str, ...] = ("site", "start", "days", "dt_s")
#: Summary keys that tell runs apart in legends, in this order.
LABEL_KEYS: tuple[str, ...] = ("scenario", "controller", "seed", "capacity_kwh",
                               "nominal_power_kw")
RUN_COLORS = ("#1D3557", "#E76F51", "#2A9D8F", "#F4A300", "#7B2CBF", "#6C757D", "#D62828",
              "#8AB17D", "#264653", "#E9C46A")


def check_comparable(runs: Sequence[RunData]) -> None:
    """Raise :class:`RunFolderError` when the runs are not of the same site and horizon."""
    ref = runs[0]
    for r in runs[1:]:
        diffs = [k for k in SAME_KEYS if r.summary.get(k) != ref.summary.get(k)]
        if diffs:
            what = "; ".join(f"{k}: {ref.summary.get(k)!r} in {ref.path} but {r.summary.get(k)!r}"
                             f" in {r.path}" for k in diffs)
            raise RunFolderError(
                f"{r.path}: cannot be compared with {ref.path}: the runs differ in "
                f"{', '.join(diffs)} ({what}). A comparison needs runs of the same site, start, "
                "length and step; report these runs separately with one 'twin report' each.")


def label_runs(runs: Sequence[RunData]) -> None:
    """Set each run's ``label`` from the summary fields that differ between the runs."""
    differ = [k for k in LABEL_KEYS if len({str(r.summary.get(k)) for r in runs}) > 1]
    labels = []
    for r in runs:
        parts = [_fmt_label(k, r.summary.get(k)) for k in differ]
        labels.append(" · ".join(parts) or r.path.resolve().name)
    if len(set(labels)) < len(labels):
        labels = [f"{r.path.resolve().name} ({lab})" if lab != r.path.resolve().name
                  else r.path.resolve().name for r, lab in zip(runs, labels, strict=True)]
    if len(set(labels)) < len(labels):
        labels = [f"#{i + 1} {lab}" for i, lab in enumerate(labels)]
    for r, lab in zip(runs, labels, strict=True):
        r.label = lab


def _fmt_label(key: str, v: Any) -> str:
    if key == "capacity_kwh" and isinstance(v, int | float):
        return f"{float(v):,.0f} kWh"
    if key == "nominal_power_kw" and isinstance(v, int | float):
        return f"{float(v):,.0f} kW"
    return f"{key} {v}"


def _title(fig: Figure, title: str, runs: Sequence[RunData]) -> None:
    s = runs[0].summary
    sub = (f"{s.get('site', '')} · {str(s['start'])[:10]} + {runs[0].days:.4g} d · "
           f"{len(runs)} runs")
    fig.suptitle(f"{title}\n", fontsize=13, fontweight="bold")
    fig.text(0.5, 1.0, sub, ha="center", va="top", fontsize=9, color="#555555",
             transform=fig.transFigure + ScaledTranslation(0, -20 / 72, fig.dpi_scale_trans))


def _color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


#: Most panels of the KPI bar chart (a 4 × 3 grid).
MAX_KPI_PANELS = 12


def _digits(fmt: str) -> int:
    """Decimals of a fixed-point format spec (``",.1f"`` → 1; 0 otherwise)."""
    if fmt.endswith("f") and "." in fmt:
        return int(fmt.rsplit(".", 1)[1][:-1] or 0)
    return 0


def shown_value(row: Kpi, value: float) -> float:
    """``value`` [catalogue unit] in the shown unit, rounded to the shown decimals (a float
    crumb such as 6.61e-16 becomes 0, never "-0")."""
    v = round(float(value) * row.scale, _digits(row.fmt))
    return 0.0 if v == 0 else v


def value_text(row: Kpi, value: float, currency: object) -> str:
    """A bar label: the shown value with thousands separators and its unit."""
    unit = unit_text(row.display_unit, currency)
    unit = "" if unit in ("", "sessions") else f" {unit}"
    return f"{format(shown_value(row, value), row.fmt)}{unit}"


def kpi_panels(runs: Sequence[RunData]) -> tuple[list[Kpi], list[Kpi]]:
    """The KPIs of the bar chart: (those whose shown values differ between the runs, those
    equal in all), from the KPI catalogue's ``table`` rows with a direction (better lower or
    higher), the ``trials`` (headline) rows first; at most :data:`MAX_KPI_PANELS` differ."""
    cands = [k for k in kpi_catalogue.rows("table")
             if k.better is not None and not k.volatile and not k.fmt.endswith("e")]
    cands.sort(key=lambda k: "trials" not in k.views)  # stable: catalogue order otherwise
    differ: list[Kpi] = []
    same: list[Kpi] = []
    for k in cands:
        vals = [r.summary.get(k.key) for r in runs]
        if k.requires is not None and not all(
                isinstance(r.summary.get(k.requires), int | float) for r in runs):
            continue
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                   for v in vals):
            continue
        shown = {shown_value(k, float(v)) for v in vals}  # type: ignore[arg-type]
        (differ if len(shown) > 1 else same).append(k)
    return differ[:MAX_KPI_PANELS], same


def _wrap(label: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def fig_kpi_bars(runs: Sequence[RunData]) -> Figure:
    """Small multiples: one bar per run, named, for each KPI that differs between the runs."""
    differ, same = kpi_panels(runs)
    ncols = 4 if len(differ) > 9 else 3 if len(differ) > 2 else max(len(differ), 1)
    nrows = max(math.ceil(len(differ) / ncols), 1)
    fig, axes = new_figure((3.7 * ncols, 1.2 + 3.2 * nrows), nrows=nrows, ncols=ncols,
                           squeeze=False)
    cur = runs[0].summary.get("currency")
    x = np.arange(len(runs))
    names = [_wrap(r.label) for r in runs]
    for ax in axes.flat[len(differ):]:
        ax.set_axis_off()
    if not differ:
        empty_note(axes.flat[0], "The runs' headline KPIs are equal")
    for ax, k in zip(axes.flat, differ, strict=False):
        raw = [float(r.summary[k.key]) for r in runs]
        vals = np.array([shown_value(k, v) for v in raw])
        bars = ax.bar(x, vals, 0.7, color=[_color(i) for i in range(len(runs))])
        ax.bar_label(bars, labels=[value_text(k, v, cur) for v in raw], fontsize=8, padding=2)
        arrow = {"higher": " (↑ better)", "lower": " (↓ better)"}.get(k.better or "", "")
        ax.set_title(f"{k.table_label.strip()}{arrow}", fontsize=9)
        unit = unit_text(k.display_unit, cur)
        ax.set_ylabel(f"[{unit}]" if unit else "[count]")
        ax.set_xticks(x)
        ax.set_xticklabels(names, fontsize=8)
        lo, hi = float(vals.min()), float(vals.max())
        ax.set_ylim(min(0.0, lo * 1.2), hi * 1.2 if hi > 0 else 1.0)
        ax.grid(axis="x", visible=False)
    if same:
        fig.supxlabel(_wrap("Equal in every run: " + ", ".join(
            k.table_label.strip()[:1].upper() + k.table_label.strip()[1:] for k in same),
            40 * ncols), fontsize=8, color="#555555")
    _title(fig, "Headline KPIs that differ between the runs", runs)
    return fig


def fig_daily_cost_difference(runs: Sequence[RunData]) -> Figure:
    """Daily grid cost of each run minus the first run's, and its running sum [thousands of
    the currency]."""
    ref = agg.daily(runs[0])
    fig, (ax, ax2) = new_figure(TALL, nrows=2, sharex=True)
    t = pd.DatetimeIndex(ref.index).tz_localize(None)
    ax.axhline(0, color="black", lw=0.7)
    ax2.axhline(0, color="black", lw=0.7)
    for i, r in enumerate(runs[1:], start=1):
        d = agg.daily(r)["grid_cost_soles"].reindex(ref.index).to_numpy()
        diff = (d - ref["grid_cost_soles"].to_numpy()) * 1e-3
        ax.plot(t, diff, color=_color(i), lw=1.2, marker="o" if len(t) <= 31 else None,
                ms=4, label=f"{r.label} − {runs[0].label}")
        ax2.plot(t, np.nancumsum(diff), color=_color(i), lw=1.6, label=r.label)
    cur = unit_text("k{cur}", runs[0].summary.get("currency"))
    ax.set_ylabel(f"Daily cost difference [{cur}/day]\n(> 0: costs more)")
    ax2.set_ylabel(f"Cumulative difference [{cur}]")
    ax2.set_xlabel("Day")
    date_axis(ax2, runs[0].days + 3 if runs[0].days <= 10 else runs[0].days)
    thousands(ax, decimals=2)
    thousands(ax2, decimals=1)
    ax.legend(loc="best")
    _title(fig, f"Grid cost per day compared with {runs[0].label}", runs)
    return fig


def _soc_panel(ax: Axes, runs: Sequence[RunData]) -> None:
    for i, r in enumerate(runs):
        prof = agg.hour_of_day_mean(r, ["soc_percent"])
        ax.plot(prof.index, prof["soc_percent"], color=_color(i), lw=1.8, marker="o", ms=3,
                label=r.label)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("Hour of day (local)")
    ax.set_ylabel("Mean SOC [%]")
    ax.set_ylim(0, 105)
    ax.set_title("Mean SOC by hour of day", fontsize=10)


def fig_soc_overlay(runs: Sequence[RunData]) -> Figure:
    """SOC of each run: mean day and the first week."""
    fig, (ax, ax2) = new_figure(WIDE, ncols=2, width_ratios=[1, 2])
    _soc_panel(ax, runs)
    for i, r in enumerate(runs):
        d = agg.first_days(r, 7)
        t = pd.DatetimeIndex(d["timestamp"]).tz_localize(None)
        ax2.step(t, d["soc_percent"], where="post", color=_color(i), lw=1.3, label=r.label,
                 alpha=0.9)
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("SOC [%]")
    ax2.set_title("First week", fontsize=10)
    date_axis(ax2, 7)
    h, lab = ax2.get_legend_handles_labels()
    fig.legend(h, lab, loc="outside lower center", ncol=min(len(runs), 4), frameon=False)
    _title(fig, "Battery state of charge by run", runs)
    return fig


def fig_period_cost(runs: Sequence[RunData]) -> Figure:
    """Grid cost per period for each run, with the no-BESS reference [thousands of the
    currency]."""
    period = agg.period_of(runs[0])
    fig, ax = new_figure(WIDE)
    ref = agg.by_period(runs[0], period.freq)
    n = len(runs) + 1
    w = 0.8 / n
    x = np.arange(len(ref), dtype=float)
    refs = [float(agg.with_derived(r)["cost_pv_only_soles"].sum()) for r in runs]
    same = max(refs) - min(refs) <= 1e-3 * max(abs(max(refs)), 1.0)
    ax.bar(x - 0.4 + w / 2, ref["cost_pv_only_soles"].to_numpy() * 1e-3, w, color="#ADB5BD",
           label="Without the BESS (PV only)" if same else
           f"Without the BESS (PV only, {runs[0].label})")
    for i, r in enumerate(runs):
        p = agg.by_period(r, period.freq).reindex(ref.index)
        ax.bar(x - 0.4 + w * (i + 1.5), p["grid_cost_soles"].to_numpy() * 1e-3, w,
               color=_color(i), label=r.label)
    ax.set_xticks(x)
    ax.set_xticklabels(agg.period_labels(pd.DatetimeIndex(ref.index), period))
    ax.set_ylabel(f"Grid energy cost per {period.noun} "
                  f"[{unit_text('k{cur}', runs[0].summary.get('currency'))}]")
    thousands(ax)
    legend_below(ax, ncol=min(n, 4))
    _title(fig, f"Tariff cost per {period.noun} by run", runs)
    return fig


def fig_grid_profile(runs: Sequence[RunData]) -> Figure:
    """Mean grid import by hour of day for each run [kW]."""
    fig, ax = new_figure(WIDE)
    for i, r in enumerate(runs):
        prof = agg.hour_of_day_mean(r, ["grid_import_kwh"]) / r.dt_h
        ax.plot(prof.index, prof["grid_import_kwh"], color=_color(i), lw=1.8, marker="o", ms=3,
                label=r.label)
    ax.set_xticks(range(24))
    ax.set_xlabel("Hour of day (local)")
    ax.set_ylabel("Mean grid import [kW]")
    thousands(ax)
    ax.legend(loc="best")
    _title(fig, "Grid import over the mean day by run", runs)
    return fig


def fig_daily_peak(runs: Sequence[RunData]) -> Figure:
    """Peak grid import per day for each run [kW]."""
    fig, ax = new_figure(WIDE)
    for i, r in enumerate(runs):
        d = agg.daily(r)
        t = pd.DatetimeIndex(d.index).tz_localize(None)
        ax.step(t, d["peak_grid_kw"], where="post", color=_color(i), lw=1.2, label=r.label)
    ax.set_ylabel("Peak grid import [kW]")
    ax.set_xlabel("Day")
    date_axis(ax, runs[0].days + 3 if runs[0].days <= 10 else runs[0].days)
    thousands(ax)
    ax.legend(loc="best")
    _title(fig, "Peak grid import per day by run", runs)
    return fig


def fig_source_split(runs: Sequence[RunData]) -> Figure:
    """Share of EV and mall energy from PV, BESS and grid, per run [%]."""
    fig, axes = new_figure(WIDE, ncols=2, sharey=True)
    parts = (("PV", COLORS["pv"]), ("BESS", COLORS["bess"]), ("Grid", COLORS["grid"]))
    for ax, (load, cols) in zip(axes, (
            ("EV charging", ("pv_to_ev_kwh", "bess_to_ev_kwh", "grid_import_ev_kwh")),
            ("Mall", ("pv_to_mall_kwh", "bess_to_mall_kwh", "grid_import_mall_kwh"))),
            strict=True):
        y = np.arange(len(runs))
        left = np.zeros(len(runs))
        tot = np.array([sum(float(r.ts[c].sum()) for c in cols) for r in runs])
        tot = np.where(tot > 0, tot, 1.0)
        for (name, color), c in zip(parts, cols, strict=True):
            share = np.array([float(r.ts[c].sum()) for r in runs]) / tot * 100
            ax.barh(y, share, left=left, color=color, label=name, height=0.6)
            for yi, li, si in zip(y, left, share, strict=True):
                if si >= 8:
                    ax.text(li + si / 2, yi, f"{si:.1f} %", ha="center", va="center",
                            color="white", fontsize=9)
            left += share
        ax.set_yticks(y)
        ax.set_yticklabels([r.label for r in runs])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("Share of the load's energy [%]")
        ax.set_title(load, fontsize=10)
        ax.grid(axis="y", visible=False)
    legend_below(axes[0], ncol=3)
    _title(fig, "Source split by run", runs)
    return fig


@dataclass(frozen=True)
class CompareSpec:
    """One comparison figure: file stem, section, caption, drawing function."""

    stem: str
    section: str
    caption: str
    draw: Callable[[Sequence[RunData]], Figure]


COMPARE_FIGURES: tuple[CompareSpec, ...] = (
    CompareSpec("c01_kpi_bars", "Comparison",
                "The KPIs (from each run's summary.json) whose shown values differ between the "
                "runs; those equal in all runs are listed below the chart.",
                fig_kpi_bars),
    CompareSpec("c02_daily_cost_difference", "Comparison",
                "Daily grid cost of each run minus that of the first run, and the running sum.",
                fig_daily_cost_difference),
    CompareSpec("c03_soc_overlay", "Comparison", "State of charge: mean day and first week.",
                fig_soc_overlay),
    CompareSpec("c04_period_cost", "Comparison",
                "Grid energy cost per period; grey: the site without the BESS.",
                fig_period_cost),
    CompareSpec("c05_grid_profile", "Comparison", "Mean grid import per hour of day.",
                fig_grid_profile),
    CompareSpec("c06_daily_peak", "Comparison", "Highest grid import of each day.",
                fig_daily_peak),
    CompareSpec("c07_source_split", "Comparison",
                "Which source covers the EV chargers and the mall in each run.",
                fig_source_split),
)

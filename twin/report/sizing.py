"""Sizing economics of ``twin sweep``: the per-size table (NPV, IRR, LCOS, discounted
payback, replacements, marginal savings, the knee) and the self-contained ``sizing.html``.

The knee of the sizing curve is the size of largest NPV (:func:`twin.sizing.knee`): along a
concave NPV curve, the largest size whose marginal NPV over the next smaller size is still
positive. A series is one controller (and one value of every other grid key); the sizes of
a series are the battery capacities of the ``bess.e_capacity_kwh`` axis.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from twin.atomic import write_file_atomic
from twin.kpi_catalogue import by_key, unit_text
from twin.report.html import RenderedFigure, render_page
from twin.report.style import COLORS, WIDE, new_figure, report_style, thousands
from twin.report.trials import PALETTE
from twin.sizing import EconParams, cash_flows, discounted_payback, irr, knee, lcos, npv

#: The battery-capacity grid key (the x axis of the sizing curve).
ENERGY_KEY = "bess.e_capacity_kwh"
#: Paybacks beyond this many project lives are not drawn to scale (shown as "> life").
ABSURD = 1.0


def series_keys(keys: Sequence[str]) -> list[str]:
    """Columns that make one sizing series: the controller and every non-capacity grid key."""
    return ["controller", *[k for k in keys if k != ENERGY_KEY]]


def _per_year(df: pd.DataFrame, col: str) -> np.ndarray:
    days = df["days"].to_numpy(float)
    return np.where(days > 0, df[col].to_numpy(float) * 365.0 / np.where(days > 0, days, 1.0), 0.0)


def _row_economics(r: Mapping[Any, Any], ep: EconParams) -> dict[str, Any]:
    """NPV, IRR, LCOS, discounted payback and replacements of one size."""
    e, p, c0 = float(r["capacity_kwh"]), float(r["nominal_power_kw"]), float(r["capex"])
    cf = cash_flows(e, p, float(r["savings_per_yr"]), float(r["fade_per_yr_frac"]),
                    float(r.get("capacity_fade_percent", 0.0)) / 100.0,
                    float(r["discharge_per_yr_kwh"]), ep)
    has = c0 > 0
    return {
        "npv": npv(ep.discount_rate, cf.net),
        "irr": irr(cf.net) if has else math.nan,
        "lcos_per_kwh": lcos(cf, c0, ep.discount_rate) if has else math.nan,
        "discounted_payback_years": discounted_payback(ep.discount_rate, cf.net) if has else math.nan,
        "replacement_years": " ".join(str(y) for y in cf.replacement_years),
        "n_replacements": len(cf.replacement_years),
    }


def add_economics(summ: pd.DataFrame, keys: Sequence[str], ep: EconParams) -> pd.DataFrame:
    """Add the economics of every row (a size under one controller) and, along each series
    of battery capacities, the marginal savings / NPV and the knee.

    Needs the columns ``capacity_kwh``, ``nominal_power_kw``, ``capex``, ``savings_per_yr``,
    ``days``, ``bess_discharge_kwh``, ``capacity_fade_annualised_percent`` and
    ``capacity_fade_percent`` (means over seeds).
    """
    out = summ.copy()
    out["discharge_per_yr_kwh"] = _per_year(out, "bess_discharge_kwh")
    if "co2_avoided_bess_kg" in out:
        out["co2_avoided_per_yr_kg"] = _per_year(out, "co2_avoided_bess_kg")
    out["fade_per_yr_frac"] = out["capacity_fade_annualised_percent"].to_numpy(float) / 100.0
    eco = pd.DataFrame([_row_economics(r, ep) for r in out.to_dict("records")], index=out.index)
    out = pd.concat([out, eco], axis=1)
    out["project_life_yr"] = ep.project_life_yr
    out["marginal_savings_per_yr"] = math.nan
    out["marginal_npv"] = math.nan
    out["knee"] = False
    if ENERGY_KEY not in keys:
        return out
    for _, g in out.groupby(series_keys(keys), sort=False):
        g = g.sort_values(ENERGY_KEY, kind="stable")
        out.loc[g.index[1:], "marginal_savings_per_yr"] = np.diff(g["savings_per_yr"].to_numpy(float))
        out.loc[g.index[1:], "marginal_npv"] = np.diff(g["npv"].to_numpy(float))
        out.loc[g.index[knee(g[ENERGY_KEY].to_numpy(float), g["npv"].to_numpy(float))], "knee"] = True
    if out["controller"].nunique() > 1:
        best = out.groupby([k for k in keys], sort=False)["savings_per_yr"].transform("max")
        out["savings_share_of_best"] = np.where(best > 0, out["savings_per_yr"] / best.where(best > 0, 1.0),
                                                math.nan)
    return out


def curve_notes(summ: pd.DataFrame, keys: Sequence[str], currency: str) -> list[str]:
    """Plain sentences for every place where savings or CO2 avoided fall with a larger
    battery, or the marginal savings rise (the curve is not concave), with the reason."""
    if ENERGY_KEY not in keys:
        return []
    notes: list[str] = []
    cur = f"k{currency}/yr"
    for name, g in summ.groupby(series_keys(keys), sort=False):
        label = " · ".join(str(v) for v in (name if isinstance(name, tuple) else (name,)))
        ctrl = str(g["controller"].iloc[0])
        g = g.sort_values(ENERGY_KEY, kind="stable")
        x = g[ENERGY_KEY].to_numpy(float)
        why = _why(ctrl)
        for col, what, unit, scale in (("savings_per_yr", "savings from the BESS", cur, 1e-3),
                                       ("co2_avoided_per_yr_kg", "CO₂ avoided by the BESS", "t/yr", 1e-3)):
            if col not in g:
                continue
            v = g[col].to_numpy(float)
            for i in np.flatnonzero(np.diff(v) < -1e-9 * max(1.0, float(np.max(np.abs(v))))):
                notes.append(f"{label}: {what} fall from {x[i]:,.0f} to {x[i + 1]:,.0f} kWh "
                             f"({(v[i + 1] - v[i]) * scale:+,.1f} {unit}). {why}")
        m = np.diff(g["savings_per_yr"].to_numpy(float))
        for i in np.flatnonzero(np.diff(m) > 1e-9 * max(1.0, float(np.max(np.abs(m))) if m.size else 1.0)):
            notes.append(f"{label}: the extra savings rise from {m[i] * 1e-3:,.1f} "
                         f"({x[i]:,.0f}→{x[i + 1]:,.0f} kWh) to {m[i + 1] * 1e-3:,.1f} {cur} "
                         f"({x[i + 1]:,.0f}→{x[i + 2]:,.0f} kWh): no diminishing returns there. {why}")
    return notes


def _why(ctrl: str) -> str:
    if ctrl == "optimal":
        return ("optimal minimises the horizon's grid cost plus its penalties (unserved EV "
                "energy, CO₂ and peak prices from controller_params), not savings or CO₂ alone, "
                "so a larger battery may trade one for another; the run's own ageing and the "
                "safety layer also differ between sizes.")
    return (f"{ctrl} follows rules whose thresholds, not the battery's worth, decide when it "
            "charges and discharges; compare with optimal (the perfect-foresight plan) to see "
            "what the battery itself is worth.")


# ------------------------------------------------------------------------ figures
def _lines(ax: Any, summ: pd.DataFrame, keys: Sequence[str], col: str, scale: float,
           mark_knee: bool = True) -> None:
    for j, (name, g) in enumerate(summ.groupby(series_keys(keys), sort=False)):
        g = g.sort_values(ENERGY_KEY, kind="stable")
        label = " · ".join(str(v) for v in (name if isinstance(name, tuple) else (name,)))
        colour = PALETTE[j % len(PALETTE)]
        x = g[ENERGY_KEY].to_numpy(float)
        ax.plot(x, g[col].to_numpy(float) * scale, marker="o", color=colour, label=label)
        if mark_knee and g["knee"].any():
            k = g[g["knee"]].iloc[0]
            ax.plot([k[ENERGY_KEY]], [k[col] * scale], marker="*", ms=16, color=COLORS["accent"],
                    ls="none", label=f"knee ({label}): {k[ENERGY_KEY]:,.0f} kWh")
    ax.set_xlabel(_x_label())
    thousands(ax, "x")
    ax.legend(loc="best", fontsize=9)


def _x_label() -> str:
    k = by_key()["capacity_kwh"]
    return f"Battery {k.label.lower()} [{k.unit}]"


def _kpi_label(key: str, currency: str, per_year: bool = True) -> tuple[str, float]:
    k = by_key()[key]
    unit = unit_text(k.display_unit, currency)
    return f"{k.label} [{unit}{'/yr' if per_year else ''}]", k.scale


def payback_figure(summ: pd.DataFrame, keys: Sequence[str], life_yr: int) -> Figure:
    """Discounted payback against capacity; sizes that do not pay back within the project
    life (or never) are drawn as ▲ markers at the life line, labelled "> life", so one
    absurd value cannot set the axis."""
    fig, ax = new_figure(WIDE)
    fig.suptitle("Discounted payback against battery capacity")
    cap = ABSURD * life_yr
    for j, (name, g) in enumerate(summ.groupby(series_keys(keys), sort=False)):
        g = g.sort_values(ENERGY_KEY, kind="stable")
        label = " · ".join(str(v) for v in (name if isinstance(name, tuple) else (name,)))
        colour = PALETTE[j % len(PALETTE)]
        x = g[ENERGY_KEY].to_numpy(float)
        y = g["discounted_payback_years"].to_numpy(float)
        ok = np.isfinite(y) & (y <= cap)
        over = ~ok & (g["capex"].to_numpy(float) > 0)
        ax.plot(x[ok], y[ok], marker="o", color=colour, label=label)
        if over.any():
            ax.plot(x[over], np.full(int(over.sum()), cap), marker="^", ms=10, ls="none",
                    color=colour, label=f"{label}: > life ({life_yr} yr)")
            for xi in x[over]:
                ax.annotate("> life", (xi, cap), textcoords="offset points", xytext=(0, 8),
                            ha="center", fontsize=8, color=colour)
    ax.axhline(life_yr, color=COLORS["accent"], ls="--", lw=1)
    ax.set_ylim(0, cap * 1.15)
    ax.set_xlabel(_x_label())
    ax.set_ylabel("Discounted payback [yr]")
    thousands(ax, "x")
    ax.legend(loc="best", fontsize=9)
    return fig


def sizing_figures(summ: pd.DataFrame, keys: Sequence[str], currency: str,
                   life_yr: int) -> list[tuple[str, str, str, Figure]]:
    """The sizing page's figures: ``(stem, section, caption, figure)``."""
    figs: list[tuple[str, str, str, Figure]] = []
    sav_label, sav_scale = _kpi_label("savings_bess_soles", currency)
    fig, ax = new_figure(WIDE)
    fig.suptitle("Savings from the battery against its capacity")
    _lines(ax, summ, keys, "savings_per_yr", sav_scale)
    ax.set_ylabel(sav_label)
    figs.append(("sizing_savings", "Savings", "Mean over seeds, scaled to a year; star: the knee "
                 "(largest NPV) of each series.", fig))
    fig, ax = new_figure(WIDE)
    fig.suptitle("Extra savings of each step in capacity")
    _lines(ax, summ, keys, "marginal_savings_per_yr", sav_scale, mark_knee=False)
    ax.axhline(0, color=COLORS["grid"], lw=1)
    ax.set_ylabel(f"Extra savings over the next smaller size [k{currency}/yr]")
    figs.append(("sizing_marginal", "Savings", "Savings of a size minus those of the next smaller "
                 "size of the grid; diminishing returns make this fall.", fig))
    fig, ax = new_figure(WIDE)
    fig.suptitle("Net present value against battery capacity")
    _lines(ax, summ, keys, "npv", 1e-3)
    ax.axhline(0, color=COLORS["grid"], lw=1)
    ax.set_ylabel(f"Net present value [k{currency}]")
    figs.append(("sizing_npv", "Economics", f"Over {life_yr} years, with capacity fade and cell "
                 "replacements; star: the knee (largest NPV).", fig))
    figs.append(("sizing_payback", "Economics", "Years until the discounted savings repay CAPEX, "
                 "O&M and replacements; ▲ '> life': not within the project life.",
                 payback_figure(summ, keys, life_yr)))
    fig, axs = new_figure(WIDE, ncols=2)
    fig.suptitle("Levelised cost of storage and internal rate of return")
    _lines(axs[0], summ, keys, "lcos_per_kwh", 1.0, mark_knee=False)
    axs[0].set_ylabel(f"LCOS [{currency}/kWh discharged]")
    _lines(axs[1], summ, keys, "irr", 100.0, mark_knee=False)
    axs[1].set_ylabel("IRR [%/yr]")
    figs.append(("sizing_lcos_irr", "Economics", "LCOS: discounted CAPEX + O&M + replacements over "
                 "the discounted energy discharged (charging energy not costed). IRR: the "
                 "discount rate of zero NPV (none when the size never pays back).", fig))
    if "co2_avoided_per_yr_kg" in summ:
        co2_label, co2_scale = _kpi_label("co2_avoided_bess_kg", currency)
        fig, ax = new_figure(WIDE)
        fig.suptitle("CO₂ avoided by the battery against its capacity")
        _lines(ax, summ, keys, "co2_avoided_per_yr_kg", co2_scale, mark_knee=False)
        ax.set_ylabel(co2_label)
        figs.append(("sizing_co2", "CO₂", "Against the same site without a battery, mean over "
                     "seeds, scaled to a year.", fig))
    return figs


# --------------------------------------------------------------------------- page
#: Columns of the page's table: (column, header, scale, format); ``{cur}``: the currency.
TABLE = [
    ("controller", "controller", 1.0, ""),
    (ENERGY_KEY, "capacity [kWh]", 1.0, ",.0f"),
    ("nominal_power_kw", "power [kW]", 1.0, ",.0f"),
    ("savings_per_yr", "savings [k{cur}/yr]", 1e-3, ",.1f"),
    ("marginal_savings_per_yr", "extra savings [k{cur}/yr]", 1e-3, ",.1f"),
    ("co2_avoided_per_yr_kg", "CO₂ avoided [t/yr]", 1e-3, ",.1f"),
    ("capex", "CAPEX [k{cur}]", 1e-3, ",.0f"),
    ("opex_per_yr", "O&M [k{cur}/yr]", 1e-3, ",.1f"),
    ("npv", "NPV [k{cur}]", 1e-3, ",.0f"),
    ("irr", "IRR [%]", 100.0, ".1f"),
    ("lcos_per_kwh", "LCOS [{cur}/kWh]", 1.0, ",.2f"),
    ("discounted_payback_years", "disc. payback [yr]", 1.0, ".1f"),
    ("payback_years", "simple payback [yr]", 1.0, ".1f"),
    ("replacement_years", "replaced in year", 1.0, ""),
    ("savings_share_of_best", "share of best savings [%]", 100.0, ".0f"),
]


def fmt_num(x: float, fmt: str) -> str:
    """``x`` formatted, without the sign of a value that rounds to zero (no "-0.0")."""
    t = f"{x:{fmt}}"
    return t[1:] if t.startswith("-") and not t.strip("-0.,") else t


def _cell(v: Any, scale: float, fmt: str, col: str, life: int) -> str:
    if isinstance(v, bool | np.bool_):
        return f"<td>{'★' if v else ''}</td>"
    if isinstance(v, int | float | np.integer | np.floating) and fmt:
        x = float(v)
        if col.endswith("payback_years") and (math.isinf(x) or x > life):
            return f'<td class="num">&gt; life ({life})</td>'
        if not math.isfinite(x):
            return '<td class="missing">–</td>'
        return f'<td class="num">{fmt_num(x * scale, fmt)}</td>'
    return f"<td>{html.escape(str(v))}</td>"


def table_html(summ: pd.DataFrame, currency: str, keys: Sequence[str] = (ENERGY_KEY,)) -> str:
    """The per-size table (the knee marked ★), numbers with units and thousands separators;
    one column per grid key besides the capacity."""
    cols = [c for c in TABLE if c[0] in summ.columns]
    extra = [(k, k, 1.0, ",.6g") for k in keys if k != ENERGY_KEY and k in summ.columns]
    cols = cols[:1] + extra + cols[1:]
    life = int(summ["project_life_yr"].iloc[0]) if len(summ) and "project_life_yr" in summ else 0
    head = "".join(f"<th>{html.escape(h.replace('{cur}', currency))}</th>" for _, h, _, _ in cols)
    body = []
    for r in summ.to_dict("records"):
        cells = "".join(_cell(r[c], s, f, c, life) for c, _, s, f in cols)
        body.append(f"<tr>{cells}<td>{'★ knee' if r.get('knee') else ''}</td></tr>")
    return (f'<table class="kpi"><thead><tr>{head}<th></th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def params_html(ep: EconParams, currency: str, fade_source: str) -> str:
    """The economic parameters as a two-column table."""
    rows = [
        ("CAPEX, energy part", f"{ep.capex_per_kwh:,.0f} {currency}/kWh"),
        ("CAPEX, power part", f"{ep.capex_per_kw:,.0f} {currency}/kW"),
        ("CAPEX, fixed (with a battery)", f"{ep.capex_fixed:,.0f} {currency}"),
        ("O&M", f"{ep.opex_per_kwh_yr:,.2f} {currency}/kWh/yr + {ep.opex_per_kw_yr:,.2f} "
                f"{currency}/kW/yr + {ep.opex_frac_of_capex_yr:.2%} of CAPEX/yr"),
        ("Project life", f"{ep.project_life_yr} yr"),
        ("Discount rate", f"{ep.discount_rate:.2%}/yr"),
        ("Cell replacement", f"below {ep.replacement_capacity_frac:.0%} of nameplate, at "
                             f"{ep.replacement_cost_frac:.0%} of the energy part"),
        ("Capacity fade", fade_source),
    ]
    body = "".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>" for a, b in rows)
    return f'<table class="runinfo">{body}</table>'


def write_sizing_page(out: Path, summ: pd.DataFrame, keys: Sequence[str], ep: EconParams,
                      currency: str, title: str, subtitle: str, extra_notes: Sequence[str] = ()) -> Path:
    """Write ``sizing.html`` (self-contained: images embedded) into ``out``; return its path."""
    with report_style():
        figs = sizing_figures(summ, keys, currency, ep.project_life_yr)
        rendered = [RenderedFigure(stem, sec, fig.get_suptitle() or stem, cap, _png(fig))
                    for stem, sec, cap, fig in figs]
    knees = summ[summ["knee"]]
    verdict = "; ".join(
        f"{' · '.join(str(r[k]) for k in series_keys(keys))}: {r[ENERGY_KEY]:,.0f} kWh "
        f"(NPV {r['npv'] * 1e-3:,.0f} k{currency})" for r in knees.to_dict("records"))
    notes = curve_notes(summ, keys, currency) or [
        "Savings and CO₂ avoided rise with the capacity and the extra savings of each step "
        "fall, in every series (diminishing returns)."]
    shape = "".join(f"<li>{html.escape(n)}</li>" for n in [*notes, *_npv_note(summ, keys)])
    page = render_page(
        title, subtitle,
        [("Knee of the curve (largest NPV)", f"<p>{html.escape(verdict or 'no series')}</p>"),
         ("Shape of the curves", f"<ul>{shape}</ul>"),
         ("Economic parameters", params_html(ep, currency, "the run's capacity fade per year "
                                             "(ageing model, linear), mean over seeds")),
         ("Per size (mean over seeds)", table_html(summ, currency, keys))],
        rendered,
        ["The knee is the size of largest NPV: along a concave NPV curve, the largest size "
         "whose NPV exceeds that of the next smaller size.",
         "Savings and discharged energy of later years scale with the battery's mean capacity "
         "that year (an upper bound on the loss); at the end of the life the cells are worth "
         "the replacement cost × the share of their life left (linear residual value).",
         "Without a battery (0 kWh) there is no CAPEX and no O&M: no cells, no power electronics.",
         *extra_notes],
    )
    dest = out / "sizing.html"
    write_file_atomic(dest, page)
    return dest


def _npv_note(summ: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """A sentence per series whose every battery has a negative NPV (its knee is 0 kWh)."""
    out = []
    for name, g in summ.groupby(series_keys(keys), sort=False):
        g = g[g["capex"] > 0]
        if len(g) and bool((g["npv"] < 0).all()):
            label = " · ".join(str(v) for v in (name if isinstance(name, tuple) else (name,)))
            out.append(f"{label}: no battery size of the grid pays back within the project life "
                       "at these costs (every NPV is negative), so the knee is the smallest size "
                       "of the grid (no battery when 0 kWh is on it).")
    return out


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


__all__ = ["ENERGY_KEY", "TABLE", "add_economics", "curve_notes", "fmt_num", "params_html", "payback_figure",
           "series_keys", "sizing_figures", "table_html", "write_sizing_page"]

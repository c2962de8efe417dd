"""Figures and pages of A/B trials and sizing sweeps (``twin ab``, ``twin sweep``).

Plain data in (DataFrames and dicts built by :mod:`twin.trials`), PNG bytes and one
self-contained HTML page out, drawn with the report's style and page helpers.
"""

from __future__ import annotations

import html
import io
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from twin.atomic import replace_dir, temp_sibling, write_file_atomic
from twin.config import DEFAULT_CURRENCY
from twin.report.html import RenderedFigure, data_uri, render_page
from twin.report.style import COLORS, TALL, WIDE, empty_note, new_figure, report_style

#: Significance level the forest plots mark (Holm-adjusted p below it).
ALPHA = 0.05

#: Controller colours in trial figures, in the order the controllers are given.
PALETTE = ["#1D3557", "#E76F51", "#2A9D8F", "#F4A300", "#7B2CBF", "#6C757D", "#E63946", "#90BE6D"]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def forest_plot(summary: pd.DataFrame, labels: Mapping[str, str]) -> Figure:
    """Mean paired difference per KPI and pair with its t and bootstrap CIs, in percent of b."""
    rows = summary.reset_index(drop=True)
    n = len(rows)
    fig, ax = new_figure((11.0, max(3.0, 0.34 * n + 1.4)))
    fig.suptitle("Paired differences a − b with 95 % confidence intervals")
    if n == 0:
        empty_note(ax, "no KPI to compare (fewer than 2 complete seeds)")
        return fig
    big = np.maximum(rows["mean_a"].abs().to_numpy(float), rows["mean_b"].abs().to_numpy(float))
    scale = np.where(big > 1e-9, big, np.nan)

    def rel(c: str) -> np.ndarray:
        return np.nan_to_num(rows[c].to_numpy(float) / scale * 100.0)

    y = np.arange(n)[::-1]
    m, lo, hi, blo, bhi = rel("mean_diff"), rel("ci_low"), rel("ci_high"), rel("boot_low"), rel("boot_high")
    sig = ~((rows["ci_low"] <= 0) & (rows["ci_high"] >= 0)).to_numpy()
    ax.hlines(y + 0.18, blo, bhi, color="#8AD3C8", lw=5, label="bootstrap 95 % CI")
    ax.errorbar(
        m,
        y,
        xerr=[m - lo, hi - m],
        fmt="none",
        ecolor=COLORS["mall"],
        elinewidth=1.6,
        capsize=3,
        label="paired t 95 % CI",
    )
    ax.scatter(m[sig], y[sig], color=COLORS["accent"], zorder=3, label="CI excludes 0")
    ax.scatter(m[~sig], y[~sig], color="#999999", zorder=3, label="CI covers 0")
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(
        y,
        [f"{labels.get(str(r['kpi']), str(r['kpi']))}: {r['a']} − {r['b']}" for r in rows.to_dict("records")],
    )
    ax.set_xlabel("difference a − b [% of the larger of the two means]")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def kpi_forest(rows: pd.DataFrame, label: str, unit: str, scale: float = 1.0) -> Figure:
    """Forest plot of one KPI: each pair's mean a − b in the KPI's shown unit, with the
    paired-t interval (bar) and the bootstrap interval (band); filled dot: significant after
    the Holm correction, grey: the t interval covers 0, hollow: neither."""
    rows = rows.reset_index(drop=True)
    n = len(rows)
    fig, ax = new_figure((6.2, 0.5 * n + 1.3))
    if n == 0:
        empty_note(ax, "no pair to compare")
        return fig
    sc = scale
    y = np.arange(n)[::-1].astype(float)

    def col(c: str) -> np.ndarray:
        return rows[c].to_numpy(float) * sc

    m, lo, hi, blo, bhi = col("mean_diff"), col("ci_low"), col("ci_high"), col("boot_low"), col("boot_high")
    ax.hlines(y + 0.2, blo, bhi, color="#8AD3C8", lw=5, label="bootstrap 95 % CI")
    ax.errorbar(m, y, xerr=[m - lo, hi - m], fmt="none", ecolor=COLORS["mall"], elinewidth=1.6,
                capsize=3, label="paired t 95 % CI")
    covers = (lo <= 0) & (hi >= 0)
    holm_sig = rows["p_holm"].to_numpy(float) < ALPHA if "p_holm" in rows else ~covers
    ax.scatter(m[holm_sig], y[holm_sig], color=COLORS["accent"], zorder=3, label="Holm p < 0.05")
    ax.scatter(m[covers], y[covers], color="#999999", zorder=3, label="t CI covers 0")
    rest = ~holm_sig & ~covers
    ax.scatter(m[rest], y[rest], facecolor="white", edgecolor=COLORS["accent"], zorder=3,
               label="t CI excludes 0, Holm p ≥ 0.05")
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{r['a']} − {r['b']}" for r in rows.to_dict("records")], fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(f"{label}: a − b" + (f" [{unit}]" if unit else ""), fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(loc="best", fontsize=7)
    return fig


def paired_dots(
    trials: pd.DataFrame, controllers: Sequence[str], kpis: Sequence[str], labels: Mapping[str, str]
) -> Figure:
    """Each KPI: one dot per seed and controller, the seed's dots joined by a line."""
    ks = [k for k in kpis if k in trials.columns]
    ncol = 4
    nrow = max(1, math.ceil(len(ks) / ncol))
    fig, axes = new_figure((11.0, 2.6 * nrow + 0.6), nrows=nrow, ncols=ncol, squeeze=False)
    fig.suptitle("Per-seed paired values (one line per seed)")
    ctrl = list(dict.fromkeys(controllers))
    xs = np.arange(len(ctrl))
    for i, ax in enumerate(axes.flat):
        if i >= len(ks):
            ax.set_visible(False)
            continue
        k = ks[i]
        wide = trials.pivot_table(index="seed", columns="controller", values=k, aggfunc="first")
        wide = wide.reindex(columns=ctrl)
        for _, row in wide.iterrows():
            ax.plot(xs, row.to_numpy(dtype=float), color="#BBBBBB", lw=0.7, zorder=1)
        for j, c in enumerate(ctrl):
            ax.scatter(
                np.full(len(wide), xs[j]),
                wide[c].to_numpy(dtype=float),
                s=12,
                color=PALETTE[j % len(PALETTE)],
                zorder=2,
            )
        ax.set_xticks(xs, ctrl, rotation=20, fontsize=8)
        ax.set_xlim(-0.5, len(ctrl) - 0.5)
        ax.set_title(labels.get(k, k), fontsize=10)
    return fig


def cumulative_cost(
    daily: pd.DataFrame, controllers: Sequence[str], currency: str = DEFAULT_CURRENCY
) -> Figure:
    """Cumulative grid cost over the horizon (top) and its paired difference to the first
    controller (bottom): mean over seeds (bold) and each seed (thin)."""
    fig, (ax, ax_d) = new_figure(TALL, nrows=2, sharex=True)
    fig.suptitle("Cumulative grid cost (mean over seeds; thin lines: each seed)")
    if daily.empty:
        empty_note(ax, "no finished runs")
        return fig
    ctrl = list(dict.fromkeys(controllers))
    cums: dict[str, pd.DataFrame] = {}
    for c in ctrl:
        d = daily[daily["controller"] == c]
        if not d.empty:
            wide = d.pivot_table(index="day", columns="seed", values="grid_cost_soles", aggfunc="sum")
            cums[c] = wide.sort_index().cumsum()
    ref = ctrl[0]
    for j, c in enumerate(ctrl):
        if c not in cums:
            continue
        cum = cums[c]
        x = np.arange(1, len(cum) + 1)
        col = PALETTE[j % len(PALETTE)]
        ax.plot(x, cum.to_numpy(), color=col, lw=0.5, alpha=0.35)
        ax.plot(x, cum.mean(axis=1).to_numpy(), color=col, lw=2.2, label=c)
        if ref in cums and c != ref:
            seeds = cum.columns.intersection(cums[ref].columns)
            diff = cum[seeds] - cums[ref][seeds]
            ax_d.plot(x, diff.to_numpy(), color=col, lw=0.5, alpha=0.35)
            ax_d.plot(x, diff.mean(axis=1).to_numpy(), color=col, lw=2.2, label=f"{c} − {ref}")
    ax.set_ylabel(f"cumulative grid cost [{currency}]")
    ax.legend(loc="upper left")
    ax_d.axhline(0.0, color="black", lw=0.8)
    ax_d.set_ylabel(f"paired difference [{currency}]")
    ax_d.set_xlabel("day of the horizon")
    ax_d.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(cums) > 1:
        ax_d.legend(loc="upper left")
    return fig


def heatmap(
    grid: pd.DataFrame,
    x: str,
    y: str,
    value: str,
    title: str,
    unit: str,
    mark: tuple[float, float] | None = None,
    cmap: str = "viridis",
) -> Figure:
    """``value`` over a 2-D grid of ``x`` and ``y`` (one cell per point), the formula point marked."""
    fig, ax = new_figure((8.5, 6.0))
    fig.suptitle(title)
    piv = grid.pivot_table(index=y, columns=x, values=value, aggfunc="mean").sort_index()
    if piv.empty:
        empty_note(ax, "no finished runs")
        return fig
    xs = piv.columns.to_numpy(dtype=float)
    ys = piv.index.to_numpy(dtype=float)
    z = piv.to_numpy(dtype=float)
    masked = np.ma.masked_invalid(z)
    im = ax.pcolormesh(_edges(xs), _edges(ys), masked, cmap=cmap, shading="flat")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label(f"{value} [{unit}]")
    if z.size <= 120:
        for (iy, ix), v in np.ndenumerate(z):
            txt = "never" if not np.isfinite(v) else _short(v)
            r, g, b, _ = im.cmap(im.norm(v)) if np.isfinite(v) else (1.0, 1.0, 1.0, 1.0)
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(
                xs[ix], ys[iy], txt, ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
    if mark is not None:
        ax.scatter(
            [mark[0]],
            [mark[1]],
            marker="*",
            s=260,
            color=COLORS["accent"],
            edgecolor="black",
            zorder=5,
            label=f"sizing formulas ({mark[0]:,.0f}, {mark[1]:,.0f})",
        )
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(False)
    return fig


def line_sweep(
    grid: pd.DataFrame, x: str, value: str, title: str, unit: str, mark: float | None = None
) -> Figure:
    """``value`` against one swept key, one line per controller."""
    fig, ax = new_figure(WIDE)
    fig.suptitle(title)
    for j, (c, d) in enumerate(grid.groupby("controller", sort=False)):
        s = d.groupby(x)[value].mean().sort_index()
        ax.plot(
            s.index.to_numpy(dtype=float),
            s.to_numpy(dtype=float),
            marker="o",
            color=PALETTE[j % len(PALETTE)],
            label=str(c),
        )
    if mark is not None:
        ax.axvline(mark, color=COLORS["accent"], ls="--", label=f"sizing formulas ({mark:,.0f})")
    ax.set_xlabel(x)
    ax.set_ylabel(f"{value} [{unit}]")
    ax.legend(loc="best")
    return fig


def _short(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.2g}" if a < 1 else f"{v:.1f}"


def _edges(c: np.ndarray) -> np.ndarray:
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[:-1] + c[1:]) / 2.0
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def frame_html(df: pd.DataFrame, floatfmt: str = "{:,.4g}") -> str:
    """A plain HTML table of ``df`` (numbers right-aligned)."""
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f'<td class="num">{esc(floatfmt.format(v)) if math.isfinite(v) else "–"}</td>')
            elif isinstance(v, int | np.integer) and not isinstance(v, bool):
                cells.append(f'<td class="num">{v}</td>')
            else:
                cells.append(f"<td>{esc(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="kpi"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def write_page(
    out_dir: Path,
    html_name: str,
    title: str,
    subtitle: str,
    tables: list[tuple[str, str]],
    figures: list[tuple[str, str, str, Figure]],
    notes: list[str] | None = None,
    extra_pngs: Mapping[str, bytes] | None = None,
) -> list[Path]:
    """Write ``figures/*.png`` and ``html_name`` into ``out_dir`` atomically.

    ``figures`` holds ``(stem, section, caption, figure)``; ``extra_pngs`` more figures
    (``stem: PNG bytes``) the tables embed themselves. The ``figures`` folder is replaced as
    a whole, the page through a temporary file.
    """
    rendered = [
        RenderedFigure(stem, section, fig.get_suptitle() or stem, caption, _png(fig))
        for stem, section, caption, fig in figures
    ]
    page = render_page(title, subtitle, tables, rendered, notes)
    fig_dir = out_dir / "figures"
    tmp = temp_sibling(fig_dir)
    extra = dict(extra_pngs or {})
    try:
        for f in rendered:
            (tmp / f"{f.stem}.png").write_bytes(f.png)
        for stem, png in extra.items():
            (tmp / f"{stem}.png").write_bytes(png)
        replace_dir(tmp, fig_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dest = out_dir / html_name
    write_file_atomic(dest, page)
    return [fig_dir / f"{f.stem}.png" for f in rendered] + [fig_dir / f"{s}.png" for s in extra] + [dest]


#: Styles of the trial page's KPI cards (on top of the report's): cards in a grid that
#: wraps, narrow tables whose cells may break, so nothing is wider than the page.
CARDS_CSS = """
.grid > section { min-width: 0; max-width: 100%; }
.grid > section:has(.cards) { flex: 1 1 100%; }
.grid td { overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px 10px; min-width: 0; }
.card h3 { margin: 8px 0 4px; font-size: 17px; }
.card h3 small { color: var(--muted); font-weight: normal; font-size: 13px; }
.card p.verdict { margin: 4px 0 8px; }
.card ol.rank { margin: 4px 0 8px; padding-left: 22px; }
.card table { width: 100%; font-size: 13px; margin: 4px 0 8px; }
.card th, .card td { padding: 3px 6px; overflow-wrap: normal; }
.card td.pair { overflow-wrap: anywhere; }
.card img { display: block; width: 100%; height: auto; }
p.warn, li.warn { background: #fff4ce; border-left: 4px solid #f4a300; padding: 4px 8px; }
ul.warns { list-style: none; padding: 0; }
"""


def _pair_table(card: Mapping[str, Any]) -> str:
    """The pairs of one KPI: a − b, both 95 % intervals, Holm-adjusted p, seeds a wins."""
    esc = html.escape
    unit = f" [{esc(card['unit'])}]" if card["unit"] else ""
    head = (f"<tr><th>a − b</th><th>mean{unit}</th><th>95 % CI (t)</th><th>95 % CI (bootstrap)</th>"
            '<th>Holm p</th><th title="seeds on which a is better (ties count half)">a wins</th></tr>')
    body = []
    for c in card["pairs"]:
        flag = " ⚠" if c["warning"] else ""
        body.append(f'<tr><td class="pair">{esc(c["pair"])}{flag}</td>'
                    + "".join(f'<td class="num">{esc(c[f])}</td>'
                              for f in ("mean", "t_ci", "boot_ci", "p_holm", "wins"))
                    + "</tr>")
    return f'<table class="pairs"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def kpi_card(card: Mapping[str, Any], png: bytes | None) -> str:
    """One KPI's card (``twin.trials.ab.card_data``): name, unit and direction; the verdict
    sentence; the controllers ranked best first; warnings; the pair table; the forest plot."""
    esc = html.escape
    unit = f" [{esc(card['unit'])}]" if card["unit"] else ""
    parts = [f'<article class="card" id="kpi-{esc(card["key"])}">',
             f"<h3>{esc(card['label'])}{unit} <small>{esc(card['direction'])}</small></h3>",
             f'<p class="verdict">{esc(card["verdict"])}.</p>']
    if card["ranking"]:
        items = "".join(f"<li><b>{esc(c)}</b> {esc(m)}</li>" for c, m in card["ranking"])
        parts.append(f'<ol class="rank" title="mean over the common seeds, best first">{items}</ol>')
    parts += [f'<p class="warn">⚠ {esc(w)}</p>' for w in card["warnings"]]
    parts.append(_pair_table(card))
    if png is not None:
        parts.append(f'<img src="{data_uri(png)}" alt="forest plot of {esc(card["label"])}">')
    parts.append("</article>")
    return "".join(parts)


def kpi_cards(cards: Mapping[str, Any]) -> tuple[str, dict[str, bytes]]:
    """The KPI cards (``twin.trials.ab.card_data``) as HTML, and the PNG of each card's forest
    plot by figure stem (``ab_forest_KEY``)."""
    esc = html.escape
    out: list[str] = []
    pngs: dict[str, bytes] = {}
    for card in cards["cards"]:
        png = _png(kpi_forest(card["rows"], card["label"], card["unit"], card["scale"]))
        pngs[f"ab_forest_{card['key']}"] = png
        out.append(kpi_card(card, png))
    warns = "".join(f'<li class="warn">⚠ {esc(w)}</li>' for w in cards["warnings"])
    head = f'<ul class="warns">{warns}</ul>' if warns else ""
    intro = (f"<p>Per KPI: the controllers ranked best first (mean over the common seeds), the "
             f"best against the runner-up in one sentence, every pair's mean difference a − b "
             f"with its paired-t and bootstrap 95 % intervals, and p-values Holm-adjusted across "
             f"all {cards['n_comparisons']} KPI × pair comparisons on this page.</p>")
    return f"<style>{CARDS_CSS}</style>{head}{intro}<div class=\"cards\">{''.join(out)}</div>", pngs


def ab_page(
    out_dir: Path,
    summary: pd.DataFrame,
    trials: pd.DataFrame,
    daily: pd.DataFrame,
    controllers: Sequence[str],
    kpis: Sequence[str],
    labels: Mapping[str, str],
    meta: Mapping[str, Any],
    cards: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Figures and ``ab.html`` of an A/B trial: one card per KPI (``cards``, from
    ``twin.trials.ab.card_data``: ranking, verdict, pairs in the KPI catalogue's units and
    formats, forest plot), then the overview figures."""
    currency = str(meta.get("currency", DEFAULT_CURRENCY))
    with report_style():
        html_cards, pngs = kpi_cards(cards) if cards is not None else (
            "<p>(no KPI cards: pass twin.trials.ab.card_data)</p>", {})
        figs = [
            (
                "ab_forest",
                "Overview",
                "Mean of a − b per KPI and pair, in percent of the larger of the two means, "
                "with the paired-t (bar) and bootstrap (band) 95 % intervals; grey: the interval "
                "covers 0 (no multiplicity correction here: see the cards for the Holm p).",
                forest_plot(summary, labels),
            ),
            (
                "ab_paired_dots",
                "Per seed",
                "Each seed's value under every controller; lines join one "
                "seed's runs (same weather, mall and riders).",
                paired_dots(trials, controllers, kpis, labels),
            ),
            (
                "ab_cumulative_cost",
                "Cost over time",
                "Cumulative grid cost per controller, and its paired difference to the first one: "
                "mean over seeds in bold, every seed thin.",
                cumulative_cost(daily, controllers, currency),
            ),
        ]
    info = pd.DataFrame({"item": list(meta), "value": [str(v) for v in meta.values()]})
    tables = [("Trial", frame_html(info)), ("Results per KPI", html_cards)]
    return write_page(
        out_dir,
        "ab.html",
        f"pvbess-twin A/B trial: {meta.get('scenario', '')}",
        f"controllers {', '.join(controllers)} · seeds {meta.get('seeds', '')} · common random numbers",
        tables,
        figs,
        [
            "Differences are a − b on the same seed (same PV clouds, mall noise and EV "
            "sessions). p (Holm): paired-t p-values adjusted with Holm's step-down method across "
            "every KPI × pair on the page (family-wise error rate 5 %). ab_summary.csv keeps "
            "every number at full precision."
        ],
        extra_pngs=pngs,
    )


__all__ = [
    "CARDS_CSS",
    "PALETTE",
    "ab_page",
    "cumulative_cost",
    "forest_plot",
    "frame_html",
    "heatmap",
    "kpi_card",
    "kpi_cards",
    "kpi_forest",
    "line_sweep",
    "paired_dots",
    "write_page",
]

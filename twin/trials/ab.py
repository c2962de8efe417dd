"""The analysis of an A/B trial: records → ``trials`` table → paired statistics per KPI.

Pairs are every two controllers in the order given (``a`` before ``b``); with ``optimal``
in the set, each other controller is paired as ``a`` against ``optimal`` as ``b``, so
``mean_diff`` is that controller's gap to the optimum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from twin import kpi_catalogue
from twin.config import DEFAULT_CURRENCY
from twin.kpi_catalogue import unit_text
from twin.stats import MIN_SEEDS, compare, holm


@dataclass(frozen=True)
class Kpi:
    """A KPI compared in the summary.

    Attributes
    ----------
    key : summary key.
    label : short human name.
    unit : unit of the values (the summary's, money in the site's currency).
    lower_is_better : direction (None: no direction, only "higher" / "lower").
    shown_unit : unit shown on the page and in the Markdown (None: :attr:`unit`).
    scale : factor from :attr:`unit` to :attr:`shown_unit` (1e-3 for kWh → MWh).
    fmt : format spec of a shown value (thousands separators).
    """

    key: str
    label: str
    unit: str
    lower_is_better: bool | None
    shown_unit: str | None = None
    scale: float = 1.0
    fmt: str = ",.4g"

    @property
    def display_unit(self) -> str:
        """The unit shown (:attr:`shown_unit` or :attr:`unit`)."""
        return self.unit if self.shown_unit is None else self.shown_unit

    def show(self, v: float, unit: bool = True) -> str:
        """``v`` [:attr:`unit`] scaled, formatted and (with ``unit``) followed by its unit."""
        txt = fmt_num(v * self.scale, self.fmt)
        return f"{txt} {self.display_unit}" if unit and self.display_unit and txt != "–" else txt


def default_kpis(currency: str = DEFAULT_CURRENCY) -> tuple[Kpi, ...]:
    """The KPIs a trial compares: the ``trials`` rows of the KPI catalogue
    (:mod:`twin.kpi_catalogue`), money in ``currency`` (the site's ``tariff.currency``)."""
    return tuple(Kpi(k.key, k.trials_label, unit_text(k.unit, currency), k.lower_is_better,
                     unit_text(k.display_unit, currency), k.scale, k.fmt)
                 for k in kpi_catalogue.rows("trials"))


def fmt_num(v: float, spec: str = ",.4g") -> str:
    """``v`` with ``spec`` (e.g. ``,.1f``), never in scientific notation and never rounded to a
    bare 0: a value the spec would show as 0 (or as ``1e+06``) gets enough decimals for two
    significant digits (or none). Float dust (``|v| < 1e-9``) is "0"; NaN / inf "–"."""
    if not math.isfinite(v):
        return "–"
    if abs(v) < 1e-9:
        return "0"
    txt = format(v, spec)
    if "e" in txt.lower() or float(txt.replace(",", "")) == 0.0:
        digits = max(0, min(12, 1 - math.floor(math.log10(abs(v)))))
        txt = f"{v:,.{digits}f}"
    return txt


#: KPIs compared by default, in the default site's currency (those present in the records
#: are used); ``twin ab`` calls :func:`default_kpis` with the scenario's currency.
DEFAULT_KPIS: tuple[Kpi, ...] = default_kpis()

SUMMARY_COLUMNS = ["kpi", "a", "b", "n_seeds", "mean_diff", "ci_low", "ci_high", "p_value", "win_rate_a"]
EXTRA_COLUMNS = ["mean_a", "mean_b", "boot_low", "boot_high", "lower_is_better", "unit", "verdict",
                 "p_holm", "warning"]
#: Significance level of the Holm-corrected decisions.
ALPHA = 0.05


def trials_frame(records: Sequence[dict[str, Any]], controllers: Sequence[str]) -> pd.DataFrame:
    """One row per run: ``controller``, ``seed`` and every numeric KPI under its own key."""
    rows = [{**r["kpis"], "controller": r["controller"], "seed": int(r["seed"])} for r in records]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["controller", "seed"])
    order = {c: i for i, c in enumerate(controllers)}
    df["_o"] = df["controller"].map(order)
    df = df.sort_values(["_o", "seed"], kind="stable").drop(columns="_o").reset_index(drop=True)
    lead = ["controller", "seed"]
    return df[lead + sorted(c for c in df.columns if c not in lead)]


def pairs(controllers: Sequence[str]) -> list[tuple[str, str]]:
    """Controller pairs ``(a, b)``: every two in the given order; ``optimal`` always as ``b``."""
    uniq = list(dict.fromkeys(controllers))
    out = []
    for a, b in itertools.combinations(uniq, 2):
        if a == "optimal":
            a, b = b, a
        out.append((a, b))
    return out


def complete_seeds(trials: pd.DataFrame, controllers: Sequence[str]) -> list[int]:
    """Seeds with a finished run of every controller (the pairs need both sides)."""
    if trials.empty:
        return []
    have = trials.groupby("seed")["controller"].apply(set)
    need = set(controllers)
    return sorted(int(cast(Any, s)) for s, cs in have.items() if need <= cs)


def summarize(
    trials: pd.DataFrame,
    controllers: Sequence[str],
    kpis: Sequence[Kpi] = DEFAULT_KPIS,
    level: float = 0.95,
    boot_seed: int = 0,
) -> pd.DataFrame:
    """``ab_summary``: one row per KPI and pair (columns ``SUMMARY_COLUMNS + EXTRA_COLUMNS``).

    ``mean_diff`` is the mean of ``a − b`` over the seeds both finished (a pair with
    fewer than 2 such seeds is left out); ``ci_low`` /
    ``ci_high`` the paired-t interval, ``boot_low`` / ``boot_high`` the seeded
    percentile bootstrap; ``win_rate_a`` the share of seeds where ``a`` is better;
    ``p_holm`` the p-value Holm-adjusted across every row (all KPIs × pairs);
    ``warning`` the small-sample / interval-disagreement warning ("" when none,
    :func:`twin.stats.small_n_warning`).
    """
    rows: list[dict[str, Any]] = []
    for k in kpis:
        if k.key not in trials.columns:
            continue
        for a, b in pairs(controllers):
            seeds = complete_seeds(trials, [a, b])  # the seeds both finished
            if len(seeds) < 2:
                continue
            t = trials[trials["seed"].isin(seeds)]
            va = t[t["controller"] == a].sort_values("seed")[k.key].to_numpy(dtype=float)
            vb = t[t["controller"] == b].sort_values("seed")[k.key].to_numpy(dtype=float)
            if np.isnan(va).any() or np.isnan(vb).any():
                continue
            st = compare(va, vb, a, b, k.lower_is_better, level, boot_seed)
            d = st.as_dict()
            rows.append(
                {
                    "kpi": k.key,
                    "a": a,
                    "b": b,
                    **{c: d[c] for c in SUMMARY_COLUMNS[3:]},
                    **{c: d[c] for c in ("mean_a", "mean_b", "boot_low", "boot_high", "verdict")},
                    "lower_is_better": k.lower_is_better,
                    "unit": k.unit,
                    "warning": d["warning"],
                }
            )
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS + EXTRA_COLUMNS)
    out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float)) if len(out) else []
    return out


def _p(v: float) -> str:
    return "–" if not math.isfinite(v) else ("< 1e-4" if v < 1e-4 else f"{v:.4f}")


def kpi_of(key: str, kpis: Sequence[Kpi], unit: str = "") -> Kpi:
    """The row of ``key`` in ``kpis`` (a plain one in ``unit`` when it is not there)."""
    for k in kpis:
        if k.key == key:
            return k
    return Kpi(key, key, unit, None)


def markdown_table(summary: pd.DataFrame, kpis: Sequence[Kpi] = DEFAULT_KPIS) -> str:
    """The summary as a Markdown table (one row per KPI and pair), values in the KPIs'
    shown units; ``p (Holm)`` adjusted across all rows; a ``!`` marks a row with a warning."""
    head = (
        "| KPI | a − b | mean a | mean b | mean diff | 95 % CI (t) | 95 % CI (bootstrap) | p | "
        "p (Holm) | a wins | verdict |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in summary.to_dict("records"):
        k = kpi_of(str(r["kpi"]), kpis, str(r["unit"]))
        unit = f" [{k.display_unit}]" if k.display_unit else ""
        warn = f" ! {r['warning']}" if r.get("warning") else ""
        lines.append(
            f"| {k.label}{unit} | {r['a']} − {r['b']} | "
            f"{k.show(r['mean_a'], False)} | {k.show(r['mean_b'], False)} | "
            f"{k.show(r['mean_diff'], False)} | "
            f"[{k.show(r['ci_low'], False)}, {k.show(r['ci_high'], False)}] | "
            f"[{k.show(r['boot_low'], False)}, {k.show(r['boot_high'], False)}] | {_p(r['p_value'])} | "
            f"{_p(r.get('p_holm', math.nan))} | {r['win_rate_a'] * 100:.0f} % | {r['verdict']}{warn} |"
        )
    return "\n".join(lines)


def ranking(trials: pd.DataFrame, controllers: Sequence[str], k: Kpi) -> list[tuple[str, float]]:
    """``(controller, mean)`` best first on ``k`` (highest first when it has no direction),
    means over the seeds every controller finished (all seeds when there are none)."""
    ctrl = list(dict.fromkeys(controllers))
    if k.key not in trials.columns or trials.empty:
        return []
    seeds = complete_seeds(trials, ctrl)
    t = trials[trials["seed"].isin(seeds)] if seeds else trials
    means = t.groupby("controller")[k.key].mean()
    have = [(c, float(means[c])) for c in ctrl if c in means.index and math.isfinite(float(means[c]))]
    lower = k.lower_is_better is True
    return sorted(have, key=lambda cm: cm[1] if lower else -cm[1])


def _advantage(summary: pd.DataFrame, k: Kpi, best: str, second: str) -> dict[str, Any] | None:
    """The summary row of the pair (best, second) turned into best's advantage (> 0: best is
    better, or higher when ``k`` has no direction): mean, t CI, wins, n, p, Holm p, warning."""
    rows = summary[(summary["kpi"] == k.key) & (summary["a"].isin([best, second]))
                   & (summary["b"].isin([best, second])) & (summary["a"] != summary["b"])]
    if rows.empty:
        return None
    r = rows.iloc[0]
    sign = 1.0 if r["a"] == best else -1.0  # best − second
    if k.lower_is_better is True:
        sign = -sign  # second − best: what best saves
    lo, hi = sorted((sign * float(r["ci_low"]), sign * float(r["ci_high"])))
    n = int(r["n_seeds"])
    wr = float(r["win_rate_a"]) if r["a"] == best else 1.0 - float(r["win_rate_a"])
    return {"adv": sign * float(r["mean_diff"]), "lo": lo, "hi": hi, "wins": wr * n, "n": n,
            "p": float(r["p_value"]), "p_holm": float(r.get("p_holm", math.nan)),
            "warning": str(r.get("warning", "") or "")}


def kpi_verdict(summary: pd.DataFrame, rank: Sequence[tuple[str, float]], k: Kpi,
                level: float = 0.95) -> str:
    """One plain sentence on ``k``: how much the best controller beats the runner-up by, with
    the paired-t CI of that advantage, the seeds it wins on and the Holm-adjusted p, e.g.
    "optimal has 62.6 kPEN less grid cost than six_phase, 95 % CI [61.7, 63.4], better on
    4/4 seeds (Holm p = 0.002)". Says so when the CI covers 0 or Holm does not confirm."""
    if len(rank) < 2:
        return f"only {rank[0][0] if rank else 'no controller'} ran: nothing to compare"
    best, second = rank[0][0], rank[1][0]
    adv = _advantage(summary, k, best, second)
    if adv is None:
        return f"{best} and {second} were not compared (fewer than 2 common seeds)"
    pct = f"{level * 100:g} %"
    ci = f"{pct} CI [{k.show(adv['lo'], False)}, {k.show(adv['hi'], False)}]"
    if adv["lo"] <= 0.0 <= adv["hi"]:
        return (f"no detectable difference between {best} and {second} on {k.label}: "
                f"{k.show(adv['adv'])} apart, {ci} covers 0")
    more = "less" if k.lower_is_better is True else "more"
    lead = f"{best} has {k.show(abs(adv['adv']))} {more} {k.label} than {second}"
    if k.lower_is_better is None:
        lead += " (no better direction)"
    better = "better" if k.lower_is_better is not None else "higher"
    tail = f", {ci}, {better} on {adv['wins']:g}/{adv['n']} seeds"
    p_holm = adv["p_holm"]
    if math.isfinite(p_holm):
        hp = "< 0.0001" if p_holm < 1e-4 else f"= {p_holm:.4f}"
        tail += f" (Holm p {hp})" if p_holm < ALPHA else \
            f"; not significant after the Holm correction (Holm p {hp})"
    return lead + tail


def warnings_note(summary: pd.DataFrame, min_seeds: int = MIN_SEEDS) -> list[str]:
    """Trial-wide warnings: few seeds, comparisons whose t and bootstrap intervals disagree."""
    if summary.empty:
        return []
    out = []
    n = int(summary["n_seeds"].min())
    if n < min_seeds:
        out.append(f"Small sample: {n} seeds (fewer than {min_seeds}). The t interval assumes normal "
                   "differences and the percentile bootstrap runs narrow; treat the intervals as rough.")
    dis = summary["warning"].fillna("").str.contains("covers 0")
    if dis.any():
        out.append(f"The t and bootstrap intervals disagree on whether the difference could be 0 in "
                   f"{int(dis.sum())} of {len(summary)} comparisons (marked): run more seeds.")
    return out


def _direction(k: Kpi) -> str:
    if k.lower_is_better is None:
        return "no better direction"
    return "lower is better" if k.lower_is_better else "higher is better"


def _pair_cells(r: Mapping[Any, Any], k: Kpi) -> dict[str, str]:
    """One pair of one KPI as shown on the page (values in the KPI's shown unit)."""
    p_holm = float(r.get("p_holm", math.nan))
    return {
        "pair": f"{r['a']} − {r['b']}",
        "mean": k.show(r["mean_diff"], False),
        "t_ci": f"[{k.show(r['ci_low'], False)}, {k.show(r['ci_high'], False)}]",
        "boot_ci": f"[{k.show(r['boot_low'], False)}, {k.show(r['boot_high'], False)}]",
        "p_holm": "–" if not math.isfinite(p_holm) else ("< 0.0001" if p_holm < 1e-4 else f"{p_holm:.4f}"),
        "wins": f"{float(r['win_rate_a']) * int(r['n_seeds']):g}/{int(r['n_seeds'])}",
        "warning": str(r.get("warning", "") or ""),
    }


def card_data(summary: pd.DataFrame, trials: pd.DataFrame, controllers: Sequence[str],
              kpis: Sequence[Kpi] = DEFAULT_KPIS) -> dict[str, Any]:
    """What the trial page shows per KPI, as plain data (the page only lays it out).

    Returns ``{"cards": [...], "warnings": [...], "n_comparisons": m}``; each card holds
    ``key, label, unit`` (shown unit), ``scale`` (stored → shown unit), ``direction``,
    ``verdict`` (:func:`kpi_verdict`), ``ranking`` (``(controller, formatted mean)`` best
    first), ``warnings``, ``pairs`` (formatted cells) and ``rows`` (the summary rows, for
    the forest plot). KPIs in ``kpis`` order, then any other KPI of the summary.
    """
    keys = list(dict.fromkeys(summary["kpi"].astype(str))) if len(summary) else []
    known = [k.key for k in kpis]
    cards = []
    for key in [x for x in known if x in keys] + [x for x in keys if x not in known]:
        rows = summary[summary["kpi"] == key].reset_index(drop=True)
        k = kpi_of(key, kpis, str(rows["unit"].iloc[0]))
        rank = ranking(trials, controllers, k)
        recs = rows.to_dict("records")
        cards.append({
            "key": key, "label": k.label, "unit": k.display_unit, "scale": k.scale,
            "direction": _direction(k), "verdict": kpi_verdict(summary, rank, k),
            "ranking": [(c, k.show(m)) for c, m in rank],
            "warnings": sorted({str(r.get("warning") or "") for r in recs} - {""}),
            "pairs": [_pair_cells(r, k) for r in recs], "rows": rows,
        })
    return {"cards": cards, "warnings": warnings_note(summary), "n_comparisons": len(summary)}


def optimal_gaps(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of the pairs against ``optimal``, with the gap also in percent of the optimum."""
    g = summary[summary["b"] == "optimal"].copy()
    g["gap_percent"] = np.where(g["mean_b"] != 0, g["mean_diff"] / g["mean_b"].abs() * 100.0, np.nan)
    return g


__all__ = [
    "ALPHA",
    "DEFAULT_KPIS",
    "EXTRA_COLUMNS",
    "SUMMARY_COLUMNS",
    "Kpi",
    "card_data",
    "complete_seeds",
    "default_kpis",
    "fmt_num",
    "kpi_of",
    "kpi_verdict",
    "markdown_table",
    "optimal_gaps",
    "pairs",
    "ranking",
    "summarize",
    "trials_frame",
    "warnings_note",
]

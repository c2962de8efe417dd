"""The analysis of an A/B trial: records → ``trials`` table → paired statistics per KPI.

Pairs are every two controllers in the order given (``a`` before ``b``); with ``optimal``
in the set, each other controller is paired as ``a`` against ``optimal`` as ``b``, so
``mean_diff`` is that controller's gap to the optimum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from twin import kpi_catalogue
from twin.config import DEFAULT_CURRENCY
from twin.kpi_catalogue import unit_text
from twin.stats import compare


@dataclass(frozen=True)
class Kpi:
    """A KPI compared in the summary.

    Attributes
    ----------
    key : summary key.
    label : short human name.
    unit : unit of the values.
    lower_is_better : direction (None: no direction, only "higher" / "lower").
    """

    key: str
    label: str
    unit: str
    lower_is_better: bool | None


def default_kpis(currency: str = DEFAULT_CURRENCY) -> tuple[Kpi, ...]:
    """The KPIs a trial compares: the ``trials`` rows of the KPI catalogue
    (:mod:`twin.kpi_catalogue`), money in ``currency`` (the site's ``tariff.currency``)."""
    return tuple(Kpi(k.key, k.trials_label, unit_text(k.unit, currency), k.lower_is_better)
                 for k in kpi_catalogue.rows("trials"))


#: KPIs compared by default, in the default site's currency (those present in the records
#: are used); ``twin ab`` calls :func:`default_kpis` with the scenario's currency.
DEFAULT_KPIS: tuple[Kpi, ...] = default_kpis()

SUMMARY_COLUMNS = ["kpi", "a", "b", "n_seeds", "mean_diff", "ci_low", "ci_high", "p_value", "win_rate_a"]
EXTRA_COLUMNS = ["mean_a", "mean_b", "boot_low", "boot_high", "lower_is_better", "unit", "verdict"]


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
    percentile bootstrap; ``win_rate_a`` the share of seeds where ``a`` is better.
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
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS + EXTRA_COLUMNS)


def _num(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    if abs(v) < 1e-9:  # float dust of a zero (e.g. the savings of no_bess)
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:,.1f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2e}"


def _p(v: float) -> str:
    return "–" if not math.isfinite(v) else ("< 1e-4" if v < 1e-4 else f"{v:.4f}")


def markdown_table(summary: pd.DataFrame, kpis: Sequence[Kpi] = DEFAULT_KPIS) -> str:
    """The summary as a Markdown table (one row per KPI and pair)."""
    label = {k.key: k.label for k in kpis}
    head = (
        "| KPI | a − b | mean a | mean b | mean diff | 95 % CI (t) | 95 % CI (bootstrap) | p | "
        "a wins | verdict |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in summary.to_dict("records"):
        lines.append(
            f"| {label.get(str(r['kpi']), r['kpi'])} [{r['unit']}] | {r['a']} − {r['b']} | "
            f"{_num(r['mean_a'])} | {_num(r['mean_b'])} | {_num(r['mean_diff'])} | "
            f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}] | "
            f"[{_num(r['boot_low'])}, {_num(r['boot_high'])}] | {_p(r['p_value'])} | "
            f"{r['win_rate_a'] * 100:.0f} % | {r['verdict']} |"
        )
    return "\n".join(lines)


def optimal_gaps(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of the pairs against ``optimal``, with the gap also in percent of the optimum."""
    g = summary[summary["b"] == "optimal"].copy()
    g["gap_percent"] = np.where(g["mean_b"] != 0, g["mean_diff"] / g["mean_b"].abs() * 100.0, np.nan)
    return g


__all__ = [
    "DEFAULT_KPIS",
    "EXTRA_COLUMNS",
    "SUMMARY_COLUMNS",
    "Kpi",
    "complete_seeds",
    "default_kpis",
    "markdown_table",
    "optimal_gaps",
    "pairs",
    "summarize",
    "trials_frame",
]

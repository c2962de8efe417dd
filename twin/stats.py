"""Paired statistics for controller A/B trials (no project imports: numpy and scipy only).

Every controller runs on the same seeds (common random numbers), so the comparison of
controllers ``a`` and ``b`` on one KPI is a comparison of *paired* values
``a_i, b_i`` (one pair per seed). Everything here works on the differences
``d_i = a_i - b_i``:

* :func:`paired_t_ci` — mean difference, two-sided confidence interval and p-value of the
  paired t test (``scipy.stats.t``);
* :func:`bootstrap_ci` — percentile bootstrap interval of the mean difference, from a
  seeded generator (the same call gives the same interval);
* :func:`win_rate` — share of seeds on which ``a`` is better than ``b`` (ties count half);
* :func:`verdict` — a sentence that says "no detectable difference" when the interval
  covers 0;
* :func:`holm` — Holm's step-down adjustment of many p-values (the KPIs × pairs of a
  trial), controlling the family-wise error rate;
* :func:`small_n_warning` — a warning when the intervals cannot be trusted: fewer than
  :data:`MIN_SEEDS` seeds, or the t and bootstrap intervals disagree on whether 0 is in.

A zero-variance difference (every ``d_i`` equal, e.g. an A/A trial where every ``d_i`` is
exactly 0) gives the degenerate interval ``[d, d]`` and p = 1 when d = 0, p = 0 otherwise
(scipy returns NaN there).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

#: Resamples of the bootstrap.
N_BOOT = 10_000
#: Fewer seeds than this get a small-sample warning (the t interval leans on normality and
#: the percentile bootstrap runs narrow at small n).
MIN_SEEDS = 10


@dataclass(frozen=True)
class PairedStats:
    """The comparison of ``a`` and ``b`` on one KPI.

    Attributes
    ----------
    n_seeds : number of pairs.
    mean_a, mean_b : means of ``a`` and ``b`` [KPI unit].
    mean_diff : mean of ``a - b`` [KPI unit].
    ci_low, ci_high : paired-t confidence interval of ``mean_diff`` [KPI unit].
    p_value : two-sided p-value of the paired t test (H0: mean difference 0).
    boot_low, boot_high : percentile-bootstrap interval of ``mean_diff`` [KPI unit].
    win_rate_a : share of seeds where ``a`` is better (ties count half) [0-1].
    verdict : one sentence.
    warning : :func:`small_n_warning` of the comparison ("" when none).
    """

    n_seeds: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    boot_low: float
    boot_high: float
    win_rate_a: float
    verdict: str
    warning: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)


def _diff(a: Any, b: Any) -> np.ndarray:
    av = np.asarray(a, dtype=float)
    bv = np.asarray(b, dtype=float)
    if av.shape != bv.shape or av.ndim != 1:
        raise ValueError(f"paired samples need two 1-D arrays of one length, got {av.shape} and {bv.shape}")
    if av.size < 2:
        raise ValueError("paired statistics need at least 2 pairs (seeds)")
    return av - bv


def paired_t_ci(a: Any, b: Any, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean of ``a - b``, its paired-t confidence interval and the p-value.

    Parameters
    ----------
    a, b : paired samples (one value per seed) [any unit].
    level : confidence level [0-1].

    Returns
    -------
    (mean_diff, ci_low, ci_high, p_value)
    """
    d = _diff(a, b)
    n = d.size
    m = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0 or not math.isfinite(sd):
        return m, m, m, (1.0 if m == 0.0 else 0.0)
    se = sd / math.sqrt(n)
    tcrit = float(sps.t.ppf(0.5 + level / 2.0, n - 1))
    t = m / se
    p = float(2.0 * sps.t.sf(abs(t), n - 1))
    return m, m - tcrit * se, m + tcrit * se, p


@functools.lru_cache(maxsize=8)
def _resample_index(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Resampling indices (drawn once per size and seed, shared by every KPI)."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    idx.setflags(write=False)
    return idx


def bootstrap_ci(
    a: Any, b: Any, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``a - b`` (seeded, reproducible).

    Parameters
    ----------
    a, b : paired samples [any unit].
    level : confidence level [0-1].
    n_boot : number of resamples.
    seed : seed of the resampling generator.
    """
    d = _diff(a, b)
    means = d[_resample_index(d.size, n_boot, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - level / 2.0, 0.5 + level / 2.0])
    return float(lo), float(hi)


def win_rate(a: Any, b: Any, lower_is_better: bool = True) -> float:
    """Share of pairs where ``a`` beats ``b`` (ties count half) [0-1]."""
    d = _diff(a, b)
    better = (d < 0) if lower_is_better else (d > 0)
    ties = d == 0
    return float((better.sum() + 0.5 * ties.sum()) / d.size)


def verdict(
    a_name: str, b_name: str, ci_low: float, ci_high: float, lower_is_better: bool | None, level: float = 0.95
) -> str:
    """One sentence on the comparison.

    "no detectable difference" when the interval covers 0; otherwise which of the two is
    better (when the KPI has a direction) or which is higher.
    """
    pct = f"{level * 100:g} %"
    if ci_low <= 0.0 <= ci_high:
        return f"no detectable difference ({pct} CI covers 0)"
    higher = ci_low > 0.0
    if lower_is_better is None:
        return f"{a_name} {'higher' if higher else 'lower'} than {b_name} ({pct} CI excludes 0)"
    a_better = (not higher) if lower_is_better else higher
    return f"{a_name} {'better' if a_better else 'worse'} than {b_name} ({pct} CI excludes 0)"


def holm(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate over all of them).

    Sort the m finite p-values ascending, ``p_(1) <= ... <= p_(m)``; the adjusted value of
    the i-th is ``max_{j<=i} min(1, (m - j + 1) p_(j))``, returned in the input order. A
    NaN stays NaN and does not count in m. Rejecting where the adjusted value is below
    alpha is Holm's procedure at level alpha.

    Parameters
    ----------
    p_values : 1-D p-values [0-1].

    Returns
    -------
    The adjusted p-values [0-1], same shape and order.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm needs a 1-D array of p-values, got shape {p.shape}")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    if ((p[ok] < 0.0) | (p[ok] > 1.0)).any():
        raise ValueError("p-values must lie in [0, 1]")
    m = ok.size
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def intervals_disagree(ci_low: float, ci_high: float, boot_low: float, boot_high: float) -> bool:
    """True when one interval covers 0 and the other does not."""
    t_covers = ci_low <= 0.0 <= ci_high
    b_covers = boot_low <= 0.0 <= boot_high
    return t_covers != b_covers


def small_n_warning(
    n_seeds: int, ci_low: float, ci_high: float, boot_low: float, boot_high: float,
    min_seeds: int = MIN_SEEDS,
) -> str:
    """A warning on the intervals of one comparison ("" when there is none).

    Warns when ``n_seeds < min_seeds`` (the t interval assumes normal differences, the
    percentile bootstrap is too narrow at small n) and when the paired-t and bootstrap
    intervals disagree on whether the difference could be 0.
    """
    parts = []
    if n_seeds < min_seeds:
        parts.append(f"only {n_seeds} seeds (< {min_seeds}): the intervals are rough")
    if intervals_disagree(ci_low, ci_high, boot_low, boot_high):
        which = "t interval covers 0, the bootstrap does not" if ci_low <= 0.0 <= ci_high else \
            "bootstrap covers 0, the t interval does not"
        parts.append(f"the {which}: run more seeds before concluding")
    return "; ".join(parts)


def compare(
    a: Any,
    b: Any,
    a_name: str = "a",
    b_name: str = "b",
    lower_is_better: bool | None = True,
    level: float = 0.95,
    boot_seed: int = 0,
    n_boot: int = N_BOOT,
) -> PairedStats:
    """All statistics of one paired comparison (see the module docstring)."""
    m, lo, hi, p = paired_t_ci(a, b, level)
    blo, bhi = bootstrap_ci(a, b, level, n_boot, boot_seed)
    wr = win_rate(a, b, True if lower_is_better is None else lower_is_better)
    av = np.asarray(a, dtype=float)
    bv = np.asarray(b, dtype=float)
    return PairedStats(
        int(av.size),
        float(av.mean()),
        float(bv.mean()),
        m,
        lo,
        hi,
        p,
        blo,
        bhi,
        wr,
        verdict(a_name, b_name, lo, hi, lower_is_better, level),
        small_n_warning(int(av.size), lo, hi, blo, bhi),
    )


__all__ = ["MIN_SEEDS", "N_BOOT", "PairedStats", "bootstrap_ci", "compare", "holm", "intervals_disagree",
           "paired_t_ci", "small_n_warning", "verdict", "win_rate"]

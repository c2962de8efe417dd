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
  covers 0.

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
    )


__all__ = ["N_BOOT", "PairedStats", "bootstrap_ci", "compare", "paired_t_ci", "verdict", "win_rate"]

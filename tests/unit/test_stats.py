"""Paired statistics of the A/B trials (twin.stats)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from twin.stats import bootstrap_ci, compare, paired_t_ci, verdict, win_rate


def test_paired_t_matches_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(10.0, 2.0, 20)
    b = a - rng.normal(0.7, 1.0, 20)
    m, lo, hi, p = paired_t_ci(a, b)
    ref = sps.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert m == pytest.approx(float(np.mean(a - b)))
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    assert p == pytest.approx(ref.pvalue)


def test_zero_variance_differences() -> None:
    a = np.arange(20.0)
    assert paired_t_ci(a, a) == (0.0, 0.0, 0.0, 1.0)
    assert bootstrap_ci(a, a) == (0.0, 0.0)
    assert paired_t_ci(a + 2.0, a) == (2.0, 2.0, 2.0, 0.0)
    st = compare(a, a, "x", "x")
    assert st.win_rate_a == 0.5
    assert st.verdict.startswith("no detectable difference")


def test_t_interval_coverage_on_synthetic_data() -> None:
    """1,000 synthetic 20-seed trials with a known mean difference: ≈ 95 % of the intervals cover it."""
    rng = np.random.default_rng(2026)
    true = 3.0
    cover_t = cover_b = 0
    n_draws = 1000
    for _ in range(n_draws):
        b = rng.normal(100.0, 15.0, 20)  # seed-to-seed spread, shared by both arms
        a = b + true + rng.normal(0.0, 4.0, 20)  # paired noise
        _, lo, hi, _ = paired_t_ci(a, b)
        cover_t += lo <= true <= hi
        blo, bhi = bootstrap_ci(a, b, n_boot=1000, seed=int(rng.integers(1 << 31)))
        cover_b += blo <= true <= bhi
    assert 0.92 <= cover_t / n_draws <= 0.98, cover_t / n_draws
    # the percentile bootstrap is known to run a little narrow at n = 20
    assert 0.89 <= cover_b / n_draws <= 0.97, cover_b / n_draws


def test_t_interval_coverage_skewed_differences() -> None:
    """Skewed (exponential) paired differences: the t interval still covers ≈ 95 %."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(1000):
        d = rng.exponential(2.0, 20) - 2.0 + 1.0  # mean 1
        _, lo, hi, _ = paired_t_ci(d, np.zeros(20))
        hits += lo <= 1.0 <= hi
    assert 0.90 <= hits / 1000 <= 0.98, hits / 1000


def test_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20), rng.normal(size=20)
    assert bootstrap_ci(a, b, seed=5) == bootstrap_ci(a, b, seed=5)
    assert bootstrap_ci(a, b, seed=5) != bootstrap_ci(a, b, seed=6)


def test_win_rate_direction_and_ties() -> None:
    a = [1.0, 2.0, 3.0, 4.0]
    b = [2.0, 2.0, 1.0, 5.0]
    assert win_rate(a, b, lower_is_better=True) == pytest.approx((2 + 0.5) / 4)
    assert win_rate(a, b, lower_is_better=False) == pytest.approx((1 + 0.5) / 4)


def test_verdicts() -> None:
    assert verdict("a", "b", -1.0, 2.0, True).startswith("no detectable difference")
    assert verdict("a", "b", 1.0, 2.0, True) == "a worse than b (95 % CI excludes 0)"
    assert verdict("a", "b", 1.0, 2.0, False) == "a better than b (95 % CI excludes 0)"
    assert verdict("a", "b", -2.0, -1.0, None) == "a lower than b (95 % CI excludes 0)"


def test_bad_samples() -> None:
    with pytest.raises(ValueError):
        paired_t_ci([1.0], [2.0])
    with pytest.raises(ValueError):
        paired_t_ci([1.0, 2.0], [1.0, 2.0, 3.0])


def test_holm_against_a_hand_computed_example() -> None:
    from twin.stats import holm

    # sorted: 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
    # 0.02, 0.03, 0.06, 0.06; back in the input order:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])  # one test: no correction


def test_small_n_warning_at_n_4_and_on_interval_disagreement() -> None:
    from twin.stats import MIN_SEEDS, small_n_warning

    assert MIN_SEEDS == 10
    a = np.array([10.0, 12.0, 11.0, 13.0])
    st = compare(a + 5.0 + np.array([0.1, -0.2, 0.3, 0.0]), a)
    assert "only 4 seeds (< 10)" in st.warning
    assert "disagree" not in st.warning and "covers 0" not in st.warning
    # 12 seeds, every difference negative, one outlier: the t interval covers 0, the bootstrap
    # (means of negative numbers) cannot
    d = np.array([-1.0] * 11 + [-1000.0])
    st = compare(d, np.zeros(12))
    assert st.ci_low < 0.0 < st.ci_high and st.boot_high < 0.0
    assert st.warning == "the t interval covers 0, the bootstrap does not: run more seeds before concluding"
    assert small_n_warning(20, -1.0, 1.0, -2.0, 2.0) == ""
    assert "bootstrap covers 0, the t interval does not" in small_n_warning(20, 0.5, 1.0, -0.1, 1.0)

"""The A/B summary on hand-made trial tables (twin.trials.ab), and the sweep grid parser."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from twin.errors import UserError
from twin.trials.ab import DEFAULT_KPIS, optimal_gaps, pairs, summarize, trials_frame
from twin.trials.sweep import expand, grid_values, parse_sets, payback_years, points


def test_pairs_put_optimal_last() -> None:
    assert pairs(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert pairs(["optimal", "six_phase", "arbitrage"]) == [
        ("six_phase", "optimal"), ("arbitrage", "optimal"), ("six_phase", "arbitrage")]


def _records() -> list[dict]:
    rng = np.random.default_rng(3)
    recs = []
    for s in range(10):
        base = 1000.0 + rng.normal(0, 50)
        for c, extra in (("six_phase", 30.0), ("optimal", 0.0), ("arbitrage", 20.0)):
            cost = base + extra + rng.normal(0, 1)
            kpis = {"cost_grid_import_soles": cost, "ev_kwh": 500.0}
            recs.append({"controller": c, "seed": s, "kpis": kpis})
    return recs


def test_summary_and_gap_to_optimal() -> None:
    ctrls = ["six_phase", "optimal", "arbitrage"]
    t = trials_frame(_records(), ctrls)
    assert list(t.columns[:2]) == ["controller", "seed"] and len(t) == 30
    assert list(t["controller"].unique()) == ctrls
    s = summarize(t, ctrls, DEFAULT_KPIS)
    assert set(s["kpi"]) == {"cost_grid_import_soles", "ev_kwh"}  # KPIs absent from the records are skipped
    cost = s[s["kpi"] == "cost_grid_import_soles"].set_index(["a", "b"])
    gap = cost.loc[("six_phase", "optimal")]
    a = t[t.controller == "six_phase"]["cost_grid_import_soles"].to_numpy()
    b = t[t.controller == "optimal"]["cost_grid_import_soles"].to_numpy()
    assert gap["mean_diff"] == pytest.approx(np.mean(a - b))
    assert 25 < gap["ci_low"] < gap["mean_diff"] < gap["ci_high"] < 35
    assert gap["verdict"] == "six_phase worse than optimal (95 % CI excludes 0)"
    assert gap["win_rate_a"] == 0.0
    ev = s[s["kpi"] == "ev_kwh"]
    assert (ev["mean_diff"] == 0).all() and ev["verdict"].str.startswith("no detectable").all()
    g = optimal_gaps(s)
    assert set(zip(g["kpi"], g["a"], strict=True)) >= {("cost_grid_import_soles", "six_phase"),
                                                        ("cost_grid_import_soles", "arbitrage")}
    row = g[(g["kpi"] == "cost_grid_import_soles") & (g["a"] == "arbitrage")].iloc[0]
    assert row["gap_percent"] == pytest.approx(row["mean_diff"] / row["mean_b"] * 100)


def test_summary_uses_the_seeds_both_sides_finished() -> None:
    recs = [r for r in _records() if not (r["controller"] == "arbitrage" and r["seed"] >= 7)]
    s = summarize(trials_frame(recs, ["six_phase", "arbitrage"]), ["six_phase", "arbitrage"])
    assert set(s["n_seeds"]) == {7}


def test_grid_values_and_points() -> None:
    assert grid_values("k", "500:4000:250")[-1] == 4000 and len(grid_values("k", "500:4000:250")) == 15
    assert grid_values("k", "0.1:0.3:0.1") == [0.1, 0.2, 0.3]
    assert grid_values("k", "1:2:5") == [1]
    fixed_items, fixed, axes = parse_sets(["bess.e_capacity_kwh=500:1500:500", "seed=3",
                                           "bess.p_nominal_kw=100:200:100"])
    assert fixed_items == ["seed=3"] and fixed == {"seed": 3}
    assert [k for k, _ in axes] == ["bess.e_capacity_kwh", "bess.p_nominal_kw"]
    assert len(points(axes)) == 6
    assert expand({"bess.p_nominal_kw": 300}) == {"bess.p_charge_max_kw": 300, "bess.p_discharge_max_kw": 300}
    for bad in ("5:1:1", "1:5:0", "1:5"):
        with pytest.raises(UserError):
            grid_values("k", bad)


def test_payback() -> None:
    assert payback_years(1000.0, 100.0, 300.0) == pytest.approx(5.0)
    assert math.isinf(payback_years(1000.0, 300.0, 300.0))
    assert payback_years(0.0, 0.0, 0.0) == 0.0


def test_trials_frame_empty() -> None:
    assert list(trials_frame([], ["a"]).columns) == ["controller", "seed"]
    assert summarize(pd.DataFrame(columns=["controller", "seed"]), ["a", "b"]).empty

"""Red-team cases of the trial page's statistics and formatting (issue 21, point 2)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.integration.test_trials_page import CTRLS, synthetic_records, write_synthetic_page
from twin.stats import holm
from twin.trials.ab import default_kpis, fmt_num, kpi_of, kpi_verdict, ranking, summarize, trials_frame


def test_holm_keeps_nan_out_of_the_family_and_rejects_bad_input() -> None:
    adj = holm([0.01, math.nan, 0.04, 0.03, 0.005])
    assert math.isnan(adj[1])
    assert adj[[0, 2, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02])  # m = 4, not 5
    assert np.isnan(holm([math.nan, math.nan])).all()
    assert holm([]).size == 0
    for bad in ([1.5], [-0.1]):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            holm(bad)
    with pytest.raises(ValueError, match="1-D"):
        holm([[0.1, 0.2]])


def test_holm_is_monotone_in_the_raw_order_and_never_below_raw() -> None:
    p = np.random.default_rng(1).uniform(0, 0.2, 50)
    adj = holm(p)
    order = np.argsort(p)
    assert (np.diff(adj[order]) >= 0).all() and (adj >= p).all() and (adj <= 1).all()


def test_summary_holm_spans_every_kpi_and_pair() -> None:
    t = trials_frame(synthetic_records(12), CTRLS)
    s = summarize(t, CTRLS, default_kpis("PEN"))
    assert s["p_holm"].to_numpy() == pytest.approx(holm(s["p_value"].to_numpy()))
    assert len(s) == 3 * s["kpi"].nunique()


def test_constructed_disagreement_is_flagged_at_12_seeds() -> None:
    recs = []
    for s in range(12):
        d = -1000.0 if s == 11 else -1.0  # all negative, one outlier
        recs += [{"controller": "a", "seed": s, "kpis": {"bess_throughput_kwh": 5e5 + d}},
                 {"controller": "b", "seed": s, "kpis": {"bess_throughput_kwh": 5e5}}]
    s = summarize(trials_frame(recs, ["a", "b"]), ["a", "b"], default_kpis("PEN"))
    row = s.iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"] and row["boot_high"] < 0
    assert "t interval covers 0, the bootstrap does not" in row["warning"]
    assert "only" not in row["warning"]


@pytest.mark.parametrize(("v", "spec", "want"), [
    (2.661e6, ",.4g", "2,661,000"), (2_661_234.5, ",.1f", "2,661,234.5"), (6.61e-16, ",.1f", "0"),
    (0.0004, ",.1f", "0.00040"), (-0.012, ",.1f", "-0.012"), (1e15, ",.4g", "1,000,000,000,000,000"),
    (math.nan, ",.1f", "–"), (math.inf, ",.1f", "–"), (3.14159, ".3f", "3.142"),
])
def test_fmt_num_never_prints_scientific_or_a_false_zero(v: float, spec: str, want: str) -> None:
    assert fmt_num(v, spec) == want


def test_catalogue_gives_units_scale_and_currency() -> None:
    k = kpi_of("cost_grid_import_soles", default_kpis("USD"))
    assert (k.display_unit, k.scale, k.lower_is_better) == ("kUSD", 1e-3, True)
    assert k.show(2_661_000.0) == "2,661.0 kUSD"
    assert kpi_of("bess_throughput_kwh", default_kpis()).show(1_454_329.0) == "1,454.3 MWh"
    assert kpi_of("not_in_catalogue", default_kpis(), "kg").show(3.0) == "3 kg"


def test_verdict_with_one_controller_or_without_common_seeds() -> None:
    k = kpi_of("cost_grid_import_soles", default_kpis("PEN"))
    assert "nothing to compare" in kpi_verdict(pd.DataFrame(columns=["kpi", "a", "b"]), [("x", 1.0)], k)
    assert "not compared" in kpi_verdict(pd.DataFrame(columns=["kpi", "a", "b"]), [("x", 1.0), ("y", 2.0)], k)


def test_ranking_follows_the_direction_and_ignores_nan() -> None:
    recs = [{"controller": c, "seed": s, "kpis": {"savings_bess_soles": v, "grid_import_kwh": v}}
            for s in range(3) for c, v in (("lo", 1.0), ("hi", 9.0), ("nan", math.nan))]
    t = trials_frame(recs, ["lo", "hi", "nan"])
    kp = default_kpis("PEN")
    assert [c for c, _ in ranking(t, ["lo", "hi", "nan"], kpi_of("savings_bess_soles", kp))] == ["hi", "lo"]
    assert [c for c, _ in ranking(t, ["lo", "hi", "nan"], kpi_of("grid_import_kwh", kp))] == ["lo", "hi"]


def test_page_of_an_empty_summary_and_of_many_controllers(tmp_path: Path) -> None:
    page, s = write_synthetic_page(tmp_path / "one", n_seeds=1)  # no pair has 2 seeds
    assert s.empty and "Results per KPI" in page.read_text()
    many = [f"ctrl_{i}" for i in range(5)]
    page, s = write_synthetic_page(tmp_path / "many", ctrls=many)
    assert len(s) == 10 * s["kpi"].nunique()
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page.read_text())
    assert f"all {len(s)} KPI × pair comparisons" in text

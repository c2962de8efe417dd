"""Red-team cases of ``twin train``'s baseline comparison (issue 21, point 3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controllers.rl.encoding import build_spec
from tests.conftest import SITE
from tests.unit.test_rl_encoding import random_policy
from twin.app.policy_eval import baseline_rows, card_markdown, table_markdown, worse_than_reference
from twin.config import load_site
from twin.rl import TwinEnv


@pytest.fixture
def env1(make_scenario: Any) -> TwinEnv:
    return TwinEnv(make_scenario(duration="2d", seed=3), episode_days=1.0, start_days=[1])


def _idle(env: TwinEnv) -> Any:
    a = np.array([0.5] + [1.0] * (env.rl_spec.n_act - 1), dtype=np.float32)
    return lambda _obs: a


@pytest.mark.parametrize("kind", ["other_spec", "not_onnx", "empty"])
def test_an_unusable_previous_policy_is_a_note_not_a_crash(env1: TwinEnv, tmp_path: Path, kind: str) -> None:
    prev = tmp_path / "policy.onnx"
    if kind == "other_spec":
        site = load_site(SITE)
        other = site.model_copy(update={"bess": site.bess.model_copy(update={"p_discharge_max_kw": 250.0})})
        random_policy(prev, build_spec(other))
    else:
        prev.write_bytes(b"" if kind == "empty" else b"\x00not an onnx model")
    rows, notes = baseline_rows(env1, [1], _idle(env1), prev)
    assert "previous policy" not in {r["controller"] for r in rows}
    assert len(notes) == 1 and str(prev) in notes[0]
    assert notes[0].startswith("the previous policy was not compared")


def test_a_previous_policy_of_the_same_spec_is_compared(env1: TwinEnv, tmp_path: Path) -> None:
    prev = tmp_path / "policy.onnx"
    random_policy(prev, env1.rl_spec)
    rows, notes = baseline_rows(env1, [1], _idle(env1), prev)
    assert "previous policy" in {r["controller"] for r in rows} and not notes


def test_warning_needs_both_rows_and_is_strict() -> None:
    assert worse_than_reference([{"controller": "new policy", "reward_mean": -1.0}]) == ""
    tie = [{"controller": "new policy", "reward_mean": -1.0},
           {"controller": "six_phase", "reward_mean": -1.0}]
    assert worse_than_reference(tie) == ""
    worse = [{"controller": "new policy", "reward_mean": -1.5, "cost_grid_import_soles": math.nan},
             {"controller": "six_phase", "reward_mean": -1.0, "cost_grid_import_soles": 10.0}]
    assert worse_than_reference(worse).startswith("the new policy is worse than six_phase")


def test_card_formats_with_the_catalogue_and_shows_warnings() -> None:
    row = {"controller": "six_phase", "reward_mean": -88.8, "cost_grid_import_soles": 2_661_234.0,
           "grid_import_kwh": 7_810_000.0, "pv_curtailed_kwh": 354_000.0, "co2_emissions_kg": 3_531_000.0,
           "ev_kwh": 396_000.0, "sessions_satisfied": 110_274.0, "safety_clamps_total": 876.0}
    md = table_markdown([row], "USD", 4)
    assert "| six_phase | -88.800 | 2,661.2 | 7,810.0 | 354.0 | 3,531.0 | 396.0 | 110,274 | 876 |" in md
    assert "grid cost [kUSD]" in md and "e+" not in md
    card = card_markdown({"steps": 300_000, "seed": 0, "n_envs": 8, "episode_days": 7.0,
                          "eval_start_days": [72, 143], "train_start_days": [0, 1]}, [row], "USD",
                         ["bad policy"], ["a note"])
    assert "**Warning: bad policy.**" in card and "300,000 environment steps" in card and "- a note" in card

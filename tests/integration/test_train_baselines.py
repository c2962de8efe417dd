"""``twin train`` measures the new policy against no_bess, six_phase and the previous policy on
the same held-out episodes, and warns when it is worse than six_phase (issue 21, point 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from twin.app.cli import main
from twin.app.policy_eval import (
    CARD_FILES,
    baseline_rows,
    controller_actor,
    run_episodes,
    worse_than_reference,
)
from twin.rl import TwinEnv

pytest.importorskip("stable_baselines3")


@pytest.fixture
def env3(make_scenario: Any) -> TwinEnv:
    """One-day episodes of a 3-day scenario, held out on day 1."""
    return TwinEnv(make_scenario(duration="3d", seed=4), episode_days=1.0, start_days=[1])


def test_a_constant_policy_is_flagged_and_six_phase_itself_is_not(env3: TwinEnv) -> None:
    idle = np.array([0.5] + [1.0] * (env3.rl_spec.n_act - 1), dtype=np.float32)  # battery idle
    rows, notes = baseline_rows(env3, [1], lambda _obs: idle)
    assert [r["controller"] for r in rows] == ["six_phase", "new policy", "no_bess"] and not notes
    by = {r["controller"]: r for r in rows}
    # an idle battery is no battery: the same energies as no_bess, worse than six_phase
    assert by["new policy"]["grid_import_kwh"] == pytest.approx(by["no_bess"]["grid_import_kwh"], rel=1e-9)
    assert by["new policy"]["reward_mean"] < by["six_phase"]["reward_mean"]
    warn = worse_than_reference(rows, "PEN")
    assert warn.startswith("the new policy is worse than six_phase") and "kPEN" in warn
    # six_phase as the "new policy": equal reward, no warning
    same = run_episodes(env3, [1], controller_actor(env3, "six_phase"))
    assert same["reward_mean"] == pytest.approx(by["six_phase"]["reward_mean"], rel=1e-12)
    assert worse_than_reference([{"controller": "new policy", **same}, by["six_phase"]]) == ""


def test_twin_train_prints_the_baseline_table_and_warns(make_scenario: Any, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    scn = make_scenario(duration="3d", seed=2)
    out = tmp_path / "ppo"
    args = ["train", str(scn), "--steps", "1024", "--episode-days", "1", "--out", str(out)]
    assert main(args) == 0
    cap = capsys.readouterr()
    # 1,024 PPO steps from scratch do not beat the rules
    assert "twin: warning: the new policy is worse than six_phase" in cap.err
    assert "| controller | reward per episode | grid cost [kPEN] |" in cap.out
    for name in ("no_bess", "six_phase", "new policy"):
        assert f"| {name} |" in cap.out
    assert {p.name for p in out.iterdir()} >= set(CARD_FILES)
    table = pd.read_csv(out / "baselines.csv")
    assert set(table["controller"]) == {"new policy", "no_bess", "six_phase"}
    assert (table["reward_mean"].diff().dropna() <= 0).all()  # best first
    card = (out / "card.md").read_text()
    assert "**Warning: the new policy is worse than six_phase" in card and "1,024 environment steps" in card
    info = json.loads((out / "training.json").read_text())
    assert info["warnings"] and {r["controller"] for r in info["baselines"]} == set(table["controller"])
    new = table.set_index("controller").loc["new policy", "reward_mean"]
    assert new == pytest.approx(info["final_eval_onnx"]["reward_mean"], rel=1e-12)  # same episodes
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second training in the same folder is compared with the first
    assert main(["train", str(scn), "--steps", "256", "--episode-days", "1", "--out", str(out), "-q"]) == 0
    again = pd.read_csv(out / "baselines.csv").set_index("controller")
    assert again.loc["previous policy", "reward_mean"] == pytest.approx(new, rel=1e-12)

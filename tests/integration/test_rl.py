"""RL on the twin: the gymnasium environment, training, and the rl controller in every deployment path."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controllers.rl.encoding import build_spec
from controllers.rl.policy import DEFAULT_POLICY, OnnxPolicy
from tests.conftest import ROOT, SCENARIOS, SITE
from tests.integration.test_conservation import SITE_DICT, _run, check_conservation
from tests.unit.test_rl_encoding import random_policy
from twin.app.cli import main
from twin.config import load_site
from twin.rl import TwinEnv


@pytest.fixture
def scn3(make_scenario) -> Path:  # type: ignore[no-untyped-def]
    return make_scenario(duration="3d", seed=4)


def test_check_env_is_clean(scn3: Path) -> None:
    from gymnasium.utils.env_checker import check_env

    env = TwinEnv(scn3, episode_days=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []


def test_seeded_episodes_are_reproducible(scn3: Path) -> None:
    def episode(seed: int) -> tuple[int, np.ndarray, list[float]]:
        env = TwinEnv(scn3, episode_days=1)
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        obs_all, rewards = [obs], []
        done = False
        while not done:
            obs, r, term, trunc, step_info = env.step(rng.random(39, dtype=np.float32))
            obs_all.append(obs)
            rewards.append(r)
            done = term or trunc
            assert set(step_info) >= {"r_co2", "r_solar", "r_ev", "r_ramp", "r_cost", "n_clamps"}
        assert len(rewards) == 96
        return info["start_day"], np.stack(obs_all), rewards

    a, b = episode(11), episode(11)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2] == b[2]
    starts = {episode(s)[0] for s in range(6)}
    assert len(starts) > 1  # the seed picks the window


def test_env_equals_twin_run(tmp_path: Path, make_scenario) -> None:  # type: ignore[no-untyped-def]
    """A policy driven through TwinEnv gives the same time series as `twin run --controller rl`."""
    pol_path, _, _ = random_policy(tmp_path / "p.onnx", build_spec(load_site(SITE)), seed=3)
    scn = make_scenario(duration="2d", seed=9)
    out = tmp_path / "run"
    assert main(["run", str(scn), "--controller", "rl", "--set", f"controller_params.policy={pol_path}",
                 "--out", str(out), "-q"]) == 0
    ref = pd.read_parquet(out / "timeseries.parquet")

    from twin.engine.results import build_results

    env = TwinEnv(scn, episode_days=None)
    pol = OnnxPolicy(pol_path)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, _, done, _, _ = env.step(pol.act(obs))
    assert env.twin is not None
    got = build_results(env.twin.record()).timeseries
    cols = [c for c in ref.columns if c not in ("decide_us", "decide_s")]
    assert len(got) == len(ref) == 192
    pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), ref[cols].reset_index(drop=True),
                                  check_exact=True, check_categorical=False)


def test_short_training_gives_a_policy_twin_run_loads(tmp_path: Path, make_scenario) -> None:  # type: ignore[no-untyped-def]
    scn = make_scenario(duration="3d", seed=2)
    out = tmp_path / "trained"
    assert main(["train", str(scn), "--steps", "1024", "--episode-days", "1", "--eval-every", "512",
                 "--imitate", "six_phase", "--out", str(out), "-q"]) == 0
    info = json.loads((out / "training.json").read_text())
    assert info["steps"] >= 1024 and info["seed"] == 0
    assert [c["step"] for c in info["eval_curve"]] == [0, 512, 1024]  # 0: right after imitation
    # imitation data: days 0 and 2 (day 1 is held out)
    assert info["imitation"]["controller"] == "six_phase" and info["imitation"]["samples"] == 192
    best = max(info["eval_curve"], key=lambda c: c["reward_mean"])
    assert info["exported_step"] == best["step"]
    assert info["final_eval_onnx"]["reward_mean"] == pytest.approx(best["reward_mean"], rel=1e-4)
    assert info["spec_hash"] == build_spec(load_site(SITE)).hash
    assert set(info["eval_start_days"]).isdisjoint(info["train_start_days"])
    assert (out / "progress.csv").stat().st_size > 0 and not list(out.glob("*.zip"))
    run = tmp_path / "run"
    assert main(["run", str(scn), "--controller", "rl", "--set",
                 f"controller_params.policy={out / 'policy.onnx'}", "--out", str(run), "-q"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["controller"] == "rl"


def test_train_needs_a_rule_controller_to_imitate(tmp_path: Path, make_scenario,  # type: ignore[no-untyped-def]
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    scn = make_scenario(duration="2d")
    assert main(["train", str(scn), "--steps", "256", "--imitate", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "--imitate nope" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_mismatched_policy_is_exit_2(tmp_path: Path, make_scenario, site_dict,  # type: ignore[no-untyped-def]
                                     capsys: pytest.CaptureFixture[str]) -> None:
    site = load_site(SITE)
    other = site.model_copy(update={"bess": site.bess.model_copy(update={"p_discharge_max_kw": 250.0})})
    random_policy(tmp_path / "other.onnx", build_spec(other))
    scn = make_scenario(duration="1d", controller="rl", controller_params={"policy": "other.onnx"})
    out = tmp_path / "run"
    assert main(["run", str(scn), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "other.onnx" in err and "bess_discharge_kw" in err and "Traceback" not in err
    assert not out.exists()


def test_shipped_policy_is_small_and_matches_the_site() -> None:
    assert DEFAULT_POLICY.is_file() and DEFAULT_POLICY.stat().st_size <= 1_000_000
    pol = OnnxPolicy(DEFAULT_POLICY)
    pol.check_spec(build_spec(load_site(SITE), pol.spec.options))
    assert pol.metadata.get("pvbess.training_command", "").startswith("twin train scenarios/annual.yaml")


def test_shipped_policy_in_twin_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "hil.yaml"), "--controller", "rl", "--out", str(out), "-q"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["controller"] == "rl" and s["energy_balance_residual_max_kwh"] <= 1e-6


def test_shipped_policy_in_twin_hil_lockstep(tmp_path: Path) -> None:
    out = tmp_path / "hil"
    assert main(["hil", str(SCENARIOS / "hil.yaml"), "--controller", "rl", "--out", str(out), "-q"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["controller"] == "rl"


def test_shipped_policy_in_twin_live(tmp_path: Path) -> None:
    out = tmp_path / "live"
    cmd = [sys.executable, "-m", "twin", "live", str(SCENARIOS / "hil.yaml"), "--controller", "rl",
           "--speed", "1e6", "--metrics-addr", "127.0.0.1:0", "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["controller"] == "rl"
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 96 and set(ts["phase_name"].astype(str)) <= {"rl_idle", "rl_charge", "rl_discharge"}


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), dt=st.sampled_from(["1min", "5min", "15min", "1h"]),
       start_hour=st.integers(0, 23), stay_model=st.sampled_from(["charge_time", "fixed"]))
def test_rl_conserves_energy_on_its_site(seed: int, dt: str, start_hour: int, stay_model: str) -> None:
    """The shipped policy on the default site: battery, sockets and sessions conserve energy."""
    site = yaml.safe_load(yaml.safe_dump(SITE_DICT))
    site["ev"]["stay_model"] = stay_model
    out = _run(site, controller="rl", seed=seed, dt=dt, start=f"2024-06-10T{start_hour:02d}:00:00")
    check_conservation(out)

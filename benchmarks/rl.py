"""RL benchmark: environment steps/s, PPO training steps/s, ONNX inference time, run-time venv size.

Prints (never asserts):

* ``TwinEnv`` steps/s over the annual scenario (one episode = the whole year, a constant
  action; encoding + engine step + reward), and the bare engine ``Twin.step`` with fixed
  setpoints for comparison;
* PPO training steps/s with one environment (``twin train``'s own figure: environment
  steps over training wall time, evaluation excluded) — needs the ``train`` extra;
* ONNX inference per decision with onnxruntime on one thread (p50, p99 over 20,000
  observations of the annual run), and the whole ``rl`` decide (encode + infer + map);
* with ``--venv``: the size of a fresh venv with ``pip install .`` (the run-time
  dependencies: no torch, no SB3).

Usage: ``python benchmarks/rl.py [--train-steps 8192] [--venv]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "annual.yaml"


def env_steps_per_s() -> tuple[float, float, float, float, int]:
    """TwinEnv and bare Twin.step steps/s over the annual scenario: (env wall, env CPU, bare
    wall, bare CPU, steps). CPU-time rates are what the code costs on a shared machine."""
    from controllers.rl.encoding import action_to_setpoints
    from twin.engine import Twin
    from twin.rl import TwinEnv
    from twin.rl.env import EnvActions

    env = TwinEnv(SCENARIO, episode_days=None)
    act = np.full(env.rl_spec.n_act, 1.0, np.float32)
    act[0] = 0.6
    env.reset(seed=0)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    done = False
    while not done:
        _, _, done, _, _ = env.step(act)
        n += 1
    env_rate, env_cpu = n / (time.perf_counter() - t0), n / (time.process_time() - c0)
    twin = Twin(env.scn, EnvActions(), inputs=env.inputs)
    obs = twin.reset()
    sp = action_to_setpoints(act, obs, env.rl_spec.scales)
    t0, c0 = time.perf_counter(), time.process_time()
    while not twin.done:
        twin.step(sp)
    bare_rate, bare_cpu = twin.n_steps / (time.perf_counter() - t0), twin.n_steps / (time.process_time() - c0)
    return env_rate, env_cpu, bare_rate, bare_cpu, n


def train_steps_per_s(steps: int) -> tuple[float, float] | None:
    """``twin train``'s steps/s with one environment (evaluation excluded), and steps per CPU second
    of the whole call (evaluation and export included)."""
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return None
    from twin.app.train import train

    c0 = time.process_time()
    with tempfile.TemporaryDirectory() as d:
        info = train(SCENARIO, Path(d) / "t", steps=steps, n_envs=1, seed=0)
    return float(info["train_steps_per_s"]), steps / (time.process_time() - c0)


def inference_us(n: int = 20000) -> dict[str, float]:
    """p50/p99 of one ONNX inference and of one whole rl decide [µs]."""
    from controllers.rl.controller import RlController
    from twin.config import load_scenario
    from twin.engine import simulate

    scn = load_scenario(SCENARIO)
    ctl = RlController(scn.site)
    obs_log = []

    class Rec:
        name = "rl"
        phases = ctl.phases

        def reset(self, *, seed: int | None = None) -> None:
            ctl.reset(seed=seed)

        def prepare(self, context) -> None:  # type: ignore[no-untyped-def]
            ctl.prepare(context)

        def decide(self, obs):  # type: ignore[no-untyped-def]
            if len(obs_log) < n:
                obs_log.append(obs)
            return ctl.decide(obs)

    simulate(scn, Rec())  # type: ignore[arg-type]
    vecs = [ctl.encoder.encode(o) for o in obs_log]
    pol = ctl.policy
    for v in vecs[:500]:
        pol.act(v)
    t_inf = np.empty(len(vecs))
    pc = time.perf_counter
    for i, v in enumerate(vecs):
        t0 = pc()
        pol.act(v)
        t_inf[i] = pc() - t0
    t_dec = np.empty(len(obs_log))
    for i, o in enumerate(obs_log):
        t0 = pc()
        ctl.decide(o)
        t_dec[i] = pc() - t0
    def pct(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q) * 1e6)

    return {"infer_p50": pct(t_inf, 50), "infer_p99": pct(t_inf, 99), "decide_p50": pct(t_dec, 50),
            "decide_p99": pct(t_dec, 99), "n": float(len(vecs))}


def venv_size_mb() -> float:
    """Size of a fresh venv with the project's run-time dependencies [MB]."""
    d = Path(tempfile.mkdtemp(prefix="rt-venv-"))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(d / "v")], check=True)
        pip = [str(d / "v" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, str(ROOT)], check=True)
        out = subprocess.run(["du", "-sm", str(d / "v")], check=True, capture_output=True, text=True)
        has_torch = subprocess.run([str(d / "v" / "bin" / "python"), "-c", "import torch"],
                                   capture_output=True).returncode == 0
        print(f"  (torch importable in the run-time venv: {has_torch})")
        return float(out.stdout.split()[0])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=8192)
    ap.add_argument("--venv", action="store_true", help="also measure a fresh run-time venv (slow)")
    args = ap.parse_args()
    env_rate, env_cpu, bare_rate, bare_cpu, n = env_steps_per_s()
    print(f"TwinEnv, annual scenario ({n} steps): {env_rate:,.0f} env steps/s wall, {env_cpu:,.0f} per CPU s "
          f"(bare Twin.step: {bare_rate:,.0f} wall, {bare_cpu:,.0f} per CPU s)")
    tr = train_steps_per_s(args.train_steps)
    print("PPO training, 1 env: " + (f"{tr[0]:,.0f} steps/s wall ({tr[1]:,.0f} per CPU s incl. evaluation "
                                     f"and export; {args.train_steps} steps)" if tr is not None
                                     else "skipped (install the 'train' extra)"))
    inf = inference_us()
    print(f"ONNX inference per decision: p50 {inf['infer_p50']:.1f} µs, p99 {inf['infer_p99']:.1f} µs; "
          f"whole rl decide (encode + infer + map): p50 {inf['decide_p50']:.1f} µs, "
          f"p99 {inf['decide_p99']:.1f} µs ({int(inf['n'])} decisions)")
    if args.venv:
        print(f"run-time venv (pip install ., no extras): {venv_size_mb():,.0f} MB")


if __name__ == "__main__":
    main()

"""RL benchmark: each figure beside a reference measured in the same run (medians of 3).

Prints (never asserts):

* ``TwinEnv.step`` steps/s over the annual scenario (one episode = the whole year, a
  constant action; action mapping + engine step + reward + encoding) beside the bare
  engine ``Twin.step`` with fixed setpoints, and their **ratio** (target >= 0.8);
* PPO training steps/s with one environment (``twin train``'s own figure: environment
  steps over training wall time, evaluation excluded) beside the ``TwinEnv.step`` rate
  (the ratio is the share of PPO's time spent in the environment) — needs the ``train``
  extra;
* ONNX inference per decision with onnxruntime on one thread (p50, p99 over 20,000
  observations of the annual run) beside the same-shaped MLP in numpy (64×64 tanh), and
  the whole ``rl`` decide (encode + infer + map);
* with ``--venv``: the size of a fresh venv with ``pip install .`` (the run-time
  dependencies: no torch, no SB3).

Usage: ``python benchmarks/rl.py [--train-steps 8192] [--venv] [--env-only]``
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ref import load, median

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "annual.yaml"


def env_steps_per_s() -> tuple[float, float, float, float, int]:
    """TwinEnv and bare Twin.step steps/s over the annual scenario: (env wall, env CPU, bare
    wall, bare CPU, steps). The bare loop replays the setpoints the env's episode applied
    (the same plant work), so the ratio is the env's own cost. CPU-time rates are what the
    code costs on a shared machine."""
    from twin.engine import Twin
    from twin.rl import TwinEnv
    from twin.rl.env import EnvActions

    env = TwinEnv(SCENARIO, episode_days=None)
    act = np.full(env.rl_spec.n_act, 1.0, np.float32)
    act[0] = 0.6
    applied = []
    env.reset(seed=0)
    twin = env.twin
    assert twin is not None
    real_step = twin.step

    def spy(sp):  # type: ignore[no-untyped-def]
        applied.append(sp)
        return real_step(sp)

    twin.step = spy  # type: ignore[method-assign]
    done = False
    while not done:  # untimed: collect the setpoints
        _, _, done, _, _ = env.step(act)
    env.reset(seed=0)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    done = False
    while not done:
        _, _, done, _, _ = env.step(act)
        n += 1
    env_rate, env_cpu = n / (time.perf_counter() - t0), n / (time.process_time() - c0)
    bare = Twin(env.scn, EnvActions(), inputs=env.inputs)
    bare.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    for sp in applied:
        bare.step(sp)
    bare_rate, bare_cpu = bare.n_steps / (time.perf_counter() - t0), bare.n_steps / (time.process_time() - c0)
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
    t_ref = np.empty(len(vecs))
    rng = np.random.default_rng(0)
    n_act = len(pol.act(vecs[0]))
    w = [rng.normal(size=(len(vecs[0]), 64)).astype(np.float32), rng.normal(size=(64, 64)).astype(np.float32),
         rng.normal(size=(64, n_act)).astype(np.float32)]
    b = [np.zeros(64, np.float32), np.zeros(64, np.float32), np.zeros(n_act, np.float32)]
    for i, v in enumerate(vecs):
        t0 = pc()
        h = np.tanh(v @ w[0] + b[0])
        h = np.tanh(h @ w[1] + b[1])
        np.clip(h @ w[2] + b[2], 0.0, 1.0)
        t_ref[i] = pc() - t0
    t_dec = np.empty(len(obs_log))
    for i, o in enumerate(obs_log):
        t0 = pc()
        ctl.decide(o)
        t_dec[i] = pc() - t0
    def pct(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q) * 1e6)

    return {"infer_p50": pct(t_inf, 50), "infer_p99": pct(t_inf, 99), "ref_p50": pct(t_ref, 50),
            "ref_p99": pct(t_ref, 99), "decide_p50": pct(t_dec, 50),
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
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=8192)
    ap.add_argument("--venv", action="store_true", help="also measure a fresh run-time venv (slow)")
    ap.add_argument("--env-only", action="store_true",
                    help="only TwinEnv.step beside the bare Twin.step (no PPO, no ONNX)")
    args = ap.parse_args()
    print(f"rl: medians of 3 ({load()})")
    runs = [env_steps_per_s() for _ in range(3)]
    env_rate, env_cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
    bare_rate, bare_cpu = median([r[2] for r in runs]), median([r[3] for r in runs])
    ratio = median([r[0] / r[2] for r in runs])
    n = runs[0][4]
    print(f"  TwinEnv.step, annual ({n} steps): {env_rate:,.0f} steps/s wall ({env_cpu:,.0f} per CPU s) | "
          f"bare Twin.step {bare_rate:,.0f} ({bare_cpu:,.0f} per CPU s) | ratio {ratio:.2f} "
          f"(CPU {env_cpu / bare_cpu:.2f}; target >= 0.8)")
    if args.env_only:
        print(f"  ({load()} at the end)")
        return
    tr = [t for t in (train_steps_per_s(args.train_steps) for _ in range(3)) if t is not None]
    if tr:
        ppo = median([t[0] for t in tr])
        print(f"  PPO training, 1 env: {ppo:,.0f} steps/s wall ({median([t[1] for t in tr]):,.0f} per CPU s "
              f"incl. evaluation and export; {args.train_steps} steps) | TwinEnv.step {env_rate:,.0f} | "
              f"ratio {ppo / env_rate:.3f} (share of PPO's time in the env)")
    else:
        print("  PPO training: skipped (install the 'train' extra)")
    infs = [inference_us() for _ in range(3)]

    def med(k: str) -> float:
        return median([i[k] for i in infs])

    i50, i99, r50, r99 = med("infer_p50"), med("infer_p99"), med("ref_p50"), med("ref_p99")
    print(f"  ONNX inference per decision: p50 {i50:.1f} µs, p99 {i99:.1f} µs | numpy MLP of the same "
          f"shape p50 {r50:.1f} µs, p99 {r99:.1f} µs | ratio p50 {i50 / r50:.2f}, p99 {i99 / r99:.2f}; "
          f"whole rl decide p50 {med('decide_p50'):.1f} µs, p99 {med('decide_p99'):.1f} µs "
          f"({int(med('n'))} decisions)")
    if args.venv:
        print(f"  run-time venv (pip install ., no extras): {venv_size_mb():,.0f} MB")
    print(f"  ({load()} at the end)")


if __name__ == "__main__":
    main()

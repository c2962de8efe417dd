"""``twin train SCENARIO --algo ppo --steps N --out DIR``: train a policy on the twin, export ONNX.

PPO from Stable-Baselines3 (the optional extra ``pvbess-twin[train]``: SB3 + torch, CPU,
one torch thread) on ``twin.rl.TwinEnv`` (vectorised: ``--n-envs`` copies, each seeded),
evaluated every ``--eval-every`` steps on held-out weeks (windows no training episode
overlaps). Writes into DIR (atomically):

* ``policy.onnx`` — the deterministic actor (mean action, clipped to [0, 1]) as an ONNX
  MLP with the encoding spec and its hash in the metadata (``controllers.rl.onnx_io``);
  the file the ``rl`` controller loads. No SB3 ``.zip`` is written: its loader unpickles.
* ``training.json`` — command, config, seed, versions, evaluation curve, wall time,
  steps per second;
* ``progress.csv`` — SB3's training log (losses, episode rewards) per update;
* ``baselines.json`` / ``baselines.csv``, ``learning_curve.png``, ``card.md`` — the policy
  against ``no_bess``, ``six_phase`` and the folder's previous policy on the same held-out
  episodes (:mod:`twin.app.policy_eval`); a ``twin: warning:`` line on stderr (and in the
  card) when it is worse than ``six_phase``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Held-out evaluation windows: up to this many weeks spread over the scenario.
N_EVAL_WEEKS = 4

#: Ranges of the integer options: option -> (low, high).
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "--steps": (64, 1_000_000_000),
    "--seed": (0, 2**32 - 1),  # numpy / torch seeds
    "--n-envs": (1, 64),
    "--eval-every": (0, 1_000_000_000),
    "--forecast-h": (0, 48),  # controllers.rl.encoding
    "--imitate-epochs": (1, 10_000),
}
#: Longest episode [days] (must also fit in the scenario and span one step or more).
MAX_EPISODE_DAYS = 366.0


def check_train_options(args: argparse.Namespace) -> None:
    """Every numeric option finite and inside its range (``UserError`` naming it otherwise)."""
    from twin.bounds import check_float, check_int

    for opt, (lo, hi) in INT_BOUNDS.items():
        check_int(opt, getattr(args, opt[2:].replace("-", "_")), lo, hi)
    check_float("--episode-days", args.episode_days, 0.0, MAX_EPISODE_DAYS, lo_open=True)


def _help(opt: str, text: str) -> str:
    from twin.bounds import int_range

    return f"{text}, {int_range(*INT_BOUNDS[opt])}"


def split_days(n_days: float, episode_days: float, n_eval: int = N_EVAL_WEEKS) -> tuple[list[int], list[int]]:
    """(training start days, held-out evaluation start days) for a scenario of ``n_days``.

    Evaluation windows are spread evenly; training windows never overlap them. When the
    scenario is too short for both, training and evaluation share all windows.
    """
    last = int(np.floor(n_days - episode_days + 1e-9))
    if last < 0:
        raise ValueError(f"episode of {episode_days:g} days does not fit in {n_days:g} days")
    all_days = list(range(last + 1))
    k = min(n_eval, max(1, int(n_days // (2 * episode_days))))
    ev = sorted({round(x) for x in np.linspace(0, last, k + 2)[1:-1]}) if last > 0 else [0]
    train = [d for d in all_days if all(d + episode_days <= e or d >= e + episode_days for e in ev)]
    if not train:
        return all_days, ev
    return train, ev


def _mlp_weights(model: Any) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """The deterministic actor of an SB3 ``MlpPolicy`` as weight/bias lists + activation."""
    import torch

    pol = model.policy
    layers = [m for m in pol.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    layers.append(pol.action_net)
    acts = {type(m).__name__ for m in pol.mlp_extractor.policy_net if not isinstance(m, torch.nn.Linear)}
    act = "relu" if acts == {"ReLU"} else "tanh"
    w = [lay.weight.detach().cpu().numpy().astype(np.float64) for lay in layers]
    b = [lay.bias.detach().cpu().numpy().astype(np.float64) for lay in layers]
    return w, b, act


def evaluate(policy_act: Any, env: Any, days: list[int]) -> dict[str, Any]:
    """Mean episode reward and terms of a deterministic policy on the windows ``days``."""
    from twin.app.policy_eval import run_episodes

    return run_episodes(env, days, lambda: policy_act)


def imitation_data(env: Any, controller: str, days: list[int],
                   episode_days: float) -> tuple[np.ndarray, np.ndarray]:
    """(observations, actions) of ``controller`` run through ``env`` on non-overlapping windows
    starting at ``days`` (behaviour-cloning data)."""
    from controllers import make_controller
    from controllers.base import prepare_controller
    from controllers.rl.encoding import setpoints_to_action

    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    last_end = -1.0
    for d in days:
        if d < last_end:
            continue
        last_end = d + episode_days
        obs, _ = env.reset(options={"start_day": d})
        ctl = make_controller(controller, env.scn.site, env.scn.config.controller_params
                              if controller == env.scn.config.controller else None)
        ctl.reset(seed=env.scn.config.seed)
        prepare_controller(ctl, env.twin.context)
        done = False
        while not done:
            so = env.site_obs
            a = setpoints_to_action(ctl.decide(so), so, env.rl_spec.scales).astype(np.float32)
            xs.append(obs)
            ys.append(a)
            obs, _, done, _, _ = env.step(a)
    return np.stack(xs), np.stack(ys)


def behaviour_clone(model: Any, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> float:
    """Fit the actor's mean action to ``y`` (MSE, Adam); returns the final loss."""
    import torch

    pol = model.policy
    params = list(pol.mlp_extractor.policy_net.parameters()) + list(pol.action_net.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x)
    yt = torch.as_tensor(y)
    loss_v = float("nan")
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 256):
            idx = perm[i:i + 256]
            mean = pol.action_net(pol.mlp_extractor.forward_actor(xt[idx]))
            loss = torch.nn.functional.mse_loss(torch.clamp(mean, 0.0, 1.0), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_v = float(loss.detach())
    return loss_v


def _train_modules() -> dict[str, Any]:
    """The training extra's modules (``UserError`` naming the missing one)."""
    try:
        import gymnasium  # noqa: F401
        import onnx  # noqa: F401
        import stable_baselines3
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.logger import configure
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError as exc:
        from twin.errors import UserError

        raise UserError(f"'twin train' needs the training extra ({exc.name} is missing): "
                        "pip install 'pvbess-twin[train]'") from None
    return {"sb3": stable_baselines3, "torch": torch, "PPO": PPO, "BaseCallback": BaseCallback,
            "configure": configure, "DummyVecEnv": DummyVecEnv}


def _new_model(m: dict[str, Any], venv: Any, *, steps: int, seed: int, n_envs: int, imitate: bool,
               n_act: int) -> tuple[Any, dict[str, Any]]:
    """PPO with the battery idle and sockets at full allowance before any learning; its settings."""
    torch = m["torch"]
    n_steps = max(64, min(2048, steps // max(1, n_envs)))
    lr, clip, log_std = (1e-4, 0.1, -2.0) if imitate else (3e-4, 0.2, -1.0)
    model = m["PPO"]("MlpPolicy", venv, seed=seed, n_steps=n_steps, batch_size=min(256, n_steps * n_envs),
                     learning_rate=lr, clip_range=clip, gamma=0.99, ent_coef=0.0, device="cpu", verbose=0,
                     policy_kwargs={"net_arch": [64, 64], "log_std_init": log_std})
    head: Any = model.policy.action_net
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.bias.copy_(torch.tensor([0.5] + [1.0] * (n_act - 1)))
    return model, {"n_steps": n_steps, "batch_size": model.batch_size, "learning_rate": lr,
                   "clip_range": clip, "gamma": 0.99, "net_arch": [64, 64], "log_std_init": log_std}


def _callback(base: Any, steps: int, eval_every: int, progress: bool, snapshot: Any) -> Any:
    """SB3 callback: a progress bar on a terminal and an evaluation every ``eval_every`` steps."""

    class Cb(base):
        def __init__(self) -> None:
            super().__init__()
            self.next_eval = eval_every if eval_every > 0 else None
            self.bar: Any = None
            self.task: Any = None

        def _on_training_start(self) -> None:
            if progress:
                from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

                self.bar = Progress(TextColumn("training"), BarColumn(), TextColumn("{task.completed}/"
                                    "{task.total} steps"), TimeRemainingColumn(), transient=True)
                self.bar.start()
                self.task = self.bar.add_task("t", total=steps)

        def _on_step(self) -> bool:
            if self.bar is not None:
                self.bar.update(self.task, completed=self.num_timesteps)
            if self.next_eval is not None and self.num_timesteps >= self.next_eval:
                snapshot(int(self.num_timesteps))
                self.next_eval += eval_every
            return True

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.stop()

    return Cb()


class _Best:
    """The held-out evaluation curve and the best weights seen so far."""

    def __init__(self, model: Any, env: Any, days: list[int]) -> None:
        self.model, self.env, self.days = model, env, days
        self.curve: list[dict[str, Any]] = []
        self.reward = -np.inf
        self.step: int | None = None
        self.weights: Any = None
        self.wall_s = 0.0

    def act(self, obs: np.ndarray) -> np.ndarray:
        a, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(a)

    def __call__(self, step: int) -> None:
        te = time.perf_counter()
        res = evaluate(self.act, self.env, self.days)
        self.curve.append({"step": step, **res})
        if res["reward_mean"] > self.reward:
            self.reward, self.step, self.weights = res["reward_mean"], step, _mlp_weights(self.model)
        self.wall_s += time.perf_counter() - te


def _imitate(model: Any, env: Any, controller: str, days: list[int], epochs: int,
             seed: int) -> dict[str, Any]:
    """Behaviour-clone ``controller`` on the training windows; what was done, for training.json."""
    tb = time.perf_counter()
    x, y = imitation_data(env, controller, days, float(env.episode_days))
    loss = behaviour_clone(model, x, y, epochs, seed)
    return {"controller": controller, "samples": len(x), "epochs": epochs, "mse": loss,
            "wall_s": time.perf_counter() - tb}


def _windows(scn: Any, episode_days: float) -> tuple[float, list[int], list[int]]:
    """(episode length [days] cut to the scenario, training start days, held-out start days)."""
    n_days = scn.config.duration / 86400.0
    ep_days = min(episode_days, n_days)
    if ep_days * 86400.0 < scn.config.dt:
        from twin.errors import UserError

        raise UserError(f"--episode-days {episode_days:g}: shorter than one step of {scn.path} "
                        f"({scn.config.dt:g} s)")
    train_days, eval_days = split_days(n_days, ep_days)
    return ep_days, train_days, eval_days


def _timing(m: dict[str, Any], wall: float, eval_wall: float, steps: int) -> dict[str, Any]:
    """Wall times, training speed and versions for ``training.json``."""
    return {"wall_s": wall, "eval_wall_s": eval_wall,
            "train_steps_per_s": steps / (wall - eval_wall) if wall > eval_wall else None,
            "versions": {"python": platform.python_version(),
                         "stable_baselines3": m["sb3"].__version__, "torch": m["torch"].__version__}}


def _card(tmp: Path, info: dict[str, Any], eval_env: Any, eval_days: list[int], policy: Any,
          previous: Path, currency: str) -> list[str]:
    """Evaluate the baselines on the held-out windows, write the card files; the warnings."""
    from twin.app.policy_eval import baseline_rows, worse_than_reference, write_card

    rows, notes = baseline_rows(eval_env, eval_days, policy, previous if previous.is_file() else None)
    warn = worse_than_reference(rows, currency)
    warnings = [warn] if warn else []
    info["baselines"] = rows
    info["warnings"] = warnings
    write_card(tmp, info, rows, currency, warnings, notes)
    return warnings


def _vec_env(m: dict[str, Any], new_env: Any, n_envs: int, seed: int) -> Any:
    """``n_envs`` seeded copies of the training environment (``new_env()`` builds one)."""
    def make(i: int):  # type: ignore[no-untyped-def]
        def f():  # type: ignore[no-untyped-def]
            e = new_env()
            e.reset(seed=seed + i)
            return e
        return f

    venv = m["DummyVecEnv"]([make(i) for i in range(n_envs)])
    venv.seed(seed)
    return venv


def train(scenario: Path, out: Path, *, steps: int, seed: int = 0, n_envs: int = 1,
          episode_days: float = 7.0, eval_every: int = 0, forecast_h: int = 4,
          imitate: str | None = None, imitate_epochs: int = 30,
          progress: bool = False, command: str = "") -> dict[str, Any]:
    """Train PPO on ``scenario`` and write ``policy.onnx``, ``training.json`` and the card
    (``twin.app.policy_eval``: baselines table, learning curve, ``card.md``) into ``out``.

    With ``imitate``, the actor first clones that controller (behaviour cloning), then PPO
    fine-tunes it with a smaller step. The exported weights are those with the best held-out
    evaluation; the returned info also holds ``baselines`` and ``warnings``.
    """
    m = _train_modules()
    from controllers.rl.encoding import Options
    from controllers.rl.onnx_io import mlp_to_onnx, save_model
    from controllers.rl.policy import OnnxPolicy
    from twin.atomic import hold_output, replace_dir, temp_sibling, write_marker
    from twin.components.inputs import build_inputs
    from twin.config import load_scenario
    from twin.rl import TwinEnv

    m["torch"].set_num_threads(1)
    scn = load_scenario(scenario)
    hold_output(out, "policy")  # before training: never lose the work at the end
    ep_days, train_days, eval_days = _windows(scn, episode_days)
    opts = Options(forecast_h=forecast_h)
    inputs = build_inputs(scn)  # once, shared: episodes are windows cut from it

    venv = _vec_env(m, lambda: TwinEnv(scn, episode_days=ep_days, start_days=train_days,
                                       options=opts, inputs=inputs), n_envs, seed)
    eval_env = TwinEnv(scn, episode_days=ep_days, start_days=eval_days, options=opts, inputs=inputs)
    spec = eval_env.rl_spec
    model, ppo = _new_model(m, venv, steps=steps, seed=seed, n_envs=n_envs, imitate=bool(imitate),
                            n_act=spec.n_act)
    bc = None if not imitate else _imitate(model, TwinEnv(
        scn, episode_days=ep_days, start_days=train_days, options=opts, inputs=inputs),
        imitate, train_days, imitate_epochs, seed)
    tmp = temp_sibling(out)
    model.set_logger(m["configure"](str(tmp), ["csv"]))
    best = _Best(model, eval_env, eval_days)
    t0 = time.perf_counter()
    try:
        if imitate:
            best(0)
        model.learn(total_timesteps=steps, callback=_callback(m["BaseCallback"], steps, eval_every,
                                                              progress, best))
        if not best.curve or best.curve[-1]["step"] != int(model.num_timesteps):
            best(int(model.num_timesteps))
        wall = time.perf_counter() - t0
        w, b, act = best.weights
        meta = {"pvbess.training_command": command, "pvbess.algo": "ppo", "pvbess.seed": str(seed),
                "pvbess.steps": str(int(model.num_timesteps)), "pvbess.exported_step": str(best.step)}
        path = save_model(mlp_to_onnx(w, b, spec, act, meta), tmp / "policy.onnx")
        onnx_pol = OnnxPolicy(path)
        info: dict[str, Any] = {
            "command": command, "algo": "ppo", "seed": seed, "steps": int(model.num_timesteps),
            "n_envs": n_envs, "episode_days": ep_days, "train_start_days": train_days,
            "eval_start_days": eval_days, "eval_every": eval_every, "ppo": {**ppo, "activation": act},
            "env": eval_env.describe(), "spec_hash": spec.hash,
            "imitation": bc, "eval_curve": best.curve, "exported_step": best.step,
            "final_eval_onnx": evaluate(onnx_pol.act, eval_env, eval_days),
            **_timing(m, wall, best.wall_s, int(model.num_timesteps)),
        }
        _card(tmp, info, eval_env, eval_days, onnx_pol.act, out / "policy.onnx", scn.site.tariff.currency)
        (tmp / "training.json").write_text(json.dumps(info, indent=2) + "\n")
        write_marker(tmp, "policy", complete=True)
        replace_dir(tmp, out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        venv.close()
    return info


def cmd_train(args: argparse.Namespace) -> int:
    """``twin train``."""
    from twin.errors import EXIT_OK, UserError

    if args.algo != "ppo":
        raise UserError(f"--algo {args.algo}: only 'ppo' is available")
    check_train_options(args)
    if args.imitate is not None:
        from controllers import REGISTRY

        if args.imitate not in REGISTRY or args.imitate == "rl":
            raise UserError(f"--imitate {args.imitate}: give a rule controller, one of "
                            f"{sorted(n for n in REGISTRY if n != 'rl')}")
    cmd = "twin " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("twin") else ""
    info = train(Path(args.scenario), Path(args.out), steps=args.steps, seed=args.seed, n_envs=args.n_envs,
                 episode_days=args.episode_days, eval_every=args.eval_every, forecast_h=args.forecast_h,
                 imitate=args.imitate, imitate_epochs=args.imitate_epochs,
                 progress=sys.stderr.isatty() and not args.quiet, command=cmd)
    for w in info["warnings"]:
        print(f"twin: warning: {w}", file=sys.stderr)
    if not args.quiet:
        from twin.app.policy_eval import table_markdown
        from twin.config import load_scenario

        f = info["final_eval_onnx"]
        print(f"{args.out}/policy.onnx (weights of step {info['exported_step']}): {info['steps']} steps "
              f"in {info['wall_s']:.1f} s ({info['train_steps_per_s']:.0f} training steps/s); held-out "
              f"reward per episode {f['reward_mean']:.3f}; spec {info['spec_hash']}")
        cur = load_scenario(Path(args.scenario)).site.tariff.currency
        print(table_markdown(info["baselines"], cur, len(info["eval_start_days"])))
        print(f"card: {args.out}/card.md, learning curve: {args.out}/learning_curve.png")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``twin train`` to the ``twin`` sub-command parsers."""
    t = sub.add_parser("train", help="train an RL policy on the twin and export it as ONNX",
                       description="Train a policy with PPO (Stable-Baselines3; needs the 'train' "
                                   "extra) on the twin's gymnasium environment and write "
                                   "DIR/policy.onnx (for --controller rl) and DIR/training.json.")
    t.add_argument("scenario", help="scenario YAML file (its site, step, seed; episodes are windows of it)")
    t.add_argument("--algo", default="ppo", help="algorithm (ppo)")
    t.add_argument("--steps", type=int, required=True,
                   help=_help("--steps", "environment steps to train for"))
    t.add_argument("--out", required=True, help="output folder (replaced atomically)")
    t.add_argument("--seed", type=int, default=0, help=_help("--seed", "training seed") + " (default 0)")
    t.add_argument("--n-envs", type=int, default=1,
                   help=_help("--n-envs", "environments stepped together") + " (default 1)")
    t.add_argument("--episode-days", type=float, default=7.0,
                   help=f"episode length [days], > 0 and <= {MAX_EPISODE_DAYS:g}, one step or more "
                        "(default 7; cut to the scenario's length)")
    t.add_argument("--eval-every", type=int, default=0,
                   help=_help("--eval-every", "evaluate on the held-out weeks every N steps")
                   + " (default 0: only at the end)")
    t.add_argument("--forecast-h", type=int, default=4,
                   help=_help("--forecast-h", "hours of PV/mall forecast in the observation")
                   + " (default 4)")
    t.add_argument("--imitate", metavar="CONTROLLER",
                   help="first fit the policy to a controller's actions on the training windows "
                        "(behaviour cloning, e.g. six_phase), then fine-tune with PPO")
    t.add_argument("--imitate-epochs", type=int, default=30,
                   help=_help("--imitate-epochs", "behaviour-cloning epochs") + " (default 30)")
    t.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    t.set_defaults(func=cmd_train)

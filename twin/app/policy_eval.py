"""A trained policy against the rule baselines on the same held-out episodes (``twin train``).

The policy, ``no_bess``, ``six_phase`` and (when the output folder already holds one) the
previous policy each drive ``twin.rl.TwinEnv`` through the same held-out windows: the rule
controllers decide on the raw observation and their setpoints go through the action
encoding, exactly as behaviour cloning sees them. Per controller: the mean reward per
episode (what PPO maximises) and KPIs of the episodes (``build_summary`` of each episode's
run, summed over the episodes). Writes into the policy folder:

* ``baselines.json`` / ``baselines.csv`` — the table (full precision);
* ``learning_curve.png`` — held-out reward per episode over the training steps, the
  baselines as lines;
* ``card.md`` — the policy card: training budget, seeds, held-out results vs the baselines,
  and a warning when the policy is worse than ``six_phase``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Rule controllers every trained policy is compared with.
BASELINES = ("no_bess", "six_phase")
#: The controller a new policy must beat (a warning otherwise).
REFERENCE = "six_phase"
#: Summary keys shown per controller (summed over the held-out episodes).
CARD_KPIS = ("cost_grid_import_soles", "grid_import_kwh", "pv_curtailed_kwh", "co2_emissions_kg",
             "ev_kwh", "sessions_satisfied", "safety_clamps_total")
#: Files this module adds to a policy folder.
CARD_FILES = ("baselines.json", "baselines.csv", "learning_curve.png", "card.md")

Act = Callable[[np.ndarray], np.ndarray]


def controller_actor(env: Any, name: str) -> Callable[[], Act]:
    """A factory called after each ``env.reset``: rule controller ``name`` prepared for the
    episode's twin, deciding on the raw observation, its setpoints encoded as an action."""
    from controllers import make_controller
    from controllers.base import prepare_controller
    from controllers.rl.encoding import setpoints_to_action

    def start() -> Act:
        scn = env.scn
        ctl = make_controller(name, scn.site, scn.config.controller_params
                              if name == scn.config.controller else None)
        ctl.reset(seed=scn.config.seed)
        prepare_controller(ctl, env.twin.context)

        def act(_obs: np.ndarray) -> np.ndarray:
            so = env.site_obs
            return setpoints_to_action(ctl.decide(so), so, env.rl_spec.scales).astype(np.float32)
        return act
    return start


def run_episodes(env: Any, days: Sequence[int], start: Callable[[], Act],
                 kpis: bool = False) -> dict[str, Any]:
    """Drive ``env`` through the windows ``days``; the actor comes from ``start()`` after each
    reset. Returns the mean reward (and reward terms) per episode and, with ``kpis``, the
    :data:`CARD_KPIS` of the episodes' runs summed over the episodes."""
    totals: list[float] = []
    terms: dict[str, float] = {}
    sums = dict.fromkeys(CARD_KPIS, 0.0) if kpis else {}
    for d in days:
        obs, _ = env.reset(options={"start_day": d})
        act = start()
        done, tot = False, 0.0
        while not done:
            obs, r, term, trunc, info = env.step(act(obs))
            tot += r
            for k, v in info.items():
                if k.startswith("r_"):
                    terms[k] = terms.get(k, 0.0) + float(v)
            done = term or trunc
        totals.append(tot)
        if kpis:
            from twin.engine.results import build_results

            summ = build_results(env.twin.record()).summary
            for k in CARD_KPIS:
                sums[k] += float(summ.get(k, math.nan))
    n = max(len(days), 1)
    out: dict[str, Any] = {"reward_mean": float(np.mean(totals)), **{k: v / n for k, v in terms.items()}}
    return {**out, **sums}


def baseline_rows(env: Any, days: Sequence[int], policy: Act, previous: Path | None = None,
                  name: str = "new policy") -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, notes): the policy, :data:`BASELINES` and the previous policy (when ``previous``
    is a readable policy of the same spec) on the same held-out windows, best reward first."""
    rows = [{"controller": name, **run_episodes(env, days, lambda: policy, kpis=True)}]
    for b in BASELINES:
        rows.append({"controller": b, **run_episodes(env, days, controller_actor(env, b), kpis=True)})
    notes: list[str] = []
    if previous is not None and previous.is_file():
        from controllers.rl.policy import OnnxPolicy
        from twin.config import ConfigError

        try:
            old = OnnxPolicy(previous)
            old.check_spec(env.rl_spec)
        except ConfigError as exc:
            notes.append(f"the previous policy was not compared: {exc}")
        else:
            rows.append({"controller": "previous policy",
                         **run_episodes(env, days, lambda: old.act, kpis=True)})
    rows.sort(key=lambda r: -r["reward_mean"])
    return rows, notes


def worse_than_reference(rows: Sequence[Mapping[str, Any]], currency: str = "",
                         name: str = "new policy", ref: str = REFERENCE) -> str:
    """A warning sentence when ``name``'s held-out reward is below ``ref``'s ("" otherwise)."""
    by = {r["controller"]: r for r in rows}
    if name not in by or ref not in by:
        return ""
    new, base = by[name], by[ref]
    if new["reward_mean"] >= base["reward_mean"]:
        return ""
    cost = ""
    if math.isfinite(new.get("cost_grid_import_soles", math.nan)):
        d = (new["cost_grid_import_soles"] - base["cost_grid_import_soles"]) / 1e3
        cost = f", grid cost {d:+,.1f} k{currency or '(currency)'}"
    return (f"the new policy is worse than {ref} on the held-out episodes (reward per episode "
            f"{new['reward_mean']:.3f} vs {base['reward_mean']:.3f}{cost}); do not ship it: "
            f"train longer, or start from --imitate {ref}")


def table_markdown(rows: Sequence[Mapping[str, Any]], currency: str, n_episodes: int) -> str:
    """The rows as a Markdown table, KPIs in the catalogue's shown units and formats."""
    from twin.kpi_catalogue import by_key, unit_text
    from twin.trials.ab import fmt_num

    cat = by_key()
    heads = ["controller", "reward per episode"]
    for k in CARD_KPIS:
        row = cat[k]
        unit = unit_text(row.display_unit, currency)
        label = row.trials_label
        label = label[0].lower() + label[1:] if label[1:2].islower() else label  # "safety clamps", "EV ..."
        heads.append(label + (f" [{unit}]" if unit else ""))
    lines = ["| " + " | ".join(heads) + " |", "|---|" + "---:|" * (len(heads) - 1)]
    for r in rows:
        cells = [str(r["controller"]), f"{r['reward_mean']:.3f}"]
        cells += [fmt_num(float(r[k]) * cat[k].scale, cat[k].fmt) for k in CARD_KPIS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"KPIs summed over the {n_episodes} held-out episodes; reward: mean per episode "
                 "(higher is better).")
    return "\n".join(lines)


def learning_curve_png(curve: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                       exported_step: int | None, name: str = "new policy") -> bytes:
    """PNG: held-out reward per episode over the training steps, baselines as dashed lines."""
    from twin.report.style import new_figure, report_style
    from twin.report.trials import PALETTE

    with report_style():
        fig, ax = new_figure((8.0, 4.5))
        fig.suptitle("Held-out reward per episode during training")
        steps = [int(c["step"]) for c in curve]
        ax.plot(steps, [c["reward_mean"] for c in curve], marker="o", color="#1D3557", label=name)
        if exported_step is not None and exported_step in steps:
            i = steps.index(exported_step)
            ax.scatter([exported_step], [curve[i]["reward_mean"]], s=140, marker="*", color="#E76F51",
                       zorder=4, label=f"exported (step {exported_step:,})")
        for j, r in enumerate(x for x in rows if x["controller"] != name):
            ax.axhline(r["reward_mean"], ls="--", lw=1.2, color=PALETTE[(j + 1) % len(PALETTE)],
                       label=f"{r['controller']} ({r['reward_mean']:.2f})")
        ax.set_xlabel("training step")
        ax.set_ylabel("reward per held-out episode [-]")
        ax.legend(loc="best", fontsize=8)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return buf.getvalue()


def _step(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def card_markdown(info: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], currency: str,
                  warnings: Sequence[str], notes: Sequence[str]) -> str:
    """The policy card: how it was trained (budget, seeds, windows) and how it does on the
    held-out episodes against the baselines."""
    imit = info.get("imitation") or {}
    lines = ["# Policy card", ""]
    lines += [f"**Warning: {w}.**" for w in warnings] + ([""] if warnings else [])
    lines += [
        f"- command: `{info.get('command') or '(library call)'}`",
        f"- algorithm: {str(info.get('algo', 'ppo')).upper()}, seed {info.get('seed')}, "
        f"{int(info.get('steps', 0)):,} environment steps on {info.get('n_envs')} env(s); weights "
        f"of step {_step(info.get('exported_step'))} exported (best held-out evaluation)",
        f"- behaviour cloning: {imit['controller']}, {imit['samples']:,} samples, {imit['epochs']} epochs"
        if imit else "- behaviour cloning: none (PPO from scratch)",
        f"- episodes of {info.get('episode_days'):g} days, starting on any of "
        f"{len(info.get('train_start_days', []))} training days (no overlap with the held-out "
        f"windows); held-out windows start on days {info.get('eval_start_days')}",
        f"- wall time {float(info.get('wall_s', 0.0)):,.0f} s",
        "",
        "## Held-out episodes: the policy against the baselines",
        "",
        table_markdown(rows, currency, len(info.get("eval_start_days", []))),
        "",
    ]
    lines += [f"- {n}" for n in notes]
    lines.append("![learning curve](learning_curve.png)")
    return "\n".join(lines) + "\n"


def write_card(folder: Path, info: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], currency: str,
               warnings: Sequence[str], notes: Sequence[str], name: str = "new policy") -> None:
    """Write :data:`CARD_FILES` into ``folder`` (a temporary folder, replaced as a whole)."""
    import pandas as pd

    (folder / "baselines.json").write_text(json.dumps(
        {"currency": currency, "eval_start_days": info.get("eval_start_days"), "rows": list(rows),
         "warnings": list(warnings), "notes": list(notes)}, indent=2) + "\n")
    (folder / "baselines.csv").write_text(pd.DataFrame(list(rows)).to_csv(index=False))
    (folder / "learning_curve.png").write_bytes(
        learning_curve_png(info.get("eval_curve", []), rows, info.get("exported_step"), name))
    (folder / "card.md").write_text(card_markdown(info, rows, currency, warnings, notes))


def card_of_policy(policy: Path, training_json: Path, scenario: Path, out: Path) -> dict[str, Any]:
    """Re-evaluate a trained ``policy`` (e.g. the shipped one) against the baselines on the
    held-out windows its ``training.json`` names, and write the card files into ``out`` (a
    new folder). Returns ``{"rows", "warnings", "notes"}``."""
    from controllers.rl.encoding import Options
    from controllers.rl.policy import OnnxPolicy
    from twin.config import load_scenario
    from twin.rl import TwinEnv

    info = json.loads(training_json.read_text())
    scn = load_scenario(scenario)
    days = [int(d) for d in info["eval_start_days"]]
    env = TwinEnv(scn, episode_days=float(info["episode_days"]), start_days=days,
                  options=Options(**info["env"]["options"]))
    pol = OnnxPolicy(policy)
    pol.check_spec(env.rl_spec)
    rows, notes = baseline_rows(env, days, pol.act, name=policy.stem)
    cur = scn.site.tariff.currency
    warn = worse_than_reference(rows, cur, name=policy.stem)
    out.mkdir(parents=True, exist_ok=False)
    write_card(out, info, rows, cur, [warn] if warn else [], notes, policy.stem)
    return {"rows": rows, "warnings": [warn] if warn else [], "notes": notes, "currency": cur}


__all__ = ["BASELINES", "CARD_FILES", "CARD_KPIS", "REFERENCE", "baseline_rows", "card_markdown",
           "card_of_policy", "controller_actor", "learning_curve_png", "run_episodes", "table_markdown",
           "worse_than_reference", "write_card"]

"""The shipped policy's card: ``python benchmarks/policy_card.py [--out DIR]``.

Re-evaluates ``controllers/rl/policies/iquitos_ppo.onnx`` against ``no_bess`` and
``six_phase`` on the held-out weeks of its ``training.json`` (annual scenario) and writes
``card.md``, ``baselines.json``/``.csv`` and ``learning_curve.png`` into DIR (a new folder,
default ``runs/policy-card``); prints the table. The policy card in docs/rl.md is this output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Evaluate the shipped policy and write its card."""
    from twin.app.policy_eval import card_of_policy, table_markdown

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/policy-card", help="a new folder (default runs/policy-card)")
    args = ap.parse_args(argv)
    pol = ROOT / "controllers/rl/policies/iquitos_ppo.onnx"
    res = card_of_policy(pol, pol.with_suffix(".training.json"), ROOT / "scenarios/annual.yaml",
                         Path(args.out))
    print(table_markdown(res["rows"], res["currency"], 4))
    for w in res["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

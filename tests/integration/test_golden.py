"""Golden trace: a small committed run's time-series digest and a few KPIs.

Any change to the model (PV, mall, sessions, fleet, battery, controller, flow split) that
moves a number by more than the rounding below fails this test. If the change is
intended, regenerate the file and commit it with the change, saying why::

    .venv/bin/python -m tests.integration.test_golden --update
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from typing import Any

import numpy as np

from tests.conftest import ROOT, SCENARIOS
from twin.config import load_scenario
from twin.engine import simulate
from twin.engine.results import build_results

GOLDEN = ROOT / "tests" / "data" / "golden_trace.json"
#: The run: the default site, two days of March at 15-min ticks, six_phase, seed 3.
SETS = {"name": "golden", "start": "2024-03-04T00:00:00", "duration": "2d", "dt": "15min",
        "seed": 3, "controller": "six_phase"}
#: Per-step columns in the digest, rounded to 1e-6 of their unit.
COLUMNS = ("pv_kwh", "mall_kwh", "ev_kwh", "bess_charge_kwh", "bess_discharge_kwh", "soc_kwh",
           "capacity_kwh", "grid_import_kwh", "pv_curtailed_kwh", "phase", "n_plugged",
           "n_waiting")
KPIS = ("pv_kwh", "ev_kwh", "grid_import_kwh", "bess_discharge_kwh", "co2_avoided_bess_kg",
        "savings_bess_soles", "capacity_fade_percent", "sessions_total", "sessions_satisfied",
        "sessions_turned_away", "sessions_refused_closing", "sessions_satisfied_reduced",
        "sessions_short", "ev_coverage_counterfactual", "ev_coverage_no_grid_charge")


def golden_run() -> dict[str, Any]:
    """Run the golden scenario; return its digest, per-column sums and KPIs."""
    scn = load_scenario(SCENARIOS / "week.yaml", dict(SETS))
    res = build_results(simulate(scn))
    ts = res.timeseries
    h = hashlib.sha256()
    sums = {}
    for c in COLUMNS:
        v = np.round(ts[c].to_numpy(dtype=np.float64), 6) + 0.0  # + 0.0: no negative zeros
        h.update(c.encode())
        h.update(",".join(f"{x:.6f}" for x in v).encode())
        sums[c] = float(v.sum())
    return {"scenario": SETS, "steps": len(ts), "digest": h.hexdigest(), "column_sums": sums,
            "kpis": {k: res.summary[k] for k in KPIS}}


def test_golden_trace() -> None:
    want = json.loads(GOLDEN.read_text())
    got = golden_run()
    # KPIs and column sums first: they say *what* moved when the digest differs
    for k, v in want["kpis"].items():
        assert math.isclose(got["kpis"][k], v, rel_tol=1e-9, abs_tol=1e-9), \
            f"KPI {k}: {got['kpis'][k]!r} (golden {v!r})"
    for c, v in want["column_sums"].items():
        assert math.isclose(got["column_sums"][c], v, rel_tol=1e-9, abs_tol=1e-6), \
            f"column {c}: sum {got['column_sums'][c]!r} (golden {v!r})"
    assert got["steps"] == want["steps"]
    assert got["digest"] == want["digest"], "per-step values moved (see the module docstring)"


if __name__ == "__main__":
    if "--update" not in sys.argv:
        sys.exit("usage: python -m tests.integration.test_golden --update")
    GOLDEN.write_text(json.dumps(golden_run(), indent=2) + "\n")
    print(f"wrote {GOLDEN}")

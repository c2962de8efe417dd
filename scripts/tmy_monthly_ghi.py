"""Monthly GHI of the shipped Iquitos TMY: the file (PVGIS) against what the twin's PV chain
receives on the annual scenario, and the PV yield it gives.

    python scripts/tmy_monthly_ghi.py [SCENARIO]     # default scenarios/annual.yaml

Prints a Markdown table (kWh/m²/day; yield kWh/kWp/day) for docs/model-fidelity.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def main(scenario: Path) -> None:
    """Print the table."""
    from twin.components.inputs import build_inputs
    from twin.config import load_scenario

    scn = load_scenario(scenario)
    src = pd.read_csv(ROOT / "data" / "weather" / "iquitos_pvgis_tmy.csv")
    days = src.groupby("month")["day"].nunique()
    file_m = src.groupby("month")["ghi_w_m2"].sum() / 1000.0 / days
    inp = build_inputs(scn)
    assert inp.ghi_w_m2 is not None, "the scenario does not run on a weather file"
    dt_h = scn.config.dt / 3600.0
    idx = inp.index
    g = pd.Series(inp.ghi_w_m2 * dt_h / 1000.0, index=idx)
    y = pd.Series(inp.p_pv_kw * dt_h / scn.site.pv.p_dc_kwp, index=idx)
    ndays = pd.Series(1.0, index=idx).groupby(idx.month).sum() * dt_h / 24.0
    twin_m = g.groupby(idx.month).sum() / ndays
    yield_m = y.groupby(idx.month).sum() / ndays
    print("| month | TMY file (PVGIS) | twin on the TMY | difference | yield [kWh/kWp/day] |")
    print("|---|---|---|---|---|")
    for m in range(1, 13):
        a, b = float(file_m[m]), float(twin_m[m])
        print(f"| {MONTHS[m - 1]} | {a:.3f} | {b:.3f} | {(b - a) / a * 100:+.2f} % | "
              f"{float(yield_m[m]):.2f} |")
    print(f"| year | {float((file_m * days).sum()):,.0f} kWh/m² | {float(g.sum()):,.0f} kWh/m² | "
          f"| {float(y.sum()):,.0f} kWh/kWp |")
    print(f"({np.count_nonzero(idx.normalize().unique())} days of {scenario.name})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "scenarios" / "annual.yaml")

"""Write the synthetic replay example (data/replay_example/) from a twin run.

A two-day run of the default site (2024-03-04, 15-min ticks, seed 1, controller
``arbitrage``: sockets at their rating, the battery charging off-peak and discharging in the
peak) stands in for a site: its timeseries become the "measured" series (the twin's own
column names, time stamps with the site's UTC offset) and its sessions that got a socket
become the charging-session log. The numbers are synthetic, not measured at any site.

    python scripts/make_replay_example.py [OUT_DIR]      # default data/replay_example
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: The measured columns written (a subset of the twin's timeseries columns).
COLUMNS = ("pv_kwh", "mall_kwh", "p_bess_kw", "soc_percent", "grid_import_kwh")
SCENARIO = {"name": "replay-example", "site": str(ROOT / "config" / "site.yaml"),
            "start": "2024-03-04T00:00:00", "duration": "2d", "dt": "15min", "seed": 1,
            "controller": "arbitrage"}


def measured_frame(ts: pd.DataFrame) -> pd.DataFrame:
    """The run's timeseries as a measured-series table (ISO time stamps with offset)."""
    out = pd.DataFrame({"timestamp": [t.isoformat() for t in pd.DatetimeIndex(ts["timestamp"])]})
    for c in COLUMNS:
        out[c] = ts[c].to_numpy(dtype=float).round(6)
    return out


def session_log(sessions: pd.DataFrame) -> pd.DataFrame:
    """The sessions that got a socket, as a charger's log (plug-in to unplug)."""
    got = sessions[sessions["plug_in"].notna()].copy()
    dep = got["leave"].where(got["leave"].notna(), got["planned_departure"])
    iso = lambda s: [pd.Timestamp(t).isoformat() for t in s]  # noqa: E731
    return pd.DataFrame({"arrival": iso(got["plug_in"]), "departure": iso(dep),
                         "socket": got["socket"].astype(int).to_numpy(),
                         "vehicle_type": got["vehicle_type"].astype(str).to_numpy(),
                         "e_delivered_kwh": got["e_delivered_kwh"].to_numpy(float).round(6),
                         "e_req_kwh": np.maximum(got["e_req_kwh"].to_numpy(float),
                                                 got["e_delivered_kwh"].to_numpy(float)).round(6),
                         "p_max_kw": got["p_max_kw"].to_numpy(float),
                         # the vehicle (CC-CV taper): battery [kWh], SOC at arrival [-]
                         **{c: got[c].to_numpy(float).round(9)
                            for c in ("battery_kwh", "soc_arrival") if c in got}})


def write_example(out: Path, scenario: dict[str, object] | None = None) -> Path:
    """Run the twin and write the dataset into ``out`` (created); return ``out``."""
    from twin.config import scenario_from_data
    from twin.engine import simulate
    from twin.engine.results import build_results

    data = {**SCENARIO, **(scenario or {})}
    out.mkdir(parents=True, exist_ok=True)
    scn = scenario_from_data(out / "scenario.yaml", data)
    res = build_results(simulate(scn))
    measured_frame(res.timeseries).to_csv(out / "measured.csv", index=False)
    session_log(res.sessions).to_csv(out / "sessions.csv", index=False)
    site = Path(str(data["site"]))
    site_ref = os.path.relpath(site, out.resolve())
    manifest = {"name": str(data["name"]), "site": site_ref, "measured": "measured.csv",
                "sessions": "sessions.csv", "dt": "15min"}
    (out / "replay.yaml").write_text(
        "# twin replay manifest (README, 'twin replay'); SYNTHETIC data, see README.md\n"
        + yaml.safe_dump(manifest, sort_keys=False))
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "replay_example"
    print(write_example(target.resolve()))

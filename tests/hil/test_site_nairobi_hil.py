"""The second example site against devices (issue 17, point 4): Nairobi has 34 sockets of
three vehicle classes and two batteries; the simulated charge-point controller lays its
socket blocks out for the site's sockets (the shipped map says 38), and ``twin hil``
(lockstep) agrees with ``twin run``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

from adapters.modbus.regmap import load_register_map, shipped_map
from twin.app.hil import HilSettings, run_hil, write_hil
from twin.config import load_scenario
from twin.engine import simulate
from twin.engine.results import build_results

ROOT = Path(__file__).resolve().parents[2]
NAIROBI = ROOT / "config" / "sites" / "nairobi_mall.yaml"


def test_chargers_map_is_laid_out_for_the_sites_sockets() -> None:
    base = load_register_map(shipped_map("chargers"))
    m = load_register_map(shipped_map("chargers"), n_sockets=34)
    assert base.n_sockets == 38 and m.n_sockets == 34
    for name in ("socket_status", "socket_info", "socket_failsafe"):
        assert m.blocks[name].count == 34
        assert m.blocks[name].address == base.blocks[name].address


def test_nairobi_hil_lockstep_agrees_with_run(tmp_path: Path) -> None:
    p = tmp_path / "nairobi_day.yaml"
    p.write_text(yaml.safe_dump({"name": "nairobi_day", "site": str(NAIROBI),
                                 "start": "2024-03-04T00:00:00", "duration": "1d",
                                 "dt": "15min", "seed": 1, "controller": "six_phase"}))
    scn = load_scenario(p)
    ref = build_results(simulate(scn))
    hil = write_hil(run_hil(scn, settings=HilSettings(timeout_s=2.0)), tmp_path / "hil")
    assert hil["currency"] == "KES"
    assert [u["name"] for u in hil["batteries"]] == ["lfp_main", "nmc_second_life"]
    assert hil["hil"]["steps_bess_invalid"] == 0
    for k in ("grid_import_kwh", "ev_kwh", "bess_discharge_kwh"):
        # register resolution (W, Wh) moves a few 0.1 kWh
        assert math.isclose(hil[k], ref.summary[k], rel_tol=5e-3, abs_tol=0.5), k
    s = pd.read_parquet(tmp_path / "hil" / "sessions.parquet")
    # the sessions rebuilt from the chargers' telemetry keep their class by socket
    by_class = s.groupby(s["vehicle_type"].astype(str))["socket"].agg(["min", "max"])
    assert by_class.loc["boda"].tolist()[1] <= 19
    assert by_class.loc["car"].between(20, 29).all()
    assert by_class.loc["matatu"].between(30, 33).all()

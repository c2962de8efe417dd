"""Vehicle classes as site data (issue 17, point 4): a site with three classes runs through
``twin run`` and ``twin report``; the codes follow the order of the site file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, write_yaml
from twin.app.cli import main
from twin.config import load_scenario
from twin.engine.driver import simulate
from twin.engine.results import build_sessions

THREE = ROOT / "config" / "sites" / "three_classes.yaml"


def _scenario(tmp: Path, site: Path | str, duration: str = "2d") -> Path:
    return write_yaml(tmp / "scenario.yaml", {
        "name": "classes", "site": str(site), "start": "2024-03-04T00:00:00",
        "duration": duration, "dt": "15min", "seed": 1, "controller": "six_phase"})


def test_three_classes_run_and_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(_scenario(tmp_path, THREE)), "--out", str(out), "-q"]) == 0
    s = pd.read_parquet(out / "sessions.parquet")
    assert s["vehicle_type"].cat.categories.tolist() == ["moto", "mototaxi", "car"]
    plugged = s[s["socket"] >= 0]
    # sockets are laid out group by group: 0-29 moto, 30-37 mototaxi, 38-41 car (11 kW)
    lo_hi = {"moto": (0, 29), "mototaxi": (30, 37), "car": (38, 41)}
    for vt, (lo, hi) in lo_hi.items():
        sock = plugged.loc[plugged["vehicle_type"] == vt, "socket"]
        assert len(sock) > 0, vt
        assert sock.between(lo, hi).all(), (vt, sock.min(), sock.max())
    car = s[s["vehicle_type"] == "car"]
    assert car["p_max_kw"].max() > 7.4 + 1e-9  # 11 kW chargers on 11 kW sockets
    assert (car["p_max_kw"] <= 11.0 + 1e-9).all()
    assert np.isclose(car["battery_kwh"], 60.0).all()
    assert car["e_delivered_kwh"].sum() > 0.0
    assert main(["report", str(out), "-q"]) == 0
    assert (out / "report" / "report.html").stat().st_size > 0


def _site_ordered(site_dict: dict[str, Any], names: list[str]) -> dict[str, Any]:
    veh = site_dict["ev"]["vehicles"]
    site_dict["ev"]["vehicles"] = {n: veh[n] for n in names}
    return site_dict


def test_class_codes_follow_the_file_order(tmp_path: Path, site_dict: dict[str, Any]) -> None:
    """The same two classes written in the other order: codes, categories and draws follow
    the file (mototaxi drawn first), the sockets still go to their own class."""
    write_yaml(tmp_path / "site.yaml", _site_ordered(site_dict, ["mototaxi", "moto"]))
    s = build_sessions(simulate(load_scenario(_scenario(tmp_path, "site.yaml", "1d"))))
    assert s["vehicle_type"].cat.categories.tolist() == ["mototaxi", "moto"]
    plugged = s[s["socket"] >= 0]
    assert plugged.loc[plugged["vehicle_type"] == "moto", "socket"].between(0, 29).all()
    assert plugged.loc[plugged["vehicle_type"] == "mototaxi", "socket"].between(30, 37).all()
    assert (s.loc[s["vehicle_type"] == "moto", "p_max_kw"] <= 3.7 + 1e-9).all()
    assert (s.loc[s["vehicle_type"] == "mototaxi", "p_max_kw"] > 3.7).any()


@pytest.mark.parametrize("controller", ["optimal", "mpc"])
def test_lp_controllers_plan_for_three_classes(tmp_path: Path, controller: str) -> None:
    """The LP controllers size their per-class EV variables from the site (3 here)."""
    scn = load_scenario(_scenario(tmp_path, THREE, "1d"), {"controller": controller})
    s = build_sessions(simulate(scn))
    assert set(s["vehicle_type"].astype(str)) == {"moto", "mototaxi", "car"}
    assert s["e_delivered_kwh"].sum() > 0.0

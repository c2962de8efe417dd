"""Scenarios fed from files: PV and mall profiles, EV sessions, an aggregate EV profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_yaml
from tests.integration.test_bus_physics import check_bus_rows
from twin.config import load_scenario
from twin.engine import simulate
from twin.engine.results import build_results


def _scenario(tmp: Path, site: dict[str, Any], **kw: Any) -> Path:
    write_yaml(tmp / "site.yaml", site)
    data = {"site": "site.yaml", "start": "2024-03-04T00:00:00", "duration": "2d", "dt": "15min",
            "seed": 1, "controller": "six_phase"}
    data.update(kw)
    return write_yaml(tmp / "s.yaml", data)


def test_pv_and_mall_profiles_replayed(tmp_path: Path, site_dict: dict[str, Any]) -> None:
    hours = pd.date_range("2024-03-04", periods=48, freq="h")
    pv = np.clip(np.sin((hours.hour.to_numpy() - 6) / 12 * np.pi), 0, None) * 3000.0
    pd.DataFrame({"timestamp": hours, "pv_kwh": pv}).to_csv(tmp_path / "pv.csv", index=False)
    pd.DataFrame({"demand_kw": np.full(48, 1500.0)}).to_csv(tmp_path / "mall.csv", index=False)
    site_dict["pv"].update(source="file", file={"path": "pv.csv", "column": "pv_kwh"})
    site_dict["mall"].update(source="file", file={"path": "mall.csv", "column": "demand_kw"})
    scn = load_scenario(_scenario(tmp_path, site_dict))
    res = build_results(simulate(scn))
    s = res.summary
    assert s["pv_kwh"] == pytest.approx(pv.sum())
    assert s["mall_kwh"] == pytest.approx(1500.0 * 48)
    check_bus_rows(res.timeseries, scn.site.grid.export_limit_kw, scn.config.dt, 1e-6)


def test_sessions_file_played_exactly(tmp_path: Path, site_dict: dict[str, Any]) -> None:
    rows = [
        ("2024-03-04 10:00", "2024-03-04 12:00", "moto", 3.0, 3.7),
        ("2024-03-04 10:05", "2024-03-04 10:35", "mototaxi", 8.0, 7.4),
        ("2024-03-05 21:00", "2024-03-05 21:30", "moto", 4.0, 3.7),
    ]
    pd.DataFrame(rows, columns=["arrival", "departure", "vehicle_type", "e_req_kwh", "p_max_kw"]).to_csv(
        tmp_path / "sessions.csv", index=False)
    site_dict["ev"].update(source="sessions_file", sessions_file="sessions.csv")
    res = build_results(simulate(load_scenario(_scenario(tmp_path, site_dict))))
    se = res.sessions.sort_values("session_id")
    assert len(se) == 3
    # moto: 3 kWh in 2 h at 3.7 kW → full; mototaxi: 30 min at 7.4 kW → 3.7 kWh; late moto: 1.85 kWh
    assert list(se["e_delivered_kwh"].round(6)) == [3.0, 3.7, 1.85]
    assert list(se["satisfied"]) == [True, False, False]
    assert res.summary["ev_kwh"] == pytest.approx(3.0 + 3.7 + 1.85)


def test_aggregate_ev_profile_is_an_inflexible_load(tmp_path: Path, site_dict: dict[str, Any]) -> None:
    pd.DataFrame({"total_kw": np.full(48, 120.0)}).to_csv(tmp_path / "ev.csv", index=False)
    site_dict["ev"].update(source="profile", profile={"path": "ev.csv", "column": "total_kw"})
    scn = load_scenario(_scenario(tmp_path, site_dict))
    res = build_results(simulate(scn))
    assert res.summary["ev_kwh"] == pytest.approx(120.0 * 48)
    assert res.summary["sessions_total"] == 0
    check_bus_rows(res.timeseries, scn.site.grid.export_limit_kw, scn.config.dt, 1e-6)

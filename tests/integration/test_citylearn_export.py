"""``twin export citylearn``: the dataset's content, and real CityLearn 3.0.2 stepping it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from twin.app.citylearn import charger_tables
from twin.app.cli import main

#: CityLearn 3.0.2 and its run-time dependencies (its torch/openstudio/doe_xstock pins are for
#: features a dataset without LSTM dynamics or autosizing does not touch).
CITYLEARN_VENV = ROOT / ".venv-citylearn"
CITYLEARN_DEPS = ["gymnasium==0.28.1", "numpy<2", "pandas", "pyyaml", "simplejson", "platformdirs",
                  "requests", "scikit-learn<=1.2.2"]


def citylearn_python() -> Path:
    """A venv with CityLearn 3.0.2 (made once, kept in .venv-citylearn)."""
    py = CITYLEARN_VENV / "bin" / "python"
    stamp = CITYLEARN_VENV / ".stamp-3.0.2"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(CITYLEARN_VENV)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", "citylearn==3.0.2"], check=True)
        subprocess.run([*pip, *CITYLEARN_DEPS], check=True)
        stamp.touch()
    return py


def test_charger_tables_keep_every_session() -> None:
    t0 = pd.Timestamp("2024-03-04 00:00", tz="America/Lima")
    at = [t0 + pd.Timedelta(minutes=m) for m in (0, 10, 20, 95, 200)]
    sessions = pd.DataFrame({
        "session_id": [0, 1, 2, 3, 4],
        "socket": [0, 0, 0, 1, -1],
        # socket 0: a 5-min session, then one that plugs in during the same step, then one 3 min later
        "plug_in": [at[0], at[1], at[1] + pd.Timedelta(minutes=3), at[3], pd.NaT],
        "leave": [at[0] + pd.Timedelta(minutes=5), at[1] + pd.Timedelta(minutes=2),
                  at[1] + pd.Timedelta(minutes=60), at[3] + pd.Timedelta(minutes=30), at[4]],
        "e_req_kwh": [2.0, 3.0, 4.0, 8.0, 2.0],
    })
    tables, n = charger_tables(sessions, 2, 16, 900.0, t0, [4.0, 10.0])
    assert n == 4  # the turned-away session (no socket) is not a charger session
    s0 = tables[0]
    ids = s0["electric_vehicle_session_id"].tolist()
    # s1 moves to the next free step; s2 (00:13-01:10) follows it to its own leave step
    assert ids[:5] == ["s0", "s1", "s2", "s2", "s2"] and ids[5] == ""
    state = s0["electric_vehicle_charger_state"]
    assert (state[:5] == 1).all() and state[5] == 3
    assert s0["electric_vehicle_departure_time"][:5].tolist() == [1, 1, 3, 2, 1]
    assert s0["electric_vehicle_current_soc"][0] == pytest.approx(0.5)
    assert s0["electric_vehicle_current_soc"][2] == pytest.approx(0.0)
    s1 = tables[1]
    assert (s1["electric_vehicle_charger_state"] == 1).sum() == 3  # 01:35-02:05 -> steps 6..8
    assert s1["electric_vehicle_current_soc"][6] == pytest.approx(0.2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, make_scenario_module: Path) -> Path:
    out = tmp_path_factory.mktemp("cl") / "dataset"
    assert main(["export", "citylearn", str(make_scenario_module), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def make_scenario_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import yaml

    d = tmp_path_factory.mktemp("scn")
    scn = {"name": "cl", "site": str(ROOT / "config" / "site.yaml"), "start": "2024-03-04T00:00:00",
           "duration": "2d", "dt": "15min", "seed": 5, "controller": "six_phase"}
    p = d / "scenario.yaml"
    p.write_text(yaml.safe_dump(scn))
    return p


def test_export_content(exported: Path, make_scenario_module: Path) -> None:
    from twin.config import load_scenario
    from twin.engine import simulate
    from twin.engine.results import build_results

    schema = json.loads((exported / "schema.json").read_text())
    assert schema["seconds_per_time_step"] == 900.0
    assert schema["simulation_end_time_step"] == 191
    (_bname, b), = schema["buildings"].items()
    st = b["electrical_storage"]["attributes"]
    assert st["capacity"] == 2000.0 and st["nominal_power"] == 400.0
    assert st["efficiency"] == pytest.approx(0.95 ** 0.5) and st["depth_of_discharge"] == pytest.approx(0.8)
    assert b["pv"]["attributes"]["nominal_power"] == 4050.0
    assert len(b["chargers"]) == 38 and len(schema["electric_vehicles_def"]) == 38
    meta = schema["metadata"]
    assert meta["sessions_exported"] == meta["sessions_plugged"] > 0
    building = pd.read_csv(exported / "building.csv")
    assert {"month", "hour", "minutes", "day_type"} <= set(building.columns)
    assert building["minutes"].tolist()[:4] == [0, 15, 30, 45]
    res = build_results(simulate(load_scenario(make_scenario_module)))
    assert np.allclose(building["non_shiftable_load"], res.timeseries["mall_kwh"])
    pv = building["solar_generation"] * 4050.0 / 1000.0 * 0.25
    assert np.allclose(pv, res.timeseries["pv_kwh"])
    plugged = sum((pd.read_csv(f)["electric_vehicle_charger_state"] == 1).sum()
                  for f in sorted((exported / "chargers").glob("*.csv")))
    assert plugged >= meta["sessions_plugged"]
    for f in ("weather.csv", "pricing.csv", "carbon_intensity.csv", "bess_schema_params.json"):
        assert (exported / f).stat().st_size > 0


def test_bad_scenario_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    assert main(["export", "citylearn", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert not out.exists()


def run_citylearn(schema: Path, n_steps: int, storage_action: float | Path = 0.0) -> dict[str, Any]:
    """Step ``schema`` in real CityLearn 3.0.2.

    Chargers act at 1.0; the battery at ``storage_action``, or at the per-step actions in
    that JSON file.
    """
    py = citylearn_python()
    env = {**os.environ, "CITYLEARN_OFFLINE": "1"}
    script = Path(__file__).with_name("citylearn_step.py")
    r = subprocess.run([str(py), str(script), str(schema), str(n_steps),
                        f"@{storage_action}" if isinstance(storage_action, Path) else str(storage_action)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return got


def test_export_carries_grid_limits(exported: Path, make_scenario_module: Path) -> None:
    from twin.config import load_scenario
    from twin.engine import simulate
    from twin.engine.results import build_results

    schema = json.loads((exported / "schema.json").read_text())
    (_bname, b), = schema["buildings"].items()
    # the isolated grid's zero export limit, in the key CityLearn 3.0.2 reads
    assert b["electrical_service"] == {"mode": "single_phase",
                                       "limits": {"total": {"import_kw": None, "export_kw": 0.0}}}
    meta = schema["metadata"]
    assert meta["grid_limits_kw"] == {"import": None, "export": 0.0}
    assert "cannot curtail PV" in meta["export_limit_note"]
    ts = build_results(simulate(load_scenario(make_scenario_module))).timeseries
    for k, v in meta["twin_totals_kwh"].items():
        assert v == pytest.approx(ts[k].sum(), abs=1e-3)
    # no random CityLearn defaults: lossless EVs, flat battery curves
    ev = schema["electric_vehicles_def"]["ev_00"]["battery"]["attributes"]
    assert ev["power_efficiency_curve"] == [[0.0, 1.0], [1.0, 1.0]] and ev["efficiency"] == 1.0
    st = b["electrical_storage"]["attributes"]
    eta = pytest.approx(0.95 ** 0.5)
    assert st["power_efficiency_curve"] == [[0.0, eta], [1.0, eta]]
    assert st["capacity_power_curve"] == [[0.0, 1.0], [1.0, 1.0]]


def test_export_limit_follows_the_site(tmp_path: Path, make_scenario_module: Path) -> None:
    out = tmp_path / "ds"
    assert main(["export", "citylearn", str(make_scenario_module), "--out", str(out), "--set", "duration=1h",
                 "--set", "grid.export_limit_kw=250", "--set", "grid.import_limit_kw=3000"]) == 0
    (b,) = json.loads((out / "schema.json").read_text())["buildings"].values()
    assert b["electrical_service"]["limits"]["total"] == {"import_kw": 3000.0, "export_kw": 250.0}


@pytest.mark.slow
def test_citylearn_loads_and_steps_a_day(exported: Path) -> None:
    got = run_citylearn(exported / "schema.json", 96)
    assert got["steps"] == 96 and got["seconds_per_time_step"] == 900.0
    assert got["n_chargers"] == 38 and got["n_actions"] == 39
    assert got["battery_capacity_kwh"] == 2000.0 and got["pv_nominal_kw"] == 4050.0
    assert got["export_limit_kw"] == 0.0
    building = pd.read_csv(exported / "building.csv")
    assert got["non_shiftable_load_kwh"] == pytest.approx(building["non_shiftable_load"][:96].sum(), rel=1e-5)
    pv = (building["solar_generation"][:96] * 4050.0 / 1000.0 * 0.25).sum()
    assert got["solar_generation_kwh"] == pytest.approx(pv, rel=1e-4)
    plugged = sum((pd.read_csv(f)["electric_vehicle_charger_state"][:96] == 1).sum()
                  for f in sorted((exported / "chargers").glob("*.csv")))
    assert got["connected_charger_steps"] == plugged > 0


#: Round trip, one week (scenarios/week.yaml's site, start and seed; ``no_bess``). CityLearn
#: has no CC-CV taper: the export gives each session the energy the twin's vehicle can take
#: in its stay (``session_room_kwh``; under ``no_bess`` exactly what the twin delivered) as the
#: EV's room. Measured 2026-12-05 (vehicles model of issue 19): CityLearn EV 7,599 vs twin
#: 7,685 kWh (-1.11 %): all of it (85.4 kWh) is whole-step plug-in (CityLearn plugs an EV in
#: for whole steps, at full power from the plug-in minute's step start, and a session that
#: plugs into a socket in the step its predecessor leaves waits a step, which cuts ~1 h
#: dwell stays by a quarter); the test checks that decomposition exactly. Mall and PV match
#: to float precision. The tolerances are a few times the measured import gaps; a 1 % PV
#: scaling error moves the weekly import by 0.4 %.
WEEK_IMPORT_REL_TOL = 0.002
DAY_IMPORT_REL_TOL = 0.003
EV_REL_TOL = 0.015
CURTAIL_REL_TOL = 0.01


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    import yaml

    from twin.config import load_scenario
    from twin.engine import simulate
    from twin.engine.results import build_results

    d = tmp_path_factory.mktemp("week")
    scn = {"name": "week", "site": str(ROOT / "config" / "site.yaml"), "start": "2024-03-04T00:00:00",
           "duration": "7d", "dt": "15min", "seed": 1, "controller": "no_bess"}
    (d / "scenario.yaml").write_text(yaml.safe_dump(scn))
    assert main(["export", "citylearn", str(d / "scenario.yaml"), "--out", str(d / "ds")]) == 0
    ts = build_results(simulate(load_scenario(d / "scenario.yaml"))).timeseries
    return d / "ds", ts


@pytest.mark.slow
def test_week_grid_import_round_trip(week: tuple[Path, pd.DataFrame]) -> None:
    ds, ts = week
    got = run_citylearn(ds / "schema.json", len(ts))
    n = got["time_step"]
    assert n == len(ts) - 1  # CityLearn simulates N - 1 steps of an N-row episode
    net = np.asarray(got["net_kwh"])
    imp_cl, exp_cl = np.clip(net, 0.0, None), np.clip(-net, 0.0, None)
    imp_tw = ts["grid_import_kwh"].to_numpy()[:n]
    assert imp_cl.sum() == pytest.approx(imp_tw.sum(), rel=WEEK_IMPORT_REL_TOL)
    for day in range(0, n, 96):
        s = slice(day, day + 96)
        assert imp_cl[s].sum() == pytest.approx(imp_tw[s].sum(), rel=DAY_IMPORT_REL_TOL), day // 96
    # CityLearn charges exactly what the exported sessions allow: each plugged block (one
    # session id) takes min(room = capacity x (1 - arrival SOC), EV power x its steps)
    schema = json.loads((ds / "schema.json").read_text())
    evs = schema["electric_vehicles_def"]
    can = 0.0
    for f in sorted((ds / "chargers").glob("*.csv")):
        t = pd.read_csv(f).iloc[:n]
        ev = evs[f"ev_{f.stem[-2:]}"]["battery"]["attributes"]
        on = t[t["electric_vehicle_charger_state"] == 1]
        for _sid, g in on.groupby("electric_vehicle_session_id", sort=False):
            room = ev["capacity"] * (1.0 - g["electric_vehicle_estimated_soc_arrival"].iloc[0])
            can += min(room, ev["nominal_power"] * len(g) * 0.25)
    assert got["ev_kwh"] == pytest.approx(can, rel=1e-5)
    # ... and that is the twin's EV energy less what whole-step plug-ins lose (see the note)
    assert got["ev_kwh"] == pytest.approx(ts["ev_kwh"][:n].sum(), rel=EV_REL_TOL)
    assert got["ev_kwh"] <= ts["ev_kwh"][:n].sum()
    # CityLearn cannot curtail PV: what it exports past the zero limit is what the twin curtails
    assert ts["grid_export_kwh"].sum() == 0.0
    assert exp_cl.sum() == pytest.approx(ts["pv_curtailed_kwh"][:n].sum(), rel=CURTAIL_REL_TOL)
    # ... but it reads the limit and holds the battery back (approximately: see the note):
    # asked to discharge fully in every PV-surplus step of the first 2 days, the battery
    # exports 84 kWh with the limit and 592 kWh (all it holds above its minimum) without
    dis_actions = ds.parent / "discharge_in_surplus.json"
    dis_actions.write_text(json.dumps([-1.0 if c > 0 else 0.0 for c in ts["pv_curtailed_kwh"]]))
    no_limit = ds.parent / "no_limit"
    shutil.copytree(ds, no_limit)
    schema = json.loads((no_limit / "schema.json").read_text())
    for b in schema["buildings"].values():
        del b["electrical_service"]
    (no_limit / "schema.json").write_text(json.dumps(schema))
    leak = {}
    for name, d in (("limit", ds), ("no_limit", no_limit)):
        got = run_citylearn(d / "schema.json", 2 * 96, dis_actions)
        leak[name] = got["storage_discharge_kwh"]
    assert leak["no_limit"] > 500.0
    assert leak["limit"] < 0.25 * leak["no_limit"]


def test_session_room_is_what_no_bess_delivers(tmp_path: Path) -> None:
    """The energy exported per session (``session_room_kwh``: the vehicle's own power and
    CC-CV taper over its stay) is what the twin delivers with sockets at their rating."""
    import yaml

    from twin.app.citylearn import session_room_kwh
    from twin.config import load_scenario
    from twin.engine import simulate
    from twin.engine.results import build_results
    from twin.inputs import SocketSpec

    scn = {"name": "day", "site": str(ROOT / "config" / "site.yaml"), "start": "2024-03-04T00:00:00",
           "duration": "1d", "dt": "15min", "seed": 3, "controller": "no_bess"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scn))
    s = load_scenario(tmp_path / "s.yaml")
    sess = build_results(simulate(s)).sessions
    rating = [float(p) for p in SocketSpec.from_config(s.site.ev).p_rating_kw]
    room = session_room_kwh(sess, dict(s.site.ev.vehicles), rating)
    plugged = sess["plug_in"].notna().to_numpy()
    assert plugged.sum() > 100
    assert np.allclose(room[plugged], sess["e_delivered_kwh"].to_numpy()[plugged], atol=1e-9)
    assert (room <= sess["e_req_kwh"].to_numpy() + 1e-12).all()
    # the taper binds: many vehicles could not take their request in the stay
    assert (room[plugged] < sess["e_req_kwh"].to_numpy()[plugged] - 0.05).sum() > 20

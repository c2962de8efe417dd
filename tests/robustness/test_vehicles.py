"""Red-team cases for the vehicle model (issue 19, point 3): charger powers, battery and
arrival SOC, CC-CV taper and dwell times in the site file. A bad value exits 2 with one line
naming the field, no traceback and nothing written; edge values still run and conserve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from twin.app.cli import main

from .conftest import SITE, day_scenario


def _site(tmp: Path, **moto: Any) -> Path:
    data = yaml.safe_load(SITE.read_text())
    data["ev"]["vehicles"]["moto"].update(moto)
    (tmp / "site.yaml").write_text(yaml.safe_dump(data))
    return day_scenario(tmp, site="site.yaml")


@pytest.mark.parametrize(("moto", "field"), [
    ({"taper_soc": 1.5}, "taper_soc"),
    ({"taper_soc": float("nan")}, "taper_soc"),
    ({"taper_floor_frac": 0.0}, "taper_floor_frac"),        # never full: refused
    ({"taper_floor_frac": -1}, "taper_floor_frac"),
    ({"battery_kwh": 0}, "battery_kwh"),
    ({"battery_kwh": 1e9}, "battery_kwh"),
    ({"battery_kwh": 3.0, "soc_arrival_min": None, "soc_arrival_max": None},
     "battery_kwh"),                                        # asks up to 4 kWh of a 3 kWh pack
    ({"soc_arrival_min": 0.5, "soc_arrival_max": 0.2}, "soc_arrival_max"),
    ({"soc_arrival_min": None}, "soc_arrival_min"),          # one without the other
    ({"soc_arrival_max": 1.0}, "soc_arrival_max"),          # nothing to ask
    ({"charger_kw": [3.0, -1.0]}, "charger_kw"),
    ({"charger_kw": [float("inf")]}, "charger_kw"),
    ({"charger_kw": []}, "charger_kw"),
    ({"charger_weights": [1.0]}, "charger_weights"),        # one weight for two chargers
    ({"charger_weights": [0.0, 0.0, 0.0]}, "charger_weights"),
    ({"charger_kw": None, "charger_weights": [1.0, 1.0]}, "charger_weights"),
    ({"stay_h_shape": 0.0}, "stay_h_shape"),
    ({"stay_h_min": 2.0}, "stay_h_min"),                     # above the mean (1 h)
    ({"battery_kwh": None}, "battery_kwh"),                   # taper and SOC need a battery
])
def test_bad_vehicle_values_exit_2_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], moto: dict[str, Any],
        field: str) -> None:
    scn = _site(tmp_path, **moto)
    rc_v = main(["validate", str(scn)])
    rc_r = main(["run", str(scn), "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert (rc_v, rc_r) == (2, 2), err
    assert field in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_bad_stay_model_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(SITE.read_text())
    data["ev"]["stay_model"] = "forever"
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data))
    rc = main(["run", str(day_scenario(tmp_path, site="site.yaml")), "--out",
               str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "stay_model" in err and "Traceback" not in err


@pytest.mark.parametrize("moto", [
    {"taper_soc": 0.05, "taper_floor_frac": 0.01},  # tapers almost from empty, to 1 %
    {"taper_soc": 1.0},                             # no taper
    {"charger_kw": [50.0], "charger_weights": None},  # charger above the socket: capped
    {"soc_arrival_min": 0.0, "soc_arrival_max": 0.0, "battery_kwh": 1e4},  # huge asks
    {"stay_h_min": 0.0, "stay_h_mean": 0.01, "stay_h_shape": 0.5},  # near-zero stays
])
def test_edge_vehicles_run_and_conserve(tmp_path: Path, moto: dict[str, Any]) -> None:
    scn = _site(tmp_path, **moto)
    out = tmp_path / "out"
    assert main(["run", str(scn), "--out", str(out), "-q", "--controller", "no_bess"]) == 0
    s = json.loads((out / "summary.json").read_text())
    keys = ("sessions_satisfied", "sessions_satisfied_reduced", "sessions_short",
            "sessions_unfinished", "sessions_refused_closing", "sessions_turned_away")
    assert sum(s[k] for k in keys) == s["sessions_total"] > 0
    assert s["ev_energy_delivered_kwh"] == pytest.approx(s["ev_kwh"], rel=1e-9, abs=1e-9)
    assert s["ev_energy_delivered_kwh"] <= s["ev_energy_requested_kwh"] + 1e-9
    assert s["energy_balance_residual_max_kwh"] < 1e-6


# ------------------------------------------------- the sessions log's vehicle columns
def _log_scn(tmp: Path, rows: list[tuple[Any, ...]], cols: tuple[str, ...]) -> Path:
    import pandas as pd

    p = tmp / "sessions.csv"
    pd.DataFrame(rows, columns=list(cols)).to_csv(p, index=False)
    data = yaml.safe_load(SITE.read_text())
    data["ev"].update(source="sessions_file", sessions_file=str(p))
    (tmp / "site.yaml").write_text(yaml.safe_dump(data))
    return day_scenario(tmp, site="site.yaml")


_A, _D = "2024-03-04T10:00-05:00", "2024-03-04T11:00-05:00"
_COLS = ("arrival", "departure", "vehicle_type", "e_delivered_kwh", "e_req_kwh",
         "battery_kwh", "soc_arrival")


@pytest.mark.parametrize(("row", "needles"), [
    ((_A, _D, "moto", 2.0, 3.0, -5.0, 0.2), ("data row 1", "column 'battery_kwh'")),
    ((_A, _D, "moto", 2.0, 3.0, "five", 0.2), ("data row 1", "column 'battery_kwh'")),
    ((_A, _D, "moto", 2.0, 3.0, float("inf"), 0.2), ("data row 1", "column 'battery_kwh'")),
    ((_A, _D, "moto", 2.0, 3.0, 5.0, 1.5), ("data row 1", "column 'soc_arrival'")),
    ((_A, _D, "moto", 2.0, 3.0, 5.0, 1.0), ("data row 1", "column 'soc_arrival'")),
    ((_A, _D, "moto", 2.0, 3.0, 5.0, -0.1), ("data row 1", "column 'soc_arrival'")),
    # asks more than the battery holds above its arrival SOC
    ((_A, _D, "moto", 2.0, 3.0, 5.0, 0.9), ("data row 1", "column 'battery_kwh'", "holds")),
    # no battery in the row: the class's (5 kWh) at the SOC given holds 1 kWh
    ((_A, _D, "moto", 2.0, 3.0, None, 0.8), ("data row 1", "column 'soc_arrival'", "holds")),
])
def test_bad_session_log_vehicle_columns_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], row: tuple[Any, ...],
        needles: tuple[str, ...]) -> None:
    scn = _log_scn(tmp_path, [row], _COLS)
    rc = main(["run", str(scn), "--out", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert all(n in err for n in needles) and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_session_log_without_vehicle_columns_takes_the_class(tmp_path: Path) -> None:
    """Empty cells and absent columns: the class's battery and an arrival SOC at which the
    request fills it; a request above the class battery is another vehicle (no taper)."""
    import pandas as pd

    from twin.components.sessions import read_sessions
    from twin.config import load_scenario

    rows = [(_A, _D, "moto", 2.0, 3.0, None, None),
            ("2024-03-04T12:00-05:00", "2024-03-04T13:00-05:00", "moto", 2.0, 3.0, 4.0, 0.1),
            ("2024-03-04T14:00-05:00", "2024-03-04T16:00-05:00", "moto", 6.0, 6.0, None, None)]
    scn = load_scenario(_log_scn(tmp_path, rows, _COLS))
    ev = scn.site.ev
    s = read_sessions(tmp_path / "sessions.csv", ev, pd.Timestamp(scn.config.start,
                                                                   tz=scn.site.location.tz),
                      86400.0)
    assert s.battery_kwh is not None and s.soc_arrival is not None
    assert s.taper_soc is not None and s.taper_floor_frac is not None
    cap = ev.vehicles["moto"].battery_kwh
    assert s.battery_kwh[0] == cap and s.soc_arrival[0] == pytest.approx(1.0 - 3.0 / cap)
    assert (s.battery_kwh[1], s.soc_arrival[1]) == (4.0, 0.1)
    assert np.isnan(s.battery_kwh[2])  # 6 kWh asked of a 5 kWh class battery: no taper
    assert (s.taper_soc == ev.vehicles["moto"].taper_soc).all()


def test_a_run_s_sessions_log_replays_its_taper(tmp_path: Path) -> None:
    """``twin run`` writes each vehicle's battery and arrival SOC; fed back as a session log
    (plug-in to leave, with ``p_max_kw``), every session gets the energy it got in the run
    (no_bess: sockets at their rating). Without the two columns the class defaults are not
    that vehicle: the energies differ."""
    import pandas as pd

    out = tmp_path / "run"
    scn = day_scenario(tmp_path)
    assert main(["run", str(scn), "--out", str(out), "-q", "--controller", "no_bess"]) == 0
    s = pd.read_parquet(out / "sessions.parquet")
    assert {"battery_kwh", "soc_arrival", "p_max_kw"} <= set(s.columns)
    got = s[s["plug_in"].notna()]
    iso = lambda c: [t.isoformat() for t in got[c]]  # noqa: E731
    log = pd.DataFrame({"arrival": iso("plug_in"), "departure": iso("leave"),
                        "vehicle_type": got["vehicle_type"].astype(str),
                        "e_delivered_kwh": got["e_delivered_kwh"], "e_req_kwh": got["e_req_kwh"],
                        "p_max_kw": got["p_max_kw"], "battery_kwh": got["battery_kwh"],
                        "soc_arrival": got["soc_arrival"]})
    e_run = got.sort_values("plug_in")["e_delivered_kwh"].to_numpy()
    for keep, same in ((True, True), (False, False)):
        d = tmp_path / f"replay_{keep}"
        d.mkdir()
        (log if keep else log.drop(columns=["battery_kwh", "soc_arrival"])).to_csv(
            d / "sessions.csv", index=False)
        data = yaml.safe_load(SITE.read_text())
        data["ev"].update(source="sessions_file", sessions_file=str(d / "sessions.csv"))
        (d / "site.yaml").write_text(yaml.safe_dump(data))
        o = d / "out"
        assert main(["run", str(day_scenario(d, site="site.yaml")), "--out", str(o), "-q",
                     "--controller", "no_bess"]) == 0
        r = pd.read_parquet(o / "sessions.parquet").sort_values("plug_in")
        assert len(r) == len(e_run) > 200
        e = r["e_delivered_kwh"].to_numpy()
        assert np.allclose(e, e_run, rtol=1e-9, atol=1e-9) == same

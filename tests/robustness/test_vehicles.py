"""Red-team cases for the vehicle model (issue 19, point 3): charger powers, battery and
arrival SOC, CC-CV taper and dwell times in the site file. A bad value exits 2 with one line
naming the field, no traceback and nothing written; edge values still run and conserve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    ({"charger_weights": [0.0, 0.0]}, "charger_weights"),
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

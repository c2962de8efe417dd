"""A site with two batteries against devices: the simulator serves one SunSpec 802 per
battery, ``twin hil`` (lockstep) reads and writes each, and the run agrees with ``twin run``
battery by battery; devices files that do not fit the site's batteries are user errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from twin.app.cli import main
from twin.app.hil import HilSettings, run_hil, write_hil
from twin.config import load_scenario
from twin.engine import simulate
from twin.engine.results import build_results

ROOT = Path(__file__).resolve().parents[2]
TWO = ROOT / "config" / "sites" / "two_batteries.yaml"


def _scenario(folder: Path, duration: str = "1d") -> Path:
    p = folder / "two.yaml"
    p.write_text(yaml.safe_dump({"name": "two", "site": str(TWO), "start": "2024-03-04T00:00:00",
                                 "duration": duration, "dt": "15min", "seed": 1,
                                 "controller": "six_phase"}))
    return p


def test_hil_lockstep_with_two_battery_devices_agrees_with_run(tmp_path: Path) -> None:
    scn = load_scenario(_scenario(tmp_path))
    ref = build_results(simulate(scn)).summary
    hil = write_hil(run_hil(scn, settings=HilSettings(timeout_s=2.0)), tmp_path / "hil")
    devs = hil["hil"]["devices"]
    # one device per battery, each written every step and read
    for d in ("bess", "bess.small"):
        assert devs[d]["server"]["writes_applied"] >= scn.config.n_steps, d
        assert devs[d]["server"]["requests"] > scn.config.n_steps, d
    assert hil["hil"]["steps_bess_invalid"] == 0
    per_ref = {u["name"]: u for u in ref["batteries"]}
    for u in hil["batteries"]:
        r = per_ref[u["name"]]
        assert r["bess_discharge_kwh"] > 100.0  # the battery worked
        for k in ("bess_charge_kwh", "bess_discharge_kwh"):
            # the SunSpec W register's resolution moves a few 0.1 kWh
            assert math.isclose(u[k], r[k], rel_tol=5e-3, abs_tol=0.5), (u["name"], k)
        assert u["soc_min_percent"] >= r["soc_min_percent"] - 0.5
        assert u["soc_max_percent"] <= r["soc_max_percent"] + 0.5
    assert math.isclose(hil["bess_discharge_kwh"], ref["bess_discharge_kwh"], rel_tol=5e-3)


def _devices_file(tmp_path: Path, bess: object) -> Path:
    p = tmp_path / "devices.yaml"
    p.write_text(yaml.safe_dump({"devices": {
        "bess": bess,
        "chargers": {"port": 5021, "map": "chargers"},
        "pv_inverter": {"port": 5022, "map": "pv_inverter"},
        "site_meter": {"port": 5023, "map": "site_meter"}}}))
    return p


@pytest.mark.parametrize(("bess", "needle"), [
    ({"port": 5020, "map": "bess"}, "do not match the site's batteries ['big', 'small']"),
    ([{"name": "big", "port": 5020, "map": "bess"}],
     "do not match the site's batteries"),
    ([{"name": "small", "port": 5020, "map": "bess"}, {"name": "big", "port": 5026, "map": "bess"}],
     "do not match the site's batteries"),
    ([{"name": "big", "port": 5020, "map": "bess"}, {"name": "big", "port": 5026, "map": "bess"}],
     "duplicate battery name"),
    ([], "field 'devices.bess': an empty list"),
])
def test_devices_that_do_not_fit_the_batteries_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], bess: object, needle: str) -> None:
    rc = main(["hil", str(_scenario(tmp_path, "1h")), "--devices",
               str(_devices_file(tmp_path, bess)), "--clock", "wall", "--out",
               str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert needle in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_two_battery_devices_by_unit_id_load(tmp_path: Path) -> None:
    from adapters.modbus.site import load_devices
    d = load_devices(_devices_file(tmp_path, [
        {"name": "big", "port": 5020, "unit": 1, "map": "bess"},
        {"name": "small", "port": 5020, "unit": 2, "map": "bess"}]))
    assert d.battery_devices == ("bess", "bess.small")
    assert d.maps["bess.small"].unit_id == 2 and d.maps["bess"].unit_id == 1
    d.check_batteries(("big", "small"))
    assert json.dumps(sorted(d.endpoints))

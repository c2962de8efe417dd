"""Hostile devices files and register maps (issue 16, point 3, adapter/simulator layer).

Each case must end with exit 2, one message naming the file and the field, no traceback,
and quickly (a hang guard, not a timing assertion): scale factors outside SunSpec's
-10..10 in a table map or through a SunSpec ``values:`` override, devices files and maps
over the 4 MiB YAML limit, and long YAML flow lists (parsed for tens of seconds before).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.modbus.regmap import REGISTER_DIR
from tests.robustness.fuzz import call_main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "hil.yaml"
DEVICES = ("bess", "chargers", "pv_inverter", "site_meter")

E_SESSION = "{name: e_session, type: uint16, units: Wh,"
P_ACTUAL = "{name: p_actual, type: uint16, units: W,"
PV_VALUES = "values: {St: 4,"
METER_VALUES = "values: {Evt: 0"

#: (map, text replaced, replacement, field the message must name)
BAD_MAPS: dict[str, tuple[str, str, str, str]] = {
    "charger sf +400": ("chargers", P_ACTUAL, P_ACTUAL + " sf: 400,", "blocks[1].points[2].sf"),
    "charger sf -400": ("chargers", P_ACTUAL, P_ACTUAL + " sf: -400,", "blocks[1].points[2].sf"),
    "charger sf +300": ("chargers", E_SESSION, E_SESSION + " sf: 300,", "blocks[1].points[5].sf"),
    "charger sf -300": ("chargers", E_SESSION, E_SESSION + " sf: -300,", "blocks[1].points[5].sf"),
    "charger sf 11": ("chargers", E_SESSION, E_SESSION + " sf: 11,", "blocks[1].points[5].sf"),
    "sunspec W_SF -32768 via values": ("pv_inverter", PV_VALUES,
                                       PV_VALUES.replace("{", "{W_SF: -32768, "),
                                       "models[1].values.W_SF"),
    "sunspec TotWh_SF 11 via values": ("site_meter", METER_VALUES,
                                       METER_VALUES.replace("{", "{TotWh_SF: 11, "),
                                       "models[1].values.TotWh_SF"),
    "sunspec W_SF text via values": ("site_meter", METER_VALUES,
                                     METER_VALUES.replace("{", "{W_SF: two, "),
                                     "models[1].values.W_SF"),
    "sunspec scale_factors -11": ("bess", "W_SF: 2}", "W_SF: -11}",
                                  "models[1].scale_factors.W_SF"),
}


def _devices_file(folder: Path, maps: dict[str, str] | None = None) -> Path:
    """A devices file for the four site devices; ``maps`` overrides a device's ``map:``."""
    maps = maps or {}
    lines = ["devices:"] + [f"  {d}: {{port: {5020 + i}, map: {maps.get(d, d)}}}"
                            for i, d in enumerate(DEVICES)]
    p = folder / "devices.yaml"
    p.write_text("\n".join(lines) + "\n")
    return p


def _bad_map(folder: Path, case: str) -> tuple[str, Path, str]:
    device, old, new, field = BAD_MAPS[case]
    text = (REGISTER_DIR / f"{device}.yaml").read_text()
    assert old in text, f"the shipped {device} map changed; update the case"
    p = folder / f"{device}.yaml"
    p.write_text(text.replace(old, new, 1))
    return device, p, field


def _hil(tmp_path: Path, devices: Path) -> tuple[int | None, str]:
    rc, _, err = call_main(["hil", str(SCENARIO), "--devices", str(devices), "--clock", "wall",
                            "--timeout", "0.2", "--retries", "0", "--out",
                            str(tmp_path / "o")], 20.0)
    return rc, err


@pytest.mark.parametrize("case", sorted(BAD_MAPS))
def test_bad_scale_factor_in_a_map_exit_2_naming_file_and_field(tmp_path: Path,
                                                                 case: str) -> None:
    device, bad, field = _bad_map(tmp_path, case)
    rc, err = _hil(tmp_path, _devices_file(tmp_path, {device: bad.name}))
    assert rc == 2, err
    assert str(bad) in err and f"'{field}'" in err and "-10..10" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["charger sf -400", "sunspec W_SF -32768 via values"])
def test_simulator_refuses_a_bad_scale_factor(tmp_path: Path, case: str) -> None:
    regs = tmp_path / "registers"
    shutil.copytree(REGISTER_DIR, regs)
    _, bad, field = _bad_map(regs, case)
    try:
        p = subprocess.run([sys.executable, "-m", "simulators", "--scenario", str(SCENARIO),
                            "--registers", str(regs)], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the simulator served a map with a bad scale factor (hang guard)")
    assert p.returncode == 2, p.stderr
    assert str(bad) in p.stderr and f"'{field}'" in p.stderr and "Traceback" not in p.stderr


def test_devices_file_over_4_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    p = _devices_file(tmp_path)
    with p.open("a") as fh:  # a valid file, padded with a comment past the limit
        fh.write("# " + "x" * (4 * 2**20) + "\n")
    rc, err = _hil(tmp_path, p)
    assert rc == 2 and str(p) in err and "4 MiB" in err and "Traceback" not in err, err


def test_register_map_over_4_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    m = tmp_path / "big_bess.yaml"
    m.write_text((REGISTER_DIR / "bess.yaml").read_text() + "# " + "x" * (4 * 2**20) + "\n")
    rc, err = _hil(tmp_path, _devices_file(tmp_path, {"bess": m.name}))
    assert rc == 2 and str(m) in err and "4 MiB" in err and "Traceback" not in err, err


def test_long_flow_list_in_a_devices_file_is_refused_quickly(tmp_path: Path) -> None:
    p = tmp_path / "devices.yaml"
    p.write_text("devices: [" + ", ".join(["0"] * 500_000) + "]\n")  # 1.5 MB
    rc, err = _hil(tmp_path, p)
    assert rc is not None, "hang guard: the flow list was parsed for 20 s"
    assert rc == 2 and str(p) in err and "values" in err and "Traceback" not in err, err


def test_long_flow_list_in_a_register_map_is_refused_quickly(tmp_path: Path) -> None:
    m = tmp_path / "long_bess.yaml"
    text = (REGISTER_DIR / "bess.yaml").read_text()
    m.write_text(text.replace("writable: [CtrlHb, AlmRst]",
                              "writable: [" + ", ".join(["CtrlHb"] * 300_000) + "]", 1))
    rc, err = _hil(tmp_path, _devices_file(tmp_path, {"bess": m.name}))
    assert rc is not None, "hang guard: the flow list was parsed for 20 s"
    assert rc == 2 and str(m) in err and "values" in err and "Traceback" not in err, err

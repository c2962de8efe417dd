"""``twin shadow`` and the simulator's shadow options refuse bad input: one line naming the
option or file, exit 2, no traceback, nothing written (issue 18, points 3 and 5)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from twin.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "shadow.yaml"
EXAMPLE = ROOT / "config" / "devices.example.yaml"


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *names: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in names:
        assert n in err, err
    return err


@pytest.mark.parametrize(("option", "value", "bound"), [
    ("--speed", "nan", "1e+06"), ("--speed", "0", "1e+06"), ("--speed", "inf", "1e+06"),
    ("--device-timeout", "0", "86400"), ("--device-timeout", "nan", "86400"),
    ("--timeout", "61", "60"), ("--retries", "11", "10"), ("--retries", "-1", "10")])
def test_numeric_options_are_bounded(option: str, value: str, bound: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    _refused(["shadow", str(SCENARIO), "--devices", str(EXAMPLE), option, value, "--out",
              str(out)], capsys, option, bound)
    assert not out.exists()


def test_missing_devices_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _refused(["shadow", str(SCENARIO), "--devices", str(tmp_path / "nope.yaml"), "--out",
              str(tmp_path / "o")], capsys, "nope.yaml", "devices file not found")


def test_unknown_device_in_the_devices_file(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    d = yaml.safe_load(EXAMPLE.read_text())
    d["devices"]["wind_turbine"] = {"port": 5030, "map": "bess"}
    f = tmp_path / "dev.yaml"
    f.write_text(yaml.safe_dump(d))
    _refused(["shadow", str(SCENARIO), "--devices", str(f), "--out", str(tmp_path / "o")],
             capsys, "wind_turbine", "weather_station")


def test_nothing_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # closed again: nothing listens there
    d = {"devices": {n: {"port": port, "map": n}
                     for n in ("bess", "chargers", "pv_inverter", "site_meter")}}
    f = tmp_path / "dev.yaml"
    f.write_text(yaml.safe_dump(d))
    _refused(["shadow", str(SCENARIO), "--devices", str(f), "--timeout", "0.2", "--out",
              str(tmp_path / "o")], capsys, "cannot reach")


@pytest.mark.parametrize("fault", ["pv_trip@10h", "pv_trip@10h:0", "pv_trip@10h:1.5",
                                   "pv_trip@99d:0.4", "pv_trip@soon:0.4", "string_trip@1h:0.2",
                                   "pv_trip@10h:nan"])
def test_simulator_refuses_a_bad_fault(fault: str) -> None:
    p = subprocess.run([sys.executable, "-m", "simulators", "--scenario", str(SCENARIO),
                        "--fault", fault], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "--fault" in p.stderr and "Traceback" not in p.stderr, p.stderr
    # the message says what is wrong: the form, the fraction's or the time's range
    assert "pv_trip@TIME:FRACTION" in p.stderr or "FRACTION must" in p.stderr \
        or "TIME must" in p.stderr, p.stderr
    assert not p.stdout.strip()  # never listened

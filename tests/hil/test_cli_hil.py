"""``twin hil`` and ``python -m simulators`` on the command line: outputs, read-only mode,
clear errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from twin.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "hil.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_read_only_writes_zero_registers(tmp_path: Path) -> None:
    out = tmp_path / "ro"
    assert main(["hil", str(SCENARIO), "--read-only", "--out", str(out), "-q"]) == 0
    s = json.loads((out / "summary.json").read_text())
    c = s["hil"]
    assert c["read_only"] is True and s["steps_done"] == 96
    for dev in ("bess", "chargers", "pv_inverter", "site_meter"):
        srv = c["devices"][dev]["server"]
        assert srv["requests"] > 0, dev  # it did read
        assert srv["write_requests"] == 0 and srv["registers_written"] == 0, dev  # server side
        assert srv["writes_applied"] == 0, dev
    assert c["devices"]["bess"]["writes_skipped"] >= 96
    assert c["devices"]["chargers"]["writes_skipped"] >= 96
    assert c["devices"]["bess"]["heartbeats_written"] == 0


def _bad_registers(tmp_path: Path) -> Path:
    d = tmp_path / "registers"
    shutil.copytree(ROOT / "config" / "registers", d)
    (d / "bess.yaml").write_text("device: bess\nprotocol: sunspec\nmodels:\n  - {id: 1}\n"
                                 "  - {id: 802, writable: [SoC]}\n")
    return d


def test_bad_register_map_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["hil", str(SCENARIO), "--registers", str(_bad_registers(tmp_path)),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "bess.yaml" in err and "read-only in SunSpec" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_unreachable_simulator_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    rc = main(["hil", str(SCENARIO), "--simulator", f"127.0.0.1:{port}",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach" in err and "127.0.0.1:" in err and "Traceback" not in err


def _sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulators", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_simulator_bad_register_map_exit_2(tmp_path: Path) -> None:
    p = _sim("--scenario", str(SCENARIO), "--registers", str(_bad_registers(tmp_path)))
    assert p.returncode == 2
    assert "bess.yaml" in p.stderr and "Traceback" not in p.stderr


def test_simulator_port_in_use_exit_2() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = _sim("--scenario", str(SCENARIO), "--port", str(port))
    assert p.returncode == 2 and "cannot listen" in p.stderr and "Traceback" not in p.stderr


def test_simulator_missing_scenario_exit_2(tmp_path: Path) -> None:
    p = _sim("--scenario", str(tmp_path / "nope.yaml"))
    assert p.returncode == 2 and "not found" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("text, says", [
    (None, "devices file not found"),
    ("devices: [broken", "broken YAML"),
    ("devices:\n  bess: {port: 5020, map: bess}\n", "missing ['chargers', 'pv_inverter', 'site_meter']"),
    ("devices:\n  bess: {port: 5020, map: bess, colour: red}\n", "devices.bess.colour"),
    ("devices:\n  bess: {port: 99999, map: bess}\n", "devices.bess.port"),
    ("devices:\n" + "".join(f"  {d}: {{port: {5020 + i}, map: {d}}}\n" for i, d in enumerate(
        ("bess", "chargers", "pv_inverter", "site_meter"))) + "  toaster: {port: 1, map: bess}\n",
     "unknown device(s) ['toaster']"),
    ("devices:\n" + "".join(f"  {d}: {{port: {5020 + i}, map: {d}}}\n" for i, d in enumerate(
        ("bess", "chargers", "pv_inverter", "site_meter"))).replace("map: bess", "map: nope"),
     "devices.bess.map"),
])
def test_bad_devices_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 text: str | None, says: str) -> None:
    f = tmp_path / "devices.yaml"
    if text is not None:
        f.write_text(text)
    rc = main(["hil", str(SCENARIO), "--devices", str(f), "--clock", "wall", "--out",
               str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(f) in err and says in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, says", [
    (["--speed", "0"], "--speed"),
    (["--speed", "-3"], "--speed"),
    (["--simulator", "127.0.0.1:5020", "--devices", "x.yaml"], "give one"),
    (["--simulator", "nohostport"], "HOST:PORT"),
    (["--timeout", "0"], "--timeout"),
])
def test_bad_hil_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                args: list[str], says: str) -> None:
    rc = main(["hil", str(SCENARIO), *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and says in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()

"""``twin hil`` tells the truth (issue 16, point 2): lost devices end the run as partial
whatever the clock, a failed or held reading is never turned into kWh, Ctrl-C at any
moment keeps the steps done, a simulator past its horizon is refused up front.

Real processes: ``twin hil`` and ``python -m simulators`` on 127.0.0.1, real signals.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.hil.test_hil_reliability import _children
from twin.app.cli import main
from twin.atomic import read_marker

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "hil.yaml"
if str(ROOT) not in sys.path:  # ``simulators`` is not an installed package
    sys.path.insert(0, str(ROOT))


def _default_sigint() -> None:
    """Ctrl-C as a terminal delivers it (a background shell job starts with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _twin_hil(*args: str) -> subprocess.Popen[str]:
    """``twin hil`` in its own process group (as a terminal's foreground job)."""
    return subprocess.Popen([sys.executable, "-m", "twin.app.cli", "hil", str(SCENARIO), *args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_default_sigint)


def _wait_running(p: subprocess.Popen[str]) -> str:
    """Block until ``twin hil`` says the devices answer (an event, not a sleep)."""
    assert p.stderr is not None
    line = p.stderr.readline()
    assert "running" in line, line + (p.stderr.read() if p.poll() is not None else "")
    return line


def _finish(p: subprocess.Popen[str], first: str) -> str:
    """Wait for ``twin hil`` to exit; all it printed on stderr."""
    _, rest = p.communicate(timeout=120)
    return first + rest


def _reap(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        p.kill()
        p.wait()


# --------------------------------------------------------------- lost devices, wall clock
def test_wall_clock_devices_killed_end_the_run_as_partial(tmp_path: Path) -> None:
    """SIGKILL of the (real-time) simulator mid-run: exit 130, marker incomplete,
    ``hil.fault`` set, no frozen meter value integrated, the report's banner names it."""
    out = tmp_path / "out"
    p = _twin_hil("--clock", "wall", "--speed", "1800", "--set", "duration=12h",
                  "--set", "start=2024-03-04T09:00:00", "--device-timeout", "1",
                  "--timeout", "0.2", "--out", str(out))
    try:
        first = _wait_running(p)
        (sim,) = _children(p.pid)
        time.sleep(2.5)  # a few 0.5-s steps of daylight run
        os.kill(sim, signal.SIGKILL)
        err = _finish(p, first)
    finally:
        _reap(p)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    marker = read_marker(out)
    assert marker is not None and marker["complete"] is False, err
    s = json.loads((out / "summary.json").read_text())
    assert s["interrupted"] and 0 < s["steps_done"] < 48
    fault = s["hil"]["fault"]
    assert fault and "stopped answering" in fault and "device-timeout" in fault, fault
    # nothing frozen became energy: every step whose meter reading failed has no PV/mall
    ts = pd.read_parquet(out / "timeseries.parquet")
    steps = pd.read_csv(out / "hil_steps.csv")
    assert len(ts) == len(steps) == s["steps_done"]
    lost = ~steps["meters_valid"].to_numpy(bool)
    assert lost.any(), "the run ended before any read failed"
    assert (ts["pv_kwh"].to_numpy()[lost] == 0).all()
    assert (ts["mall_kwh"].to_numpy()[lost] == 0).all()
    assert ts["pv_kwh"].to_numpy()[~lost].min() > 0  # daylight: the steps before were measured
    assert s["hil"]["steps_energy_not_counted"]["meters"] == int(lost.sum())
    rep = tmp_path / "report"
    assert main(["report", str(out), "--out", str(rep)]) == 0
    html = (rep / "report.html").read_text(encoding="utf-8")
    assert "PARTIAL RUN" in html and "HIL fault" in html and "stopped answering" in html


# ------------------------------------------------------------------ held readings, kWh
def test_a_failed_read_is_never_integrated_as_energy(tmp_path: Path) -> None:
    """A BESS read that fails (values held for the controller) adds no kWh to its step."""
    from tests.hil.conftest import InProcessSimulator
    from twin.app.hil import HilSettings, run_hil, write_hil
    from twin.config import load_scenario

    fault = {"time": 18 * 3600.0, "duration": 3600.0, "device": "bess",
             "kind": "connection_drop"}
    with InProcessSimulator(faults=[fault]) as s:
        dev = tmp_path / "devices.yaml"
        dev.write_text(yaml.safe_dump({"devices": {
            d: {"host": "127.0.0.1", "port": p, "map": d} for d, p in s.ports.items()}}))
        scn = load_scenario(SCENARIO)
        cfg = scn.config.model_copy(update={"faults": []})
        run = run_hil(scn.model_copy(update={"config": cfg}),
                      settings=HilSettings(timeout_s=0.5, devices=dev))
        plant = s.sim.plant.rec
        e_plant = (plant.e_bess_charge_kwh + plant.e_bess_discharge_kwh)[:96].copy()
    summary = write_hil(run, tmp_path / "out")
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    e = (ts["bess_charge_kwh"] + ts["bess_discharge_kwh"]).to_numpy()
    f0 = 72  # 18:00 in 15-min steps (discharging): the read at t_72 fails (held)
    assert e_plant[f0 - 1:f0 + 4].max() > 0, "the battery idles: the test shows nothing"
    assert (e[f0 - 1:f0 + 4] == 0).all(), e[f0 - 3:f0 + 6]
    assert summary["hil"]["steps_energy_not_counted"]["bess"] == 4  # reads at t_72..t_75
    # outside the fault the record is the device's own measurement
    ok = np.r_[0:f0 - 2, f0 + 6:96]
    assert e[ok] == pytest.approx(e_plant[ok], rel=5e-3, abs=0.05)  # register resolution


# --------------------------------------------------------------------- Ctrl-C moments
#: Seconds after "devices answer" at which Ctrl-C lands (spread over the first steps).
CTRL_C_MOMENTS = (0.0, 0.02, 0.05, 0.1, 0.17, 0.25, 0.4, 0.6, 0.9, 1.3)


@pytest.mark.slow  # ten ``twin hil`` processes (~3-4 s each)
@pytest.mark.parametrize("delay_s", CTRL_C_MOMENTS)
def test_ctrl_c_at_any_moment_keeps_the_steps_done(delay_s: float, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the foreground process group, as a terminal sends it): exit 130,
    no traceback, the steps done written and marked partial, every time."""
    out = tmp_path / "out"
    p = _twin_hil("--set", "duration=30d", "--out", str(out))
    try:
        first = _wait_running(p)
        time.sleep(delay_s)
        os.killpg(p.pid, signal.SIGINT)
        err = _finish(p, first)
    finally:
        _reap(p)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    marker = read_marker(out)
    assert marker is not None and marker["complete"] is False, (err, os.listdir(tmp_path))
    s = json.loads((out / "summary.json").read_text())
    assert s["interrupted"] and 0 < s["steps_done"] < 30 * 96, s["steps_done"]
    assert s["hil"]["fault"] == "stopped (signal or Ctrl-C)", s["hil"]["fault"]
    assert len(pd.read_parquet(out / "timeseries.parquet")) == s["steps_done"]


# ------------------------------------------------------------ simulator past its horizon
@pytest.fixture
def lockstep_simulator() -> Iterator[int]:
    """``python -m simulators`` (lockstep, 4 steps) on five consecutive ports (for
    ``--simulator HOST:PORT``); its first port."""
    rng = random.Random(os.getpid())
    for _ in range(20):  # a port range another process holds: the simulator exits 2
        port = rng.randrange(20000, 60000)
        proc = subprocess.Popen([sys.executable, "-m", "simulators", "--scenario",
                                 str(SCENARIO), "--set", "duration=1h", "--port", str(port)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait(30)
            continue
        try:
            assert json.loads(line)["ports"]["bess"] == port
            yield port
        finally:
            proc.kill()
            proc.wait(30)
        return
    pytest.fail("no free range of five ports for the simulator")


def test_a_simulator_past_its_horizon_is_refused_up_front(
        lockstep_simulator: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["hil", str(SCENARIO), "--set", "duration=1h", "--simulator",
            f"127.0.0.1:{lockstep_simulator}", "-q"]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "second")]) == 2
    err = capsys.readouterr().err
    assert "already run its horizon" in err and "start a new one" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "second").exists() and not (tmp_path / "second.partial").exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "86401"])
def test_device_timeout_is_bounded(value: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hil", str(SCENARIO), "--device-timeout", value, "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--device-timeout" in err and "86400" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()

"""Trials that scale (issue 20, point 4): one unit per seed on forked worker processes.

Serial and parallel trials give the same bytes; a sweep whose one seed is split over the
workers keeps its common random numbers; Ctrl-C / SIGTERM / a killed worker keep what
finished and leave no process behind; a trial too small to gain runs in-process with a
one-line note. Real processes and real signals throughout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from twin.app.cli import main
from twin.trials import runner
from twin.trials.runner import WALL_KEYS, RunTask, choose_workers, units_of

from .conftest import ROOT, day_scenario


def _ab(scn: Path, out: Path, *extra: str) -> list[str]:
    return ["ab", str(scn), "--controllers", "six_phase,arbitrage", "--seeds", "6", "--out", str(out),
            "--no-figures", *extra]


def test_serial_and_two_worker_trials_write_the_same_summary(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    scn = day_scenario(tmp_path, duration="2d", dt="30min")
    assert main(_ab(scn, tmp_path / "serial", "--workers", "1", "-q")) == 0
    assert main(_ab(scn, tmp_path / "pool", "--workers", "2")) == 0
    assert "(2 worker processes)" in capsys.readouterr().err
    a = (tmp_path / "serial" / "ab_summary.csv").read_bytes()
    assert a == (tmp_path / "pool" / "ab_summary.csv").read_bytes()
    ta = pd.read_parquet(tmp_path / "serial" / "trials.parquet")
    tb = pd.read_parquet(tmp_path / "pool" / "trials.parquet")
    cols = [c for c in ta.columns if c not in WALL_KEYS]
    pd.testing.assert_frame_equal(ta[cols], tb[cols])


def test_a_one_seed_sweep_split_over_workers_keeps_its_draws(tmp_path: Path) -> None:
    scn = day_scenario(tmp_path, duration="2d", dt="1h")
    cmd = ["sweep", str(scn), "--set", "bess.e_capacity_kwh=500:3500:1000", "-q", "--no-figures"]
    assert main([*cmd, "--workers", "1", "--out", str(tmp_path / "s1")]) == 0
    assert main([*cmd, "--workers", "2", "--out", str(tmp_path / "s2")]) == 0
    a = (tmp_path / "s1" / "sweep_summary.csv").read_bytes()
    assert a == (tmp_path / "s2" / "sweep_summary.csv").read_bytes()


def test_units_are_seeds_and_split_only_when_workers_would_idle(tmp_path: Path) -> None:
    from twin.config import load_scenario

    scn = load_scenario(day_scenario(tmp_path))
    tasks = [RunTask(f"{s}-{c}", scn, c, f"ik{s}") for s in range(3) for c in ("a", "b")]
    assert [[t.key for t in u] for u in units_of(tasks, 2)] == [["0-a", "0-b"], ["1-a", "1-b"],
                                                                ["2-a", "2-b"]]
    one_seed = [RunTask(f"p{i}", scn, "a", "ik") for i in range(5)]
    assert [len(u) for u in units_of(one_seed, 1)] == [5]
    assert sorted(len(u) for u in units_of(one_seed, 2)) == [2, 3]
    assert sum(len(u) for u in units_of(one_seed, 9)) == 5


def test_a_small_trial_runs_in_process_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(runner, "default_workers", lambda: 2)
    scn = day_scenario(tmp_path)
    assert main(_ab(scn, tmp_path / "small")) == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if "too small to gain" in ln]
    assert len(notes) == 1 and "--workers 1" in notes[0]
    assert "(in-process)" in err
    # an explicit count is kept; a large trial gets the cores
    from twin.config import load_scenario

    year = load_scenario(day_scenario(tmp_path, duration="365d", dt="15min"))
    big = [RunTask(f"{s}-{c}", year, c, f"ik{s}") for s in range(4) for c in ("a", "b")]
    assert choose_workers(big, None) == (2, None)
    assert choose_workers(big[:1], 3) == (3, None)


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def _start_trial(tmp_path: Path, seeds: int = 30) -> tuple[subprocess.Popen[str], Path]:
    scn = day_scenario(tmp_path, duration="5d", dt="1h")
    out = tmp_path / "trial"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "twin", "ab", str(scn), "--controllers", "six_phase,no_bess",
                          "--seeds", str(seeds), "--workers", "2", "--out", str(out), "-q", "--no-figures"],
                         env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p, out


def _wait_runs(p: subprocess.Popen[str], out: Path, n: int) -> None:
    t_end = time.monotonic() + 120
    while not (out / "runs").is_dir() or len(list((out / "runs").glob("*.json"))) < n:
        assert p.poll() is None, p.communicate()[1]
        assert time.monotonic() < t_end, "no run finished in 120 s"
        time.sleep(0.05)


def _gone(pids: list[int], timeout_s: float = 20.0) -> bool:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if not any(Path(f"/proc/{k}").exists() and "Z" not in _state(k) for k in pids):
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_trial_alone_stops_its_workers_and_keeps_the_runs(tmp_path: Path, sig: int) -> None:
    p, out = _start_trial(tmp_path)
    try:
        _wait_runs(p, out, 4)
        kids = _children(p.pid)
        assert len(kids) == 2, kids
        p.send_signal(sig)  # to the parent only (a `kill PID`, not the terminal's process group)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "Traceback" not in err
    kept = len(list((out / "runs").glob("*.json")))
    assert 4 <= kept < 60
    assert f"{kept} finished runs are kept" in err
    assert _gone(kids), f"worker processes {kids} outlived the trial"


def test_a_killed_worker_fails_its_runs_and_the_others_go_on(tmp_path: Path) -> None:
    p, out = _start_trial(tmp_path, seeds=12)
    try:
        _wait_runs(p, out, 2)
        kids = _children(p.pid)
        assert len(kids) == 2, kids
        os.kill(kids[0], signal.SIGKILL)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "Traceback" not in err
    died = [ln for ln in err.splitlines() if "died (killed by signal 9)" in ln]
    kept = len(list((out / "runs").glob("*.json")))
    if p.returncode == 0:  # the worker had no unit left: nothing lost
        assert not died and kept == 24
        return
    assert p.returncode == 1, err
    assert 1 <= len(died) <= 2 and kept + len(died) == 24, err

"""``twin ab --scheduler``: the same table from an external Dask cluster as from a local run.

The test starts a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1
(ephemeral ports), waits until both workers are registered, and stops them afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from twin.app.cli import main
from twin.trials.runner import WALL_KEYS

DASK = str(Path(sys.executable).with_name("dask"))


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler + 2 single-threaded workers on loopback; yields the scheduler address."""
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        log = (tmp_path / "scheduler.log").open("wb")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [
                    DASK,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--scheduler-file",
                    str(sched_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        )
        t_end = time.monotonic() + 60
        addr = None
        while time.monotonic() < t_end and addr is None:
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            try:
                addr = json.loads(sched_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert addr is not None, "the scheduler did not start in 60 s"
        for i in range(2):
            log = (tmp_path / f"worker{i}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        addr,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                        "--memory-limit",
                        "0",
                        "--name",
                        f"w{i}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                )
            )
        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(2, timeout=90)
            assert len(c.scheduler_info()["workers"]) == 2
        yield addr
    finally:
        _stop(procs[::-1])
        for f in logs:
            f.close()


@pytest.mark.slow
def test_scheduler_gives_the_same_table_as_a_local_run(
    make_scenario: Any, tmp_path: Path, dask_cluster: str
) -> None:
    scn = str(make_scenario(duration="1d", dt="1h", seed=1))
    args = ["ab", scn, "--controllers", "six_phase,arbitrage", "--seeds", "5", "-q"]
    assert main([*args, "--workers", "1", "--out", str(tmp_path / "local"), "--no-figures"]) == 0
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "cluster2"), "--no-figures"]) == 0
    assert main([*args, "--scheduler", dask_cluster, "--out", str(tmp_path / "remote")]) == 0
    local = (tmp_path / "local" / "ab_summary.csv").read_text()
    assert (tmp_path / "remote" / "ab_summary.csv").read_text() == local
    assert (tmp_path / "cluster2" / "ab_summary.csv").read_text() == local
    ta = pd.read_parquet(tmp_path / "local" / "trials.parquet")
    tb = pd.read_parquet(tmp_path / "remote" / "trials.parquet")
    cols = [c for c in ta.columns if c not in WALL_KEYS]
    pd.testing.assert_frame_equal(ta[cols], tb[cols])
    assert (tmp_path / "remote" / "ab.html").exists()


def test_unreachable_scheduler_is_a_user_error(
    make_scenario: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import twin.trials.runner

    monkeypatch.setattr(twin.trials.runner, "CONNECT_TIMEOUT_S", 2.0)

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scn = str(make_scenario(duration="1d", dt="1h"))
    rc = main(
        [
            "ab",
            scn,
            "--controllers",
            "six_phase,no_bess",
            "--seeds",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "-q",
        ]
    )
    assert rc == 2
    assert "cannot run there" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_on_a_local_cluster_keeps_finished_runs(make_scenario: Any, tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group (the trial and its Dask workers)."""
    import os
    import signal

    scn = str(make_scenario(duration="1d", dt="1h", seed=1))
    out = tmp_path / "ctrlc"
    twin = str(Path(sys.executable).with_name("twin"))
    cmd = [twin, "ab", scn, "--controllers", "six_phase,no_bess", "--seeds", "40", "--workers", "2",
           "--out", str(out), "--no-figures"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        t_end = time.monotonic() + 120
        while not (out / "runs").is_dir() or len(list((out / "runs").glob("*.json"))) < 4:
            assert p.poll() is None and time.monotonic() < t_end, "no run finished"
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    text = err.decode()
    assert p.returncode == 130, text
    assert "Traceback" not in text
    kept = len(list((out / "runs").glob("*.json")))
    assert 4 <= kept < 80
    assert f"{kept} finished runs are kept" in text
    t_end = time.monotonic() + 30  # no worker process left behind in the group
    while time.monotonic() < t_end:
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"processes of the trial still alive 30 s after it ended: {_group(p.pid)}")


def _group(pgid: int) -> str:
    out = subprocess.run(["ps", "-o", "pid,args", "-g", str(pgid)], capture_output=True, text=True)
    return out.stdout

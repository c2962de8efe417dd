"""Bounded inputs of the trial, sizing, training and controller commands (issue 16, point 3).

Each red-team case runs ``python -m twin`` as a subprocess (timeout as a hang guard, an
address-space limit as a memory guard) and must exit 2 (1 for a lost Dask cluster) with one
message naming the option and no traceback, writing nothing.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_trials_dask import _stop
from twin.bounds import MAX_GRID_POINTS, MAX_SEEDS

from .conftest import SITE, day_scenario

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).with_name("dask"))
#: Hang guard of one hostile command [s] (a bounded option fails in about a second).
TIMEOUT_S = 120.0
#: Address-space guard of one hostile command [bytes]: the unbounded cases asked for 14-23 GiB.
MEM_LIMIT = 6 * 2**30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))


def twin(args: list[str], cwd: Path, *, timeout: float = TIMEOUT_S,
         limit: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m twin ARGS`` in ``cwd`` (this checkout first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "twin", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout,
                          preexec_fn=_limit_memory if limit else None)


def _hostile_policy(path: Path) -> Path:
    """An ONNX policy with the default site's spec whose every step allocates 14 GB
    (ConstantOfShape to 3.5e9 float32 values, summed into the action)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from controllers.rl.encoding import META_HASH, META_SPEC, Options, build_spec
    from twin.config import load_site

    spec = build_spec(load_site(SITE), Options())
    ints = {"shape": [3_500_000_000], "st": [0], "en": [spec.n_act], "ax": [1]}
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items()]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"], value=zero),
             helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
             helper.make_node("Slice", ["obs", "st", "en", "ax"], ["part"]),
             helper.make_node("Add", ["part", "total"], ["action"])]
    graph = helper.make_graph(
        nodes, "hostile",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", spec.n_obs])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", spec.n_act])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {META_SPEC: spec.to_json(), META_HASH: spec.hash})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


_GRID = "bess.e_capacity_kwh"
#: Case -> (command line after 'twin', with {scn} / {tmp} filled in; expected words on stderr).
CASES: dict[str, tuple[list[str], list[str]]] = {
    "ab_seeds_1e9": (["ab", "{scn}", "--controllers", "six_phase", "--seeds", "1000000000",
                      "--workers", "1"], ["--seeds", f"{MAX_SEEDS:,}"]),
    "sweep_seeds_1e9": (["sweep", "{scn}", "--set", f"{_GRID}=500:1000:500", "--seeds",
                         "1000000000", "--workers", "1"], ["--seeds", f"{MAX_SEEDS:,}"]),
    "sweep_step_subnormal": (["sweep", "{scn}", "--set", f"{_GRID}=500:4000:1e-320",
                              "--workers", "1"], [_GRID, f"{MAX_GRID_POINTS:,}"]),
    "sweep_step_1e400": (["sweep", "{scn}", "--set", f"{_GRID}=500:4000:1e400", "--workers", "1"],
                         [_GRID, "finite"]),
    "sweep_stop_1e400": (["sweep", "{scn}", "--set", f"{_GRID}=500:1e400:250", "--workers", "1"],
                         [_GRID, "finite"]),
    "sweep_grid_1e4x1e4": (["sweep", "{scn}", "--set", f"{_GRID}=1:10000:1", "--set",
                            "bess.p_nominal_kw=1:10000:1", "--workers", "1"],
                           ["100,000,000 points", f"{MAX_GRID_POINTS:,}"]),
    "sweep_seed_as_grid": (["sweep", "{scn}", "--set", "seed=1:3:1", "--workers", "1"],
                           ["seed=1:3:1", "--first-seed", "--seeds"]),
    "ab_scheduler_garbage": (["ab", "{scn}", "--controllers", "six_phase", "--seeds", "2",
                              "--scheduler", "garbage"], ["--scheduler garbage", "tcp://HOST:PORT"]),
    "ab_scheduler_http": (["ab", "{scn}", "--controllers", "six_phase", "--seeds", "2",
                           "--scheduler", "http://127.0.0.1:8786"], ["--scheduler http://", "tcp://"]),
    "sweep_scheduler_http": (["sweep", "{scn}", "--set", f"{_GRID}=500:1000:500", "--scheduler",
                              "http://127.0.0.1:8786"], ["--scheduler http://", "tcp://"]),
    "size_c_rate_nan": (["size", "{scn}", "--c-rate", "nan"], ["--c-rate", "<= 10"]),
    "size_design_factor_inf": (["size", "{scn}", "--design-factor", "inf"], ["--design-factor", "<= 10"]),
    "size_autonomy_nan": (["size", "{scn}", "--autonomy-hours", "nan"], ["--autonomy-hours", "<= 168"]),
    "size_autonomy_1e400": (["size", "{scn}", "--autonomy-hours", "1e400"], ["--autonomy-hours"]),
    "train_n_envs_0": (["train", "{scn}", "--steps", "128", "--n-envs", "0"], ["--n-envs", "1 to 64"]),
    "train_episode_days_0": (["train", "{scn}", "--steps", "128", "--episode-days", "0"],
                             ["--episode-days", "> 0"]),
    "train_episode_days_nan": (["train", "{scn}", "--steps", "128", "--episode-days", "nan"],
                               ["--episode-days", "<= 366"]),
    "train_forecast_h_49": (["train", "{scn}", "--steps", "128", "--forecast-h", "49"],
                            ["--forecast-h", "0 to 48"]),
    "train_seed_negative": (["train", "{scn}", "--steps", "128", "--seed", "-1"], ["--seed", "0 to"]),
    "train_imitate_epochs_negative": (["train", "{scn}", "--steps", "128", "--imitate", "six_phase",
                                       "--imitate-epochs", "-3"], ["--imitate-epochs", "1 to"]),
    "mpc_horizon_1e6": (["run", "{scn}", "--controller", "mpc", "--set",
                         "controller_params.horizon_h=1e6"], ["horizon_h", "8784"]),
    "mpc_horizon_longer_than_run": (["run", "{scn}", "--controller", "mpc", "--set",
                                     "controller_params.horizon_h=200"],
                                    ["horizon_h", "longer than the run"]),
    "mpc_horizon_inf": (["run", "{scn}", "--controller", "mpc", "--set",
                         "controller_params.horizon_h=.inf"], ["horizon_h", "finite"]),
    "rl_policy_14gb_per_step": (["run", "{scn}", "--controller", "rl", "--set",
                                 "controller_params.policy={tmp}/hostile.onnx"],
                                ["hostile.onnx", "more memory than the cap", "256 MiB"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_option_exits_2_naming_the_bound(case: str, tmp_path: Path) -> None:
    argv, needles = CASES[case]
    scn = day_scenario(tmp_path)
    if case.startswith("rl_"):
        _hostile_policy(tmp_path / "hostile.onnx")
    out = tmp_path / "out"
    args = [a.format(scn=scn, tmp=tmp_path) for a in argv]
    res = twin([*args, "--out", str(out / "x.json" if case.startswith("size") else out), "-q"], tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("twin: error: "), res.stderr[-2000:]
    for word in needles:
        assert word in lines[0], (word, lines[0])
    written = sorted(p.name for p in out.rglob("*")) if out.exists() else []
    assert not written, written
    assert not (tmp_path / "runs").exists()


def test_help_documents_the_maxima(tmp_path: Path) -> None:
    for cmd, words in {"ab": ["--seeds", f"2..{MAX_SEEDS:,}", "--cluster-timeout", "1..3600"],
                       "sweep": [f"{MAX_GRID_POINTS:,} grid points", f"1..{MAX_SEEDS:,}"],
                       "size": ["<= 168", "<= 10"],
                       "train": ["1..64", "0..48", "<= 366", "1..10,000"]}.items():
        res = twin([cmd, "--help"], tmp_path)
        assert res.returncode == 0, res.stderr
        text = " ".join(res.stdout.split())
        for w in words:
            assert w in text, (cmd, w)


# --- a Dask cluster lost in the middle of a trial -------------------------------------------


def _start(cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=cwd)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """A ``dask scheduler`` and one ``dask worker`` on 127.0.0.1: (address, scheduler, worker)."""
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                             "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                             str(sched_file)], tmp_path / "scheduler.log", tmp_path))
        t_end = time.monotonic() + 60
        addr = None
        while addr is None and time.monotonic() < t_end:
            assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            try:
                addr = json.loads(sched_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert addr is not None, "the scheduler did not start in 60 s"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (tmp_path / "worker.log").open("wb") as f:
            procs.append(subprocess.Popen(
                [DASK, "worker", addr, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                 "--memory-limit", "0", "--no-nanny", "--name", "w0"],
                stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path, env=env))
        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(1, timeout=90)
        yield addr, procs[0], procs[1]
    finally:
        _stop(procs[::-1])


def _trial_then_kill(tmp_path: Path, addr: str, victim: subprocess.Popen[bytes]
                     ) -> tuple[subprocess.CompletedProcess[str], int]:
    """Start a long ``twin ab`` on ``addr``, SIGKILL ``victim`` once two runs are stored;
    (the finished command, runs stored when the victim died)."""
    scn = day_scenario(tmp_path)
    out = tmp_path / "trial"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin", "ab", str(scn), "--controllers", "six_phase,no_bess",
         "--seeds", "400", "--scheduler", addr, "--cluster-timeout", "3", "--out", str(out), "-q",
         "--no-figures"],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        runs = out / "runs"
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end and proc.poll() is None:
            if runs.is_dir() and len(list(runs.glob("*.json"))) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "ended before the kill: " + (proc.stderr.read() if proc.stderr else "")
        n_before = len(list(runs.glob("*.json")))
        assert n_before >= 2
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), n_before


def _stored(tmp_path: Path) -> int:
    return len(list((tmp_path / "trial" / "runs").glob("*.json")))


def _check_lost(res: subprocess.CompletedProcess[str], words: list[str]) -> None:
    assert res.returncode == 1, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr[-3000:]
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.slow
def test_killed_worker_ends_the_trial_with_exit_1_and_keeps_the_runs(
        tmp_path: Path, cluster: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]) -> None:
    addr, _, worker = cluster
    res, n_before = _trial_then_kill(tmp_path, addr, worker)
    _check_lost(res, ["no Dask worker", "3 s", "--cluster-timeout", "kept in"])
    assert _stored(tmp_path) >= n_before
    assert not (tmp_path / "trial" / "trials.parquet").exists()


@pytest.mark.slow
def test_killed_scheduler_ends_the_trial_with_exit_1_and_keeps_the_runs(
        tmp_path: Path, cluster: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]) -> None:
    addr, scheduler, _ = cluster
    res, n_before = _trial_then_kill(tmp_path, addr, scheduler)
    _check_lost(res, ["lost the connection to the Dask scheduler", addr, "kept in"])
    assert _stored(tmp_path) >= n_before
    assert not (tmp_path / "trial" / "trials.parquet").exists()


def test_the_shipped_policy_runs_inside_the_memory_cap(tmp_path: Path) -> None:
    """The arena cap leaves the real policy working (guards against a cap that breaks 'rl')."""
    scn = day_scenario(tmp_path)
    res = twin(["run", str(scn), "--controller", "rl", "--out", str(tmp_path / "out"), "-q"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "summary.json").exists()


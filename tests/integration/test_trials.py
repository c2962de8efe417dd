"""``twin ab``, ``twin size``, ``twin sweep``: the acceptance of the trials issue."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from controllers.base import REGISTRY, make_controller, register
from tests.conftest import write_yaml
from twin.app.cli import main
from twin.config import SiteConfig
from twin.trials.runner import WALL_KEYS
from twin.types import Setpoints, SiteObservation

TWIN = str(Path(sys.executable).with_name("twin"))


@pytest.fixture
def day_scenario(make_scenario: Any) -> Path:
    """One day at hourly ticks: cheap enough for 20-seed trials."""
    return Path(make_scenario(duration="1d", dt="1h", seed=1))


def _read(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / "trials.parquet"), pd.read_csv(out / "ab_summary.csv")


def test_aa_trial_every_difference_is_exactly_zero(
    day_scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "aa"
    rc = main(
        [
            "ab",
            str(day_scenario),
            "--controllers",
            "six_phase,six_phase",
            "--seeds",
            "20",
            "--workers",
            "1",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    trials, summ = _read(out)
    assert sorted(set(trials["controller"])) == ["six_phase", "six_phase#2"]
    assert len(trials) == 40 and trials["seed"].nunique() == 20
    assert list(summ.columns[:9]) == [
        "kpi",
        "a",
        "b",
        "n_seeds",
        "mean_diff",
        "ci_low",
        "ci_high",
        "p_value",
        "win_rate_a",
    ]
    assert len(summ) >= 10 and set(summ["n_seeds"]) == {20}
    assert (summ[["mean_diff", "ci_low", "ci_high", "boot_low", "boot_high"]] == 0.0).all().all()
    assert (summ["win_rate_a"] == 0.5).all()
    assert summ["verdict"].str.startswith("no detectable difference").all()
    # the two arms are separate runs on the same draws: every non-wall-clock KPI is identical
    a = trials[trials["controller"] == "six_phase"].drop(columns="controller").reset_index(drop=True)
    b = trials[trials["controller"] == "six_phase#2"].drop(columns="controller").reset_index(drop=True)
    cols = [c for c in a.columns if c not in WALL_KEYS]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    # different seeds are different draws
    assert a["pv_kwh"].nunique() == 20
    md = (out / "ab_summary.md").read_text()
    assert "no detectable difference" in md
    html = (out / "ab.html").read_text()
    n_kpi = summ["kpi"].nunique()
    assert html.count("data:image/png;base64,") == 3 + n_kpi  # overview figures + one forest per KPI
    assert {p.name for p in (out / "figures").iterdir()} == {
        "ab_forest.png",
        "ab_paired_dots.png",
        "ab_cumulative_cost.png",
    } | {f"ab_forest_{k}.png" for k in summ["kpi"].unique()}


class _Waster:
    """``six_phase``, plus 5 % of the site's net load drawn from the grid into the battery."""

    name = "waster_test"

    def __init__(self, site: SiteConfig, **params: Any) -> None:
        self.inner = make_controller("six_phase", site, params)
        self.phases = self.inner.phases  # type: ignore[attr-defined]

    def reset(self, *, seed: int | None = None) -> None:
        self.inner.reset(seed=seed)

    def decide(self, obs: SiteObservation) -> Setpoints:
        sp = self.inner.decide(obs)
        net_kw = max(obs.p_mall_kw + obs.p_ev_kw - obs.p_pv_kw, 0.0)
        return Setpoints(sp.p_bess_kw - 0.05 * net_kw, sp.p_socket_max_kw, sp.phase)


@pytest.fixture
def waster() -> Iterator[str]:
    """Register the wasteful test controller for this test only."""
    register("waster_test", "test only: six_phase wasting grid energy")(_Waster)
    try:
        yield "waster_test"
    finally:
        REGISTRY.pop("waster_test", None)


def test_planted_difference_is_found(day_scenario: Path, tmp_path: Path, waster: str) -> None:
    out = tmp_path / "planted"
    # a 4 MWh battery from 20 % SOC has the headroom to keep the whole day's waste
    big = ["--set", "bess.e_capacity_kwh=4000", "--set", "bess.soc_initial_frac=0.2"]
    rc = main(["ab", str(day_scenario), "--controllers", f"six_phase,{waster}", "--seeds", "20",
               "--workers", "1", "--out", str(out), "-q", "--no-figures", *big])
    assert rc == 0
    trials, summ = _read(out)
    grid = summ[summ["kpi"] == "grid_import_kwh"].iloc[0]
    assert (grid["a"], grid["b"]) == ("six_phase", waster)
    # the waster imports more: a − b < 0 with the whole CI below 0, and six_phase wins every seed
    assert grid["ci_high"] < 0.0 and grid["boot_high"] < 0.0 and grid["p_value"] < 0.001
    assert grid["verdict"] == f"six_phase better than {waster} (95 % CI excludes 0)"
    assert grid["win_rate_a"] == 1.0
    cost = summ[summ["kpi"] == "cost_grid_import_soles"].iloc[0]
    assert cost["ci_high"] < 0.0
    # the planted effect: about 5 % more grid energy
    rel = -grid["mean_diff"] / grid["mean_a"]
    assert 0.035 < rel < 0.065
    # EV service is untouched by the waste: no detectable difference
    ev = summ[summ["kpi"] == "ev_kwh"].iloc[0]
    assert ev["verdict"].startswith("no detectable difference")
    w = trials[trials["controller"] == waster]
    assert (
        w["grid_import_kwh"].to_numpy()
        > trials[trials["controller"] == "six_phase"]["grid_import_kwh"].to_numpy()
    ).all()


def _wait_for_runs(runs: Path, n: int, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> int:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        k = len(list(runs.glob("*.json"))) if runs.is_dir() else 0
        if k >= n:
            return k
        assert proc.poll() is None, "twin ab ended before it could be stopped"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} runs finished in {timeout_s} s")


def test_interrupt_and_kill_then_resume(
    make_scenario: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # five days a run: the 40 runs take long enough (~10 s) that the Ctrl-C below lands
    # mid-trial even when the test process waits for a CPU on a loaded machine
    scenario = Path(make_scenario(duration="5d", dt="1h", seed=1))
    out = tmp_path / "resume"
    cmd = [
        TWIN,
        "ab",
        str(scenario),
        "--controllers",
        "six_phase,no_bess",
        "--seeds",
        "20",
        "--workers",
        "1",
        "--out",
        str(out),
        "-q",
        "--no-figures",
    ]
    runs = out / "runs"
    # Ctrl-C: exit 130, the finished runs are kept
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_runs(runs, 3, p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err.decode()
    after_int = {f.name: f.read_bytes() for f in runs.glob("*.json")}
    assert 3 <= len(after_int) < 40
    # killed hard midway: whole records only
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_runs(runs, len(after_int) + 3, p)
    p.kill()
    p.communicate(timeout=30)
    before = {f.name: f.read_bytes() for f in runs.glob("*.json")}
    assert all(before[k] == v for k, v in after_int.items())
    assert len(before) < 40
    for v in before.values():
        json.loads(v)
    # rerun completes without redoing a finished run
    capsys.readouterr()
    assert main([*cmd[1:-2], "--no-figures"]) == 0  # the same command, with the table printed
    printed = capsys.readouterr()
    assert f"{len(before)} finished before (reused), {40 - len(before)} to run" in printed.err
    assert f"({40 - len(before)} runs done now, {len(before)} reused)" in printed.out
    final = {f.name: f.read_bytes() for f in runs.glob("*.json")}
    assert len(final) == 40
    assert all(final[k] == v for k, v in before.items())  # untouched: not run again
    trials, _ = _read(out)
    assert len(trials) == 40


def test_size_reproduces_the_formulas_on_a_hand_computed_case(
    tmp_path: Path, site_dict: dict[str, Any]
) -> None:
    """Two days of hourly profiles from files; the sizes computed by hand in the comments."""
    pv = np.zeros((2, 24))
    ev = np.zeros((2, 24))
    pv[0, 10:15], ev[0, 12:16] = 100.0, 60.0  # day 1 deficit 60 (15 h), surplus 320
    pv[1, 10:15], ev[1, 12:16] = 50.0, 80.0  # day 2 deficit 3 × 30 + 80 = 170, surplus 100
    pd.DataFrame({"pv_kwh": pv.ravel()}).to_csv(tmp_path / "pv.csv", index=False)
    pd.DataFrame({"total_kw": ev.ravel()}).to_csv(tmp_path / "ev.csv", index=False)
    pd.DataFrame({"demand_kw": np.full(48, 500.0)}).to_csv(tmp_path / "mall.csv", index=False)
    site_dict["pv"].update(source="file", file={"path": "pv.csv", "column": "pv_kwh"})
    site_dict["mall"].update(source="file", file={"path": "mall.csv", "column": "demand_kw"})
    site_dict["ev"].update(source="profile", profile={"path": "ev.csv", "column": "total_kw"})
    write_yaml(tmp_path / "site.yaml", site_dict)
    scn = write_yaml(
        tmp_path / "s.yaml",
        {
            "name": "hand",
            "site": "site.yaml",
            "start": "2024-03-04T00:00:00",
            "duration": "2d",
            "dt": "15min",
            "seed": 1,
        },
    )
    out = tmp_path / "size.json"
    assert main(["size", str(scn), "--out", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    st = doc["stats"]
    assert st["n_days"] == 2 and doc["days"] == ["2024-03-04", "2024-03-05"]
    assert st["deficit_max_kwh"] == pytest.approx(170.0)
    assert st["deficit_mean_kwh"] == pytest.approx(115.0)
    assert st["peak_deficit_kw"] == pytest.approx(80.0)
    assert st["surplus_mean_kwh"] == pytest.approx(210.0)
    m = doc["modes"]
    # DoD 0.8 × η 0.95 = 0.76: 170 / 0.76 = 223.7 → 230 → × 1.2 = 276 kWh; 276 × 0.36 = 99.36 kW
    assert m["ev_open_hours"]["capacity_kwh"] == pytest.approx(276.0)
    assert m["ev_open_hours"]["power_kw"] == pytest.approx(99.36)
    assert m["ev_deficit_100"]["capacity_kwh"] == pytest.approx(276.0)
    assert m["surplus_only"]["capacity_kwh"] == pytest.approx(336.0)  # 210 / 0.76 → 280 → 336
    assert m["autonomy"]["capacity_kwh"] == pytest.approx(516.0)  # 80 × 4 / 0.76 → 430 → 516
    assert m["max"]["capacity_kwh"] == pytest.approx(516.0)
    # the battery's SOC window sets the DoD
    assert main(["size", str(scn), "--out", str(out), "-q", "--set", "bess.soc_min_frac=0.1"]) == 0
    m = json.loads(out.read_text())["modes"]
    assert m["ev_open_hours"]["raw_kwh"] == pytest.approx(170 / (0.9 * 0.95))


def test_sweep_grid_payback_and_formula_point(day_scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    rc = main(
        [
            "sweep",
            str(day_scenario),
            "--set",
            "bess.e_capacity_kwh=500:1500:500",
            "--set",
            "bess.p_nominal_kw=200:400:200",
            "--workers",
            "1",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    runs = pd.read_parquet(out / "sweep.parquet")
    assert len(runs) == 6
    assert sorted(set(zip(runs["bess.e_capacity_kwh"], runs["bess.p_nominal_kw"], strict=True))) == [
        (500, 200),
        (500, 400),
        (1000, 200),
        (1000, 400),
        (1500, 200),
        (1500, 400),
    ]
    # the grid point reached the battery: capacity and both power limits
    assert (runs["capacity_kwh"] == runs["bess.e_capacity_kwh"]).all()
    assert (runs["nominal_power_kw"] == runs["bess.p_nominal_kw"]).all()
    summ = pd.read_csv(out / "sweep_summary.csv")
    r = summ.iloc[0]
    capex = 500 * 1100.0 + 200 * 550.0
    assert r["capex"] == pytest.approx(capex)
    sav_yr = r["savings_bess_soles"] * 365.0
    opex = 500 * 11.0 + 200 * 5.5
    assert r["payback_years"] == pytest.approx(capex / (sav_yr - opex) if sav_yr > opex else np.inf)
    point = json.loads((out / "sizing_point.json").read_text())
    assert point["mode"] == "ev_open_hours" and point["capacity_kwh"] > 0
    assert len(list((out / "figures").glob("sweep_*.png"))) == 6
    assert "sizing formulas" in (out / "sweep.html").read_text()
    # a rerun reuses every run
    assert (
        main(
            [
                "sweep",
                str(day_scenario),
                "--set",
                "bess.e_capacity_kwh=500:1500:500",
                "--set",
                "bess.p_nominal_kw=200:400:200",
                "--workers",
                "1",
                "--out",
                str(out),
                "-q",
                "--no-figures",
            ]
        )
        == 0
    )


def test_bad_arguments_are_user_errors(
    day_scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["ab", str(day_scenario), "--controllers", "six_phase,nope", "--out", str(tmp_path / "x")]) == 2
    )
    assert "unknown controller" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert (
        main(
            [
                "sweep",
                str(day_scenario),
                "--set",
                "bess.e_capacity_kwh=500:100:50",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert "stop >= start" in capsys.readouterr().err
    assert (
        main(
            [
                "sweep",
                str(day_scenario),
                "--set",
                "bess.e_capacity_kwh=-5:100:50",
                "--out",
                str(tmp_path / "z"),
                "-q",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "e_capacity_kwh" in err and not (tmp_path / "z").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.txt").write_text("keep me")
    assert (
        main(
            [
                "ab",
                str(day_scenario),
                "--controllers",
                "six_phase,no_bess",
                "--seeds",
                "2",
                "--out",
                str(tmp_path / "busy"),
            ]
        )
        == 2
    )
    assert "not a trial ('twin ab') folder" in capsys.readouterr().err


def test_a_failed_run_is_reported_and_the_others_go_on(
    day_scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken(_Waster):
        def decide(self, obs: SiteObservation) -> Setpoints:
            if obs.k == 5:
                raise RuntimeError("planted failure")
            return self.inner.decide(obs)

    register("broken_test", "test only: raises")(Broken)
    try:
        out = tmp_path / "fail"
        rc = main(
            [
                "ab",
                str(day_scenario),
                "--controllers",
                "six_phase,no_bess,broken_test",
                "--seeds",
                "3",
                "--workers",
                "1",
                "--out",
                str(out),
                "--no-figures",
            ]
        )
    finally:
        REGISTRY.pop("broken_test", None)
    assert rc == 1
    err = capsys.readouterr().err
    assert err.count("planted failure") == 3
    trials, summ = _read(out)
    assert len(trials) == 6 and set(trials["controller"]) == {"six_phase", "no_bess"}
    assert len(list((out / "runs").glob("*.json"))) == 6
    # the pairs with the failed controller have no seed; the others are compared as usual
    assert set(zip(summ["a"], summ["b"], strict=True)) == {("six_phase", "no_bess")}
    assert set(summ["n_seeds"]) == {3}

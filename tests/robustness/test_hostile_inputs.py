"""Hostile inputs (issue 10, cases 4, 5, 6 and 9): configs, files and run folders.

The seeded fuzzer (``fuzz.py``) mutates the default site and a one-day scenario; the
named cases below are the ones the issue lists, kept as regression tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.app.cli import main

from .conftest import SITE, day_scenario
from .fuzz import call_main, fuzz
from .hostile import check_all

#: Seeded mutations per CI run (the issue asks for >= 300).
N_MUTATIONS = 320


@pytest.mark.slow
def test_fuzzer_no_traceback_hang_disagreement_or_bad_physics() -> None:
    report = fuzz(N_MUTATIONS, seed=20261129, timeout_s=60.0)
    bad = report.failures()
    assert not bad, report.line() + "\n" + "\n".join(
        f"{o.kind}: {o.case}: {o.detail[-400:]}" for o in bad[:10])


def test_hostile_run_folders_exit_2_without_traceback(finished_run: Path, tmp_path: Path) -> None:
    counts = check_all(finished_run, tmp_path, call_main)
    assert all(v == 0 for v in counts.values()), counts


def _site(tmp: Path, **sections: dict[str, Any]) -> Path:
    data = yaml.safe_load(SITE.read_text())
    for sect, values in sections.items():
        data.setdefault(sect, {}).update(values)
    p = tmp / "site.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _both(scn: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, int, str]:
    rc_v = main(["validate", str(scn)])
    rc_r = main(["run", str(scn), "--out", str(tmp / "out"), "-q"])
    return rc_v, rc_r, capsys.readouterr().err


@pytest.mark.parametrize(("sect", "values", "needle"), [
    ("mall", {"e_day_kwh": 0}, "mall.e_day_kwh"),
    ("pv", {"p_dc_kwp": 0}, "pv.p_dc_kwp"),
    ("pv", {"cloudiness": {"kt_mean": 1}}, "kt_mean"),
    ("pv", {"cloudiness": {"cloud_base_s": 0}}, "cloud_base_s"),
    ("pv", {"cloudiness": {"kt_std": 0.45}}, "kt_std"),
    ("pv", {"cloudiness": {"solpos_method": 0}}, "solpos_method"),
    ("mall", {"shape": {"day_corr": 1e30}}, "day_corr"),
    ("mall", {"shape": {"p_peak_kw": 30}}, "night base load"),
    ("grid", {"co2_kg_per_kwh": 1e308}, "co2_kg_per_kwh"),
    ("location", {"alt_m": float("nan")}, "alt_m"),
    ("bess", {"technology": {"x": 1}}, "technology"),
    ("bess", {"e_capacity_kwh": 5e-324}, "e_capacity_kwh"),
])
def test_bad_site_values_are_refused_by_validate_and_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sect: str, values: dict[str, Any],
        needle: str) -> None:
    _site(tmp_path, **{sect: values})
    scn = day_scenario(tmp_path, site="site.yaml")
    rc_v, rc_r, err = _both(scn, tmp_path, capsys)
    assert (rc_v, rc_r) == (2, 2), err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("start", ["2024-02-30T00:00:00", "2024-01-01T25:00:00",
                                   "0001-01-01T00:00:00", "2262-04-12T00:00:00"])
def test_impossible_dates_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      start: str) -> None:
    rc_v, rc_r, err = _both(day_scenario(tmp_path, start=start), tmp_path, capsys)
    assert (rc_v, rc_r) == (2, 2) and "start" in err


@pytest.mark.parametrize("params", [{"mall_peak_kw": "abc"}, {"hold_soc_frac": [1]},
                                    {"peak_start_h": 99}, {"bogus": 1}])
def test_wrong_controller_params_are_config_errors(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   params: dict[str, Any]) -> None:
    scn = day_scenario(tmp_path, controller="six_phase", controller_params=params)
    rc_v, rc_r, err = _both(scn, tmp_path, capsys)
    assert (rc_v, rc_r) == (2, 2) and "controller_params" in err


@pytest.mark.parametrize("text", ["", "# only a comment\n# and another\n"])
def test_validate_on_an_empty_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               text: str) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    assert main(["validate", str(p)]) == 2
    assert "empty" in capsys.readouterr().err


def test_alias_bomb_and_deep_nesting_are_refused_quickly(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nname: *a9\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\noverrides: " + "[" * 10_000 + "]" * 10_000 + "\n")
    for p, why in ((bomb, "alias"), (deep, "nested")):
        rc, _, err = call_main(["validate", str(p)], 10.0)
        assert rc == 2 and why in err


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "folder"])
def test_site_must_be_a_regular_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     target: str) -> None:
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    elif target == "folder":
        target = str(tmp_path)
    scn = day_scenario(tmp_path, site=target)
    rc, _, err = call_main(["run", str(scn), "--out", str(tmp_path / "o"), "-q"], 10.0)
    assert rc == 2 and "file" in err


@pytest.mark.parametrize(("sect", "key", "bad"), [("mall", "file", "1e305"),
                                                  ("ev", "profile", "1e300")])
def test_absurd_profile_rows_are_refused_before_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sect: str, key: str, bad: str) -> None:
    rows = ["timestamp,p_kw"] + [f"2024-03-04T{h:02d}:00:00-05:00,{bad if h == 12 else 100}"
                                 for h in range(24)]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    values = {"source": "profile" if sect == "ev" else "file",
              key: {"path": str(tmp_path / "p.csv"), "column": "p_kw"}}
    _site(tmp_path, **{sect: values})
    rc_v, rc_r, err = _both(day_scenario(tmp_path, site="site.yaml"), tmp_path, capsys)
    assert (rc_v, rc_r) == (2, 2) and "not physical" in err


def test_import_limit_exceedance_is_reported(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _site(tmp_path, grid={"import_limit_kw": 1})
    scn = day_scenario(tmp_path, site="site.yaml")
    assert main(["run", str(scn), "--out", str(tmp_path / "o"), "-q"]) == 0
    assert "import limit" in capsys.readouterr().err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["import_limit_kw"] == 1.0 and s["import_limit_exceeded_steps"] >= 12
    assert s["import_limit_exceeded_kwh"] > 1000.0


def test_self_discharge_never_takes_the_soc_below_its_floor(tmp_path: Path) -> None:
    _site(tmp_path, bess={"self_discharge_frac_per_h": 0.099, "soc_initial_frac": 0.2})
    scn = day_scenario(tmp_path, site="site.yaml", duration="3d", controller="no_bess")
    assert main(["run", str(scn), "--out", str(tmp_path / "o"), "-q"]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["soc_min_percent"] >= 20.0 - 1e-9

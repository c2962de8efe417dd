"""A corpus of bad inputs: each one exits 2, names the field (or file), prints no
traceback and leaves no output folder behind."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_yaml
from twin.app.cli import main

Mut = Callable[[dict[str, Any], dict[str, Any], Path], None]


def _set(d: dict[str, Any], dotted: str, v: Any) -> None:
    *head, last = dotted.split(".")
    for k in head:
        d = d.setdefault(k, {})
    d[last] = v


def _profile(tmp: Path, text: str) -> str:
    p = tmp / "prof.csv"
    p.write_text(text)
    return str(p)


HOURLY_OK = "pv_kwh\n" + "\n".join("100.0" for _ in range(48)) + "\n"

# (case id, mutation of (site, scenario, tmp), text the message must contain)
CASES: list[tuple[str, Mut, str]] = [
    ("unknown_scenario_key", lambda s, c, t: c.update(sed=4), "'sed'"),
    ("unknown_site_key", lambda s, c, t: _set(s, "bess.capacity", 5), "bess.capacity"),
    ("wrong_type_dt", lambda s, c, t: c.update(dt="fast"), "dt"),
    ("negative_capacity", lambda s, c, t: _set(s, "bess.e_capacity_kwh", -5), "bess.e_capacity_kwh"),
    ("soc_min_ge_max", lambda s, c, t: _set(s, "bess.soc_min_frac", 0.95), "soc_min_frac"),
    ("efficiency_above_one", lambda s, c, t: _set(s, "bess.eta_roundtrip", 1.2), "bess.eta_roundtrip"),
    ("bad_timezone", lambda s, c, t: _set(s, "location.tz", "Mars/Olympus"), "location.tz"),
    ("dt_not_dividing", lambda s, c, t: c.update(duration="1h", dt="7min"), "does not divide"),
    ("negative_seed", lambda s, c, t: c.update(seed=-1), "seed"),
    ("unknown_controller", lambda s, c, t: c.update(controller="magic"), "controller"),
    ("missing_site_file", lambda s, c, t: c.update(site="nowhere.yaml"), "nowhere.yaml"),
    ("missing_profile_file",
     lambda s, c, t: s["pv"].update(source="file", file={"path": "none.csv", "column": "pv_kwh"}),
     "none.csv"),
    ("nan_profile",
     lambda s, c, t: s["pv"].update(source="file", file={
         "path": _profile(t, HOURLY_OK.replace("100.0", "nan", 1)), "column": "pv_kwh"}),
     "pv_kwh"),
    ("short_profile",
     lambda s, c, t: s["pv"].update(source="file", file={
         "path": _profile(t, "pv_kwh\n1\n2\n3\n"), "column": "pv_kwh"}),
     "pv_kwh"),
    ("non_numeric_profile",
     lambda s, c, t: s["pv"].update(source="file", file={
         "path": _profile(t, HOURLY_OK.replace("100.0", "lots", 1)), "column": "pv_kwh"}),
     "pv_kwh"),
    ("profile_column_missing",
     lambda s, c, t: s["mall"].update(source="file", file={
         "path": _profile(t, HOURLY_OK), "column": "demand_kw"}),
     "demand_kw"),
    ("arrival_weights_length", lambda s, c, t: _set(s, "ev.arrival_weights", [1, 2, 3]), "arrival_weights"),
    ("unknown_socket_type",
     lambda s, c, t: s["ev"].update(sockets=[{"type": "bus", "count": 2, "p_rating_kw": 50}]),
     "ev.sockets"),
    ("close_before_open", lambda s, c, t: _set(s, "ev.close_hour", 8), "close_hour"),
    ("ghi_monthly_length", lambda s, c, t: _set(s, "pv.ghi_monthly_kwh_m2_day", [4.0] * 11),
     "ghi_monthly_kwh_m2_day"),
    ("unknown_stay_model", lambda s, c, t: _set(s, "ev.stay_model", "forever"), "ev.stay_model"),
    ("linger_below_one", lambda s, c, t: _set(s, "ev.vehicles.moto.linger_mean", 0.5),
     "linger_mean"),
    ("unknown_chemistry", lambda s, c, t: _set(s, "bess.chemistry", "lead_acid"), "bess.chemistry"),
    ("missing_sessions_file",
     lambda s, c, t: s["ev"].update(source="sessions_file", sessions_file="gone.csv"), "gone.csv"),
    ("sessions_departure_before_arrival",
     lambda s, c, t: s["ev"].update(source="sessions_file", sessions_file=_profile(
         t, "arrival,departure,vehicle_type,e_req_kwh,p_max_kw\n"
            "2024-03-04 10:00,2024-03-04 09:00,moto,2,3.7\n")),
     "departure"),
    ("missing_start", lambda s, c, t: c.pop("start"), "start"),
    ("controller_params_unknown", lambda s, c, t: c.update(controller_params={"frobnicate": 1}),
     "controller_params"),
]


@pytest.mark.parametrize(("case", "mutate", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_exit_2_names_field_no_output(
    case: str, mutate: Mut, needle: str, tmp_path: Path, site_dict: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    scn: dict[str, Any] = {"name": "t", "site": "site.yaml", "start": "2024-03-04T00:00:00",
                           "duration": "2d", "dt": "15min", "seed": 3, "controller": "six_phase"}
    mutate(site_dict, scn, tmp_path)
    write_yaml(tmp_path / "site.yaml", site_dict)
    path = write_yaml(tmp_path / "scenario.yaml", scn)
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err, err
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.tmp-*"))
    # validate says the same
    assert main(["validate", str(path)]) == 2


def test_broken_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nsite: [unclosed\n")
    assert main(["run", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "YAML" in err and "line" in err
    assert not (tmp_path / "o").exists()


def test_bad_set_value(make_scenario: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_scenario()
    assert main(["run", str(path), "--set", "bess.e_capacity_kwh", "--out", str(tmp_path / "o")]) == 2
    assert "dotted.key=value" in capsys.readouterr().err
    assert main(["run", str(path), "--set", "bess.e_capacity_kwh=-1", "--out", str(tmp_path / "o")]) == 2
    assert "bess.e_capacity_kwh" in capsys.readouterr().err


def test_real_process_no_traceback(tmp_path: Path) -> None:
    """The installed command, as a user runs it: exit 2 and one clean message."""
    p = tmp_path / "s.yaml"
    p.write_text("name: x\nsite: missing.yaml\nstart: 2024-01-01\nduration: 1d\ndt: 15min\n")
    r = subprocess.run([sys.executable, "-m", "twin", "run", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "missing.yaml" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_out_folder_that_is_not_a_run_is_never_replaced(make_scenario: Any, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not lose me")
    assert main(["run", str(make_scenario()), "--out", str(precious), "-q"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "do not lose me"
    # an old run folder is replaced, as documented
    run = tmp_path / "run"
    assert main(["run", str(make_scenario()), "--out", str(run), "-q"]) == 0
    assert main(["run", str(make_scenario()), "--out", str(run), "-q"]) == 0
    assert (run / "summary.json").exists()


def test_show_on_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(tmp_path)]) == 2
    assert "summary.json" in capsys.readouterr().err
    (tmp_path / "summary.json").write_text("{not json")
    assert main(["show", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err

"""Red team for vehicle classes as site data (issue 17, point 4): a bad class definition is
one clear error (exit 2, names the field, no traceback, no output folder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import write_yaml
from twin.app.cli import main

Mut = Callable[[dict[str, Any]], None]


def _car(**kw: Any) -> dict[str, Any]:
    return {"sessions_per_day": 5, "e_req_kwh_min": 10.0, "e_req_kwh_max": 30.0,
            "p_max_kw": 11.0, **kw}


def _add_car(site: dict[str, Any], sockets: int | None) -> None:
    site["ev"]["vehicles"]["car"] = _car()
    if sockets is not None:
        site["ev"]["sockets"].append({"type": "car", "count": sockets, "p_rating_kw": 11.0})


def _many(site: dict[str, Any]) -> None:
    moto = site["ev"]["vehicles"]["moto"]
    site["ev"]["vehicles"] = {f"c{i:02d}": dict(moto) for i in range(17)}
    site["ev"]["sockets"] = [{"type": f"c{i:02d}", "count": 1, "p_rating_kw": 3.7}
                             for i in range(17)]


# (case id, mutation of the site dict, text the message must contain)
CASES: list[tuple[str, Mut, str]] = [
    ("no_classes", lambda s: s["ev"].update(vehicles={}, sockets=[]), "'ev.vehicles': "
     "Dictionary should have at least 1 item"),
    ("socket_for_unknown_class", lambda s: s["ev"]["sockets"].append(
        {"type": "bus", "count": 2, "p_rating_kw": 22.0}), "ev.sockets[2].type"),
    ("arrivals_without_sockets", lambda s: _add_car(s, None), "['car'] have arrivals"),
    ("class_name_not_an_identifier", lambda s: (s["ev"]["vehicles"].update({"Big Car": _car()}),
                                                s["ev"]["sockets"].append(
        {"type": "Big Car", "count": 1, "p_rating_kw": 11.0})), "not a valid vehicle class name"),
    ("seventeen_classes", _many, "ev.vehicles"),
    ("class_without_its_fields", lambda s: s["ev"]["vehicles"].update(
        {"car": {"sessions_per_day": 3}}), "ev.vehicles.car"),
]


def _run(tmp: Path, site_text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``twin run`` on a one-day scenario of the site; (exit code, stderr)."""
    (tmp / "site.yaml").write_text(site_text)
    scn = write_yaml(tmp / "scenario.yaml", {
        "name": "t", "site": "site.yaml", "start": "2024-03-04T00:00:00", "duration": "1d",
        "dt": "15min", "seed": 3, "controller": "six_phase"})
    out = tmp / "out"
    code = main(["run", str(scn), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 0 or not out.exists()
    return code, err


@pytest.mark.parametrize(("case", "mutate", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_class_definition_exit_2(case: str, mutate: Mut, needle: str, tmp_path: Path,
                                     site_dict: dict[str, Any],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    mutate(site_dict)
    code, err = _run(tmp_path, yaml.safe_dump(site_dict, sort_keys=False), capsys)
    assert code == 2, err
    assert needle in err, err
    assert "Traceback" not in err
    assert err.startswith("twin: error: ") and "site.yaml" in err, err


def test_duplicate_class_name_is_refused(tmp_path: Path, site_dict: dict[str, Any],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Plain YAML keeps the second of two equal keys silently (one class would vanish)."""
    text = yaml.safe_dump(site_dict, sort_keys=False).replace("    mototaxi:\n", "    moto:\n")
    assert text.count("    moto:\n") == 2
    code, err = _run(tmp_path, text, capsys)
    assert code == 2, err
    assert "duplicate key 'moto'" in err and "site.yaml" in err and "line" in err, err
    assert "Traceback" not in err


def test_zero_sockets_is_a_deliberate_what_if(tmp_path: Path, site_dict: dict[str, Any],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """An explicit ``count: 0`` group runs: every rider of the class is turned away."""
    import pandas as pd

    _add_car(site_dict, 0)
    code, err = _run(tmp_path, yaml.safe_dump(site_dict, sort_keys=False), capsys)
    assert code == 0, err
    s = pd.read_parquet(tmp_path / "out" / "sessions.parquet")
    car = s[s["vehicle_type"] == "car"]
    assert len(car) > 0 and (car["status"] == "turned_away").all()
    assert (s.loc[s["vehicle_type"] != "car", "status"] == "served").any()


def test_sessions_file_with_a_class_the_site_lacks(tmp_path: Path, site_dict: dict[str, Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A sessions file's vehicle_type must be a class of the site (file, row, column)."""
    (tmp_path / "sess.csv").write_text(
        "arrival,departure,vehicle_type,e_req_kwh,p_max_kw\n"
        "2024-03-04T10:00:00,2024-03-04T11:00:00,moto,2.0,3.7\n"
        "2024-03-04T10:30:00,2024-03-04T12:00:00,car,20.0,11.0\n")
    site_dict["ev"].update(source="sessions_file", sessions_file="sess.csv")
    code, err = _run(tmp_path, yaml.safe_dump(site_dict, sort_keys=False), capsys)
    assert code == 2, err
    assert "sess.csv" in err and "'car'" in err and "vehicle_type" in err, err
    assert "['moto', 'mototaxi']" in err, err

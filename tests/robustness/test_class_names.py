"""Red team for vehicle class names (issue 17, point 5): a class name the site does not
define, or a name that is not an identifier, is one line naming the field and the site's
classes (exit 2, no traceback, no pydantic "Value error" / regex jargon)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_yaml
from twin.app.cli import main
from twin.config import ConfigError, load_scenario

CAR = {"sessions_per_day": 5, "e_req_kwh_min": 10.0, "e_req_kwh_max": 30.0, "p_max_kw": 11.0}


def _scenario(tmp: Path, site: dict[str, Any]) -> Path:
    write_yaml(tmp / "site.yaml", site)
    return write_yaml(tmp / "scenario.yaml", {
        "name": "t", "site": "site.yaml", "start": "2024-03-04T00:00:00", "duration": "1d",
        "dt": "15min", "seed": 3, "controller": "six_phase"})


def _fails(argv: list[str], tmp: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``twin ARGV``: exit 2, one ``twin: error:`` line without jargon; the stderr."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("twin: error: ") and "Traceback" not in err, err
    assert "Value error" not in err and "should match pattern" not in err, err
    assert not (tmp / "out").exists()
    return err


def test_socket_group_of_a_class_the_site_lacks(tmp_path: Path, site_dict: dict[str, Any],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    site_dict["ev"]["sockets"].append({"type": "bus", "count": 2, "p_rating_kw": 22.0})
    err = _fails(["validate", str(_scenario(tmp_path, site_dict))], tmp_path, capsys)
    assert "field 'ev.sockets[2].type': 'bus' is not a vehicle class" in err, err
    assert "moto, mototaxi" in err, err


def test_socket_type_in_capitals_lists_the_classes(tmp_path: Path, site_dict: dict[str, Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    site_dict["ev"]["sockets"][0]["type"] = "Moto"
    err = _fails(["validate", str(_scenario(tmp_path, site_dict))], tmp_path, capsys)
    assert "field 'ev.sockets[0].type': 'Moto'" in err and "moto, mototaxi" in err, err


@pytest.mark.parametrize(("name", "hint"), [("Big Car", "'big_car'"), ("9x", None),
                                            ("car\n", "'car'"), ("c" * 33, None)])
def test_class_name_not_an_identifier(name: str, hint: str | None, tmp_path: Path,
                                      site_dict: dict[str, Any],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The name is refused as the key of ``ev.vehicles`` (not ``.[key]``), with the rule."""
    site_dict["ev"]["vehicles"][name] = dict(CAR)
    err = _fails(["validate", str(_scenario(tmp_path, site_dict))], tmp_path, capsys)
    assert "field 'ev.vehicles." in err and "[key]" not in err, err
    assert "not a valid vehicle class name" in err and "lower-case identifier" in err, err
    if hint is not None:
        assert f"e.g. {hint}" in err, err


def test_set_naming_a_class_the_site_lacks(tmp_path: Path, site_dict: dict[str, Any],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    scn = _scenario(tmp_path, site_dict)
    err = _fails(["run", str(scn), "--out", str(tmp_path / "out"), "-q",
                  "--set", "ev.vehicles.bus.p_max_kw=5"], tmp_path, capsys)
    first = err.splitlines()[0]
    assert "field 'ev.vehicles.bus'" in first and "--set ev.vehicles.bus.p_max_kw" in first, err
    assert "the classes are: moto, mototaxi" in first and "sessions_per_day" in first, err
    assert "required field is missing" not in err, err


def test_set_can_still_add_a_whole_class(tmp_path: Path, site_dict: dict[str, Any]) -> None:
    """Every required field of a new class given by ``--set``: the class is added."""
    scn = _scenario(tmp_path, site_dict)
    sets = {f"ev.vehicles.car.{k}": v for k, v in CAR.items()}
    sets["ev.sockets"] = [*site_dict["ev"]["sockets"],
                          {"type": "car", "count": 2, "p_rating_kw": 11.0}]
    assert load_scenario(scn, sets).site.ev.class_names == ("moto", "mototaxi", "car")
    del sets["ev.vehicles.car.p_max_kw"]
    with pytest.raises(ConfigError, match=r"ev\.vehicles\.car.*classes are: moto, mototaxi"):
        load_scenario(scn, sets)

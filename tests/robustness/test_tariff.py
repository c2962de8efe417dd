"""Red-team cases of the tariff (issue 19, point 4): bad tables inline or in a tariff file
exit 2 with one line naming the file and the field; no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.app.cli import main

from .conftest import ROOT, SITE, day_scenario

TWO = {"HP": {"price_per_kwh": 0.45}, "HFP": {"price_per_kwh": 0.28}}
DAY = [{"period": "HFP", "start_hour": 0, "end_hour": 18},
       {"period": "HP", "start_hour": 18, "end_hour": 23},
       {"period": "HFP", "start_hour": 23, "end_hour": 24}]


def _table(**over: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"periods": TWO, "schedule": {"weekday": DAY}}
    t.update(over)
    return t


def _site_with(tmp: Path, tariff: dict[str, Any]) -> Path:
    data = yaml.safe_load(SITE.read_text())
    data["tariff"] = tariff
    p = tmp / "site.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _check(tmp: Path, tariff: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    site = _site_with(tmp, tariff)
    scn = day_scenario(tmp, site=str(site))
    rc_v = main(["validate", str(scn)])
    rc_r = main(["run", str(scn), "--out", str(tmp / "out"), "-q"])
    err = capsys.readouterr().err
    assert (rc_v, rc_r) == (2, 2), err
    assert "Traceback" not in err
    assert not (tmp / "out").exists()
    return err


CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("overlap", _table(schedule={"weekday": [
        {"period": "HFP", "start_hour": 0, "end_hour": 19},
        {"period": "HP", "start_hour": 18, "end_hour": 24}]}), ("schedule.weekday", "overlap")),
    ("gap", _table(schedule={"weekday": [
        {"period": "HFP", "start_hour": 0, "end_hour": 17},
        {"period": "HP", "start_hour": 18, "end_hour": 24}]}), ("schedule.weekday", "17-18")),
    ("short_day", _table(schedule={"weekday": DAY[:2]}), ("schedule.weekday", "23-24")),
    ("negative_price", _table(periods={"HP": {"price_per_kwh": -0.1}, "HFP": TWO["HFP"]}),
     ("tariff.periods.HP.price_per_kwh", "greater than or equal to 0")),
    ("nan_price", _table(periods={"HP": {"price_per_kwh": float("nan")}, "HFP": TWO["HFP"]}),
     ("tariff.periods.HP.price_per_kwh",)),
    ("unknown_period", _table(schedule={"weekday": DAY, "weekend": [
        {"period": "XP", "start_hour": 0, "end_hour": 24}]}), ("schedule.weekend", "'XP'")),
    ("unknown_demand_period", _table(demand_charges={
        "gen": {"price_per_kw_month": 50, "periods": ["PEAK"]}}),
     ("demand_charges.gen.periods", "'PEAK'")),
    ("negative_demand_price", _table(demand_charges={"gen": {"price_per_kw_month": -5}}),
     ("tariff.demand_charges.gen.price_per_kw_month",)),
    ("unknown_peak_period", _table(peak_periods=["HPP"]), ("peak_periods", "'HPP'")),
    ("unused_period", _table(periods={**TWO, "MID": {"price_per_kwh": 0.3}}),
     ("never scheduled", "MID")),
    ("legacy_and_table", _table(peak_price_per_kwh=0.5), ("peak_price_per_kwh", "not both")),
    ("periods_without_schedule", {"periods": TWO}, ("tariff", "schedule")),
    ("no_weekday", _table(schedule={"weekend": DAY}), ("schedule.weekday",)),
    ("window_backwards", _table(schedule={"weekday": [
        {"period": "HFP", "start_hour": 0, "end_hour": 18},
        {"period": "HP", "start_hour": 23, "end_hour": 18}]}), ("end_hour", "later")),
    ("hour_25", _table(schedule={"weekday": [
        {"period": "HFP", "start_hour": 0, "end_hour": 25}]}), ("end_hour", "24")),
    ("negative_fixed", _table(fixed_charge_per_month=-1), ("fixed_charge_per_month",)),
    ("bad_weekend_day", _table(weekend_days=[7]), ("weekend_days",)),
    ("bad_holiday", _table(holidays=["2024-02-30"]), ("holidays",)),
    ("unknown_key", _table(demand_charge={"gen": {"price_per_kw_month": 5}}),
     ("tariff.demand_charge", "unknown key")),
    ("legacy_window_backwards", {"peak_start_hour": 20, "peak_end_hour": 18},
     ("peak_end_hour must be later",)),
]


@pytest.mark.parametrize(("case", "tariff", "needles"), CASES, ids=[c[0] for c in CASES])
def test_bad_inline_tariff_exits_2_naming_the_field(case: str, tariff: dict[str, Any],
                                                    needles: tuple[str, ...], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    err = _check(tmp_path, tariff, capsys)
    for n in needles:
        assert n in err, (case, err)


def test_bad_tariff_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(yaml.safe_dump(_table(periods={"HP": {"price_per_kwh": -1}, "HFP": TWO["HFP"]})))
    err = _check(tmp_path, {"file": "t.yaml"}, capsys)
    assert str(f) in err and "periods.HP.price_per_kwh" in err, err


@pytest.mark.parametrize(("content", "needle"), [
    (None, "file not found"),
    ("- a list\n", "top level must be a mapping"),
    ("periods: [unclosed\n", "broken YAML"),
    ("file: other.yaml\n", "cannot name another file"),
])
def test_unreadable_tariff_files(content: str | None, needle: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    if content is not None:
        (tmp_path / "t.yaml").write_text(content)
    err = _check(tmp_path, {"file": "t.yaml"}, capsys)
    assert needle in err and "t.yaml" in err, err


def test_currency_conflict_with_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({**_table(), "currency": "USD"}))
    err = _check(tmp_path, {"file": "t.yaml", "currency": "PEN"}, capsys)
    assert "tariff.currency" in err and "USD" in err, err


def test_tariff_file_from_the_command_line_exits_2_when_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scn = day_scenario(tmp_path)
    rc = main(["run", str(scn), "--set", "tariff.file=no/such/tariff.yaml", "--out",
               str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "no/such/tariff.yaml" in err and "Traceback" not in err, err


def test_the_shipped_example_validates(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ex = ROOT / "config" / "tariffs" / "peru_mt3_example.yaml"
    scn = day_scenario(tmp_path, site=str(_site_with(tmp_path, {"file": str(ex)})))
    assert main(["validate", str(scn)]) == 0, capsys.readouterr().err

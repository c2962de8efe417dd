"""The tariff schedule and the bill (issue 19, point 4): a hand-computed bill, the legacy
two-period arithmetic, kinds of day, tariff files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.config import Tariff, load_site
from twin.tariff import bill, day_kind, schedule

ROOT = Path(__file__).resolve().parents[2]

#: Three periods: peak P and off-peak O on weekdays, W all day on weekends and holidays.
HAND = Tariff.model_validate({
    "periods": {"P": {"price_per_kwh": 0.5}, "O": {"price_per_kwh": 0.2},
                "W": {"price_per_kwh": 0.1}},
    "schedule": {"weekday": [{"period": "O", "start_hour": 0, "end_hour": 18},
                             {"period": "P", "start_hour": 18, "end_hour": 22},
                             {"period": "O", "start_hour": 22, "end_hour": 24}],
                 "weekend": [{"period": "W", "start_hour": 0, "end_hour": 24}]},
    "holidays": ["2024-03-01"],
    "demand_charges": {"peak": {"price_per_kw_month": 10.0, "periods": ["P"]},
                       "all": {"price_per_kw_month": 2.0}},
    "fixed_charge_per_month": 5.0,
})


def _idx(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps)).tz_localize("America/Lima")


def test_bill_of_a_hand_computed_case() -> None:
    # Thu 29 Feb 17:00 (O), 18:00 (P), 22:00 (O); Fri 1 Mar 19:00 (holiday: W);
    # Mon 4 Mar 19:00 (P), 23:00 (O); one-hour steps
    idx = _idx("2024-02-29 17:00", "2024-02-29 18:00", "2024-02-29 22:00",
               "2024-03-01 19:00", "2024-03-04 19:00", "2024-03-04 23:00")
    sch = schedule(HAND, idx)
    assert [sch.names[c] for c in sch.period] == ["O", "P", "O", "W", "P", "O"]
    assert sch.is_peak.tolist() == [False, True, False, False, True, False]
    assert sch.month_labels == ("2024-02", "2024-03")
    b = bill(sch, np.array([100.0, 300.0, 50.0, 400.0, 200.0, 250.0]), 3600.0)
    # energy: 100·0.2 + 300·0.5 + 50·0.2 + 400·0.1 + 200·0.5 + 250·0.2 = 370
    assert b.energy == pytest.approx(370.0)
    # peak (P only): Feb 300 kW, Mar 200 kW -> 10 × 500; all hours: Feb 300, Mar 400 -> 2 × 700
    assert b.peaks_kw == {"peak": [300.0, 200.0], "all": [300.0, 400.0]}
    assert b.demand_by_charge == pytest.approx({"peak": 5000.0, "all": 1400.0})
    assert b.fixed == pytest.approx(10.0)  # two billing months
    assert b.total == pytest.approx(370.0 + 6400.0 + 10.0)


def test_demand_is_mean_power_of_the_step() -> None:
    idx = _idx("2024-03-04 18:00", "2024-03-04 18:15")
    b = bill(schedule(HAND, idx), np.array([25.0, 50.0]), 900.0)  # 100 kW, 200 kW
    assert b.peaks_kw["peak"] == [200.0]


def test_kinds_of_day() -> None:
    idx = _idx("2024-03-01 12:00", "2024-03-02 12:00", "2024-03-03 12:00", "2024-03-04 12:00")
    assert day_kind(HAND, idx).tolist() == [2, 1, 1, 0]  # holiday Fri, Sat, Sun, Mon


def test_legacy_keys_give_the_seed_arithmetic_bit_for_bit() -> None:
    t = Tariff(peak_start_hour=17.5, peak_end_hour=22.0, peak_price_per_kwh=0.61,
               offpeak_price_per_kwh=0.17)
    idx = pd.date_range("2024-03-02", periods=96 * 3, freq="15min", tz="America/Lima")
    hour = (idx.hour + idx.minute / 60.0).to_numpy(dtype=float)
    sch = schedule(t, idx, hour)
    is_peak = (hour >= 17.5) & (hour < 22.0)
    assert np.array_equal(sch.is_peak, is_peak)
    assert np.array_equal(sch.price_per_kwh, np.where(is_peak, 0.61, 0.17))
    assert set(np.asarray(sch.names)[sch.period]) == {"HP", "HFP"}
    assert not sch.demand and sch.fixed_per_month == 0.0
    d = Tariff()  # the defaults: HP 18-23 at 0.45, HFP 0.28
    assert d.period_prices == {"HP": 0.45, "HFP": 0.28} and d.peak_window_h == (18.0, 23.0)


def test_tariff_file_relative_to_the_site_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "tariffs").mkdir()
    ex = ROOT / "config" / "tariffs" / "peru_mt3_example.yaml"
    (tmp_path / "tariffs" / "t.yaml").write_text(ex.read_text())
    data = yaml.safe_load((ROOT / "config" / "site.yaml").read_text())
    data["tariff"] = {**data["tariff"], "file": "tariffs/t.yaml"}  # legacy keys stay
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data))
    site = load_site(tmp_path / "site.yaml")
    assert site.tariff.file == tmp_path / "tariffs" / "t.yaml"
    assert site.tariff.period_prices == {"HP": 0.2769, "HFP": 0.2376}
    assert site.tariff.has_demand_charges and site.tariff.fixed_charge_per_month == 4.18
    off = load_site(tmp_path / "site.yaml", {"tariff.demand_charges": {}})
    assert not off.tariff.has_demand_charges and off.tariff.period_prices["HP"] == 0.2769

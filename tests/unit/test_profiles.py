"""Unit tests for twin.components.profiles.load_profile_kw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.components.profiles import ProfileError, load_profile_kw

TZ = "America/Lima"


def _index(periods: int, freq: str, start: str = "2024-01-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz=TZ)


def test_hourly_kwh_into_15min_preserves_energy_and_holds_power(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    e_kwh = rng.uniform(0.0, 3335.0, 8784)  # one row per hour of 2024
    path = tmp_path / "pv_generation.csv"
    pd.DataFrame({"pv_kwh": e_kwh}).to_csv(path, index=False)
    index = _index(35136, "15min")

    p_kw = load_profile_kw(path, "pv_kwh", index, 900.0)

    assert p_kw.dtype == np.float64
    assert p_kw.shape == (35136,)
    assert p_kw.sum() * 0.25 == pytest.approx(e_kwh.sum(), rel=1e-12)
    # an hourly energy of E kWh is a mean power of E kW held over its four quarters
    np.testing.assert_allclose(p_kw.reshape(-1, 4), np.repeat(e_kwh[:, None], 4, axis=1))


def test_kw_column_one_row_per_step_is_copied(tmp_path: Path) -> None:
    values = np.linspace(0.0, 2000.0, 96)
    path = tmp_path / "mall_demand.csv"
    pd.DataFrame({"demand_kw": values}).to_csv(path, index=False)
    p_kw = load_profile_kw(path, "demand_kw", _index(96, "15min"), 900.0)
    np.testing.assert_array_equal(p_kw, values)


def test_kw_column_without_timestamps_is_hourly_and_may_be_longer(tmp_path: Path) -> None:
    path = tmp_path / "ev_demand.csv"
    pd.DataFrame({"total_kw": np.arange(48.0)}).to_csv(path, index=False)
    p_kw = load_profile_kw(path, "total_kw", _index(8, "30min"), 1800.0)
    np.testing.assert_allclose(p_kw, [0, 0, 1, 1, 2, 2, 3, 3])


def test_kwh_finer_file_into_hourly_steps_is_averaged(tmp_path: Path) -> None:
    # 15-min energies [kWh per 15 min] into 1-h steps: mean power = 4 x mean energy
    e_kwh = np.tile([1.0, 2.0, 3.0, 4.0], 24)
    ts = pd.date_range("2024-03-01", periods=96, freq="15min")
    path = tmp_path / "pv.csv"
    pd.DataFrame({"timestamp": ts, "pv_kwh": e_kwh}).to_csv(path, index=False)
    p_kw = load_profile_kw(path, "pv_kwh", _index(24, "1h", "2024-03-01"), 3600.0)
    np.testing.assert_allclose(p_kw, np.full(24, 10.0))


def test_timestamp_column_naive_is_local_and_may_start_earlier(tmp_path: Path) -> None:
    ts = pd.date_range("2024-01-01", periods=8784, freq="1h")  # naive = local Lima time
    values = np.asarray(ts.hour, dtype=float)
    path = tmp_path / "mall.csv"
    pd.DataFrame({"datetime": ts.strftime("%Y-%m-%d %H:%M"), "demand_kw": values}).to_csv(
        path, index=False
    )
    index = _index(8, "15min", "2024-06-10 12:00")
    p_kw = load_profile_kw(path, "demand_kw", index, 900.0)
    np.testing.assert_allclose(p_kw, [12, 12, 12, 12, 13, 13, 13, 13])


def test_timestamp_with_utc_offset_is_converted(tmp_path: Path) -> None:
    ts = pd.date_range("2024-01-01 05:00", periods=48, freq="1h", tz="UTC")  # 00:00 Lima
    path = tmp_path / "pv.csv"
    pd.DataFrame({"time": ts.strftime("%Y-%m-%dT%H:%M%z"), "pv_kw": np.arange(48.0)}).to_csv(
        path, index=False
    )
    p_kw = load_profile_kw(path, "pv_kw", _index(4, "1h", "2024-01-01 02:00"), 3600.0)
    np.testing.assert_allclose(p_kw, [2, 3, 4, 5])


def test_parquet_one_minute_kw_into_15min_is_averaged(tmp_path: Path) -> None:
    ts = pd.date_range("2024-01-01", periods=2 * 1440, freq="1min", tz=TZ)
    path = tmp_path / "pv.parquet"
    pd.DataFrame({"timestamp": ts, "pv_kw": np.tile(np.arange(15.0), 192)}).to_parquet(path)
    p_kw = load_profile_kw(path, "pv_kw", _index(192, "15min"), 900.0)
    np.testing.assert_allclose(p_kw, np.full(192, 7.0))


def test_parquet_datetime_index_is_the_timestamp(tmp_path: Path) -> None:
    ts = pd.date_range("2024-01-01", periods=24, freq="1h", tz=TZ, name="ts")
    path = tmp_path / "mall.parquet"
    pd.DataFrame({"demand_kwh": np.arange(24.0)}, index=ts).to_parquet(path)
    p_kw = load_profile_kw(path, "demand_kwh", _index(2, "1h", "2024-01-01 05:00"), 3600.0)
    np.testing.assert_allclose(p_kw, [5, 6])


# --- errors: every ProfileError names the file, the column and the fix -------------------


_OK = "pv_kwh\n" + "1.0\n" * 24

# (case, file name, file content or None for no file, column, fragment of the message)
BAD_CASES: list[tuple[str, str, str | None, str, str]] = [
    ("missing file", "nowhere.csv", None, "pv_kwh", "not found"),
    ("broken csv", "broken.csv", "pv_kwh\n1.0\n2.0,3.0,4.0\n", "pv_kwh", "cannot read"),
    ("broken parquet", "broken.parquet", "not parquet", "pv_kwh", "cannot read"),
    ("unsupported type", "data.xlsx", _OK, "pv_kwh", "unsupported"),
    ("empty", "empty.csv", "pv_kwh\n", "pv_kwh", "no data rows"),
    ("missing column", "other.csv", _OK, "mall_kw", "available columns: 'pv_kwh'"),
    ("no unit in name", "unitless.csv", "pv\n1\n", "pv", "must end in _kw"),
    (
        "non-numeric",
        "text.csv",
        "pv_kwh\n" + "1.0\n" * 5 + "abc\n" + "1.0\n" * 18,
        "pv_kwh",
        "non-numeric value 'abc' at data row 6",
    ),
    ("nan", "gap.csv", "pv_kwh\n" + "1.0\n" * 3 + "nan\n" * 21, "pv_kwh", "at data row 4"),
    (
        "empty cell",
        "hole.csv",
        "pv_kwh\n" + "1.0\n" * 9 + '""\n' + "1.0\n" * 14,
        "pv_kwh",
        "at data row 10",
    ),
    (
        "negative",
        "neg.csv",
        "pv_kwh\n" + "1.0\n" * 7 + "-2.5\n" + "1.0\n" * 16,
        "pv_kwh",
        "negative value -2.5 at data row 8",
    ),
    ("too short", "short.csv", "pv_kwh\n" + "1.0\n" * 23, "pv_kwh", "covers 23 steps of 3600 s"),
    (
        "bad timestamp",
        "ts.csv",
        "timestamp,pv_kw\nyesterday,1\nsoon,2\n",
        "pv_kw",
        "cannot parse timestamp column",
    ),
    (
        "irregular timestamps",
        "irregular.csv",
        "timestamp,pv_kw\n2024-01-01 00:00,1\n2024-01-01 01:00,1\n"
        "2024-01-01 03:00,1\n2024-01-02 03:00,1\n",
        "pv_kw",
        "evenly spaced",
    ),
    (
        "starts after scenario",
        "late.csv",
        "timestamp,pv_kw\n"
        + "".join(f"2024-01-01 {h:02d}:00,1\n" for h in range(1, 24))
        + "2024-01-02 00:00,1\n",
        "pv_kw",
        "scenario needs 96 steps",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "column", "fragment"),
    [c[1:] for c in BAD_CASES],
    ids=[c[0] for c in BAD_CASES],
)
def test_bad_input_raises_profile_error_naming_file_column_and_fix(
    name: str, content: str | None, column: str, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile_kw(path, column, _index(96, "15min"), 900.0)
    msg = str(info.value)
    assert name in msg
    assert f"column '{column}'" in msg
    assert "fix:" in msg
    assert fragment in msg
    assert isinstance(info.value, ValueError)


def test_missing_column_lists_available_columns(tmp_path: Path) -> None:
    path = tmp_path / "seed.csv"
    pd.DataFrame({"pv_kwh": [1.0], "ev_kwh": [2.0]}).to_csv(path, index=False)
    with pytest.raises(ProfileError, match=r"available columns: 'pv_kwh', 'ev_kwh'"):
        load_profile_kw(path, "mall_kwh", _index(1, "1h"), 3600.0)


def test_seed_style_365_day_file_does_not_cover_2024(tmp_path: Path) -> None:
    path = tmp_path / "pv_generation.csv"
    pd.DataFrame({"pv_kwh": np.ones(8760)}).to_csv(path, index=False)
    with pytest.raises(ProfileError, match=r"covers 8760 steps.*needs 35136 steps"):
        load_profile_kw(path, "pv_kwh", _index(35136, "15min"), 900.0)
    # ...but it covers a 365-day scenario
    p_kw = load_profile_kw(path, "pv_kwh", _index(365 * 96, "15min"), 900.0)
    assert p_kw.sum() * 0.25 == pytest.approx(8760.0)


def test_naive_scenario_index_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    pd.DataFrame({"pv_kw": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="timezone-aware"):
        load_profile_kw(path, "pv_kw", pd.date_range("2024-01-01", periods=2, freq="1h"), 3600.0)

"""Unit tests for twin.components.mall.mall_kw (default Iquitos mall, year 2024)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from twin.components.mall import MallParams, activity_shape, mall_kw

TZ = "America/Lima"
PARAMS = MallParams()
YEAR_15MIN = pd.date_range("2024-01-01", periods=35136, freq="15min", tz=TZ)


@pytest.fixture(scope="module")
def year() -> pd.Series:
    p = mall_kw(YEAR_15MIN, 900.0, PARAMS, np.random.default_rng(2024))
    return pd.Series(p, index=YEAR_15MIN)


def test_shape_dtype_and_positive(year: pd.Series) -> None:
    p = year.to_numpy()
    assert p.shape == (35136,)
    assert p.dtype == np.float64
    assert np.all(np.isfinite(p))
    assert p.min() > 0.0


def test_mean_daily_energy_is_exact(year: pd.Series) -> None:
    e_kwh = year.sum() * 0.25
    assert e_kwh / 366 == pytest.approx(PARAMS.e_day_kwh, rel=1e-12)


def test_annual_energy_is_plausible(year: pd.Series) -> None:
    assert 10e6 <= year.sum() * 0.25 <= 14e6


def test_peak_above_1900_kw_on_most_days(year: pd.Series) -> None:
    daily_peak = year.resample("D").max()
    assert len(daily_peak) == 366
    assert (daily_peak > 1900.0).mean() > 0.5


def test_weekend_is_lower(year: pd.Series) -> None:
    daily_kwh = year.resample("D").sum() * 0.25
    daily_peak = year.resample("D").max()
    weekend = pd.DatetimeIndex(daily_kwh.index).day_of_week >= 5
    assert daily_kwh[weekend].mean() < daily_kwh[~weekend].mean()
    assert daily_peak[weekend].mean() < daily_peak[~weekend].mean()


def test_daily_shape_night_base_and_afternoon_peak(year: pd.Series) -> None:
    by_hour = year.groupby(YEAR_15MIN.hour).mean()
    night = by_hour.loc[0:6].mean()
    assert 0.2 * by_hour.max() < night < 0.6 * by_hour.max()  # refrigeration, security, AC
    assert 13 <= int(by_hour.to_numpy().argmax()) <= 17  # AC-driven afternoon peak
    assert by_hour[10] > night * 1.5  # open
    assert by_hour[23] < by_hour[21]  # closed again


def test_same_seed_identical_other_seed_different() -> None:
    index = YEAR_15MIN[: 14 * 96]
    a = mall_kw(index, 900.0, PARAMS, np.random.default_rng(5))
    b = mall_kw(index, 900.0, PARAMS, np.random.default_rng(5))
    c = mall_kw(index, 900.0, PARAMS, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(("freq", "dt_s"), [("1min", 60.0), ("1h", 3600.0)])
def test_other_steps_keep_the_daily_energy(freq: str, dt_s: float) -> None:
    n = round(28 * 86400 / dt_s)
    index = pd.date_range("2024-02-01", periods=n, freq=freq, tz=TZ)
    p = mall_kw(index, dt_s, PARAMS, np.random.default_rng(1))
    assert p.sum() * dt_s / 3600 / 28 == pytest.approx(PARAMS.e_day_kwh, rel=1e-12)


def test_partial_day_horizon_is_a_slice_of_the_whole_day() -> None:
    day = YEAR_15MIN[96 * 10 : 96 * 11]
    whole = mall_kw(day, 900.0, PARAMS, np.random.default_rng(3))
    part = mall_kw(day[40:48], 900.0, PARAMS, np.random.default_rng(3))  # 10:00-12:00
    np.testing.assert_array_equal(part, whole[40:48])


def test_daily_energy_parameter_scales_the_profile() -> None:
    index = YEAR_15MIN[: 7 * 96]
    small = replace(PARAMS, e_day_kwh=30000.0)
    p = mall_kw(index, 900.0, small, np.random.default_rng(0))
    assert p.sum() * 0.25 / 7 == pytest.approx(30000.0, rel=1e-12)


def test_activity_shape_is_zero_when_closed_and_one_at_peak() -> None:
    h = np.arange(0.0, 24.0, 1.0 / 60.0)
    g = activity_shape(h, PARAMS)
    assert g.max() == pytest.approx(1.0, abs=1e-4)
    closed = (h < PARAMS.open_hour - PARAMS.preopen_h) | (
        h > PARAMS.close_hour + PARAMS.postclose_h
    )
    assert np.all(g[closed] == 0.0)


def test_inconsistent_parameters_are_rejected() -> None:
    index = YEAR_15MIN[:96]
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="night base load"):
        mall_kw(index, 900.0, replace(PARAMS, p_peak_kw=500.0), rng)
    with pytest.raises(ValueError, match="timezone-aware"):
        mall_kw(index.tz_localize(None), 900.0, PARAMS, rng)
    with pytest.raises(ValueError, match="evenly spaced"):
        mall_kw(index, 60.0, PARAMS, rng)

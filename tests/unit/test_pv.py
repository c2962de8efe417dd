"""Unit tests for twin.components.pv.pv_ac_kw (default Iquitos plant, year 2024)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from twin.components.pv import PvParams, pv_ac_kw

TZ = "America/Lima"
PARAMS = PvParams()


def _index(periods: int, freq: str, start: str = "2024-01-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq=freq, tz=TZ)


YEAR_15MIN = _index(35136, "15min")


@pytest.fixture(scope="module")
def year_15min() -> np.ndarray:
    return pv_ac_kw(YEAR_15MIN, 900.0, PARAMS, np.random.default_rng(2024))


@pytest.fixture(scope="module")
def year_1min() -> np.ndarray:
    return pv_ac_kw(_index(527040, "1min"), 60.0, PARAMS, np.random.default_rng(2024))


def test_shape_and_dtype(year_15min: np.ndarray) -> None:
    assert year_15min.shape == (35136,)
    assert year_15min.dtype == np.float64
    assert np.all(np.isfinite(year_15min))


def test_annual_specific_yield_is_plausible_for_iquitos(year_15min: np.ndarray) -> None:
    e_kwh = year_15min.sum() * 0.25
    yield_kwh_per_kwp = e_kwh / PARAMS.p_dc_kwp
    assert 1100.0 <= yield_kwh_per_kwp <= 1600.0


def test_zero_at_night(year_15min: np.ndarray) -> None:
    hour = YEAR_15MIN.hour
    night = (hour < 5) | (hour >= 19)  # sunrise ~05:50-06:20, sunset ~17:50-18:30 local
    assert np.all(year_15min[night] == 0.0)
    noon = hour == 12
    assert np.mean(year_15min[noon] > 0.0) == 1.0


def test_never_negative_nor_above_ac_limit_and_peak_near_it(
    year_15min: np.ndarray, year_1min: np.ndarray
) -> None:
    for p in (year_15min, year_1min):
        assert p.min() >= 0.0
        assert p.max() <= PARAMS.p_ac_max_kw
    assert year_15min.max() > 0.8 * PARAMS.p_ac_max_kw


def test_inverter_clips_at_ac_limit() -> None:
    small_inverter = replace(PARAMS, p_ac_max_kw=2000.0)
    index = _index(30 * 96, "15min")
    p = pv_ac_kw(index, 900.0, small_inverter, np.random.default_rng(1))
    assert p.max() == pytest.approx(2000.0)
    assert np.all(p <= 2000.0)


def test_same_seed_identical_other_seed_different() -> None:
    index = _index(14 * 96, "15min", "2024-07-01")
    a = pv_ac_kw(index, 900.0, PARAMS, np.random.default_rng(7))
    b = pv_ac_kw(index, 900.0, PARAMS, np.random.default_rng(7))
    c = pv_ac_kw(index, 900.0, PARAMS, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_one_minute_and_15_minute_give_the_same_annual_energy(
    year_15min: np.ndarray, year_1min: np.ndarray
) -> None:
    e15 = year_15min.sum() * 0.25
    e1 = year_1min.sum() / 60.0
    assert e1 == pytest.approx(e15, rel=0.01)


def test_hourly_steps_give_the_same_annual_energy(year_15min: np.ndarray) -> None:
    hourly = pv_ac_kw(_index(8784, "1h"), 3600.0, PARAMS, np.random.default_rng(2024))
    assert hourly.sum() == pytest.approx(year_15min.sum() * 0.25, rel=0.01)


def test_15min_is_close_to_the_mean_of_1min(year_15min: np.ndarray, year_1min: np.ndarray) -> None:
    # same seed, same cloud realisation: daily energies agree closely
    d15 = year_15min.reshape(366, 96).sum(axis=1) * 0.25
    d1 = year_1min.reshape(366, 1440).sum(axis=1) / 60.0
    np.testing.assert_allclose(d1, d15, rtol=0.01, atol=10.0)


def test_days_vary_but_none_is_pitch_dark(year_15min: np.ndarray) -> None:
    daily_kwh_per_kwp = year_15min.reshape(366, 96).sum(axis=1) * 0.25 / PARAMS.p_dc_kwp
    assert daily_kwh_per_kwp.min() > 0.3
    assert daily_kwh_per_kwp.max() < 5.5
    assert daily_kwh_per_kwp.std() > 0.3  # cloudy and clear days both occur


def test_afternoon_is_cloudier_than_morning(year_15min: np.ndarray) -> None:
    # symmetric around solar noon (~11:55 local): 09:00-10:00 vs 14:00-15:00 hold similar
    # clear-sky irradiance, the convective afternoon should yield less
    hour = YEAR_15MIN.hour
    morning = year_15min[hour == 9].mean()
    afternoon = year_15min[hour == 14].mean()
    assert afternoon < morning


def test_start_off_midnight_and_short_horizon() -> None:
    index = _index(7, "1h", "2024-03-15 06:00")
    p = pv_ac_kw(index, 3600.0, PARAMS, np.random.default_rng(0))
    assert p.shape == (7,)
    assert np.all(p[1:] > 0.0)


def test_bad_input_is_rejected() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        pv_ac_kw(pd.date_range("2024-01-01", periods=4, freq="1h"), 3600.0, PARAMS, rng)
    with pytest.raises(ValueError, match="evenly spaced"):
        pv_ac_kw(_index(4, "1h"), 900.0, PARAMS, rng)
    with pytest.raises(ValueError, match="kt_std"):
        pv_ac_kw(_index(4, "1h"), 3600.0, replace(PARAMS, kt_std=0.6), rng)


def test_monthly_climatology_shapes_the_year() -> None:
    """Monthly GHI targets move the monthly clear-sky index the way the climate does."""
    from twin.components.pv import monthly_kt_mean
    from twin.config import IQUITOS_GHI_MONTHLY_KWH_M2_DAY

    flat = PvParams()
    assert (monthly_kt_mean(flat) == flat.kt_mean).all()
    g = IQUITOS_GHI_MONTHLY_KWH_M2_DAY
    kt = monthly_kt_mean(PvParams(ghi_monthly_kwh_m2_day=g))
    # dry season (Aug-Sep) clearer than the rainy months (Mar-May)
    assert kt[7:9].mean() > kt[2:5].mean() + 0.05
    # a year of daily energies: the clearest target month yields more than the darkest
    idx = pd.date_range("2024-01-01", periods=366 * 24, freq="1h", tz="America/Lima")
    p = pv_ac_kw(idx, 3600.0, PvParams(ghi_monthly_kwh_m2_day=g), np.random.default_rng(3))
    monthly = pd.Series(p, index=idx).groupby(idx.month).mean()
    assert monthly[9] > monthly[5] * 1.08
    with pytest.raises(ValueError, match="12 positive"):
        pv_ac_kw(idx[:48], 3600.0, PvParams(ghi_monthly_kwh_m2_day=(4.0,) * 11),
                 np.random.default_rng(0))


# ------------------------------------------------------------ monthly GHI targets (issue 19)
DAYS_2024 = np.array([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)


def _monthly_ghi_kwh_m2_day(idx: pd.DatetimeIndex, dt_s: float, params: PvParams,
                            seed: int) -> np.ndarray:
    from twin.components.pv import pv_ghi_w_m2

    g = pv_ghi_w_m2(idx, dt_s, params, np.random.default_rng(seed))
    kwh_m2 = pd.Series(g * dt_s / 3.6e6).groupby(idx.month).sum().to_numpy()
    return kwh_m2 / DAYS_2024


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_produced_monthly_ghi_meets_the_targets_within_2_percent(seed: int) -> None:
    """A year per seed: every month's GHI of the cloud model within 2 % of its target."""
    from twin.config import IQUITOS_GHI_MONTHLY_KWH_M2_DAY as TARGET

    idx = _index(366 * 24, "1h")
    got = _monthly_ghi_kwh_m2_day(idx, 3600.0, PvParams(ghi_monthly_kwh_m2_day=TARGET), seed)
    rel = got / np.asarray(TARGET) - 1.0
    assert np.abs(rel).max() <= 0.02, dict(zip(range(1, 13), np.round(rel, 4), strict=True))


def test_ghi_and_power_share_the_clouds_and_steps_agree() -> None:
    """pv_ghi_w_m2 is the GHI behind pv_ac_kw (same rng -> same clouds); 15 min and 1 h
    runs of the same seed give the same monthly GHI."""
    from twin.components.pv import pv_ghi_w_m2
    from twin.config import IQUITOS_GHI_MONTHLY_KWH_M2_DAY as TARGET

    p = PvParams(ghi_monthly_kwh_m2_day=TARGET)
    idx = _index(14 * 96, "15min", start="2024-06-10")
    ghi = pv_ghi_w_m2(idx, 900.0, p, np.random.default_rng(7))
    ac = pv_ac_kw(idx, 900.0, p, np.random.default_rng(7))
    assert np.all(ac[ghi == 0.0] == 0.0) and np.all(ghi[ac > 0.0] > 0.0)
    assert np.corrcoef(ghi, ac)[0, 1] > 0.98
    m15 = _monthly_ghi_kwh_m2_day(_index(366 * 96, "15min"), 900.0, p, 11)
    m60 = _monthly_ghi_kwh_m2_day(_index(366 * 24, "1h"), 3600.0, p, 11)
    assert np.allclose(m15, m60, rtol=1e-3)


def test_calibrated_clouds_keep_day_to_day_variability_and_determinism() -> None:
    """The per-month rescaling keeps the weather: daily GHI varies within each month as a
    humid tropical site's does; same seed -> bit-identical, another seed -> other days."""
    from twin.components.pv import pv_ghi_w_m2
    from twin.config import IQUITOS_GHI_MONTHLY_KWH_M2_DAY as TARGET

    p = PvParams(ghi_monthly_kwh_m2_day=TARGET)
    idx = _index(366 * 24, "1h")
    a = pv_ghi_w_m2(idx, 3600.0, p, np.random.default_rng(4))
    assert np.array_equal(a, pv_ghi_w_m2(idx, 3600.0, p, np.random.default_rng(4)))
    b = pv_ghi_w_m2(idx, 3600.0, p, np.random.default_rng(5))
    daily_a = pd.Series(a, index=idx).resample("D").sum() / 1000.0
    daily_b = pd.Series(b, index=idx).resample("D").sum() / 1000.0
    cv = (daily_a.groupby(daily_a.index.month).std()
          / daily_a.groupby(daily_a.index.month).mean())
    assert cv.min() > 0.10 and cv.max() < 0.40  # the PVGIS TMY: 0.21 on average
    assert np.abs(daily_a - daily_b).mean() > 0.5  # [kWh/m²/day]: other weather


def test_targets_are_the_shipped_pvgis_tmy_monthly_means() -> None:
    """The default targets (twin.config and config/site.yaml) are the monthly means of
    data/weather/iquitos_pvgis_tmy.csv, whose annual GHI is the PVGIS 1,668 kWh/m²."""
    import yaml

    from tests.conftest import ROOT
    from twin.config import IQUITOS_GHI_MONTHLY_KWH_M2_DAY as TARGET

    tmy = pd.read_csv(ROOT / "data" / "weather" / "iquitos_pvgis_tmy.csv")
    assert len(tmy) == 8760 and tmy["ghi_w_m2"].min() >= 0.0
    assert tmy["ghi_w_m2"].sum() / 1000.0 == pytest.approx(1668.1, abs=0.1)
    by_month = tmy.groupby("month")
    tmy_monthly = (by_month["ghi_w_m2"].sum() / 1000.0 / (by_month.size() / 24.0)).to_numpy()
    assert np.allclose(TARGET, tmy_monthly, atol=5e-4)
    site = yaml.safe_load((ROOT / "config" / "site.yaml").read_text())
    assert site["pv"]["ghi_monthly_kwh_m2_day"] == pytest.approx(list(TARGET), abs=1e-9)


def test_a_run_inside_a_month_sees_that_months_weather() -> None:
    """A short run starting mid-month draws its month whole: its days are ordinary days of
    that month (not rescaled to the month's mean), and the same dates from the same seed
    are the same clouds whatever the run's step."""
    from twin.components.pv import pv_ghi_w_m2
    from twin.config import IQUITOS_GHI_MONTHLY_KWH_M2_DAY as TARGET

    p = PvParams(ghi_monthly_kwh_m2_day=TARGET)
    days = []
    for seed in range(12):
        g = pv_ghi_w_m2(_index(24, "1h", start="2024-09-17"), 3600.0, p,
                        np.random.default_rng(seed))
        days.append(g.sum() / 1000.0)
    assert np.std(days) > 0.4  # [kWh/m²/day]: single days vary
    assert abs(np.mean(days) / TARGET[8] - 1.0) < 0.15
    g60 = pv_ghi_w_m2(_index(48, "1h", start="2024-09-17"), 3600.0, p, np.random.default_rng(3))
    g15 = pv_ghi_w_m2(_index(192, "15min", start="2024-09-17"), 900.0, p,
                      np.random.default_rng(3))
    assert g60.sum() == pytest.approx(g15.sum() / 4.0, rel=2e-3)

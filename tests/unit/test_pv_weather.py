"""The PV chain on given weather (what ``twin calibrate`` runs) is the twin's own chain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.components.pv import PvParams, pv_ac_kw, pv_chain_kw, pv_weather, pv_weather_cached

IDX = pd.date_range("2024-03-04", periods=2 * 96, freq="15min", tz="America/Lima")


def test_chain_on_the_models_weather_is_the_models_power() -> None:
    prm = PvParams()
    p = pv_ac_kw(IDX, 900.0, prm, np.random.default_rng(7))
    ghi, t_air = pv_weather(IDX, 900.0, prm, np.random.default_rng(7))
    mid = pd.DatetimeIndex(IDX + pd.Timedelta(seconds=450))
    dc, ac = pv_chain_kw(mid, ghi, t_air, prm)
    assert np.array_equal(np.clip(ac, 0.0, prm.p_ac_max_kw), p)
    assert p.max() > 0.5 * prm.p_ac_max_kw and (dc >= 0).all()
    assert t_air.min() > 20.0 and t_air.max() < 33.0 and ghi.max() > 600.0


def test_weather_cache_returns_the_same_and_survives_damage(tmp_path: Path) -> None:
    prm = PvParams()
    want = pv_weather(IDX, 900.0, prm, np.random.default_rng(3))
    got = pv_weather_cached(IDX, 900.0, prm, np.random.default_rng(3), folder=tmp_path)
    files = list((tmp_path / "pv").glob("*.weather.npz"))
    assert len(files) == 1 and all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    files[0].write_bytes(b"not a zip")
    again = pv_weather_cached(IDX, 900.0, prm, np.random.default_rng(3), folder=tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(want, again, strict=True))
    other = pv_weather_cached(IDX, 900.0, prm, np.random.default_rng(4), folder=tmp_path)
    assert not np.array_equal(other[0], want[0])

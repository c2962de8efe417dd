"""Measured inputs (issue 18, point 1): weather files, measured series, session logs.

Bad files end in one clear line naming the file, the data row and the column (exit 2);
good files conserve energy when resampled, fill short gaps (counted in the summary) and
place a typical year on the run's years.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.robustness.conftest import day_scenario
from twin.app.cli import main
from twin.components.measured import read_measured
from twin.components.weather import read_weather, weather_on_run
from twin.config import WeatherConfig, load_scenario

ROOT = Path(__file__).resolve().parents[2]
TMY = ROOT / "data" / "weather" / "iquitos_pvgis_tmy.csv"
TZ = "America/Lima"
#: the one-day scenario's steps (2024-03-04, 1 h)
START = pd.Timestamp("2024-03-04T00:00", tz=TZ)


def _series(tmp: Path, step: str = "15min", days: float = 1.0, **cols: Any) -> Path:
    ts = pd.date_range(START, periods=int(days * 86400 / pd.Timedelta(step).total_seconds()),
                       freq=step)
    n = len(ts)
    hour = ts.hour.to_numpy() + ts.minute.to_numpy() / 60
    data: dict[str, Any] = {"timestamp": [t.isoformat() for t in ts],
                            "p_pv_kw": np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 2000,
                            "p_mall_kw": np.full(n, 1200.0)}
    data.update({k: (v(n) if callable(v) else v) for k, v in cols.items()})
    p = tmp / "measured.csv"
    pd.DataFrame(data).to_csv(p, index=False)
    return p


def _validate_fails(capsys: pytest.CaptureFixture[str], scn: Path, *needles: str) -> str:
    assert main(["validate", str(scn)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one line, no traceback
    for n in needles:
        assert n in err, err
    return err


def _measured_scn(tmp: Path, path: Path, **m: Any) -> Path:
    return day_scenario(tmp, measured={"file": str(path), **m})


def _weather_scn(tmp: Path, path: Path, **w: Any) -> Path:
    return day_scenario(tmp, weather={"source": "file", "file": str(path), **w})


def _weather_csv(tmp: Path, **over: Any) -> Path:
    ts = pd.date_range("2024-03-03T00:00", periods=72, freq="1h", tz="UTC")
    hour = ((ts.hour.to_numpy() - 5) % 24).astype(float)
    ghi = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 900.0
    data: dict[str, Any] = {"timestamp": [t.isoformat() for t in ts], "ghi_w_m2": ghi,
                            "temp_air_c": np.full(72, 27.0)}
    data.update(over)
    p = tmp / "weather.csv"
    pd.DataFrame(data).to_csv(p, index=False)
    return p


# ------------------------------------------------------------------ bad measured series
def test_naive_timestamps_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p)
    df["timestamp"] = pd.date_range("2024-03-04", periods=len(df), freq="15min").astype(str)
    df.to_csv(p, index=False)
    _validate_fails(capsys, _measured_scn(tmp_path, p), str(p), "data row 1",
                    "column 'timestamp'", "naive")


def test_duplicate_timestamp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p)
    df.loc[10, "timestamp"] = df.loc[9, "timestamp"]
    df.to_csv(p, index=False)
    _validate_fails(capsys, _measured_scn(tmp_path, p), "data row 11", "duplicate")


def test_timestamps_going_backwards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p)
    df.loc[[20, 21], "timestamp"] = df.loc[[21, 20], "timestamp"].to_numpy()
    df.to_csv(p, index=False)
    _validate_fails(capsys, _measured_scn(tmp_path, p), "data row 22", "backwards")


def test_gap_longer_than_the_fill_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p).drop(index=range(30, 36))  # 6 missing 15-min rows, limit 4
    df.to_csv(p, index=False)
    _validate_fails(capsys, _measured_scn(tmp_path, p), "data row 31", "6 missing step",
                    "fill_max_steps")


def test_empty_cells_longer_than_the_fill_limit(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p)
    df.loc[40:45, "p_mall_kw"] = np.nan
    df.to_csv(p, index=False)
    _validate_fails(capsys, _measured_scn(tmp_path, p), "data row 41", "column 'p_mall_kw'")


def test_negative_pv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p)
    df.loc[50, "p_pv_kw"] = -30.0
    df.to_csv(p, index=False)
    _validate_fails(capsys, _measured_scn(tmp_path, p), "data row 51", "column 'p_pv_kw'",
                    "negative")


def test_power_in_watts_is_absurd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path, p_mall_kw=np.full(96, 1.2e6))  # W written as kW
    _validate_fails(capsys, _measured_scn(tmp_path, p), "data row 1", "column 'p_mall_kw'",
                    "in W")


def test_soc_as_a_fraction_is_a_wrong_unit(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path, soc_percent=np.full(96, 0.5))
    _validate_fails(capsys, _measured_scn(tmp_path, p), "column 'soc_percent'", "fraction")


def test_file_not_covering_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path, days=0.5)
    _validate_fails(capsys, _measured_scn(tmp_path, p), str(p), "the run needs")


def test_irregular_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p)
    df.loc[5, "timestamp"] = "2024-03-04T01:20:00-05:00"
    df.to_csv(p, index=False)
    _validate_fails(capsys, _measured_scn(tmp_path, p), "data row 6", "regular step")


# ------------------------------------------------------------------ bad weather files
def test_weather_in_kw_declared_as_w(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _weather_csv(tmp_path)
    df = pd.read_csv(p).rename(columns={"ghi_w_m2": "ghi"})
    df["ghi"] /= 1000.0
    df.to_csv(p, index=False)
    _validate_fails(capsys, _weather_scn(tmp_path, p), str(p), "column 'ghi'", "kW/m")


def test_weather_unit_in_name_contradicts_the_declared_unit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _weather_csv(tmp_path)
    _validate_fails(capsys, _weather_scn(tmp_path, p, irradiance_unit="kW/m2"),
                    "column 'ghi_w_m2'", "contradicts")


def test_weather_kelvin_declared_as_celsius(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    p = _weather_csv(tmp_path, temp_air_c=np.full(72, 300.15))
    _validate_fails(capsys, _weather_scn(tmp_path, p), "data row 1", "column 'temp_air_c'",
                    "Kelvin")


def test_weather_absurd_irradiance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _weather_csv(tmp_path)
    df = pd.read_csv(p)
    df.loc[40, "ghi_w_m2"] = 5000.0
    df.to_csv(p, index=False)
    _validate_fails(capsys, _weather_scn(tmp_path, p), "data row 41", "column 'ghi_w_m2'")


def test_weather_naive_without_timezone(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    p = _weather_csv(tmp_path)
    df = pd.read_csv(p)
    df["timestamp"] = df["timestamp"].str[:19]
    df.to_csv(p, index=False)
    _validate_fails(capsys, _weather_scn(tmp_path, p), "column 'timestamp'", "naive")


def test_weather_gap_and_duplicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _weather_csv(tmp_path)
    pd.read_csv(p).drop(index=range(30, 35)).to_csv(p, index=False)
    _validate_fails(capsys, _weather_scn(tmp_path, p), "data row 31", "max_gap")
    df = _weather_csv(tmp_path)
    d = pd.read_csv(df)
    d.loc[12, "timestamp"] = d.loc[11, "timestamp"]
    d.to_csv(df, index=False)
    _validate_fails(capsys, _weather_scn(tmp_path, df), "data row 13", "duplicate")


# ------------------------------------------------------------------ bad session logs
def _log(tmp: Path, rows: list[tuple[Any, ...]], cols: tuple[str, ...] = (
        "arrival", "departure", "socket", "e_delivered_kwh")) -> Path:
    p = tmp / "sessions.csv"
    pd.DataFrame(rows, columns=list(cols)).to_csv(p, index=False)
    return p


def _sessions_scn(tmp: Path, p: Path) -> Path:
    site = yaml.safe_load((ROOT / "config" / "site.yaml").read_text())
    site["ev"].update(source="sessions_file", sessions_file=str(p))
    (tmp / "site.yaml").write_text(yaml.safe_dump(site))
    return day_scenario(tmp, site=str(tmp / "site.yaml"))


def test_session_log_naive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _log(tmp_path, [("2024-03-04 10:00", "2024-03-04 11:00", 0, 2.0)])
    _validate_fails(capsys, _sessions_scn(tmp_path, p), "data row 1", "column 'arrival'",
                    "naive")


def test_session_log_wh_instead_of_kwh(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    p = _log(tmp_path, [("2024-03-04T10:00-05:00", "2024-03-04T11:00-05:00", 0, 2.0),
                        ("2024-03-04T12:00-05:00", "2024-03-04T13:00-05:00", 1, 2500.0)])
    _validate_fails(capsys, _sessions_scn(tmp_path, p), "data row 2",
                    "column 'e_delivered_kwh'", "Wh")


def test_session_log_duplicate_and_bad_socket(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    row = ("2024-03-04T10:00-05:00", "2024-03-04T11:00-05:00", 3, 2.0)
    _validate_fails(capsys, _sessions_scn(tmp_path, _log(tmp_path, [row, row])), "data row 2",
                    "duplicate")
    bad = ("2024-03-04T10:00-05:00", "2024-03-04T11:00-05:00", 9999, 2.0)
    _validate_fails(capsys, _sessions_scn(tmp_path, _log(tmp_path, [bad])), "data row 1",
                    "column 'socket'")


# ------------------------------------------------------------------ good files
@pytest.mark.parametrize("step", ["5min", "1h", "15min"])
def test_resampling_conserves_energy(tmp_path: Path, step: str) -> None:
    """A finer (5 min) and a coarser (1 h) file into 15-min ticks keep every kWh."""
    p = _series(tmp_path, step=step, grid_import_kwh=lambda n: np.arange(n, dtype=float))
    df = pd.read_csv(p)
    idx = pd.date_range(START, periods=96, freq="15min")
    m = read_measured(p, idx, 900.0)
    file_h = pd.Timedelta(step).total_seconds() / 3600
    for ch, col in (("pv", "p_pv_kw"), ("mall", "p_mall_kw")):
        assert m.values[ch].sum() * 0.25 == pytest.approx(df[col].sum() * file_h, rel=1e-12)
    # energies per file interval (_kwh) become mean power and keep their sum
    assert m.values["grid_import"].sum() * 0.25 == pytest.approx(df["grid_import_kwh"].sum())


def test_short_gaps_filled_and_counted(tmp_path: Path) -> None:
    p = _series(tmp_path)
    df = pd.read_csv(p).drop(index=[30, 31])  # 2 missing rows
    df.loc[60, "p_mall_kw"] = np.nan  # 1 empty cell
    df.to_csv(p, index=False)
    out = tmp_path / "run"
    assert main(["run", str(_measured_scn(tmp_path, p)), "--out", str(out), "-q"]) == 0
    s = json.loads((out / "summary.json").read_text())
    # two channels x two missing rows + one empty cell
    assert s["input_filled_values"] == 5
    assert s["mall_kwh"] == pytest.approx(1200.0 * 24)  # a constant stays constant when filled


def test_twin_timeseries_is_a_measured_file(tmp_path: Path) -> None:
    """The twin's own timeseries (its column names) reads back as measured series."""
    out = tmp_path / "run"
    assert main(["run", str(day_scenario(tmp_path)), "--out", str(out), "-q"]) == 0
    ts = pd.read_parquet(out / "timeseries.parquet")
    scn = load_scenario(day_scenario(tmp_path))
    m = read_measured(out / "timeseries.parquet", scn.index, scn.config.dt)
    assert set(m.values) == {"pv", "mall", "bess", "soc", "grid_import"}
    np.testing.assert_allclose(m.values["pv"], ts["pv_kwh"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.values["bess"], ts["p_bess_kw"].to_numpy(), rtol=1e-6)


def test_tmy_feb29_repeats_feb28_and_pvgis_json_equals_the_csv(tmp_path: Path) -> None:
    spec = WeatherConfig(source="tmy", file=TMY, timezone="UTC")
    w = read_weather(spec)
    idx = pd.date_range("2024-02-27", periods=4 * 24, freq="1h", tz=TZ)
    f = weather_on_run(w, spec, idx, 3600.0)
    feb28 = f.loc["2024-02-28T00:00Z":"2024-02-28T23:00Z", "ghi"].to_numpy()  # type: ignore[misc]
    feb29 = f.loc["2024-02-29T00:00Z":"2024-02-29T23:00Z", "ghi"].to_numpy()  # type: ignore[misc]
    assert feb28.max() > 500 and np.array_equal(feb28, feb29)
    # the same TMY as PVGIS serves it (JSON, months from different years) gives the same sun
    src = pd.read_csv(TMY)
    stamps = [f"{2005 + m}{m:02d}{d:02d}:{h:02d}00" for m, d, h in
              zip(src["month"], src["day"], src["hour_utc"], strict=True)]
    hourly = [{"time(UTC)": t, "T2m": a, "RH": 80.0, "G(h)": g, "Gb(n)": b, "Gd(h)": dh,
               "IR(h)": 400.0, "WS10m": ws, "WD10m": 90.0, "SP": 100000.0}
              for t, a, g, b, dh, ws in zip(stamps, src["temp_air_c"], src["ghi_w_m2"],
                                            src["dni_w_m2"], src["dhi_w_m2"],
                                            src["wind_speed_m_s"], strict=True)]
    doc = {"inputs": {"location": {"latitude": -3.75, "longitude": -73.25, "elevation": 106}},
           "outputs": {"months_selected": [{"month": m, "year": 2005 + m} for m in range(1, 13)],
                       "tmy_hourly": hourly},
           "meta": {"inputs": {}}}
    j = tmp_path / "tmy.json"
    j.write_text(json.dumps(doc))
    fj = weather_on_run(read_weather(WeatherConfig(source="tmy", file=j)), WeatherConfig(
        source="tmy", file=j), idx, 3600.0)
    common = f.index.intersection(fj.index)
    assert len(common) > 90
    np.testing.assert_allclose(fj.loc[common, "ghi"], f.loc[common, "ghi"])


def test_annual_scenario_runs_on_the_tmy() -> None:
    scn = load_scenario(ROOT / "scenarios" / "annual.yaml", {"duration": "2d"})
    w = scn.config.weather
    assert w.source == "tmy" and w.file is not None and w.file.resolve() == TMY
    from twin.components.inputs import build_inputs

    inp = build_inputs(scn)
    assert inp.ghi_w_m2 is not None
    g = pd.read_csv(TMY)
    jan12 = g[(g["month"] == 1) & g["day"].isin([1, 2])]["ghi_w_m2"].sum() / 1000  # kWh/m²
    # the run's two local days against the file's two UTC days: within 3 % (5 h shift)
    assert inp.ghi_w_m2.sum() * 0.25 / 1000 == pytest.approx(jan12, rel=0.03)
    assert 0 < inp.p_pv_kw.max() <= scn.site.pv.p_ac_max_kw


def test_trials_over_seeds_run_the_cloud_model_not_the_tmy() -> None:
    """One TMY gives every seed the same sun: a trial over N >= 2 seeds runs the cloud model."""
    from twin.config import seeds_weather

    scn = load_scenario(ROOT / "scenarios" / "annual.yaml")
    sets, note = seeds_weather(scn, 20)
    assert sets == {"weather.source": "model"} and note and "synthetic cloud model" in note
    assert seeds_weather(scn, 1) == ({}, None)
    two = load_scenario(ROOT / "scenarios" / "annual.yaml", {**sets, "duration": "1d"})
    from twin.components.inputs import build_inputs

    assert build_inputs(two).ghi_w_m2 is None  # the cloud model ran

"""The weather-file PV chain is cached like the model PV: a hit is bit-identical and skips
the file and pvlib; a changed file, ``weather:`` field or PV parameter is a new key; a
damaged or out-of-range entry is recomputed, never trusted, never a crash."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twin.components import pv, weather
from twin.components.inputs import build_inputs, pv_params
from twin.config import load_scenario

ROOT = Path(__file__).resolve().parents[2]
TMY = ROOT / "data" / "weather" / "iquitos_pvgis_tmy.csv"
WEATHER = {"source": "tmy", "file": "tmy.csv", "format": "csv", "timezone": "UTC",
           "irradiance_unit": "W/m2", "temperature_unit": "C", "time_label": "instant"}


@pytest.fixture
def tmy_scenario(tmp_path: Path, make_scenario: Any, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A 2-day scenario on a copy of the shipped TMY, its cache in ``tmp_path/cache``."""
    shutil.copy(TMY, tmp_path / "tmy.csv")
    monkeypatch.setenv(pv.CACHE_ENV, str(tmp_path / "cache"))

    def make(**weather_fields: Any) -> Any:
        return load_scenario(make_scenario(weather={**WEATHER, **weather_fields}))

    return make


def _arrays(inp: Any) -> bytes:
    return inp.p_pv_kw.tobytes() + inp.ghi_w_m2.tobytes() + inp.t_air_c.tobytes()


def _entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "pv").glob("*.tmy.npz"))


def _uncached(scn: Any, monkeypatch: pytest.MonkeyPatch) -> bytes:
    with monkeypatch.context() as m:
        m.setenv(pv.CACHE_ENV, "off")
        return _arrays(build_inputs(scn))


def test_hit_is_identical_and_reads_neither_file_nor_pvlib(
        tmy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scn = tmy_scenario()
    fresh = _uncached(scn, monkeypatch)
    first = build_inputs(scn)
    assert len(_entries(tmp_path)) == 1
    assert _entries(tmp_path)[0].name.startswith(
        weather.weather_pv_key(scn.config.weather, scn.index, scn.config.dt, pv_params(scn.site)))

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("the weather file was read although cached")

    monkeypatch.setattr(weather, "read_weather", boom)
    monkeypatch.setattr(weather, "pv_from_weather", boom)
    hit = build_inputs(scn)
    assert _arrays(hit) == _arrays(first) == fresh  # bit-identical
    assert hit.input_filled_values == first.input_filled_values


def test_an_edited_file_is_a_new_key_and_recomputed(
        tmy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scn = tmy_scenario()
    before = _arrays(build_inputs(scn))
    # the same file with the GHI of every row doubled (capped): other weather, same size
    lines = (tmp_path / "tmy.csv").read_text().splitlines()
    head = lines[0].split(",")
    g = head.index("ghi_w_m2")
    out = [lines[0]]
    for line in lines[1:]:
        c = line.split(",")
        c[g] = f"{min(float(c[g]) * 1.5, 1400.0):g}"
        out.append(",".join(c))
    (tmp_path / "tmy.csv").write_text("\n".join(out) + "\n")
    after = _arrays(build_inputs(scn))
    assert after != before  # not the stale entry
    assert after == _uncached(scn, monkeypatch)
    assert len(_entries(tmp_path)) == 2


@pytest.mark.parametrize("change", ["time_label", "fill_max_rows", "pv_param", "dt"])
def test_every_input_changes_the_key(tmy_scenario: Any, change: str) -> None:
    scn = tmy_scenario()
    w, idx, dt, prm = scn.config.weather, scn.index, scn.config.dt, pv_params(scn.site)
    base = weather.weather_pv_key(w, idx, dt, prm)
    assert base is not None
    if change == "time_label":
        w = tmy_scenario(time_label="interval_start").config.weather
    elif change == "fill_max_rows":
        w = tmy_scenario(fill_max_rows=5).config.weather
    elif change == "pv_param":
        import dataclasses

        prm = dataclasses.replace(prm, tilt_deg=prm.tilt_deg + 1.0)
    else:
        dt = 300.0
    assert weather.weather_pv_key(w, idx, dt, prm) != base


def test_the_weather_code_is_part_of_the_key(tmy_scenario: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    scn = tmy_scenario()
    args = (scn.config.weather, scn.index, scn.config.dt, pv_params(scn.site))
    base = weather.weather_pv_key(*args)
    monkeypatch.setattr(pv, "_MODEL_SOURCES", ("pv.py", "noise.py"))
    assert weather.weather_pv_key(*args) != base


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "out_of_range",
                                    "wrong_shape", "foreign_key"])
def test_a_damaged_entry_is_recomputed_not_trusted(
        tmy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    scn = tmy_scenario()
    good = _arrays(build_inputs(scn))
    (entry,) = _entries(tmp_path)
    key = entry.name.split(".")[0]
    raw = entry.read_bytes()
    n = len(scn.index)
    z = dict(np.load(entry, allow_pickle=False))
    if damage == "truncated":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        entry.write_bytes(b"not a zip file" * 100)
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        if damage == "out_of_range":
            z["p_ac_kw"] = z["p_ac_kw"] + 1e6  # above the inverter limit
        elif damage == "wrong_shape":
            z["ghi_w_m2"] = z["ghi_w_m2"][: n - 1]
        else:
            z["key"] = np.array("0" * 64)
        with entry.open("wb") as fh:
            np.savez(fh, **z)
    assert weather.read_weather_pv_cached(tmp_path / "cache", key, n,
                                          pv_params(scn.site).p_ac_max_kw) is None
    again = build_inputs(scn)  # no crash
    assert _arrays(again) == good
    assert _entries(tmp_path) == [entry]  # replaced by a valid entry
    assert weather.read_weather_pv_cached(tmp_path / "cache", key, n,
                                          pv_params(scn.site).p_ac_max_kw) is not None


def test_a_read_only_cache_runs_without_it(tmy_scenario: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    scn = tmy_scenario()
    monkeypatch.setenv(pv.CACHE_ENV, str(blocker))
    assert _arrays(build_inputs(scn)) == _uncached(scn, monkeypatch)


def test_a_missing_file_is_still_the_uncached_error(tmy_scenario: Any, tmp_path: Path) -> None:
    scn = tmy_scenario()
    (tmp_path / "tmy.csv").unlink()
    with pytest.raises(Exception, match="file not found"):
        build_inputs(scn)


def test_a_warm_tmy_run_does_not_import_pvlib(tmy_scenario: Any, tmp_path: Path) -> None:
    scn = tmy_scenario()
    code = ("import sys; from twin.config import load_scenario; "
            "from twin.components.inputs import build_inputs; "
            f"build_inputs(load_scenario({str(scn.path)!r})); "
            "print('pvlib' in sys.modules, 'scipy' in sys.modules)")
    env = {"PVBESS_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT),
           "PATH": "/usr/bin:/bin"}
    outs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout.split()
            for _ in range(2)]
    assert outs[0] == ["True", "True"]
    assert outs[1] == ["False", "False"]

"""The on-disk PV profile cache: a hit gives the identical profile, every input changes the key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.components import pv
from twin.components.inputs import rng_streams
from twin.components.pv import PvParams, pv_ac_kw, pv_ac_kw_cached, pv_cache_key

ROOT = Path(__file__).resolve().parents[2]
IDX = pd.date_range("2024-03-04", periods=3 * 96, freq="15min", tz="America/Lima")
DT = 900.0


def _rng(seed: int = 1) -> np.random.Generator:
    return rng_streams(seed)["pv"]


def test_hit_gives_the_identical_profile_without_computing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = pv_ac_kw(IDX, DT, PvParams(), _rng())
    first = pv_ac_kw_cached(IDX, DT, PvParams(), _rng(), folder=tmp_path)
    files = list((tmp_path / "pv").glob("*.npz"))
    assert len(files) == 1 and files[0].stem == pv_cache_key(IDX, DT, PvParams(), _rng())

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("computed although cached")

    monkeypatch.setattr(pv, "pv_ac_kw", boom)
    hit = pv_ac_kw_cached(IDX, DT, PvParams(), _rng(), folder=tmp_path)
    assert hit.dtype == np.float64
    assert fresh.tobytes() == first.tobytes() == hit.tobytes()  # bit-identical


@pytest.mark.parametrize("change", ["seed", "param", "monthly", "start", "tz", "dt", "n"])
def test_every_input_changes_the_key(change: str) -> None:
    idx, dt, p, rng = IDX, DT, PvParams(), _rng()
    base = pv_cache_key(idx, dt, p, rng)
    if change == "seed":
        rng = _rng(2)
    elif change == "param":
        p = dataclasses.replace(p, kt_mean=0.79)
    elif change == "monthly":
        p = dataclasses.replace(p, ghi_monthly_kwh_m2_day=tuple([4.5] * 12))
    elif change == "start":
        idx = IDX + pd.Timedelta(days=1)
    elif change == "tz":
        idx = IDX.tz_convert("America/Bogota")  # same instants, another zone: other hours
    elif change == "dt":
        idx, dt = pd.date_range(IDX[0], periods=len(IDX) * 3, freq="5min"), 300.0
    else:
        idx = IDX[:-1]
    assert pv_cache_key(idx, dt, p, rng) != base


def test_the_model_code_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    base = pv_cache_key(IDX, DT, PvParams(), _rng())
    monkeypatch.setattr(pv, "_MODEL_SOURCES", ("pv.py", "noise.py"))
    assert pv_cache_key(IDX, DT, PvParams(), _rng()) != base


def test_cache_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pv.CACHE_ENV, "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert pv.cache_dir() is None
    pv_ac_kw_cached(IDX, DT, PvParams(), _rng())
    assert not any(tmp_path.rglob("*.npz"))
    monkeypatch.setenv(pv.CACHE_ENV, "")
    assert pv.cache_dir() == tmp_path / ".cache" / "pvbess-twin"


def test_a_warm_run_does_not_import_pvlib(tmp_path: Path, make_scenario: object) -> None:
    """Building a scenario's inputs a second time reads the PV from the cache: no pvlib."""
    scn = make_scenario()  # type: ignore[operator]
    code = (
        "import sys; from twin.config import load_scenario; "
        "from twin.components.inputs import build_inputs; "
        f"build_inputs(load_scenario({str(scn)!r})); "
        "print('pvlib' in sys.modules, 'scipy' in sys.modules)"
    )
    env = {"PVBESS_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT),
           "PATH": "/usr/bin:/bin"}
    outs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout.split()
            for _ in range(2)]
    assert outs[0] == ["True", "True"]  # cold: computed with pvlib
    assert outs[1] == ["False", "False"]  # warm: read from the cache

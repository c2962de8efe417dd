"""Red-team cases of the streamed results and lazy imports (issue 20, points 2 and 3).

* a damaged, foreign or hostile PV cache entry is recomputed (and replaced), never trusted,
  never a crash; a cache folder that cannot be written only costs the cache;
* ``import twin.app.cli`` (and ``twin --help``) import no heavy library;
* the lazily built ``twin`` parser lists the same commands and help as the full one;
* a run folder written with ``--csv`` and then without it holds no stale CSV.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.app.cli import CONTRIBUTED, build_parser, main
from twin.components.inputs import rng_streams
from twin.components.pv import PvParams, pv_ac_kw, pv_ac_kw_cached, pv_cache_key

ROOT = Path(__file__).resolve().parents[2]
IDX = pd.date_range("2024-03-04", periods=2 * 96, freq="15min", tz="America/Lima")
DT = 900.0
HEAVY = ("pvlib", "scipy", "dask", "distributed", "onnxruntime", "highspy", "torch")


def _rng() -> np.random.Generator:
    return rng_streams(5)["pv"]


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _good() -> np.ndarray:
    return pv_ac_kw(IDX, DT, PvParams(), _rng())


KEY = pv_cache_key(IDX, DT, PvParams(), _rng())


def _pickled_object_array() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, key=np.array(KEY), p_ac_kw=np.array([{"x": 1}] * len(IDX), dtype=object))
    return buf.getvalue()


def _truncated() -> bytes:
    return _npz(key=np.array(KEY), p_ac_kw=_good())[:300]


def _zip_without_members() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not an npz")
    return buf.getvalue()


CORRUPT: dict[str, Callable[[], bytes]] = {
    "garbage": lambda: b"\x00\x01 not a zip at all" * 50,
    "empty": lambda: b"",
    "truncated": _truncated,
    "zip_without_arrays": _zip_without_members,
    "pickled_objects": _pickled_object_array,
    "other_key": lambda: _npz(key=np.array("0" * 64), p_ac_kw=_good()),
    "nan_values": lambda: _npz(key=np.array(KEY), p_ac_kw=np.full(len(IDX), np.nan)),
    "negative": lambda: _npz(key=np.array(KEY), p_ac_kw=-_good() - 1.0),
    "above_ac_limit": lambda: _npz(key=np.array(KEY), p_ac_kw=_good() + 1e6),
    "wrong_length": lambda: _npz(key=np.array(KEY), p_ac_kw=_good()[:-1]),
    "float32": lambda: _npz(key=np.array(KEY), p_ac_kw=_good().astype(np.float32)),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_cache_entry_is_recomputed_and_replaced(tmp_path: Path, case: str) -> None:
    path = tmp_path / "pv" / f"{KEY}.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(CORRUPT[case]())
    got = pv_ac_kw_cached(IDX, DT, PvParams(), _rng(), folder=tmp_path)
    assert got.tobytes() == _good().tobytes()
    with np.load(path, allow_pickle=False) as z:  # replaced by a good entry
        assert str(z["key"]) == KEY and z["p_ac_kw"].tobytes() == got.tobytes()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_a_folder_in_place_of_the_entry_costs_only_the_cache(tmp_path: Path) -> None:
    (tmp_path / "pv" / f"{KEY}.npz").mkdir(parents=True)
    got = pv_ac_kw_cached(IDX, DT, PvParams(), _rng(), folder=tmp_path)
    assert got.tobytes() == _good().tobytes()
    assert [p.name for p in (tmp_path / "pv").iterdir()] == [f"{KEY}.npz"]


def test_a_cache_folder_that_is_a_file_costs_only_the_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a folder")
    got = pv_ac_kw_cached(IDX, DT, PvParams(), _rng(), folder=blocker)
    assert got.tobytes() == _good().tobytes()
    assert blocker.read_text() == "a file, not a folder"


def test_twin_run_with_a_corrupt_cache_gives_the_same_run(tmp_path: Path,
                                                          make_scenario: Callable[..., Path]
                                                          ) -> None:
    env = {**os.environ, "PVBESS_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    scn = make_scenario(duration="1d")

    def run(out: str) -> dict[str, float]:
        subprocess.run([sys.executable, "-m", "twin", "run", str(scn), "--out",
                        str(tmp_path / out), "-q"], env=env, check=True, timeout=300)
        return json.loads((tmp_path / out / "summary.json").read_text())

    cold = run("cold")
    for f in (tmp_path / "cache" / "pv").glob("*.npz"):
        f.write_bytes(f.read_bytes()[:100])  # cut short
    again = run("again")
    assert again["pv_kwh"] == cold["pv_kwh"] > 0


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = ("import sys, twin.app.cli; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert out == "", f"import twin.app.cli imported {out}"


def test_twin_help_imports_no_heavy_library() -> None:
    code = ("import sys, contextlib, io\nfrom twin.app.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            f"print(','.join(m for m in {(*HEAVY, 'pandas')!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert out == "", f"twin --help imported {out}"


def test_the_lazy_parser_lists_the_same_commands_and_help() -> None:
    assert build_parser(None).format_help() == build_parser("*").format_help()
    for name, _, _ in CONTRIBUTED:  # each command's own parser is the full one when run
        full = build_parser("*")._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        lazy = build_parser(name)._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        assert lazy.format_help() == full.format_help(), name


@pytest.mark.parametrize("name", [n for n, _, _ in CONTRIBUTED])
def test_each_contributed_command_answers_help(name: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: twin {name}" in capsys.readouterr().out


def test_a_csv_run_replaced_by_a_default_run_leaves_no_csv(tmp_path: Path,
                                                           make_scenario: Callable[..., Path]
                                                           ) -> None:
    scn = make_scenario(duration="1d")
    out = tmp_path / "run"
    assert main(["run", str(scn), "--out", str(out), "-q", "--csv"]) == 0
    assert (out / "timeseries.csv").is_file() and (out / "sessions.csv").is_file()
    assert main(["run", str(scn), "--out", str(out), "-q"]) == 0
    assert not (out / "timeseries.csv").exists() and not (out / "sessions.csv").exists()
    marker = json.loads((out / ".pvbess-run").read_text())
    assert "timeseries.csv" not in marker["files"]
    assert main(["report", str(out), "--out", str(tmp_path / "rep"), "-q"]) == 0

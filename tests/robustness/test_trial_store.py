"""Trusted trial stores (issue 16, point 4): a stored run record is reused only when it is
the run asked for. A record of another arm under this key, a hand-edited KPI, ``[]``, a
record of another code version, a truncated file, a wrong seed ... are run again, counted
on stderr and in the outputs, and the trial's results are those of a clean run."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from twin.app.cli import main
from twin.trials.runner import WALL_KEYS

from .conftest import day_scenario

ARMS = ("six_phase", "no_bess")


def _seal(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with the checksum the store documents: SHA-256 of the canonical JSON (sorted
    keys, no spaces) of every other entry. What a careful forger would do."""
    body = {k: v for k, v in rec.items() if k != "checksum"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return {**body, "checksum": hashlib.sha256(blob.encode()).hexdigest()}


def _ab(scn: Path, out: Path, *extra: str) -> list[str]:
    return ["ab", str(scn), "--controllers", ",".join(ARMS), "--seeds", "2", "--workers", "1",
            "--out", str(out), "--no-figures", *extra]


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(scenario, a finished 2-arm x 2-seed A/B folder); copy the folder before damaging it."""
    d = tmp_path_factory.mktemp("store")
    scn = day_scenario(d)
    out = d / "ab"
    assert main(_ab(scn, out, "-q")) == 0
    assert len(list((out / "runs").glob("*.json"))) == 4
    return scn, out


def _key(out: Path, ctrl: str, seed: int) -> Path:
    (p,) = (out / "runs").glob(f"*-{ctrl}-s{seed}.json")
    return p


def _load(p: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(p.read_text())
    return data


def _other_arm(out: Path) -> None:
    shutil.copyfile(_key(out, "no_bess", 1), _key(out, "six_phase", 1))


def _other_scenario(out: Path) -> None:
    """A sealed record of another scenario whose hash begins like this one's (the key keeps
    12 hex digits; the record the whole hash)."""
    p = _key(out, "six_phase", 1)
    rec = _load(p)
    rec["scenario_hash"] = rec["scenario_hash"][:12] + "0" * 52
    p.write_text(json.dumps(_seal(rec)))


def _edit_kpi(out: Path) -> None:
    p = _key(out, "six_phase", 1)
    rec = _load(p)
    rec["kpis"]["cost_grid_import_soles"] *= 0.5  # the old checksum kept
    p.write_text(json.dumps(rec, sort_keys=True))


def _empty_list(out: Path) -> None:
    _key(out, "six_phase", 1).write_text("[]")


def _other_code(out: Path) -> None:
    p = _key(out, "six_phase", 1)
    rec = _load(p)
    rec["code_version"] = "0.0.1+src.000000000000"
    p.write_text(json.dumps(_seal(rec)))


def _truncated(out: Path) -> None:
    p = _key(out, "six_phase", 1)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _wrong_seed(out: Path) -> None:
    p = _key(out, "six_phase", 1)
    rec = _load(p)
    rec["seed"] = 2
    p.write_text(json.dumps(_seal(rec)))


def _no_checksum(out: Path) -> None:
    """A record as the store wrote them before records were sealed."""
    p = _key(out, "six_phase", 1)
    rec = _load(p)
    del rec["checksum"]
    p.write_text(json.dumps(rec))


def _bad_json(out: Path) -> None:
    _key(out, "six_phase", 1).write_bytes(b"\xff\xfe{not json")


TAMPER: dict[str, Callable[[Path], None]] = {
    "another arm's record under this key": _other_arm,
    "a record of another scenario": _other_scenario,
    "a hand-edited KPI with the old checksum": _edit_kpi,
    "[]": _empty_list,
    "a record of another code version": _other_code,
    "a truncated file": _truncated,
    "a record with a wrong seed": _wrong_seed,
    "a record without a checksum": _no_checksum,
    "bytes that are not JSON": _bad_json,
}


def _kpis(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in frame.columns if c not in WALL_KEYS]
    return frame[cols].sort_values(["controller", "seed"]).reset_index(drop=True)


@pytest.mark.parametrize("case", list(TAMPER))
def test_a_tampered_record_is_run_again_and_counted(
    case: str, trial: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scn, clean = trial
    out = tmp_path / "ab"
    shutil.copytree(clean, out)
    TAMPER[case](out)
    target = _key(out, "six_phase", 1)
    others = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json") if p != target}
    capsys.readouterr()
    assert main(_ab(scn, out)) == 0
    printed = capsys.readouterr()
    assert "1 record in the store did not match and was run again" in printed.err
    assert str(target) in printed.err and "Traceback" not in printed.err
    assert "4 runs: 3 finished before (reused), 1 to run" in printed.err
    assert "(1 runs done now, 3 reused, 1 stored records did not match and were run again)" in printed.out
    md = (out / "ab_summary.md").read_text()
    assert "- runs: 1 runs done now, 3 reused, 1 stored records did not match and were run again" in md
    # the untouched records were reused as they were; the tampered one is a true run now
    assert {p.name: p.read_bytes() for p in (out / "runs").glob("*.json") if p != target} == others
    redone = _load(target)
    clean_rec = _load(_key(clean, "six_phase", 1))
    assert {k: v for k, v in redone["kpis"].items() if k not in WALL_KEYS} == {
        k: v for k, v in clean_rec["kpis"].items() if k not in WALL_KEYS
    }
    pd.testing.assert_frame_equal(
        _kpis(pd.read_parquet(out / "trials.parquet")), _kpis(pd.read_parquet(clean / "trials.parquet"))
    )
    # and a third run trusts the record the second one wrote
    capsys.readouterr()
    assert main(_ab(scn, out)) == 0
    printed = capsys.readouterr()
    assert "did not match" not in printed.err + printed.out
    assert "(0 runs done now, 4 reused)" in printed.out


def test_an_untouched_store_is_reused_byte_for_byte(
    trial: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scn, clean = trial
    out = tmp_path / "ab"
    shutil.copytree(clean, out)
    before = {p.name: p.read_bytes() for p in (out / "runs").iterdir()}
    capsys.readouterr()
    assert main(_ab(scn, out)) == 0
    printed = capsys.readouterr()
    assert "did not match" not in printed.err + printed.out
    assert "4 runs: 4 finished before (reused), 0 to run" in printed.err
    assert "(0 runs done now, 4 reused)" in printed.out
    assert {p.name: p.read_bytes() for p in (out / "runs").iterdir()} == before
    assert (out / "trials.parquet").read_bytes() == (clean / "trials.parquet").read_bytes()
    assert (out / "ab_summary.csv").read_bytes() == (clean / "ab_summary.csv").read_bytes()


def test_a_record_carries_its_identity_and_checksum(trial: tuple[Path, Path]) -> None:
    _, clean = trial
    for ctrl in ARMS:
        for seed in (1, 2):
            p = _key(clean, ctrl, seed)
            rec = _load(p)
            assert rec["key"] == p.stem and rec["controller"] == ctrl and rec["seed"] == seed
            assert rec["scenario_hash"].startswith(p.stem.split("-")[0]) and len(rec["scenario_hash"]) == 64
            assert rec["code_version"].startswith("0.1.0+src.")
            assert _seal(rec)["checksum"] == rec["checksum"]


def test_sweep_counts_a_tampered_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scn = day_scenario(tmp_path)
    out = tmp_path / "sweep"
    cmd = ["sweep", str(scn), "--set", "bess.e_capacity_kwh=1000:2000:1000", "--workers", "1",
           "--out", str(out)]
    assert main([*cmd, "-q", "--no-figures"]) == 0
    (p,) = [q for q in (out / "runs").glob("*.json") if _load(q)["tags"]["bess.e_capacity_kwh"] == 2000]
    rec = _load(p)
    rec["tags"]["bess.e_capacity_kwh"] = 1000  # a record claiming to be the other grid point
    p.write_text(json.dumps(_seal(rec)))
    capsys.readouterr()
    assert main(cmd) == 0
    printed = capsys.readouterr()
    assert "1 record in the store did not match and was run again" in printed.err
    assert "(1 runs done now, 1 reused, 1 stored records did not match and were run again)" in printed.out
    html = (out / "sweep.html").read_text()
    assert "Runs: 1 runs done now, 1 reused, 1 stored records did not match" in html
    runs = pd.read_parquet(out / "sweep.parquet")
    assert sorted(runs["bess.e_capacity_kwh"]) == [1000, 2000]

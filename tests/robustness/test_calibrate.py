"""Red team of ``twin calibrate`` (issue 18, point 4): a bad run folder, a missing column, a
bad number on the command line — one line naming the file/column/option, exit 2, nothing
written, no traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from twin.app.cli import main

from .conftest import ROOT

SITE = ROOT / "config" / "site.yaml"


def _copy(finished_run: Path, base: Path) -> Path:
    d = base / "measured"
    shutil.copytree(finished_run, d)
    return d


def _edit(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        ts = pd.read_parquet(d / "timeseries.parquet")
        fn(ts).to_parquet(d / "timeseries.parquet")
    return apply


def _csv(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        ts = pd.read_parquet(d / "timeseries.parquet")
        (d / "timeseries.parquet").unlink()
        fn(ts).to_csv(d / "timeseries.csv", index=False)
    return apply


def _naive(ts: pd.DataFrame) -> pd.DataFrame:
    ts["timestamp"] = ts["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return ts


def _backwards(ts: pd.DataFrame) -> pd.DataFrame:
    ts.loc[5, "timestamp"] = ts.loc[2, "timestamp"]
    return ts


def _no_summary(d: Path) -> None:
    (d / "summary.json").write_text(json.dumps({"scenario": "x"}))


#: case -> (damage to a copy of a finished run, extra argv, words the message must hold)
CASES: dict[str, tuple[Callable[[Path], None], list[str], list[str]]] = {
    "no-pv-column": (_edit(lambda t: t.drop(columns=["pv_kwh"])), [], ["'pv_kw'", "timeseries"]),
    "no-soc-column": (_edit(lambda t: t.drop(columns=["soc_percent"])), [],
                      ["'soc_percent'", "timeseries.parquet"]),
    "no-ghi-column": (_edit(lambda t: t.drop(columns=["ghi_w_m2"])), [], ["'ghi_w_m2'"]),
    "no-mall-column": (_edit(lambda t: t.drop(columns=["mall_kwh"])), ["--fit", "mall"],
                       ["'mall_kw'"]),
    "no-timestamp": (_edit(lambda t: t.drop(columns=["timestamp"])), [], ["'timestamp'"]),
    "naive-times-csv": (_csv(_naive), [], ["timestamp", "time zone", "timeseries.csv"]),
    "times-go-back": (_edit(_backwards), [], ["timestamp", "row 5"]),
    "text-in-power": (_edit(lambda t: t.assign(p_bess_kw="abc")), ["--fit", "bess"],
                      ["'p_bess_kw'", "not numbers"]),
    "broken-parquet": (lambda d: (d / "timeseries.parquet").write_bytes(b"PAR1 garbage"), [],
                       ["timeseries.parquet", "cannot read"]),
    "no-table": (lambda d: (d / "timeseries.parquet").unlink(), [], ["no timeseries.parquet"]),
    "battery-never-cycles": (_edit(lambda t: t.assign(p_bess_kw=0.0)), ["--fit", "bess"],
                             ["charge and discharge"]),
    "no-site-reference": (_no_summary, [], ["summary.json", "--site"]),
    "bootstrap-zero": (lambda d: None, ["--bootstrap", "0"], ["--bootstrap", "10 to 10,000"]),
    "bootstrap-huge": (lambda d: None, ["--bootstrap", "10001"], ["--bootstrap"]),
    "block-nan": (lambda d: None, ["--block-hours", "nan"], ["--block-hours", "finite"]),
    "block-inf": (lambda d: None, ["--block-hours", "inf"], ["--block-hours"]),
    "block-zero": (lambda d: None, ["--block-hours", "0"], ["--block-hours", ">= 0.25"]),
    "seed-negative": (lambda d: None, ["--seed", "-1"], ["--seed"]),
    "fit-unknown": (lambda d: None, ["--fit", "pv,wind"], ["--fit", "pv, bess, mall"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_calibrate_refuses_bad_input_in_one_line(case: str, finished_run: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    damage, extra, words = CASES[case]
    d = _copy(finished_run, tmp_path)
    damage(d)
    out = tmp_path / "cal"
    code = main(["calibrate", str(d), "--out", str(out), "--bootstrap", "10", "-q", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in err, (w, err)
    assert not out.exists()


def test_calibrate_a_one_day_run_works_and_replaces_its_own_folder(
        finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The hostile table's run (1 day, 1-h steps) calibrates; a second calibration replaces
    the first; the site file loads; a key without an interval is null with a warning."""
    out = tmp_path / "cal"
    argv = ["calibrate", str(finished_run), "--out", str(out), "--site", str(SITE),
            "--bootstrap", "20", "-q"]
    assert main(argv) == 0
    first = json.loads((out / "calibration.json").read_text())
    assert set(first) == {"pv.p_dc_kwp", "bess.e_capacity_kwh", "bess.eta_roundtrip",
                          "mall.e_day_kwh"}
    # 1-h steps: the chain on the step-mean GHI is within 0.1 % of the 15-min sub-steps'
    assert first["pv.p_dc_kwp"]["value"] == pytest.approx(4050.0, rel=1e-3)
    assert main(argv) == 0
    assert json.loads((out / "calibration.json").read_text()) == first
    err = capsys.readouterr().err
    for k, v in first.items():
        if v["ci_low"] is None:
            assert f"twin: warning: {k}: no interval" in err
        else:
            assert v["ci_low"] <= v["value"] <= v["ci_high"]

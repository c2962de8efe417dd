"""``twin replay`` (issue 18, point 2): the twin on a site's measured data.

A dataset written from a twin run (its timeseries as the measured series, its sessions as
the session log) replayed with the measured battery power reproduces the measured grid
import within 0.5 %; bad manifests and arguments end in one line (exit 2); Ctrl-C keeps
the replay so far, marked PARTIAL.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from twin.app.cli import main
from twin.atomic import read_marker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "data" / "replay_example"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_replay_example",
                                                  ROOT / "scripts" / "make_replay_example.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("scenario", [{}, {"dt": "5min", "seed": 4}])
def test_replaying_a_twin_run_reproduces_its_grid_import(tmp_path: Path,
                                                         scenario: dict[str, Any]) -> None:
    """The run's own battery power played back: grid import within 0.5 % (the same tick,
    and a 5-min 'site' replayed at 15-min ticks)."""
    data = _script().write_example(tmp_path / "data", scenario)
    out = tmp_path / "out"
    assert main(["replay", str(data), "--controller", "no_bess", "--out", str(out), "-q"]) == 0
    doc = json.loads((out / "replay.json").read_text())
    site, twin = doc["columns"]["site"], doc["columns"]["as_measured"]
    assert abs(doc["grid_import_as_measured_vs_site_percent"]) <= 0.5, doc
    assert twin["grid_import_kwh"] == pytest.approx(site["grid_import_kwh"], rel=5e-3)
    assert twin["ev_energy_delivered_kwh"] == pytest.approx(site["ev_energy_delivered_kwh"],
                                                            rel=5e-3)
    assert twin["bess_discharge_kwh"] == pytest.approx(site["bess_discharge_kwh"], rel=5e-3)
    # the counterfactual is a different run: no battery at all
    assert doc["columns"]["controller"]["bess_discharge_kwh"] == 0.0
    assert doc["columns"]["controller"]["grid_import_kwh"] > site["grid_import_kwh"]
    # the page shows the three columns; the folder is a run folder of the counterfactual
    page = (out / "replay.html").read_text()
    for h in ("site (measured)", "twin, as measured", "twin, no_bess"):
        assert h in page
    marker = read_marker(out)
    assert marker is not None and marker["kind"] == "run" and marker["complete"] is True
    ts = pd.read_parquet(out / "replay_timeseries.parquet")
    assert {"p_grid_kw_measured", "p_grid_kw_as_measured", "p_grid_kw_controller"} <= set(ts)


def test_shipped_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["replay", str(EXAMPLE), "--controller", "arbitrage", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "site (measured)" in text and "twin, arbitrage" in text and "Grid import" in text
    doc = json.loads((out / "replay.json").read_text())
    assert abs(doc["grid_import_as_measured_vs_site_percent"]) <= 0.5


def test_ctrl_c_keeps_the_partial_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from twin.engine.driver import Twin

    step = Twin.step

    def interrupting(self: Twin) -> None:
        if self.k == 40:
            raise KeyboardInterrupt
        step(self)

    monkeypatch.setattr(Twin, "step", interrupting)
    out = tmp_path / "out"
    assert main(["replay", str(EXAMPLE), "--controller", "six_phase", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 40 of 192 steps" in err and "Traceback" not in err
    doc = json.loads((out / "replay.json").read_text())
    assert doc["interrupted"] is True and doc["steps_done"] == 40
    assert "PARTIAL" in (out / "replay.html").read_text()
    marker = read_marker(out)
    assert marker is not None and marker["complete"] is False


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def _copy_example(tmp: Path) -> Path:
    import shutil

    d = tmp / "data"
    shutil.copytree(EXAMPLE, d)
    m = (d / "replay.yaml").read_text().replace("../../config/site.yaml",
                                                str(ROOT / "config" / "site.yaml"))
    (d / "replay.yaml").write_text(m)
    return d


def test_bad_manifests_and_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    _fails(capsys, ["replay", str(tmp_path), "--out", out], "no replay.yaml")
    d = _copy_example(tmp_path)
    _fails(capsys, ["replay", str(d), "--out", out, "--fill-max-steps", "-1"],
           "--fill-max-steps -1", "0 to 1,000")
    _fails(capsys, ["replay", str(d), "--out", out, "--controller", "nope"], "nope")
    (d / "replay.yaml").write_text((d / "replay.yaml").read_text() + "colour: blue\n")
    _fails(capsys, ["replay", str(d), "--out", out], "replay.yaml", "colour")
    d2 = _copy_example(tmp_path / "b")
    df = pd.read_csv(d2 / "measured.csv").drop(columns=["p_bess_kw"])
    df.to_csv(d2 / "measured.csv", index=False)
    _fails(capsys, ["replay", str(d2), "--out", out], "measured.csv", "bess")
    assert not Path(out).exists()

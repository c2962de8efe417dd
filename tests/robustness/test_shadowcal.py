"""Red-team cases of shadow → calibrate / replay: short, partial and stale shadow folders.

The shadow runs are built in-process (the twin's shadow model fed with readings, written by
``write_shadow``), then the real CLI reads them: a clear one-line error and exit 2, never a
traceback, never a stale battery reading integrated as energy.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "shadow.yaml"


def _shadow_folder(out: Path, ticks: list[tuple[float, float, float]], n: int = 192) -> Any:
    from twin.app.shadow import ShadowRun, write_shadow
    from twin.config import load_scenario
    from twin.shadow.model import Reading, ShadowModel

    scn = load_scenario(SCENARIO)
    run = ShadowRun(scn, ShadowModel(scn), n)
    for k, (soc, p_kw, hb) in enumerate(ticks):
        run.model.step(k, Reading(pv_kw=50.0, mall_kw=500.0, ghi_w_m2=200.0, t_amb_c=25.0,
                                  t_module_c=28.0, soc_frac=soc, e_capacity_kwh=2000.0,
                                  bess_kw=p_kw, ev_kw=0.0, bess_hb=hb))
    write_shadow(run, out)
    return run


def _twin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twin", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)


def test_partial_shadow_of_one_tick_calibrate_and_replay_refuse(tmp_path: Path) -> None:
    """One tick (stopped at once): no step table rows; calibrate and replay say so."""
    _shadow_folder(tmp_path / "run", [(0.5, 0.0, 1.0)])
    run = tmp_path / "run"  # partial: marked incomplete
    assert (run / "timeseries.parquet").is_file() and not (run / "replay.yaml").exists()
    r = _twin("calibrate", str(run), "--out", str(tmp_path / "cal"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "timeseries.parquet" in r.stderr and "at least 3 steps" in r.stderr
    r = _twin("replay", str(run), "--out", str(tmp_path / "rep"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "replay.yaml" in r.stderr


def test_battery_heartbeat_that_never_moves_is_never_integrated(tmp_path: Path) -> None:
    """A BMS that keeps answering the same update (heartbeat frozen, values unchanged): the
    twin's battery is not moved, the table keeps no battery step, calibrate names why."""
    ticks = [(0.5, -400.0, 7.0)] * 12
    run = _shadow_folder(tmp_path / "run", ticks, n=12)
    assert run.model.battery.e_kwh == 0.5 * 2000.0 and run.model.n_bess_skipped == 11
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    assert len(ts) == 0  # no step with a battery reading: nothing to replay or fit
    r = _twin("calibrate", str(tmp_path / "run"), "--out", str(tmp_path / "cal"), "--fit",
              "bess")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


def test_battery_gap_inside_the_record_is_nan_not_zero(tmp_path: Path) -> None:
    """Readings lost for 2 ticks mid-run: those steps are NaN in the table (not 0 kW), the
    battery fit leaves them out, replay fills the short gap by its documented rule."""
    nan = math.nan
    ticks = [(0.5, 0.0, 1.0)] + [(0.5 - 0.05 * k, 400.0, 1.0 + k) for k in range(1, 5)] \
        + [(nan, nan, nan)] * 2 + [(0.2 + 0.0, 0.0, 8.0)] + [(0.2, 0.0, 9.0 + k) for k in range(4)]
    _shadow_folder(tmp_path / "run", ticks, n=len(ticks))
    ts = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    bad = ts["p_bess_kw"].isna().to_numpy()
    assert bad.sum() == 3 and not bad[0] and not bad[-1]  # steps 4, 5, 6 (tick 7 follows a gap)
    assert (ts["p_bess_kw"].dropna() != 0.0).sum() == 4

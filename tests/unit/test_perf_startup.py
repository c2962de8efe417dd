"""Start-up cost cuts of issue 20 that must not change a number: the battery container's
thermal lag computed without scipy.signal gives lfilter's values bit for bit, and a run
does not import scipy.signal for it."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from twin.components.ageing import cell_temperature_c

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("n", "dt_s", "tau_h"), [(1, 900.0, 2.0), (35_040, 900.0, 2.0),
                                                  (20_000, 60.0, 6.0), (500, 3600.0, 0.01),
                                                  (300, 1.0, 1e4)])
def test_the_lag_is_lfilter_bit_for_bit(n: int, dt_s: float, tau_h: float) -> None:
    from scipy.signal import lfilter

    rng = np.random.default_rng(n)
    t_air = 26.0 + 4.0 * rng.standard_normal(n) + 3.0 * np.sin(np.arange(n) * dt_s / 13_751.0)
    a = math.exp(-dt_s / (tau_h * 3600.0))
    lag, _ = lfilter([1.0 - a], [1.0, -a], t_air, zi=[a * t_air[0]])
    want = 24.0 + 0.7 * (lag - 24.0)
    got = cell_temperature_c(t_air, dt_s, 24.0, 0.7, tau_h)
    assert got.dtype == np.float64 and got.shape == (n,)
    assert got.tobytes() == want.tobytes()


def test_a_run_does_not_import_scipy_signal(tmp_path: Path, make_scenario: object) -> None:
    scn = make_scenario()  # type: ignore[operator]
    code = ("import sys; from twin.config import load_scenario; from twin.engine import simulate; "
            f"out = simulate(load_scenario({str(scn)!r})); "
            "print(out.steps_done > 0, 'scipy.signal' in sys.modules)")
    env = {"PVBESS_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT),
           "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # cold (PV computed: pvlib may import scipy parts) and warm
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120, check=True).stdout.split()
    assert out == ["True", "False"]

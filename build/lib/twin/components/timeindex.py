"""The scenario's step index: one check shared by every profile builder."""

from __future__ import annotations

import numpy as np
import pandas as pd


def step_offsets_s(index: pd.DatetimeIndex, dt_s: float) -> np.ndarray:
    """Seconds from ``index[0]`` to each step start, after checking the index.

    Raises
    ------
    ValueError
        If ``index`` is naive or empty, ``dt_s`` is not positive, or the steps are not
        evenly spaced by ``dt_s``.
    """
    if index.tz is None:
        raise ValueError("index must be timezone-aware (e.g. tz='America/Lima')")
    if len(index) == 0:
        raise ValueError("index is empty")
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    starts_s = (index - index[0]).total_seconds().to_numpy(dtype=np.float64)
    if len(index) > 1 and not np.allclose(np.diff(starts_s), dt_s, rtol=0.0, atol=1e-6):
        raise ValueError(f"index is not evenly spaced by dt_s={dt_s} s")
    return starts_s

"""Shared noise helpers (kept light: no scipy.signal import, which costs ~1.5 s)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ar1_filter(eps: np.ndarray, phi: float) -> np.ndarray:
    """Run ``y[0] = eps[0]``, ``y[n] = phi * y[n-1] + eps[n]`` over ``eps``.

    Same recurrence as ``scipy.signal.lfilter([1], [1, -phi], eps)``, computed with pandas'
    exponentially weighted mean (``m[n] = phi m[n-1] + (1 - phi) x[n]`` with
    ``x[n] = eps[n] / (1 - phi)`` and ``m[0] = x[0] = eps[0]``).
    """
    eps = np.asarray(eps, dtype=np.float64)
    if eps.size == 0 or phi == 0.0:
        return eps.copy()
    if not 0.0 < phi < 1.0:
        raise ValueError(f"phi must be in [0, 1), got {phi}")
    x = eps / (1.0 - phi)
    x[0] = eps[0]
    out = pd.Series(x).ewm(alpha=1.0 - phi, adjust=False).mean().to_numpy()
    return np.asarray(out, dtype=np.float64)

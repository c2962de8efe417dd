"""Vehicles with a CC-CV taper and their own dwell times: the same sessions get the same
energy at 15-min and 1-min ticks where the controller's limits do not bind (no_bess)."""

from __future__ import annotations

import numpy as np

from tests.conftest import SCENARIOS
from twin.config import load_scenario
from twin.engine import simulate
from twin.engine.results import build_results


def _sessions(dt: str) -> tuple[dict[str, object], object]:
    scn = load_scenario(SCENARIOS / "week.yaml", {"controller": "no_bess", "dt": dt,
                                                  "duration": "3d"})
    res = build_results(simulate(scn))
    return res.summary, res.sessions


def test_same_sessions_same_energy_at_15min_and_1min() -> None:
    (a, sa), (b, sb) = _sessions("15min"), _sessions("1min")
    assert a["sessions_total"] == b["sessions_total"] > 500
    ea = sa["e_delivered_kwh"].to_numpy()  # type: ignore[attr-defined]
    eb = sb["e_delivered_kwh"].to_numpy()  # type: ignore[attr-defined]
    assert (ea > 0).sum() > 500
    np.testing.assert_allclose(ea, eb, rtol=1e-9, atol=1e-12)
    for key in ("sessions_satisfied", "sessions_satisfied_reduced", "sessions_short",
                "sessions_refused_closing", "sessions_turned_away"):
        assert a[key] == b[key], key
    # the taper and the dwell times matter: many riders leave before they are full
    assert int(a["sessions_short"]) > 0.2 * int(a["sessions_total"])  # type: ignore[call-overload]

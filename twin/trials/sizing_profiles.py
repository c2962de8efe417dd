"""The scenario's own hourly PV and EV profiles, per day, for the sizing formulas.

The EV profile is the demand of the site *without* a battery, EVs charged at full power on
arrival (the ``no_bess`` controller: the seeds' "EV demand"), simulated on the scenario's
own sessions; PV is the power available before curtailment. Both are summed per local
clock hour and laid out as ``(n_days, 24)`` arrays [kWh per hour]; days with fewer than
24 hours in the horizon are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.config import Scenario
from twin.sizing import SizingParams, SizingResult, size_bess


@dataclass(frozen=True)
class DayProfiles:
    """Hourly energies per day [kWh per hour], shape ``(n_days, 24)``."""

    dates: list[str]
    pv_kwh: np.ndarray
    ev_kwh: np.ndarray
    mall_kwh: np.ndarray


def day_profiles(scn: Scenario) -> DayProfiles:
    """Simulate ``scn`` with ``no_bess`` and return its hourly PV / EV / mall per day."""
    from controllers.base import make_controller
    from twin.engine import simulate
    from twin.engine.results import build_results

    res = build_results(simulate(scn, make_controller("no_bess", scn.site)))
    ts = res.timeseries
    stamp = ts["timestamp"]
    date = stamp.dt.strftime("%Y-%m-%d").to_numpy()
    hour = stamp.dt.hour.to_numpy()
    days = sorted(set(date.tolist()))
    out = {c: np.zeros((len(days), 24)) for c in ("pv_kwh", "ev_kwh", "mall_kwh")}
    seen = np.zeros((len(days), 24), dtype=bool)
    di = {d: i for i, d in enumerate(days)}
    rows = np.array([di[d] for d in date], dtype=int)
    for c, arr in out.items():
        np.add.at(arr, (rows, hour), ts[c].to_numpy(dtype=float))
    seen[rows, hour] = True
    # a day is complete when its last step ends at midnight: every hour was seen
    full = seen.all(axis=1)
    if not full.any():
        from twin.errors import UserError

        raise UserError(
            f"{scn.path}: the sizing formulas need at least one whole day; the horizon is "
            f"{scn.config.duration / 3600:g} h"
        )
    keep = np.flatnonzero(full)
    return DayProfiles(
        [days[i] for i in keep], out["pv_kwh"][keep], out["ev_kwh"][keep], out["mall_kwh"][keep]
    )


def scenario_params(scn: Scenario, **kw: float) -> SizingParams:
    """Formula parameters with DoD and efficiency from the scenario's battery."""
    b = scn.site.bess
    return SizingParams(dod_frac=b.soc_max_frac - b.soc_min_frac, eta_roundtrip=b.eta_roundtrip, **kw)


def size_scenario(scn: Scenario, **kw: float) -> tuple[DayProfiles, SizingResult]:
    """Every mode's size on the scenario's own profiles."""
    prof = day_profiles(scn)
    return prof, size_bess(prof.pv_kwh, prof.ev_kwh, scenario_params(scn, **kw))


__all__ = ["DayProfiles", "day_profiles", "scenario_params", "size_scenario"]

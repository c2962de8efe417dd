"""Derived tables for the figures: per period (day or month), per day, per hour of day.

Inputs are the per-step energies [kWh per step] of :class:`twin.report.load.RunData`;
sums stay energies [kWh], costs [site currency] and masses [kg].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.engine import kpis
from twin.report.load import RunData

#: Runs shorter than this [d] get per-day bars where a year gets per-month bars.
MONTHLY_FROM_DAYS = 60.0

SUM_COLUMNS: tuple[str, ...] = (
    "pv_kwh", "ev_kwh", "mall_kwh", "load_kwh", "pv_to_ev_kwh", "pv_to_bess_kwh",
    "pv_to_mall_kwh", "pv_curtailed_kwh", "bess_charge_kwh", "bess_discharge_kwh",
    "bess_to_ev_kwh", "bess_to_mall_kwh", "grid_import_ev_kwh", "grid_import_mall_kwh",
    "grid_import_kwh", "grid_export_kwh", "cost_savings_hp_soles", "co2_avoided_indirect_kg",
    "grid_cost_soles", "co2_grid_kg", "grid_to_bess_kwh", "pv_export_kwh",
    "cost_pv_only_soles", "cost_baseline_soles", "co2_baseline_kg", "co2_avoided_bess_kg",
)


@dataclass(frozen=True)
class Period:
    """How period bars are grouped.

    Attributes
    ----------
    freq : pandas resample rule ("MS" month start or "D" day).
    noun : "month" or "day", for titles ("per month").
    """

    freq: str
    noun: str


def period_of(run: RunData) -> Period:
    """Monthly bars for runs of :data:`MONTHLY_FROM_DAYS` days or more, daily bars otherwise."""
    return Period("MS", "month") if run.days >= MONTHLY_FROM_DAYS else Period("D", "day")


def co2_factor(run: RunData) -> float:
    """Grid emission factor [kg/kWh], from the summary or else from the per-step table."""
    s = run.summary
    load = float(s.get("load_kwh", 0.0) or 0.0)
    if "co2_baseline_kg" in s and load > 0:
        return float(s["co2_baseline_kg"]) / load
    imp = run.ts["grid_import_kwh"].to_numpy()
    m = imp > 1e-9
    return float(np.median(run.ts["co2_grid_kg"].to_numpy()[m] / imp[m])) if m.any() else 0.0


def with_derived(run: RunData) -> pd.DataFrame:
    """The per-step table plus cost and CO2 references [site currency, kg per step].

    ``cost_pv_only_soles`` (the site without the BESS), ``cost_baseline_soles`` (without PV
    and BESS), ``co2_baseline_kg`` (everything from the grid) and ``co2_avoided_bess_kg``
    (against the site without the BESS), with the formulas of ``twin.engine.kpis``.
    """
    ts = run.ts
    price = ts["tariff_soles_per_kwh"].to_numpy()
    load = ts["load_kwh"].to_numpy()
    pv = ts["pv_kwh"].to_numpy()
    f = co2_factor(run)
    return ts.assign(cost_pv_only_soles=kpis.cost_no_bess(load, pv, price),
                     cost_baseline_soles=kpis.cost_all_grid(load, price),
                     co2_baseline_kg=kpis.co2_all_grid_kg(load, f),
                     co2_avoided_bess_kg=kpis.co2_avoided_bess_kg(
                         load, pv, ts["grid_import_kwh"].to_numpy(), f))


def by_period(run: RunData, freq: str) -> pd.DataFrame:
    """Sums of :data:`SUM_COLUMNS` per period (index: local period start).

    A column ``days`` gives the number of simulated days in each period [d].
    """
    df = with_derived(run).set_index("timestamp")
    out = df[list(SUM_COLUMNS)].resample(freq).sum()
    out["days"] = df["pv_kwh"].resample(freq).count() * run.dt_h / 24.0
    return out[out["days"] > 0]


def daily(run: RunData) -> pd.DataFrame:
    """Per-day sums, plus ``peak_grid_kw`` [kW], ``soc_min``/``soc_max`` [%] per day."""
    out = by_period(run, "D")
    g = run.ts.set_index("timestamp")
    out["peak_grid_kw"] = g["p_grid_kw"].resample("D").max().reindex(out.index)
    out["soc_min"] = g["soc_percent"].resample("D").min().reindex(out.index)
    out["soc_max"] = g["soc_percent"].resample("D").max().reindex(out.index)
    return out


def period_labels(index: pd.DatetimeIndex, period: Period) -> list[str]:
    """Tick labels: "Jan" for months ("Jan 24" across years), "Mon 04" for days."""
    if period.noun == "month":
        fmt = "%b" if len({t.year for t in index}) <= 1 else "%b %y"
    else:
        fmt = "%a %d" if len(index) <= 14 else "%d %b"
    return [t.strftime(fmt) for t in index]


def day_slot_matrix(run: RunData, values: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Arrange per-step ``values`` as a (time of day × day) matrix, NaN where missing.

    Returns
    -------
    days : the local dates (midnight) of the columns.
    matrix : shape (steps per day, days); row ``i`` starts at ``i × dt`` after midnight.
    """
    t = pd.DatetimeIndex(run.ts["timestamp"])
    day = t.normalize()
    codes, days = pd.factorize(day, sort=True)
    sec = (t - day).total_seconds().to_numpy()
    dt_s = float(run.summary["dt_s"])
    n_slots = max(1, round(86400.0 / dt_s))
    slot = np.clip((sec // dt_s).astype(int), 0, n_slots - 1)
    mat = np.full((n_slots, len(days)), np.nan)
    mat[slot, codes] = np.asarray(values, dtype=float)
    return pd.DatetimeIndex(days), mat


def hour_of_day_mean(run: RunData, columns: list[str]) -> pd.DataFrame:
    """Mean of ``columns`` per hour of day, over all steps (index 0-23)."""
    h = run.ts["timestamp"].dt.hour
    return run.ts[columns].groupby(h.to_numpy()).mean().reindex(range(24))


def first_days(run: RunData, n_days: float) -> pd.DataFrame:
    """The first ``n_days`` days of the per-step table (or all of it when shorter)."""
    t0 = run.ts["timestamp"].iloc[0]
    return run.ts[run.ts["timestamp"] < t0 + pd.Timedelta(days=n_days)]

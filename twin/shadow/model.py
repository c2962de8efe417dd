"""The twin beside the site: predictions from measured exogenous inputs, one tick at a time.

At tick ``k`` (time ``t_k``, read a little after the step boundary) the site's devices say:

* PV AC power and mall demand over the step that starts now (meters), GHI and air and
  module temperature of that step (weather station);
* the battery's SoC at ``t_k`` and its power over the step that just ended
  (``k - 1``; + discharge), the sockets' power over that step (chargers).

From these the twin predicts, with its *own* site parameters (``config/site.yaml`` plus the
scenario's ``--set``):

* ``pv_power_kw``: its PV chain (:func:`twin.components.station.pv_ac_from_ghi_kw`) on
  the measured GHI and air temperature, for step ``k``;
* ``bess_soc_percent`` and ``bess_energy_kwh`` at ``t_k``: its battery model
  (:class:`twin.components.bess.Battery`, from the site's stated initial state) driven by
  the battery power the site applied in step ``k - 1``;
* ``grid_import_kw`` over step ``k - 1``: the site balance, mall + EV - PV - battery, with
  the predicted PV (measured: with the measured PV).

Residual = measured - predicted. A reading that is not valid is not used: its column is
NaN that tick and the model holds its state (battery power 0 is not assumed: the step's
battery energy is then not applied, and counted in ``n_bess_skipped``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from twin.components.bess import Battery, BessParams
from twin.components.station import _t_amb_c, pv_ac_from_ghi_kw, pv_params
from twin.config import Scenario

#: The quantities compared, with their units (metric and column names carry them).
QUANTITIES: tuple[str, ...] = ("pv_power_kw", "bess_soc_percent", "bess_energy_kwh",
                               "grid_import_kw")
#: Other measured columns of a tick.
MEASURED_ONLY: tuple[str, ...] = ("ghi_w_m2", "t_amb_c", "t_module_c", "mall_power_kw",
                                  "ev_power_kw", "bess_power_kw", "bess_capacity_kwh",
                                  "bess_updates")
#: The heartbeat counts modulo this (``Hb`` runs 0 .. 0xFFFE).
HB_MOD = 0xFFFF
#: The per-step table runs from the first to the last step that has all of these (a measured
#: file has no gap at its ends; gaps inside are NaN).
COMPLETE: tuple[str, ...] = ("p_pv_kw", "p_mall_kw", "p_bess_kw", "soc_percent", "p_grid_kw")
#: Columns of the per-step table (:meth:`ShadowModel.timeseries`): what ``twin calibrate``
#: and ``twin replay`` (``twin.components.measured``) read.
STEP_COLUMNS: tuple[str, ...] = ("p_pv_kw", "p_mall_kw", "ghi_w_m2", "temp_air_c",
                                 "t_module_c", "p_bess_kw", "soc_percent", "capacity_kwh",
                                 "p_ev_kw", "p_grid_kw", "p_pv_kw_predicted",
                                 "soc_percent_predicted")


@dataclass(frozen=True)
class Reading:
    """What the site's devices said at one tick (NaN: not valid / not read).

    Attributes
    ----------
    pv_kw, mall_kw : PV AC power and mall demand over the coming step [kW].
    ghi_w_m2 : global horizontal irradiance [W/m²]; t_amb_c, t_module_c : [°C].
    soc_frac : battery SoC now [0-1]; e_capacity_kwh : the capacity the BMS reports [kWh].
    bess_kw : battery power over the step that just ended [kW, + discharge].
    ev_kw : sockets' total power over the step that just ended [kW].
    charger_fault : the charge-point controller reports a fault (station or sockets in F).
    bess_hb : the battery's heartbeat (``Hb``, one count per device update; NaN: the device
        has none): its change since the last tick says whether ``soc_frac`` and ``bess_kw``
        are the update right after the last tick's (one step) or not.
    """

    pv_kw: float
    mall_kw: float
    ghi_w_m2: float
    t_amb_c: float
    t_module_c: float
    soc_frac: float
    e_capacity_kwh: float
    bess_kw: float
    ev_kw: float
    charger_fault: bool = False
    bess_hb: float = math.nan


@dataclass
class ShadowModel:
    """The twin's predictions beside the site (see the module docstring).

    Parameters
    ----------
    scn : the scenario (the twin's own site parameters, time index and step).
    """

    scn: Scenario
    rows: list[dict[str, float]] = field(default_factory=list)
    n_bess_skipped: int = 0
    n_bess_misaligned: int = 0

    def __post_init__(self) -> None:
        self.pv = pv_params(self.scn.site)
        self.battery = Battery(BessParams.from_config(self.scn.site.bess))
        dt = self.scn.config.dt
        self.dt_h = dt / 3600.0
        self.mid = pd.DatetimeIndex(self.scn.index + pd.Timedelta(seconds=dt / 2.0))
        self.t_amb_model_c = _t_amb_c(self.mid, self.pv)
        self._prev: Reading | None = None
        self._pv_pred_prev = math.nan
        self._hb_prev = math.nan

    def _updates(self, r: Reading) -> float:
        """Battery updates between the last tick's reading and this one (1: exactly the step
        just ended; NaN: this or the last reading not valid). Without a heartbeat a valid
        reading after a valid one counts as 1."""
        prev_ok = self._prev is not None and math.isfinite(self._prev.soc_frac)
        if not (prev_ok and math.isfinite(r.soc_frac) and math.isfinite(r.bess_kw)):
            return math.nan
        if math.isfinite(r.bess_hb) and math.isfinite(self._hb_prev):
            return float((int(r.bess_hb) - int(self._hb_prev)) % HB_MOD)
        return 1.0

    def _pv_predicted_kw(self, k: int, r: Reading) -> float:
        if not math.isfinite(r.ghi_w_m2):
            return math.nan
        t_amb = r.t_amb_c if math.isfinite(r.t_amb_c) else float(self.t_amb_model_c[k])
        return float(pv_ac_from_ghi_kw(self.mid[k:k + 1], np.array([r.ghi_w_m2]),
                                       np.array([t_amb]), self.pv)[0])

    def _battery(self, k: int, r: Reading, updates: float) -> None:
        """Apply the power the site applied in step ``k - 1`` to the twin's battery: only a
        reading of exactly the step just ended (a held, stale or skipped-over one is never
        integrated as that step's energy)."""
        if k == 0:
            return
        if updates == 1.0:
            self.battery.apply(r.bess_kw, self.dt_h)
        else:
            self.n_bess_skipped += 1
            if math.isfinite(updates):
                self.n_bess_misaligned += 1

    def step(self, k: int, r: Reading) -> dict[str, float]:
        """One tick: the measured, predicted and residual values (a record row)."""
        updates = self._updates(r) if k > 0 else math.nan
        self._battery(k, r, updates)
        bat = self.battery
        pv_pred = self._pv_predicted_kw(k, r)
        prev = self._prev
        meas = {"pv_power_kw": r.pv_kw, "bess_soc_percent": r.soc_frac * 100.0,
                "bess_energy_kwh": r.soc_frac * r.e_capacity_kwh}
        pred = {"pv_power_kw": pv_pred, "bess_soc_percent": bat.soc_frac * 100.0,
                "bess_energy_kwh": bat.e_kwh}
        if prev is not None:
            base = prev.mall_kw + r.ev_kw - (r.bess_kw if updates == 1.0 else math.nan)
            meas["grid_import_kw"] = base - prev.pv_kw
            pred["grid_import_kw"] = base - self._pv_pred_prev
        else:
            meas["grid_import_kw"] = pred["grid_import_kw"] = math.nan
        row: dict[str, float] = {"step": float(k), "t_s": k * self.scn.config.dt}
        for q in QUANTITIES:
            row[f"{q}_measured"] = meas[q]
            row[f"{q}_predicted"] = pred[q]
            row[f"{q}_residual"] = meas[q] - pred[q]
        row.update({"ghi_w_m2": r.ghi_w_m2, "t_amb_c": r.t_amb_c, "t_module_c": r.t_module_c,
                    "mall_power_kw": r.mall_kw, "ev_power_kw": r.ev_kw,
                    "bess_power_kw": r.bess_kw, "bess_capacity_kwh": r.e_capacity_kwh,
                    "bess_updates": updates, "charger_fault": float(r.charger_fault)})
        self.rows.append(row)
        self._prev = r
        self._hb_prev = r.bess_hb if math.isfinite(r.soc_frac) else math.nan
        self._pv_pred_prev = pv_pred
        return row

    def timeseries(self) -> pd.DataFrame:
        """One row per *step* (``timestamp`` = its start), in the measured-series convention
        of ``twin calibrate`` and ``twin replay``: PV, mall, irradiance and temperatures of the
        step (read at its tick); battery power, SOC at its end, sockets' power (read at the
        next tick); grid import ``max(mall + EV − PV − battery, 0)`` (surplus PV is curtailed
        at a site without export). Battery columns are NaN unless the next tick's reading is
        the battery's very next update (``bess_updates`` 1). The last tick's step has no
        next tick; the table runs from the first to the last step with every
        :data:`COMPLETE` column (a measured file never starts or ends with a gap)."""
        n = len(self.rows) - 1
        cols: dict[str, list[float]] = {c: [] for c in STEP_COLUMNS}
        for j in range(max(n, 0)):
            a, b = self.rows[j], self.rows[j + 1]
            ok = b["bess_updates"] == 1.0
            nan = math.nan
            vals = {"p_pv_kw": a["pv_power_kw_measured"], "p_mall_kw": a["mall_power_kw"],
                    "ghi_w_m2": a["ghi_w_m2"], "temp_air_c": a["t_amb_c"],
                    "t_module_c": a["t_module_c"],
                    "p_bess_kw": b["bess_power_kw"] if ok else nan,
                    "soc_percent": b["bess_soc_percent_measured"] if ok else nan,
                    "capacity_kwh": b["bess_capacity_kwh"] if ok else nan,
                    "p_ev_kw": b["ev_power_kw"], "p_pv_kw_predicted": a["pv_power_kw_predicted"],
                    "soc_percent_predicted": b["bess_soc_percent_predicted"] if ok else nan}
            vals["p_grid_kw"] = max(vals["p_mall_kw"] + vals["p_ev_kw"] - vals["p_pv_kw"]
                                    - vals["p_bess_kw"], 0.0)
            if not all(math.isfinite(vals[c]) for c in ("p_mall_kw", "p_ev_kw", "p_pv_kw",
                                                        "p_bess_kw")):
                vals["p_grid_kw"] = nan
            for c in STEP_COLUMNS:
                cols[c].append(vals[c])
        df = pd.DataFrame(cols, columns=list(STEP_COLUMNS))
        df.insert(0, "timestamp", pd.DatetimeIndex(self.scn.index[:max(n, 0)]))
        full = np.flatnonzero(df[list(COMPLETE)].notna().all(axis=1).to_numpy())
        if not len(full):
            return df.iloc[:0]
        return df.iloc[full[0]:full[-1] + 1].reset_index(drop=True)

    def frame(self) -> pd.DataFrame:
        """The record so far: one row per tick, with the tick's timestamp."""
        df = pd.DataFrame(self.rows)
        if len(df):
            df.insert(0, "timestamp", self.scn.index[: len(df)].astype(str))
        return df

    def summary(self) -> dict[str, Any]:
        """Per quantity: mean and RMS residual and the number of ticks compared."""
        out: dict[str, Any] = {}
        for q in QUANTITIES:
            res = np.array([r[f"{q}_residual"] for r in self.rows], dtype=float)
            ok = res[np.isfinite(res)]
            out[q] = {"ticks": len(ok),
                      "mean_residual": float(ok.mean()) if len(ok) else None,
                      "rms_residual": float(np.sqrt((ok ** 2).mean())) if len(ok) else None}
        return out


def columns() -> Iterator[str]:
    """The record's columns after ``timestamp`` (stable order, for readers)."""
    yield from ("step", "t_s")
    for q in QUANTITIES:
        yield from (f"{q}_measured", f"{q}_predicted", f"{q}_residual")
    yield from (*MEASURED_ONLY, "charger_fault")


__all__ = ["MEASURED_ONLY", "QUANTITIES", "STEP_COLUMNS", "Reading", "ShadowModel", "columns"]

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
                                  "ev_power_kw", "bess_power_kw")


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

    def __post_init__(self) -> None:
        self.pv = pv_params(self.scn.site)
        self.battery = Battery(BessParams.from_config(self.scn.site.bess))
        dt = self.scn.config.dt
        self.dt_h = dt / 3600.0
        self.mid = pd.DatetimeIndex(self.scn.index + pd.Timedelta(seconds=dt / 2.0))
        self.t_amb_model_c = _t_amb_c(self.mid, self.pv)
        self._prev: Reading | None = None
        self._pv_pred_prev = math.nan

    def _pv_predicted_kw(self, k: int, r: Reading) -> float:
        if not math.isfinite(r.ghi_w_m2):
            return math.nan
        t_amb = r.t_amb_c if math.isfinite(r.t_amb_c) else float(self.t_amb_model_c[k])
        return float(pv_ac_from_ghi_kw(self.mid[k:k + 1], np.array([r.ghi_w_m2]),
                                       np.array([t_amb]), self.pv)[0])

    def _battery(self, k: int, r: Reading) -> None:
        """Apply the power the site applied in step ``k - 1`` to the twin's battery."""
        if k == 0:
            return
        if math.isfinite(r.bess_kw):
            self.battery.apply(r.bess_kw, self.dt_h)
        else:
            self.n_bess_skipped += 1

    def step(self, k: int, r: Reading) -> dict[str, float]:
        """One tick: the measured, predicted and residual values (a record row)."""
        self._battery(k, r)
        bat = self.battery
        pv_pred = self._pv_predicted_kw(k, r)
        prev = self._prev
        meas = {"pv_power_kw": r.pv_kw, "bess_soc_percent": r.soc_frac * 100.0,
                "bess_energy_kwh": r.soc_frac * r.e_capacity_kwh}
        pred = {"pv_power_kw": pv_pred, "bess_soc_percent": bat.soc_frac * 100.0,
                "bess_energy_kwh": bat.e_kwh}
        if prev is not None:
            base = prev.mall_kw + r.ev_kw - r.bess_kw
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
                    "bess_power_kw": r.bess_kw, "charger_fault": float(r.charger_fault)})
        self.rows.append(row)
        self._prev = r
        self._pv_pred_prev = pv_pred
        return row

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


__all__ = ["MEASURED_ONLY", "QUANTITIES", "Reading", "ShadowModel", "columns"]

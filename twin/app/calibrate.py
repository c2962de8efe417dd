"""``twin calibrate RUN_DIR --out DIR``: fit the site's parameters to measured data.

Input contract (a run folder: ``timeseries.parquet``, else ``timeseries.csv``, and its
``summary.json``); one row per step, a regular step (gaps allowed), each channel under its
plain name or, preferred when both are there, ``NAME_measured``. A ``twin shadow`` folder
is such a run folder: its ``timeseries.parquet`` is the per-step measured table
(``p_pv_kw``, ``p_mall_kw``, ``p_bess_kw``, ``soc_percent``, ``capacity_kwh``, ...; each step
from the ticks that read it, battery steps only where the battery's heartbeat says the
reading is the very next update, see :meth:`twin.shadow.model.ShadowModel.timeseries`):

=================== ========== =====================================================
column              unit       meaning
=================== ========== =====================================================
``timestamp``       —          step start, timezone-aware (CSV: ISO 8601 with offset)
``pv_kw``           kW         PV AC power, mean over the step, *before* curtailment
                               (or ``p_pv_kw``; the same for ``mall_kw``/``p_mall_kw``)
                               (or ``pv_kwh``: energy over the step)
``ghi_w_m2``        W/m²       global horizontal irradiance, mean over the step
``temp_air_c``      °C         air temperature
``p_bess_kw``       kW         battery AC power, mean over the step, + discharge / − charge
``soc_percent``     %          battery state of charge at the *end* of the step
``mall_kw``         kW         mall demand, mean over the step (or ``mall_kwh``)
=================== ========== =====================================================

NaN marks a missing value; such steps are left out of the fits that need them.

Fits
----
* ``pv.p_dc_kwp``: the site's own PV chain (``twin.components.pv.pv_chain_kw``: Erbs,
  Hay-Davies, IAM, Faiman, PVWatts, the site's ``losses_frac`` and inverter) runs on the
  measured GHI and air temperature at 1 kWp at the step mid-points; the DC scale ``s`` of
  ``AC = inverter(s · DC_1kWp)`` is fitted by least squares over the daytime steps
  (DC at 1 kWp > 20 W) whose measured and modelled AC are below 97 % of the inverter limit
  (clipped steps carry no information on the DC size).
* ``bess.e_capacity_kwh``, ``bess.eta_roundtrip``: the twin's battery, per step of length
  ``dt``: ``E·(SOC_k·(1 − f_k)/(1 − σ·dt) − SOC_{k−1}·(1 − f_{k−1})) = η·E_ch − E_dis/η``
  (η = √η_rt, the twin's even split; σ the site's ``self_discharge_frac_per_h`` and ``f``
  the capacity lost since the record's start: from the battery's own reported capacity
  (column ``capacity_kwh``, its state of health) when the table has one, else by the
  site's linear ageing model ``twin.components.bess.ageing_kwh``; both taken as known,
  not fitted). Divided by ``E``
  it is linear in ``a = η/E`` and ``b = 1/(η·E)``: least squares over the steps whose SOC at
  both ends is off the limits (the site's SOC window, 0 and 100 %) by more than 0.05 points
  and whose power is at least 1 % of the power limit (idle steps carry only meter noise);
  ``E = 1/√(ab)``, ``η_rt = a/b``; ``f`` is recomputed with the estimate (three passes).
  ``E`` is the capacity at the record's start. Not modelled: an efficiency curve
  (``bess.efficiency_curve``: the fit gives a mean efficiency) and the CityLearn fade.
* ``mall.e_day_kwh``: the site's mall profile without its noise
  (``twin.components.mall.mall_kw`` on the measured steps) scaled to the measured energy:
  ``e_day · Σ measured / Σ profile``.

Uncertainty: a block bootstrap (blocks of ``--block-hours`` of the record, default 1 h,
drawn with replacement from the blocks that hold data for the fit, ``--bootstrap``
replicates, ``--seed``: deterministic), the 2.5-97.5 % percentiles. Blocks must outlast the
correlation of the errors: 1 h covers meter noise and SOC rounding; with 6-h blocks over 3
days the intervals came out too narrow (too few blocks). Model bias (a wrong loss figure,
wrong orientation) is not in the interval.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.bounds import check_float, check_int, float_range, int_range
from twin.errors import EXIT_OK, UserError

__all__ = ["CHANNELS", "HELP", "Fit", "calibrate", "cmd_calibrate", "register"]

HELP = "fit PV size, battery capacity and efficiency, mall load to a run's measured data"

#: Logical channel -> accepted columns in order of preference, and whether a ``_kwh``
#: column (energy over the step) stands for the mean power.
CHANNELS: dict[str, tuple[str, ...]] = {
    "pv": ("pv_kw_measured", "pv_kw", "p_pv_kw", "pv_kwh_measured", "pv_kwh"),
    "ghi": ("ghi_w_m2_measured", "ghi_w_m2"),
    "temp": ("temp_air_c_measured", "temp_air_c"),
    "p_bess": ("p_bess_kw_measured", "p_bess_kw"),
    "soc": ("soc_percent_measured", "soc_percent"),
    "mall": ("mall_kw_measured", "mall_kw", "p_mall_kw", "mall_kwh_measured", "mall_kwh"),
}
#: Channels each fit needs.
NEEDS = {"pv": ("pv", "ghi", "temp"), "bess": ("p_bess", "soc"), "mall": ("mall",)}
#: Channels read when present: the battery's own capacity (state of health) per step [kWh];
#: its relative decline gives the fade over the record instead of the site's ageing model.
OPTIONAL = {"bess": {"cap": ("capacity_kwh_measured", "capacity_kwh")}}
#: Most bootstrap replicates, longest block.
MAX_BOOTSTRAP = 10_000
MAX_BLOCK_H = 24.0 * 31
#: Largest measured table read [bytes].
MAX_TABLE_BYTES = 2 << 30
#: A step is clipped above this share of the inverter limit.
CLIP_FRAC = 0.97
#: Daytime: DC power at 1 kWp above this [kW].
DAY_DC_KW = 0.02
#: A battery step below this share of the power limit is idle (left out of the fit) [-].
IDLE_FRAC = 0.01
#: SOC closer than this to a limit is pinned [percentage points].
PIN_PP = 0.05


@dataclass
class Fit:
    """One fitted parameter: the estimate, its bootstrap interval, and what it was fitted on."""

    key: str
    value: float
    ci_low: float
    ci_high: float
    site_value: float
    unit: str
    n_steps: int
    rmse: float
    rmse_unit: str

    def as_json(self) -> dict[str, Any]:
        """The entry of ``calibration.json``."""
        def num(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"value": self.value, "ci_low": num(self.ci_low), "ci_high": num(self.ci_high),
                "site_value": self.site_value, "unit": self.unit, "n_steps": self.n_steps,
                "rmse": self.rmse, "rmse_unit": self.rmse_unit}


# ------------------------------------------------------------------ input
@dataclass
class Measured:
    """The measured table of a run folder, on its own steps."""

    path: Path
    index: pd.DatetimeIndex  # step starts, in the site's time zone
    dt_s: float
    cols: dict[str, np.ndarray]  # channel -> values (power channels in kW)
    names: dict[str, str]  # channel -> column used


def _table_path(run_dir: Path) -> Path:
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a folder; name a run folder holding timeseries.parquet "
                        "(or timeseries.csv)")
    for name in ("timeseries.parquet", "timeseries.csv"):
        p = run_dir / name
        if p.is_file():
            if p.stat().st_size > MAX_TABLE_BYTES:
                raise UserError(f"{p}: larger than {MAX_TABLE_BYTES >> 30} GiB; cut the record")
            return p
    raise UserError(f"{run_dir}: no timeseries.parquet or timeseries.csv in the folder")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # a broken file of any kind: one line, no traceback
        raise UserError(f"{path}: cannot read the table ({type(exc).__name__}: {exc})"
                        ) from None


def _seconds(idx: pd.DatetimeIndex, t0: pd.Timestamp | None = None) -> np.ndarray:
    """Seconds of ``idx`` after ``t0`` (default its first entry), whatever the time unit."""
    return np.asarray((idx - (idx[0] if t0 is None else t0)).total_seconds(), dtype=np.float64)


def _timestamps(df: pd.DataFrame, path: Path, tz: str) -> tuple[pd.DatetimeIndex, float]:
    if "timestamp" not in df.columns:
        raise UserError(f"{path}: missing column 'timestamp' (step start, with a time zone)")
    raw = df["timestamp"]
    try:
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            idx = pd.DatetimeIndex(raw)
        else:
            if pd.api.types.is_datetime64_any_dtype(raw.dtype) or not raw.astype(str).str.contains(
                    r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).all():
                raise UserError(f"{path}: column 'timestamp' has no time zone; write ISO 8601 "
                                "times with their offset, e.g. 2024-03-04T00:00:00-05:00")
            idx = pd.DatetimeIndex(pd.to_datetime(raw, utc=True, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: column 'timestamp' cannot be read as times ({exc})") from None
    idx = idx.tz_convert(tz)
    if len(idx) < 3:
        raise UserError(f"{path}: {len(idx)} rows; need at least 3 steps")
    d = np.diff(_seconds(idx))
    if not (d > 0).all():
        i = int(np.flatnonzero(d <= 0)[0]) + 1
        raise UserError(f"{path}: column 'timestamp': row {i} ({idx[i]}) is not after the row "
                        "before; the times must increase")
    dt_s = float(np.min(d))
    if np.any(np.abs(np.remainder(d, dt_s)) > 1e-6):
        raise UserError(f"{path}: column 'timestamp': the steps are not a multiple of the "
                        f"shortest one ({dt_s:g} s); resample to a regular step")
    return idx, dt_s


def read_measured(run_dir: Path, tz: str, fits: tuple[str, ...]) -> Measured:
    """The channels ``fits`` need from ``run_dir``'s table.

    Raises
    ------
    UserError
        Naming the file and the first missing column.
    """
    path = _table_path(run_dir)
    df = _read_table(path)
    idx, dt_s = _timestamps(df, path, tz)
    cols: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    for ch in sorted({c for f in fits for c in NEEDS[f]}):
        name = next((n for n in CHANNELS[ch] if n in df.columns), None)
        if name is None:
            need = " or ".join(f"'{n}'" for n in CHANNELS[ch] if not n.endswith("_measured"))
            raise UserError(f"{path}: missing column {need} (needed to fit "
                            f"{', '.join(f for f in fits if ch in NEEDS[f])})")
        try:
            v = pd.to_numeric(df[name], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise UserError(f"{path}: column '{name}' holds values that are not numbers") from None
        if name.endswith(("_kwh", "_kwh_measured")):
            v = v / (dt_s / 3600.0)
        bad = np.isinf(v)
        if bad.any():
            raise UserError(f"{path}: column '{name}', row {int(np.flatnonzero(bad)[0])}: "
                            "infinite value")
        cols[ch] = v
        names[ch] = name
    for f in fits:
        for ch, accepted in OPTIONAL.get(f, {}).items():
            name = next((n for n in accepted if n in df.columns), None)
            if name is not None:
                v = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64)
                if np.isfinite(v).all() and (v > 0).all():
                    cols[ch], names[ch] = v, name
    return Measured(path, idx, dt_s, cols, names)


# ------------------------------------------------------------------ bootstrap
def _bootstrap(rows: np.ndarray, block: np.ndarray, estimate: Callable[[np.ndarray], float],
               n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    """2.5-97.5 % percentile interval of ``estimate`` over block-resampled ``rows``."""
    ids = np.unique(block[rows])
    by_block = [rows[block[rows] == b] for b in ids]
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(ids), size=len(ids))
        sample = np.concatenate([by_block[i] for i in pick])
        with np.errstate(all="ignore"):
            v = estimate(sample)
        if math.isfinite(v):
            vals.append(v)
    if len(vals) < max(10, n_boot // 2):
        return math.nan, math.nan
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


# ------------------------------------------------------------------ PV
def _pv_fit(m: Measured, site: Any) -> tuple[np.ndarray, Callable[[np.ndarray], float], dict]:
    """Rows used, the estimator of ``p_dc_kwp`` over rows, and the model for plots."""
    from scipy.optimize import least_squares

    from twin.components.inputs import pv_params
    from twin.components.pv import pv_chain_kw, pv_inverter_kw

    params = dataclasses.replace(pv_params(site), p_dc_kwp=1.0)
    times = pd.DatetimeIndex(m.index + pd.Timedelta(seconds=m.dt_s / 2.0))
    ghi, t_air, pv = m.cols["ghi"], m.cols["temp"], m.cols["pv"]
    ok = np.isfinite(ghi) & np.isfinite(t_air) & np.isfinite(pv)
    dc1 = np.zeros(len(times))
    if ok.any():
        dc1[ok] = pv_chain_kw(pd.DatetimeIndex(times[ok]), np.maximum(ghi[ok], 0.0),
                              t_air[ok], params)[0]
    p_max = site.pv.p_ac_max_kw
    rows = np.flatnonzero(ok & (dc1 > DAY_DC_KW) & (pv > 0.0) & (pv < CLIP_FRAC * p_max))

    def fit(r: np.ndarray) -> float:
        d, y = dc1[r], pv[r]
        if len(r) < 3:
            return math.nan
        x0 = float(np.dot(d, y) / np.dot(d, d)) / 0.96
        res = least_squares(lambda s: pv_inverter_kw(s[0] * d, params) - y, [x0],
                            bounds=([1e-6], [np.inf]), xtol=1e-12, ftol=1e-12)
        return float(res.x[0])

    s = fit(rows)
    if math.isfinite(s):  # drop the steps the fitted plant clips, refit once
        model = pv_inverter_kw(s * dc1[rows], params)
        rows = rows[model < CLIP_FRAC * p_max]
    return rows, fit, {"dc1": dc1, "params": params}


# ------------------------------------------------------------------ battery
def _bess_design(m: Measured, site: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (step k, with step k−1 just before) and the design X of the SOC fit (kWh of AC
    energy charged, minus kWh discharged)."""
    b = site.bess
    soc = m.cols["soc"] / 100.0
    p = m.cols["p_bess"]
    dt_h = m.dt_s / 3600.0
    n = len(soc)
    k = np.arange(1, n)
    prev = k - 1
    step = np.diff(_seconds(m.index))
    limits = np.array([0.0, b.soc_min_frac, b.soc_max_frac, 1.0])
    pin = PIN_PP / 100.0

    def free(s: np.ndarray) -> np.ndarray:
        return np.isfinite(s) & (np.min(np.abs(s[:, None] - limits[None, :]), axis=1) > pin)

    idle = IDLE_FRAC * max(b.p_charge_max_kw, b.p_discharge_max_kw)
    ok = (np.abs(step - m.dt_s) < 1e-6) & free(soc[k]) & free(soc[prev]) & np.isfinite(p[k]) \
        & (np.abs(np.nan_to_num(p[k])) >= idle)
    x = np.zeros((n, 2))
    pk = np.nan_to_num(p)
    x[:, 0] = np.maximum(-pk, 0.0) * dt_h  # AC energy charged [kWh]
    x[:, 1] = -np.maximum(pk, 0.0) * dt_h  # − AC energy discharged [kWh]
    return k[ok], soc, x


def _fade_frac(m: Measured, site: Any, soc: np.ndarray, x: np.ndarray, e_kwh: float,
               eta_rt: float) -> np.ndarray:
    """Capacity lost since the record's start, at the end of each step, as a share of the
    capacity at the start [-]: the twin's own ageing (``twin.components.bess.ageing_kwh``,
    the site's chemistry) on the measured power and SOC, for capacity ``e_kwh``."""
    from twin.components.bess import BessParams, ageing_kwh

    prm = BessParams.from_config(site.bess.model_copy(
        update={"e_capacity_kwh": e_kwh, "eta_roundtrip": min(max(eta_rt, 1e-3), 1.0)}))
    if prm.cycle_fade_per_kwh == 0.0 and prm.calendar_fade_per_h == 0.0:
        return np.zeros(len(soc))
    eta = prm.eta_charge
    dc = x[:, 0] * eta - x[:, 1] / eta  # DC energy through the cells [kWh]
    start = pd.Series(soc).ffill().bfill().to_numpy()
    start = np.r_[start[0], start[:-1]]  # SOC at each step's start
    hours = np.r_[m.dt_s, np.diff(_seconds(m.index))] / 3600.0
    lost = np.empty(len(soc))
    for i in range(len(soc)):
        cyc, cal = ageing_kwh(float(dc[i]), float(start[i]), float(hours[i]), prm)
        lost[i] = cyc + cal
    return np.cumsum(lost) / e_kwh


def _bess_target(m: Measured, site: Any, soc: np.ndarray, fade: np.ndarray) -> np.ndarray:
    """``y_k = SOC_k·(1 − f_k)/(1 − σ·dt) − SOC_{k−1}·(1 − f_{k−1})``: the stored-energy change
    over the step as a share of the capacity at the record's start."""
    keep = 1.0 - site.bess.self_discharge_frac_per_h * m.dt_s / 3600.0
    e = soc * (1.0 - fade)
    y = np.full(len(soc), np.nan)
    y[1:] = e[1:] / keep - e[:-1]
    return y


def _bess_solve(r: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(capacity [kWh], round-trip efficiency [-]) from the rows ``r``; NaN when not identified."""
    xr = x[r]
    if len(r) < 4 or not (xr[:, 0] > 0).any() or not (xr[:, 1] < 0).any():
        return math.nan, math.nan
    (a, bb), *_ = np.linalg.lstsq(xr, y[r], rcond=None)
    if a <= 0 or bb <= 0:
        return math.nan, math.nan
    return float(1.0 / math.sqrt(a * bb)), float(a / bb)


# ------------------------------------------------------------------ mall
def _mall_profile(m: Measured, site: Any) -> np.ndarray:
    """The site's mall profile without noise on the measured steps [kW]."""
    from twin.components.inputs import mall_params
    from twin.components.mall import mall_kw

    if site.mall.source != "synthetic":
        raise UserError("mall.e_day_kwh: the site's mall comes from a file (mall.source: "
                        f"{site.mall.source}), so it has no daily energy to fit; use "
                        "--fit pv,bess")
    prm = dataclasses.replace(mall_params(site), day_std=0.0, noise_frac=0.0)
    full = pd.date_range(m.index[0], m.index[-1], freq=pd.Timedelta(seconds=m.dt_s))
    try:
        prof = mall_kw(full, m.dt_s, prm, np.random.default_rng(0))
    except ValueError as exc:
        raise UserError(f"mall: the site's mall model cannot use its values: {exc}") from None
    pos = np.round(_seconds(m.index, full[0]) / m.dt_s).astype(np.int64)
    return np.asarray(prof[pos], dtype=np.float64)


# ------------------------------------------------------------------ the fits
def _fit_all(m: Measured, site: Any, fits: tuple[str, ...], n_boot: int, block_h: float,
             seed: int) -> tuple[dict[str, Fit], dict[str, Any]]:
    """Every requested fit with its bootstrap interval; and what the plots need."""
    block = np.floor(_seconds(m.index) / (block_h * 3600.0)).astype(np.int64)
    rng = np.random.default_rng(seed)
    out: dict[str, Fit] = {}
    plots: dict[str, Any] = {}
    if "pv" in fits:
        from twin.components.pv import pv_inverter_kw

        rows, est, aux = _pv_fit(m, site)
        s = est(rows)
        if not math.isfinite(s):
            raise UserError(f"{m.path}: pv.p_dc_kwp: fewer than 3 daytime steps below the "
                            f"inverter limit with finite '{m.names['pv']}', "
                            f"'{m.names['ghi']}', '{m.names['temp']}'")
        lo, hi = _bootstrap(rows, block, est, n_boot, rng)
        model = pv_inverter_kw(s * aux["dc1"], aux["params"])
        res = m.cols["pv"][rows] - model[rows]
        out["pv.p_dc_kwp"] = Fit("pv.p_dc_kwp", s, lo, hi, site.pv.p_dc_kwp, "kWp", len(rows),
                                 float(np.sqrt(np.mean(res**2))), "kW")
        plots["pv"] = (rows, model)
    if "bess" in fits:
        rows, soc, x = _bess_design(m, site)
        fade = np.zeros(len(soc))
        cap = m.cols.get("cap")
        for _ in range(1 if cap is not None else 3):  # the model's fade depends (weakly) on
            if cap is not None:                       # the capacity and efficiency
                fade = 1.0 - cap / cap[0]  # the battery's own state of health
            y = _bess_target(m, site, soc, fade)
            e, eta = _bess_solve(rows, y, x)
            if not math.isfinite(e):
                break
            if cap is None:
                fade = _fade_frac(m, site, soc, x, e, eta)
        if not math.isfinite(e):
            raise UserError(f"{m.path}: bess: the battery must both charge and discharge, off "
                            f"its SOC limits, in at least 4 steps ('{m.names['p_bess']}', "
                            f"'{m.names['soc']}'); cannot fit its capacity and efficiency")
        lo_e, hi_e = _bootstrap(rows, block, lambda r: _bess_solve(r, y, x)[0], n_boot, rng)
        lo_n, hi_n = _bootstrap(rows, block, lambda r: _bess_solve(r, y, x)[1], n_boot, rng)
        eta1 = math.sqrt(eta)
        pred = (x[:, 0] * eta1 + x[:, 1] / eta1) / e
        res = (y - pred)[rows] * 100.0
        rmse = float(np.sqrt(np.mean(res**2)))
        out["bess.e_capacity_kwh"] = Fit("bess.e_capacity_kwh", e, lo_e, hi_e,
                                         site.bess.e_capacity_kwh, "kWh", len(rows), rmse,
                                         "% of capacity per step")
        out["bess.eta_roundtrip"] = Fit("bess.eta_roundtrip", eta, lo_n, hi_n,
                                        site.bess.eta_roundtrip, "-", len(rows), rmse,
                                        "% of capacity per step")
        plots["bess"] = (rows, y * 100.0, pred * 100.0)
    if "mall" in fits:
        prof = _mall_profile(m, site)
        meas = m.cols["mall"]
        rows = np.flatnonzero(np.isfinite(meas))
        e0 = site.mall.e_day_kwh

        def est(r: np.ndarray) -> float:
            den = float(np.sum(prof[r]))
            return e0 * float(np.sum(meas[r])) / den if den > 0 else math.nan

        v = est(rows)
        if len(rows) == 0 or not math.isfinite(v):
            raise UserError(f"{m.path}: column '{m.names['mall']}' has no values")
        lo, hi = _bootstrap(rows, block, est, n_boot, rng)
        model = prof * v / e0
        res = meas[rows] - model[rows]
        out["mall.e_day_kwh"] = Fit("mall.e_day_kwh", v, lo, hi, e0, "kWh/day", len(rows),
                                    float(np.sqrt(np.mean(res**2))), "kW")
        plots["mall"] = (rows, model)
    return out, plots


# ------------------------------------------------------------------ outputs
#: Decimals of each value written into the calibrated site file.
_DECIMALS = {"pv.p_dc_kwp": 1, "bess.e_capacity_kwh": 1, "bess.eta_roundtrip": 4,
             "mall.e_day_kwh": 0}


def _site_yaml(site_path: Path, fitted: dict[str, Fit], run_dir: Path) -> str:
    """The site file with the fitted values (safe YAML; file paths made absolute)."""
    import yaml

    from twin.config import _read_yaml, _resolve_site_paths, set_dotted

    data = _read_yaml(site_path)
    _resolve_site_paths(data, site_path.parent.resolve())
    tar = data.get("tariff")
    if isinstance(tar, dict) and isinstance(tar.get("file"), str) and tar["file"]:
        tar["file"] = str((site_path.parent / tar["file"]).resolve())
    for key, f in fitted.items():
        nd = _DECIMALS[key]
        set_dotted(data, key, round(f.value, nd) if nd else round(f.value))
    head = (f"# Calibrated by 'twin calibrate' from {run_dir.resolve()}\n"
            f"# on the site file {site_path.resolve()}; fitted: "
            + ", ".join(f"{k} {f.site_value:g} -> {f.value:.6g}" for k, f in fitted.items())
            + "\n")
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _plots(m: Measured, fitted: dict[str, Fit], plots: dict[str, Any], folder: Path) -> list[str]:
    """Residual figures as PNGs in ``folder``; their file names."""
    from matplotlib.figure import Figure

    t = m.index.tz_localize(None)
    names = []
    specs: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray, str]] = []
    if "pv" in plots:
        rows, model = plots["pv"]
        specs.append(("pv", "PV AC power", rows, m.cols["pv"], model, "kW"))
    if "bess" in plots:
        rows, y, pred = plots["bess"]
        specs.append(("bess", "battery stored-energy change per step", rows, y, pred,
                          "% of capacity"))
    if "mall" in plots:
        rows, model = plots["mall"]
        specs.append(("mall", "mall demand", rows, m.cols["mall"], model, "kW"))
    for name, title, rows, meas, model, unit in specs:
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2])
        ax1.scatter(model[rows], meas[rows], s=6, alpha=0.6)
        lim = [float(np.nanmin(model[rows])), float(np.nanmax(model[rows]))]
        ax1.plot(lim, lim, color="k", lw=0.8)
        ax1.set_xlabel(f"fitted model [{unit}]")
        ax1.set_ylabel(f"measured [{unit}]")
        ax2.plot(t[rows], meas[rows] - model[rows], ".", ms=3)
        ax2.axhline(0.0, color="k", lw=0.8)
        ax2.set_ylabel(f"residual [{unit}]")
        fig.suptitle(f"{title}: measured vs calibrated twin ({len(rows)} steps)")
        fig.savefig(folder / f"residuals_{name}.png", dpi=90)
        names.append(f"residuals_{name}.png")
    return names


def _html(m: Measured, site_path: Path, fitted: dict[str, Fit], pngs: list[str],
          info: dict[str, Any]) -> str:
    from html import escape

    rows = "".join(
        f"<tr><td><code>{escape(k)}</code></td><td>{f.site_value:.6g}</td><td>{f.value:.6g}</td>"
        f"<td>{f.ci_low:.6g} – {f.ci_high:.6g}</td><td>{escape(f.unit)}</td><td>{f.n_steps}</td>"
        f"<td>{f.rmse:.4g} {escape(f.rmse_unit)}</td></tr>" for k, f in fitted.items())
    imgs = "".join(f'<p><img src="{escape(p)}" alt="{escape(p)}" style="max-width:100%"></p>'
                   for p in pngs)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>twin calibrate</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;"
        "border-bottom:1px solid #ddd}</style></head><body><h1>Calibration</h1>"
        f"<p>measured: <code>{escape(str(m.path))}</code> ({len(m.index)} steps of "
        f"{m.dt_s:g} s, {escape(str(m.index[0]))} to {escape(str(m.index[-1]))})<br>site: "
        f"<code>{escape(str(site_path))}</code><br>95 % intervals: block bootstrap, "
        f"{info['bootstrap']} replicates of {info['block_hours']:g} h blocks, seed "
        f"{info['seed']}</p><table><tr><th>parameter</th><th>site</th><th>fitted</th>"
        f"<th>95 % interval</th><th>unit</th><th>steps</th><th>RMSE</th></tr>{rows}</table>"
        f"<h2>Residuals</h2>{imgs}</body></html>\n")


def _site_of_run(run_dir: Path) -> Path:
    """The site file named by the run's ``summary.json`` (``site_file``, else its scenario's)."""
    from twin.config import load_scenario

    p = run_dir / "summary.json"
    try:
        summ = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}
    except (OSError, ValueError):
        summ = {}
    summ = summ if isinstance(summ, dict) else {}
    hint = "; name the site file with --site"
    if isinstance(summ.get("site_file"), str):
        cands = [Path(summ["site_file"]), run_dir / summ["site_file"]]
        for c in cands:
            if c.is_file():
                return c
    scn = summ.get("scenario_file")
    if not isinstance(scn, str):
        raise UserError(f"{p}: no 'site_file' or 'scenario_file' to find the site file{hint}")
    for c in (Path(scn), run_dir / scn):
        if c.is_file():
            return load_scenario(c).site_path
    raise UserError(f"{p}: its scenario file '{scn}' is not found from here{hint}")


def calibrate(run_dir: Path, out: Path, site_path: Path | None = None, *, n_boot: int = 200,
              block_h: float = 1.0, seed: int = 0, fits: tuple[str, ...] = ("pv", "bess", "mall"),
              ) -> dict[str, Fit]:
    """Fit the site's parameters to ``run_dir``'s measured data; write ``out``.

    Writes ``calibration.json`` (dotted key -> value, ci_low, ci_high, ...), ``site.yaml``
    (the calibrated site file), ``calibration.html`` and its ``residuals_*.png``.
    """
    from twin.atomic import hold_output, replace_dir, temp_sibling, write_marker
    from twin.config import load_site

    hold_output(out, "calibration")
    site_path = site_path if site_path is not None else _site_of_run(run_dir)
    site = load_site(site_path)
    m = read_measured(run_dir, site.location.tz, fits)
    fitted, plots = _fit_all(m, site, fits, n_boot, block_h, seed)
    info = {"bootstrap": n_boot, "block_hours": block_h, "seed": seed}
    text = _site_yaml(site_path, fitted, run_dir)
    tmp = temp_sibling(out)
    try:
        (tmp / "calibration.json").write_text(
            json.dumps({k: f.as_json() for k, f in fitted.items()}, indent=1,
                       allow_nan=False) + "\n",
            encoding="utf-8")
        (tmp / "site.yaml").write_text(text, encoding="utf-8")
        load_site(tmp / "site.yaml")  # the calibrated file loads with the project's loader
        pngs = _plots(m, fitted, plots, tmp)
        (tmp / "calibration.html").write_text(_html(m, site_path, fitted, pngs, info),
                                              encoding="utf-8")
        write_marker(tmp, "calibration", complete=True)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return fitted


# ------------------------------------------------------------------ command line
def _fits_arg(text: str) -> tuple[str, ...]:
    parts = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    bad = [p for p in parts if p not in NEEDS]
    if bad or not parts:
        raise UserError(f"--fit {text}: name one or more of {', '.join(NEEDS)} (comma-separated)")
    return parts


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``twin calibrate``."""
    n_boot = check_int("--bootstrap", args.bootstrap, 10, MAX_BOOTSTRAP)
    block_h = check_float("--block-hours", args.block_hours, 0.25, MAX_BLOCK_H)
    seed = check_int("--seed", args.seed, 0, 2**63 - 1)
    fits = _fits_arg(args.fit)
    fitted = calibrate(Path(args.run_dir), Path(args.out),
                       Path(args.site) if args.site else None, n_boot=n_boot, block_h=block_h,
                       seed=seed, fits=fits)
    for k, f in fitted.items():
        if not (math.isfinite(f.ci_low) and math.isfinite(f.ci_high)):
            print(f"twin: warning: {k}: no interval (fewer than half of the bootstrap "
                  f"replicates could be fitted: too few {block_h:g} h blocks with data; a "
                  "longer record or shorter --block-hours); ci_low/ci_high are null",
                  file=sys.stderr)
    if not args.quiet:
        w = max(len(k) for k in fitted)
        for k, f in fitted.items():
            print(f"{k:<{w}}  {f.value:12.6g}  [{f.ci_low:.6g}, {f.ci_high:.6g}]  (site "
                  f"{f.site_value:g} {f.unit})")
        print(f"outputs: {args.out}", file=sys.stdout)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``twin calibrate`` to the command line."""
    c = sub.add_parser(
        "calibrate", help=HELP,
        description="Fit pv.p_dc_kwp (against measured GHI and air temperature through the "
                    "site's own PV chain), bess.e_capacity_kwh and bess.eta_roundtrip (from "
                    "battery power vs SOC) and mall.e_day_kwh (against the site's profile) to "
                    "RUN_DIR's timeseries; 95 %% intervals by block bootstrap. Writes "
                    "calibration.json, the calibrated site.yaml and calibration.html with "
                    "residual plots. Columns: see docs/shadow-and-calibration.md.")
    c.add_argument("run_dir", help="run folder with timeseries.parquet (or .csv) and summary.json")
    c.add_argument("--out", required=True, help="output folder (a new, empty or earlier "
                                                "calibration folder)")
    c.add_argument("--site", help="site file to calibrate (default: the run's, from its "
                                  "summary.json)")
    c.add_argument("--fit", default="pv,bess,mall",
                   help="which fits, comma-separated: pv, bess, mall (default: all)")
    c.add_argument("--bootstrap", type=int, default=200, metavar="N",
                   help=f"bootstrap replicates ({int_range(10, MAX_BOOTSTRAP)}; default 200)")
    c.add_argument("--block-hours", type=float, default=1.0, metavar="H",
                   help=f"bootstrap block length [h] ({float_range(0.25, MAX_BLOCK_H)}; "
                        "default 1; longer when the errors are correlated for longer, e.g. 24 = "
                        "whole days on records of several weeks)")
    c.add_argument("--seed", type=int, default=0,
                   help=f"bootstrap seed ({int_range(0, 2**63 - 1)}; default 0)")
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    c.set_defaults(func=cmd_calibrate)

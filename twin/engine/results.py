"""Results of a run: per-step table, sessions, 24-hour profiles, summary KPIs (docs/spec.md §5).

Everything is computed vectorised from the recorder's arrays after the loop, and written
atomically (temporary folder, then rename) as Parquet (CSV on request) plus
``daily_profile.csv`` and ``summary.json``. ``twin run`` streams the per-step table: it is
built and written in chunks of whole local hours (one Parquet row group each) and the daily
profile is aggregated chunk by chunk, so a 1-min year never holds the whole table.
"""

from __future__ import annotations

import json
import math
import shutil
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin import atomic, kpi_catalogue
from twin.components.bess import BessParams
from twin.components.fleet import STATUS_NAMES
from twin.engine import RunOutput, kpis
from twin.engine.balance import allocate_flows, balance_residual
from twin.errors import UserError
from twin.record import as_array
from twin.tariff import Bill, offpeak_price_per_kwh, tariff_summary
from twin.tariff import bill as tariff_bill
from twin.tariff import schedule as tariff_schedule

SEED_COLUMNS = (
    "pv_kwh", "ev_kwh", "mall_kwh", "load_kwh", "pv_to_ev_kwh", "pv_to_bess_kwh",
    "pv_to_mall_kwh", "pv_curtailed_kwh", "bess_charge_kwh", "bess_discharge_kwh",
    "bess_action_kwh", "bess_mode", "bess_to_ev_kwh", "bess_to_mall_kwh",
    "bess_total_discharge_kwh", "grid_import_ev_kwh", "grid_import_mall_kwh", "grid_import_kwh",
    "grid_export_kwh", "soc_percent", "soc_kwh", "cost_savings_hp_soles",
    "co2_avoided_indirect_kg", "ev_demand_after_bess_kwh", "mall_demand_after_bess_kwh",
    "load_after_bess_kwh",
)

#: A session is satisfied when it left with what it asked for, to 1 Wh (one definition:
#: :data:`twin.kpi_catalogue.SATISFIED_TOL_KWH`).
SATISFIED_TOL_KWH = kpi_catalogue.SATISFIED_TOL_KWH

#: Files of a run folder (besides the marker): the tables as Parquet (unless the scenario's
#: ``output.parquet`` is false), the daily profile and the summary.
OUTPUT_FILES = ("timeseries.parquet", "sessions.parquet", "daily_profile.csv", "summary.json")
#: The tables as CSV too, with ``--csv`` (or the scenario's ``output.csv``).
CSV_OUTPUT_FILES = ("timeseries.csv", "sessions.csv")


@dataclass
class Results:
    """Tables and KPIs of one run."""

    timeseries: pd.DataFrame
    sessions: pd.DataFrame
    daily_profile: pd.DataFrame
    summary: dict[str, Any]


#: Rows per time-series chunk when a run's results are streamed (the chunk is widened to
#: whole local hours, so the daily profile's hourly groups never straddle two chunks).
DEFAULT_CHUNK_ROWS = 16_384

#: Runs of at least this many steps carry ``phase_name`` as text, shorter ones as a
#: categorical (the layout of the files written so far; kept for identical outputs).
_PHASE_TEXT_MIN_STEPS = 50_000


def _socket_col(i: int) -> str:
    return f"p_socket_{i:02d}_kw"


def _phase_name_codes(out: RunOutput) -> tuple[list[str], dict[int, int]]:
    """Categories of ``phase_name`` over the whole run and the code of each phase number.

    A phase the controller does not name is shown as its number in a short run and left
    empty (missing) in a long one, as before.
    """
    names = {int(k): v for k, v in out.controller.phases.items()}
    present = [int(p) for p in np.unique(out.rec.phase[:out.steps_done])]
    long_run = out.steps_done >= _PHASE_TEXT_MIN_STEPS
    shown = {p: names.get(p, str(p)) for p in present if not long_run or p in names}
    cats = sorted(set(shown.values()))
    return cats, {p: cats.index(v) for p, v in shown.items()}


class _Rows:
    """The time-series columns of rows ``[start, stop)`` of a run, each built on first use.

    Every column is an elementwise function of the record, so a column built over a slice
    equals the same rows of the column built over the whole run, bit for bit.
    """

    def __init__(self, out: RunOutput, start: int, stop: int,
                 phase_codes: tuple[list[str], dict[int, int]], keep: bool = True) -> None:
        inp = out.inputs
        rec = out.rec
        self.out = out
        self.sl = slice(start, stop)
        self.n = stop - start
        self.phase_codes = phase_codes
        self.dt_h = dt_h = inp.dt_s / 3600.0
        sl = self.sl
        self.e_pv = rec.p_pv_kw[sl] * dt_h
        self.e_mall = rec.p_mall_kw[sl] * dt_h
        self.e_ev = rec.e_ev_kwh[sl]
        self.e_ch = rec.e_bess_charge_kwh[sl]
        self.e_dis = rec.e_bess_discharge_kwh[sl]
        site = out.scenario.site
        self.fl = allocate_flows(self.e_pv, self.e_ev, self.e_mall, self.e_ch, self.e_dis,
                                 site.grid.export_limit_kw * dt_h)
        self._cache: dict[str, Any] = {}
        self._keep = keep  # False: a column is rebuilt when asked again (less memory)
        #: per-battery columns (two or more batteries): name -> (kind, battery index)
        self._units = _unit_columns(rec)

    def names(self) -> list[str]:
        """Column names in file order (seed-001 columns first, then the twin's own; the
        per-battery columns last, with two or more batteries)."""
        n_sock = self.out.rec.e_socket_kwh.shape[1]
        return (list(_ROW_COLUMNS) + [_socket_col(i) for i in range(n_sock)]
                + list(self._units))

    def __getitem__(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            pass
        if name.startswith("p_socket_"):
            i = int(name[len("p_socket_"):-len("_kw")])
            inv_dt = np.float32(1.0 / self.dt_h)
            v = self.out.rec.e_socket_kwh[self.sl, i] * inv_dt  # float32 mean power [kW]
        elif name in self._units:
            v = _unit_column(self, *self._units[name])
        else:
            v = _ROW_COLUMNS[name](self)
        if self._keep:
            self._cache[name] = v
        return v

    def frame(self) -> pd.DataFrame:
        """All columns as a table."""
        return pd.DataFrame({c: self[c] for c in self.names()}, copy=False)


#: Per-battery columns of the per-step table (two or more batteries), ``<kind>_<name>``.
UNIT_COLUMN_KINDS = ("soc_percent", "soc_kwh", "capacity_kwh", "bess_charge_kwh",
                     "bess_discharge_kwh", "p_bess_command_kw")


def _unit_columns(rec: Any) -> dict[str, tuple[str, int]]:
    """``{column: (kind, battery index)}`` of a record with per-battery columns."""
    units = rec.units
    if units is None:
        return {}
    return {f"{kind}_{nm}": (kind, i) for i, nm in enumerate(units.names)
            for kind in UNIT_COLUMN_KINDS}


def _unit_column(r: _Rows, kind: str, i: int) -> Any:
    """One battery's column ``kind`` over the rows of ``r``."""
    u = r.out.rec.units
    assert u is not None
    sl = r.sl
    if kind == "soc_percent":
        stored, cap = u.e_stored_kwh[sl, i], u.cap_kwh[sl, i]
        return np.divide(stored, cap, out=np.zeros(r.n), where=cap > 0) * 100.0
    src = {"soc_kwh": u.e_stored_kwh, "capacity_kwh": u.cap_kwh,
           "bess_charge_kwh": u.e_charge_kwh, "bess_discharge_kwh": u.e_discharge_kwh,
           "p_bess_command_kw": u.p_command_kw}[kind]
    return src[sl, i].copy()


def battery_summaries(out: RunOutput, n: int) -> list[dict[str, Any]]:
    """Per-battery KPIs of a run with two or more batteries (``summary['batteries']``):
    name, ratings, AC charge / discharge [kWh], SOC range and mean [%], capacity at the end
    and fade [kWh, %], equivalent full cycles (DC throughput over twice the capacity, and
    AC discharge over the usable window) and the BLAST-Lite resistance growth [%]."""
    units = out.rec.units
    if units is None:
        return []
    rows = []
    for i, cfg in enumerate(out.scenario.site.batteries):
        cap0 = cfg.e_capacity_kwh
        ch = _f(units.e_charge_kwh[:n, i].sum())
        dis = _f(units.e_discharge_kwh[:n, i].sum())
        cap = units.cap_kwh[:n, i]
        soc = np.divide(units.e_stored_kwh[:n, i], cap, out=np.zeros(n), where=cap > 0) * 100.0
        cap_end = _f(cap[-1]) if n else cap0
        bp = BessParams.from_config(cfg)
        dc = bp.eta_charge * ch + (dis / bp.eta_discharge if bp.eta_discharge > 0 else 0.0)
        usable = (cfg.soc_max_frac - cfg.soc_min_frac) * cap0
        ageing = units.ageing[i]
        rows.append({
            "name": cfg.name, "capacity_kwh": cap0, "p_charge_max_kw": cfg.p_charge_max_kw,
            "p_discharge_max_kw": cfg.p_discharge_max_kw, "chemistry": cfg.chemistry,
            "bess_charge_kwh": ch, "bess_discharge_kwh": dis,
            "soc_min_percent": _f(soc.min()) if n else 0.0,
            "soc_max_percent": _f(soc.max()) if n else 0.0,
            "soc_mean_percent": _f(soc.mean()) if n else 0.0,
            "capacity_end_kwh": cap_end,
            "capacity_fade_percent": (cap0 - cap_end) / cap0 * 100.0 if cap0 else 0.0,
            "equivalent_full_cycles": _f(dc / (2.0 * cap0)) if cap0 else 0.0,
            "efc_usable": dis / usable if usable else 0.0,
            "resistance_growth_percent": (ageing["resistance_rel"] - 1.0) * 100.0
            if "resistance_rel" in ageing else None,
        })
    return rows


def _phase_name(r: _Rows) -> Any:
    cats, code = r.phase_codes
    ph = r.out.rec.phase[r.sl]
    codes: np.ndarray[Any, np.dtype[np.int32]] = np.full(r.n, -1, dtype=np.int32)
    for p, c in code.items():
        codes[ph == p] = c
    categories = pd.Index(cats) if cats else pd.Index([], dtype=object)
    cat = pd.Categorical.from_codes(codes, categories=categories)
    if r.out.steps_done >= _PHASE_TEXT_MIN_STEPS:
        return np.asarray(cat, dtype=object)
    return cat


def _soc_percent(r: _Rows) -> Any:
    stored = r["soc_kwh"]
    cap = r["capacity_kwh"]
    return np.where(cap > 0, stored / np.where(cap > 0, cap, 1.0) * 100.0, 0.0)


def _weather(r: _Rows, i: int) -> Any:
    """GHI [W/m²] (``i`` 0) or air temperature [°C] (1) the PV model saw (the cloud model's
    or the weather file's); NaN when PV came from a file. Computed once per run (same cloud
    draws as the run), for ``twin calibrate``."""
    w = r.out.extra.get("pv_weather")
    inp = r.out.inputs
    if w is None and inp.ghi_w_m2 is not None and inp.t_air_c is not None:
        w = r.out.extra["pv_weather"] = (inp.ghi_w_m2, inp.t_air_c)  # a weather file's
    if w is None:
        from twin.components.inputs import pv_weather_inputs

        got = pv_weather_inputs(r.out.scenario)
        n = len(r.out.inputs.index)
        w = got if got is not None else (np.full(n, np.nan), np.full(n, np.nan))
        r.out.extra["pv_weather"] = w
    return w[i][r.sl]


def _tariff(r: _Rows) -> Any:
    return r.out.scenario.site.tariff


def _period_names(r: _Rows) -> Any:
    """Tariff period name per step (HP / HFP with the default tariff)."""
    inp = r.out.inputs
    sch = tariff_schedule(_tariff(r), inp.index[r.sl], inp.hour[r.sl])
    return np.asarray(sch.names, dtype=object)[sch.period].astype(str)


def _co2f(r: _Rows) -> float:
    return r.out.scenario.site.grid.co2_kg_per_kwh


_ROW_COLUMNS: dict[str, Callable[[_Rows], Any]] = {
    "timestamp": lambda r: r.out.inputs.index[r.sl],
    "pv_kwh": lambda r: r.e_pv,
    "ev_kwh": lambda r: r.e_ev,
    "mall_kwh": lambda r: r.e_mall,
    "load_kwh": lambda r: r.e_ev + r.e_mall,
    "pv_to_ev_kwh": lambda r: r.fl["pv_to_ev_kwh"],
    "pv_to_bess_kwh": lambda r: r.fl["pv_to_bess_kwh"],
    "pv_to_mall_kwh": lambda r: r.fl["pv_to_mall_kwh"],
    "pv_curtailed_kwh": lambda r: r.fl["pv_curtailed_kwh"],
    "bess_charge_kwh": lambda r: r.e_ch,
    "bess_discharge_kwh": lambda r: r.e_dis,
    "bess_action_kwh": lambda r: r.e_dis - r.e_ch,
    "bess_mode": lambda r: np.where(r["bess_action_kwh"] > 1e-12, "discharge",
                                    np.where(r["bess_action_kwh"] < -1e-12, "charge", "idle")),
    "bess_to_ev_kwh": lambda r: r.fl["bess_to_ev_kwh"],
    "bess_to_mall_kwh": lambda r: r.fl["bess_to_mall_kwh"],
    "bess_total_discharge_kwh": lambda r: r.fl["bess_to_ev_kwh"] + r.fl["bess_to_mall_kwh"],
    "grid_import_ev_kwh": lambda r: r.fl["grid_import_ev_kwh"],
    "grid_import_mall_kwh": lambda r: r.fl["grid_import_mall_kwh"],
    "grid_import_kwh": lambda r: r.fl["grid_import_kwh"],
    "grid_export_kwh": lambda r: r.fl["grid_export_kwh"],
    "soc_percent": _soc_percent,
    "soc_kwh": lambda r: r.out.rec.e_bess_stored_kwh[r.sl],
    "cost_savings_hp_soles": lambda r: kpis.cost_savings_hp_seed_formula(
        r["bess_total_discharge_kwh"], r.out.inputs.is_peak[r.sl],
        r.out.inputs.price_per_kwh[r.sl], offpeak_price_per_kwh(_tariff(r))),
    "co2_avoided_indirect_kg": lambda r: kpis.co2_avoided_bess_seed_formula_kg(
        r["bess_total_discharge_kwh"], _co2f(r)),
    "ev_demand_after_bess_kwh": lambda r: np.maximum(r.e_ev - r.fl["bess_to_ev_kwh"], 0.0),
    "mall_demand_after_bess_kwh": lambda r: np.maximum(r.e_mall - r.fl["bess_to_mall_kwh"], 0.0),
    "load_after_bess_kwh": lambda r: r["ev_demand_after_bess_kwh"]
    + r["mall_demand_after_bess_kwh"],
    "t_s": lambda r: np.arange(r.sl.start, r.sl.stop) * r.out.inputs.dt_s,
    "tariff_period": lambda r: _period_names(r),
    "tariff_soles_per_kwh": lambda r: r.out.inputs.price_per_kwh[r.sl],
    "grid_cost_soles": lambda r: r.fl["grid_import_kwh"] * r["tariff_soles_per_kwh"],
    "co2_grid_kg": lambda r: r.fl["grid_import_kwh"] * _co2f(r),
    "co2_avoided_bess_kg": lambda r: kpis.co2_avoided_bess_kg(
        r.e_ev + r.e_mall, r.e_pv, r.fl["grid_import_kwh"], _co2f(r)),
    "grid_to_bess_kwh": lambda r: r.fl["grid_to_bess_kwh"],
    "pv_export_kwh": lambda r: r.fl["pv_export_kwh"],
    "phase": lambda r: r.out.rec.phase[r.sl],
    "phase_name": _phase_name,
    "p_bess_request_kw": lambda r: r.out.rec.p_bess_request_kw[r.sl],
    "p_bess_command_kw": lambda r: r.out.rec.p_bess_command_kw[r.sl],
    "p_bess_kw": lambda r: r["bess_action_kwh"] / r.dt_h,
    "p_grid_kw": lambda r: r.fl["grid_import_kwh"] / r.dt_h,
    "capacity_kwh": lambda r: r.out.rec.cap_kwh[r.sl],
    "safety_clamps": lambda r: r.out.rec.n_clamps[r.sl],
    "n_plugged": lambda r: r.out.rec.n_plugged[r.sl],
    "n_waiting": lambda r: r.out.rec.n_waiting[r.sl],
    "balance_residual_kwh": lambda r: balance_residual(r.e_pv, r.e_ev, r.e_mall, r.e_ch,
                                                       r.e_dis, r.fl),
    "ghi_w_m2": lambda r: _weather(r, 0),
    "temp_air_c": lambda r: _weather(r, 1),
}


def build_timeseries(out: RunOutput, start: int = 0, stop: int | None = None) -> pd.DataFrame:
    """The per-step table (seed-001 columns first, then the twin's own), rows
    ``[start, stop)`` of the run (default: all steps done)."""
    stop = out.steps_done if stop is None else min(stop, out.steps_done)
    start = min(max(start, 0), stop)
    return _Rows(out, start, stop, _phase_name_codes(out)).frame()


def chunk_bounds(out: RunOutput, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> list[tuple[int, int]]:
    """``(start, stop)`` row ranges that cover the run, each about ``chunk_rows`` long.

    A chunk holds whole local clock hours (the daily profile's groups), so it may be
    longer than ``chunk_rows`` when a step or an hour is; one chunk when local time does
    not run forward (a clock set back across midnight would reopen an hour).
    """
    n = out.steps_done
    if n == 0:
        return [(0, 0)]
    idx = out.inputs.index[:n]
    local = idx.tz_localize(None) if idx.tz is not None else idx
    hour = local.to_numpy().astype("datetime64[h]").astype(np.int64)
    d = np.diff(hour)
    if (d < 0).any():
        return [(0, n)]
    starts = np.concatenate(([0], np.flatnonzero(d) + 1, [n]))  # hour-group boundaries
    bounds: list[tuple[int, int]] = []
    a = 0
    while a < n:
        # the last hour boundary at most chunk_rows after a, else the next one
        j = int(np.searchsorted(starts, a + max(chunk_rows, 1), side="right")) - 1
        b = int(starts[j])
        if b <= a:
            b = int(starts[np.searchsorted(starts, a, side="right")])
        bounds.append((a, b))
        a = b
    return bounds


def iter_timeseries(out: RunOutput, chunk_rows: int = DEFAULT_CHUNK_ROWS
                    ) -> Iterator[pd.DataFrame]:
    """The per-step table in chunks of whole local hours (see :func:`chunk_bounds`)."""
    codes = _phase_name_codes(out)
    for a, b in chunk_bounds(out, chunk_rows):
        yield _Rows(out, a, b, codes).frame()


def build_sessions(out: RunOutput) -> pd.DataFrame:
    """One row per session: requested vs delivered, wait, outcome."""
    fleet = out.sessions
    idx0 = out.inputs.index[0]
    if fleet is None:
        return pd.DataFrame({c: [] for c in (
            "session_id", "vehicle_type", "arrival", "planned_departure", "plug_in", "leave",
            "wait_min", "socket", "e_req_kwh", "e_req_orig_kwh", "e_delivered_kwh", "p_max_kw",
            "battery_kwh", "soc_arrival", "status", "outcome", "satisfied")})
    s = fleet.s
    # sessions that have not arrived when the run stopped are left out
    arrived = fleet.status != 0
    t_end = out.steps_done * out.inputs.dt_s
    arrived &= s.arrival_s < t_end

    def ts(sec: np.ndarray) -> pd.DatetimeIndex:
        return idx0 + pd.to_timedelta(sec, unit="s")

    plug = fleet.plug_s[arrived]
    arr = s.arrival_s[arrived]
    status = fleet.status[arrived]
    e_req = s.e_req_kwh[arrived]
    e_orig = s.e_req_orig_kwh[arrived] if s.e_req_orig_kwh is not None else e_req
    e_del = fleet.e_del_kwh[arrived]
    nan = np.full(e_req.shape, np.nan)
    # the vehicle (sessions log, ``twin.components.sessions.read_sessions``): battery [kWh]
    # and arrival SOC [-], NaN without a battery model
    cap = s.battery_kwh[arrived] if s.battery_kwh is not None else nan
    soc0 = s.soc_arrival[arrived] if s.soc_arrival is not None else nan
    wait = np.where(np.isnan(plug), fleet.leave_s[arrived] - arr, plug - arr) / 60.0
    status_names = [STATUS_NAMES[int(x)] for x in status]
    outcome = kpi_catalogue.session_outcomes(status_names, e_req, e_del, e_orig)
    return pd.DataFrame({
        "session_id": np.flatnonzero(arrived),
        "vehicle_type": pd.Categorical.from_codes(
            s.type_code[arrived], categories=pd.Index(list(out.scenario.site.ev.class_names))),
        "arrival": ts(arr),
        "planned_departure": ts(s.departure_s[arrived]),
        "plug_in": ts(plug),
        "leave": ts(fleet.leave_s[arrived]),
        "wait_min": wait,
        "socket": fleet.socket_of[arrived],
        "e_req_kwh": e_req,
        "e_req_orig_kwh": e_orig,
        "e_delivered_kwh": e_del,
        "p_max_kw": s.p_max_kw[arrived],
        "battery_kwh": cap,
        "soc_arrival": soc0,
        "status": pd.Categorical(status_names),
        "outcome": pd.Categorical(outcome, categories=[o.name for o in
                                                       kpi_catalogue.SESSION_OUTCOMES]),
        "satisfied": outcome == "satisfied",
    })


PROFILE_COLUMNS = ("pv_kwh", "ev_kwh", "mall_kwh", "load_kwh", "pv_to_ev_kwh", "pv_to_bess_kwh",
                   "pv_to_mall_kwh", "pv_curtailed_kwh", "bess_charge_kwh", "bess_discharge_kwh",
                   "bess_to_ev_kwh", "bess_to_mall_kwh", "grid_import_kwh", "grid_import_ev_kwh",
                   "grid_import_mall_kwh", "grid_cost_soles", "cost_savings_hp_soles",
                   "co2_avoided_indirect_kg")


def _hourly(ts: pd.DataFrame) -> pd.DataFrame:
    """Sums per local (date, hour) of the profile columns, and the mean SOC [%]."""
    t = ts["timestamp"]
    frame = ts[list(PROFILE_COLUMNS)].copy()
    frame["date"] = t.dt.date
    frame["hour"] = t.dt.hour
    hourly = frame.groupby(["date", "hour"], sort=True).sum()
    soc = ts.assign(date=t.dt.date, hour=t.dt.hour).groupby(["date", "hour"])["soc_percent"].mean()
    hourly["soc_percent"] = soc
    return hourly


def _profile_from_hourly(hourly: pd.DataFrame) -> pd.DataFrame:
    """Mean 24-hour profile per day type from the (date, hour) table of :func:`_hourly`."""
    hourly = hourly.reset_index()
    wd = pd.to_datetime(hourly["date"]).dt.day_of_week
    parts = []
    for name, mask in (("all", np.ones(len(hourly), bool)), ("weekday", (wd < 5).to_numpy()),
                       ("weekend", (wd >= 5).to_numpy())):
        if mask.any():
            g = hourly[mask].drop(columns=["date"]).groupby("hour").mean().reset_index()
            g.insert(0, "day_type", name)
            parts.append(g)
    return pd.concat(parts, ignore_index=True)


def build_daily_profile(ts: pd.DataFrame) -> pd.DataFrame:
    """Mean 24-hour profile [kWh per hour] for all days, weekdays and weekends (seed 003)."""
    return _profile_from_hourly(_hourly(ts))


class DailyProfileAccumulator:
    """The daily profile built on the fly from time-series chunks of whole local hours.

    Each chunk's (date, hour) groups are complete in it (:func:`chunk_bounds`), so the
    result equals :func:`build_daily_profile` of the whole table, bit for bit.
    """

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(self, ts: pd.DataFrame) -> None:
        """Take one chunk of the per-step table."""
        if len(ts):
            self._parts.append(_hourly(ts))

    def result(self) -> pd.DataFrame:
        """The profile of every chunk added (an empty table when none had rows)."""
        if not self._parts:
            return pd.DataFrame()
        return _profile_from_hourly(pd.concat(self._parts) if len(self._parts) > 1
                                    else self._parts[0])


def _f(x: Any) -> float:
    v = float(x)
    return v if math.isfinite(v) else 0.0


def _import_limit_kpis(ts: TableLike, limit_kw: float | None, dt_h: float) -> dict[str, Any]:
    """Steps whose grid import is above the site's import limit, and the energy above it.

    The safety layer enforces the limit as far as it can (battery charging cut first, then
    EV charging scaled down); the mall's own demand cannot be curtailed, so a limit below
    it is exceeded, and every such step is reported here.
    """
    if limit_kw is None:
        return {"import_limit_kw": None, "import_limit_exceeded_steps": 0,
                "import_limit_exceeded_kwh": 0.0}
    p = ts["p_grid_kw"].to_numpy(dtype=float)
    over = p - limit_kw
    mask = over > 1e-6 * max(limit_kw, 1.0)
    return {"import_limit_kw": float(limit_kw),
            "import_limit_exceeded_steps": int(mask.sum()),
            "import_limit_exceeded_kwh": _f(over[mask].sum() * dt_h)}


def _orig(sessions: pd.DataFrame) -> Any:
    """The sessions' original requests [kWh] (None for tables written before the column)."""
    return sessions["e_req_orig_kwh"].to_numpy() if "e_req_orig_kwh" in sessions else None


def session_kpis(sessions: pd.DataFrame) -> dict[str, Any]:
    """Session counts and energies of the summary, by the outcomes of the KPI catalogue.

    The outcome counts (:data:`twin.kpi_catalogue.SESSION_OUTCOMES`) sum to
    ``sessions_total``; ``ev_energy_requested_kwh`` is what all arrivals asked for.
    """
    n_sess = len(sessions)
    if n_sess:
        outcome = kpi_catalogue.session_outcomes(sessions["status"].astype(str).to_numpy(),
                                                 sessions["e_req_kwh"].to_numpy(),
                                                 sessions["e_delivered_kwh"].to_numpy(),
                                                 _orig(sessions))
    else:
        outcome = np.zeros(0, dtype=str)
    counts = kpi_catalogue.outcome_counts(outcome)
    socket = sessions["status"].astype(str).isin(["served", "plugged"]).to_numpy() if n_sess \
        else np.zeros(0, bool)  # got a socket
    req = sessions["e_req_kwh"].to_numpy(dtype=float) if n_sess else np.zeros(0)
    return {
        "sessions_total": n_sess,
        "sessions_served": int(socket.sum()),
        **counts,
        "sessions_satisfied_share": counts["sessions_satisfied"] / n_sess if n_sess else 0.0,
        "ev_energy_requested_kwh": _f(req.sum()),
        "ev_energy_requested_socket_kwh": _f(req[socket].sum()),
        "ev_energy_delivered_kwh": _f(sessions["e_delivered_kwh"].sum()) if n_sess else 0.0,
    }


def ev_shares(ts: TableLike, eta_charge: float, stored0_kwh: float) -> dict[str, float]:
    """EV shares that do not hang on the seed's allocation order (issue 19, point 5).

    * ``bess_discharge_grid_share``: share of the battery's output that was grid-charged,
      by a proportional colour of the stored energy (each step's output takes the grid
      share of what is stored; charge from the grid adds to it; the stored energy is the
      run's own SOC series). The initial content counts as grid-charged (unknown origin).
    * ``ev_coverage_no_grid_charge``: the seed allocation's EV share from PV + BESS with the
      grid-charged part of the battery's output to the EVs taken out.
    * ``ev_coverage_counterfactual``: 1 − (grid energy the EV load causes) / EV energy,
      where the EV load causes, per step, the site's import to the loads minus the import
      the mall alone would have needed from the same local supply (PV used + battery
      output that was not grid-charged): ``(load − local) − max(mall − local, 0)``.
      The EVs count as the last load served: the share is a lower bound, and it does not
      depend on which load the battery's output is said to go to.
    * ``ev_coverage_pro_rata``: each step's local supply to the loads shared in proportion
      to the loads (``Σ ev × local / load``): no load first, no load last (grid-charged
      battery output is not local).
    """
    # stdlib arrays, not lists: the same Python floats on read, 8 bytes an item instead of
    # a list's 32 (at 1-min ticks four lists were ~70 MiB, the run's peak memory)
    dis = as_array(ts["bess_discharge_kwh"].to_numpy(dtype=float))
    c_g = as_array(ts["grid_to_bess_kwh"].to_numpy(dtype=float))
    c_pv = as_array(ts["pv_to_bess_kwh"].to_numpy(dtype=float))
    stored = as_array(ts["soc_kwh"].to_numpy(dtype=float))
    grid_f = array("d", bytes(8 * len(stored)))  # grid share of the stored energy, step start
    f, prev = 1.0, stored0_kwh  # grid share of the stored energy; stored energy [kWh]
    for k, s_k in enumerate(stored):
        grid_f[k] = f
        out_dc = prev + (c_pv[k] + c_g[k]) * eta_charge - s_k  # taken out (output, losses)
        pool = f * max(prev - max(out_dc, 0.0), 0.0) + c_g[k] * eta_charge
        f = min(pool / s_k, 1.0) if s_k > 1e-9 else 0.0
        prev = s_k
    del c_g, c_pv, stored
    e_dis = float(sum(dis))
    gf = np.frombuffer(grid_f, dtype=np.float64)
    grid_dis = np.frombuffer(dis, dtype=np.float64) * gf  # battery output that was grid-charged
    del dis
    ev = ts["ev_kwh"].to_numpy(dtype=float)
    e_ev = float(ev.sum())
    mall = ts["mall_kwh"].to_numpy(dtype=float)
    load = ts["load_kwh"].to_numpy(dtype=float)
    # the same operations as the formulas in the docstring, in place (fewer temporaries)
    local = ts["grid_import_kwh"].to_numpy(dtype=float) - ts["grid_to_bess_kwh"].to_numpy(
        dtype=float)
    np.maximum(local, 0.0, out=local)  # grid import to the loads
    np.subtract(load, local, out=local)
    local -= grid_dis
    # local supply to the loads: PV used + battery output that was not grid-charged
    np.clip(local, 0.0, load, out=local)
    ev_grid = mall - local
    np.maximum(ev_grid, 0.0, out=ev_grid)
    np.subtract(load - local, ev_grid, out=ev_grid)
    np.clip(ev_grid, 0.0, ev, out=ev_grid)
    e_ev_grid = float(ev_grid.sum())
    np.multiply(ev, local, out=ev_grid)
    del local
    ev_grid /= np.where(load > 0, load, 1.0)
    pro_rata = float(np.sum(ev_grid))
    del ev_grid
    to_ev = ts["bess_to_ev_kwh"].to_numpy(dtype=float)
    grid_to_ev = float(np.sum(to_ev * gf))
    pv_to_ev = float(ts["pv_to_ev_kwh"].sum())
    return {
        "ev_coverage_counterfactual": 1.0 - e_ev_grid / e_ev if e_ev else 0.0,
        "ev_coverage_pro_rata": pro_rata / e_ev if e_ev else 0.0,
        "bess_discharge_grid_share": float(grid_dis.sum()) / e_dis if e_dis else 0.0,
        "ev_coverage_no_grid_charge": (pv_to_ev + float(to_ev.sum()) - grid_to_ev) / e_ev
        if e_ev else 0.0,
    }


#: Per-step columns summed into the run's totals.
_TOTALS = ("pv_kwh", "ev_kwh", "mall_kwh", "load_kwh", "pv_to_ev_kwh", "pv_to_bess_kwh",
           "pv_to_mall_kwh", "pv_curtailed_kwh", "bess_charge_kwh", "bess_discharge_kwh",
           "bess_to_ev_kwh", "bess_to_mall_kwh", "grid_import_ev_kwh", "grid_import_mall_kwh",
           "grid_import_kwh", "grid_export_kwh", "grid_to_bess_kwh", "grid_cost_soles",
           "cost_savings_hp_soles", "co2_avoided_indirect_kg", "co2_grid_kg",
           "co2_avoided_bess_kg")


def build_summary(out: RunOutput, ts: TableLike, sessions: pd.DataFrame) -> dict[str, Any]:
    """Per-run KPIs (the seed-003 ``bess_results.json`` fields and more).

    ``ts`` is the per-step table, or :class:`SummaryColumns` (the same columns, built one
    at a time over the whole run without the table). The keys are the rows of
    :mod:`twin.kpi_catalogue`; each part below builds one group of them, in order.
    """
    n = out.steps_done
    days = n * out.scenario.config.dt / 3600.0 / 24.0
    tot = {c: _f(ts[c].sum()) for c in _TOTALS}
    tariff = out.scenario.site.tariff
    # the bill: energy (the per-step column) + demand charges per billing month + fixed
    sched = tariff_schedule(tariff, out.inputs.index[:n], out.inputs.hour[:n])
    bill = tariff_bill(sched, ts["grid_import_kwh"].to_numpy(), out.scenario.config.dt)
    summary: dict[str, Any] = {
        **_run_keys(out, n, days),
        **_energy_keys(out, ts, tot, days),
        **_money_and_co2_keys(out, ts, tot, n, bill),
        **_battery_state_keys(out, ts, tot, n, days),
        **_ev_and_control_keys(out, ts, sessions, n),
        "tariff_bill": tariff_summary(tariff, bill, sched),
        **_performance_keys(out, n),
    }
    if out.rec.units is not None:  # two or more batteries: each one's figures
        summary["batteries"] = battery_summaries(out, n)
    # a controller may add its own keys (e.g. ``optimal``: the LP and its gap to this run)
    extra = getattr(out.controller, "summary", None)
    if callable(extra):
        summary.update(extra(summary))
    return summary


def _run_keys(out: RunOutput, n: int, days: float) -> dict[str, Any]:
    """What ran: scenario, site, controller, seed, horizon; the battery's nameplate."""
    scn, site, cfg = out.scenario, out.scenario.site, out.scenario.config
    return {
        "scenario": cfg.name,
        "scenario_file": str(scn.path),
        "site": site.name,
        "controller": out.controller.name,
        "seed": cfg.seed,
        "start": str(scn.index[0]),
        "end": str(scn.index[0] + pd.Timedelta(seconds=n * cfg.dt)),
        "dt_s": cfg.dt,
        "n_steps": cfg.n_steps,
        "steps_done": n,
        "interrupted": out.interrupted,
        "days": days,
        # battery (seed 003 names)
        "capacity_kwh": site.bess.e_capacity_kwh,
        "nominal_power_kw": max(site.bess.p_charge_max_kw, site.bess.p_discharge_max_kw),
        "dod": site.bess.soc_max_frac - site.bess.soc_min_frac,
        "eta_roundtrip": site.bess.eta_roundtrip,
        "technology": site.bess.technology,
        "chemistry": site.bess.chemistry,
    }


def _energy_keys(out: RunOutput, ts: TableLike, tot: dict[str, float],
                 days: float) -> dict[str, Any]:
    """Energy totals [kWh], annualised figures, shares and cycles."""
    site = out.scenario.site
    pv_kwp = site.pv.p_dc_kwp
    cap0 = site.bess.e_capacity_kwh
    usable_kwh = (site.bess.soc_max_frac - site.bess.soc_min_frac) * cap0  # usable window
    bp = BessParams.from_config(site.bess)
    return {
        **{f"{k}": v for k, v in tot.items() if k.endswith("_kwh")},
        "pv_specific_yield_kwh_per_kwp": tot["pv_kwh"] / pv_kwp * (365.0 / days)
        if pv_kwp > 0 and days else 0.0,
        "pv_annualised_kwh": tot["pv_kwh"] * 365.0 / days if days else 0.0,
        "mall_annualised_kwh": tot["mall_kwh"] * 365.0 / days if days else 0.0,
        "ev_annualised_kwh": tot["ev_kwh"] * 365.0 / days if days else 0.0,
        "self_sufficiency": 1.0 - tot["grid_import_kwh"] / tot["load_kwh"] if tot["load_kwh"] else 0.0,
        "pv_self_consumption": (tot["pv_kwh"] - tot["pv_curtailed_kwh"] - tot["grid_export_kwh"])
        / tot["pv_kwh"] if tot["pv_kwh"] else 0.0,
        "ev_coverage": (tot["pv_to_ev_kwh"] + tot["bess_to_ev_kwh"]) / tot["ev_kwh"]
        if tot["ev_kwh"] else 0.0,
        "ev_coverage_bess": tot["bess_to_ev_kwh"] / tot["ev_kwh"] if tot["ev_kwh"] else 0.0,
        # cycles: over the usable SOC window (AC discharge ÷ ((soc_max − soc_min) × capacity)),
        # and the seeds' old figure under its honest name (discharge ÷ nominal capacity)
        "efc_usable_per_day": tot["bess_discharge_kwh"] / usable_kwh / days
        if usable_kwh and days else 0.0,
        "discharge_per_nominal_capacity_per_day": tot["bess_discharge_kwh"] / cap0 / days
        if cap0 and days else 0.0,
        **ev_shares(ts, bp.eta_charge, site.bess.soc_initial_frac * cap0),
    }


def _money_and_co2_keys(out: RunOutput, ts: TableLike, tot: dict[str, float], n: int,
                        bill: Bill) -> dict[str, Any]:
    """The bill [currency] (energy, demand, fixed), savings and CO2 [kg] with their
    counterfactuals (all grid; PV without the battery)."""
    site, cfg = out.scenario.site, out.scenario.config
    price = ts["tariff_soles_per_kwh"].to_numpy()
    load = ts["load_kwh"].to_numpy()
    pv = ts["pv_kwh"].to_numpy()
    cost_base = _f(kpis.cost_all_grid(load, price).sum())
    co2f = site.grid.co2_kg_per_kwh
    co2_base = _f(kpis.co2_all_grid_kg(load, co2f).sum())
    co2_no_bess = _f(kpis.co2_no_bess_kg(load, pv, co2f).sum())
    return {
        "currency": site.tariff.currency,
        "cost_baseline_soles": cost_base,
        "cost_pv_only_soles": _f(kpis.cost_no_bess(load, pv, price).sum()),
        "cost_grid_import_soles": tot["grid_cost_soles"],
        "cost_demand_soles": bill.demand,
        "cost_fixed_soles": bill.fixed,
        "cost_total_soles": tot["grid_cost_soles"] + bill.demand + bill.fixed,
        "savings_bess_soles": _f(kpis.savings_bess(load, pv, ts["grid_import_kwh"].to_numpy(),
                                                   price).sum()),
        "savings_total_soles": cost_base - tot["grid_cost_soles"],
        "cost_savings_hp_soles": tot["cost_savings_hp_soles"],
        # CO2 [kg]
        "co2_emissions_kg": tot["co2_grid_kg"],
        "co2_baseline_kg": co2_base,
        "co2_no_bess_kg": co2_no_bess,
        "co2_avoided_kg": co2_base - tot["co2_grid_kg"],
        "co2_avoided_bess_kg": tot["co2_avoided_bess_kg"],
        "co2_avoided_bess_seed_formula_kg": tot["co2_avoided_indirect_kg"],
        "co2_reduction_percent_pv_and_bess": kpis.reduction_percent(co2_base, tot["co2_grid_kg"]),
        "co2_reduction_percent_bess": kpis.reduction_percent(co2_no_bess, tot["co2_grid_kg"]),
        # grid
        "peak_grid_import_kw": _f(ts["p_grid_kw"].max()) if n else 0.0,
        **_import_limit_kpis(ts, site.grid.import_limit_kw, cfg.dt / 3600.0),
    }


def _battery_state_keys(out: RunOutput, ts: TableLike, tot: dict[str, float], n: int,
                        days: float) -> dict[str, Any]:
    """SOC [%], capacity fade (cycle and calendar parts) [%], cycles and ageing."""
    site = out.scenario.site
    cap0 = site.bess.e_capacity_kwh
    cap_end = _f(ts["capacity_kwh"].iloc[-1]) if n else cap0
    soc = ts["soc_percent"]
    bp = BessParams.from_config(site.bess)
    # DC throughput of the cells from the AC energies (nominal efficiencies; with an
    # efficiency curve this is the nominal-point estimate) [kWh]
    dc_kwh = _f(bp.eta_charge * tot["bess_charge_kwh"] + (
        tot["bess_discharge_kwh"] / bp.eta_discharge if bp.eta_discharge > 0 else 0.0))
    ageing = out.rec.bess_ageing  # BLAST-Lite figures from the plant (empty: linear model)
    if "t_cell_mean_c" in ageing:  # the in-process plant aged it (no full day yet: none)
        fade_cycle = ageing.get("fade_cycle_kwh", 0.0)
        # calendar (+ legacy CityLearn term); negative: BLAST-Lite's LTO model gains capacity
        # with time early on
        fade_other = cap0 - cap_end - fade_cycle
    else:
        fade_cycle = bp.cycle_fade_per_kwh * dc_kwh
        fade_other = max(cap0 - cap_end - fade_cycle, 0.0)
    has_bess = cap0 > 0 and getattr(out.controller, "uses_battery", True)
    usable_kwh = (site.bess.soc_max_frac - site.bess.soc_min_frac) * cap0
    return {
        "soc_min_percent": _f(soc.min()) if n else 0.0,
        "soc_max_percent": _f(soc.max()) if n else 0.0,
        "soc_mean_percent": _f(soc.mean()) if n else 0.0,
        "capacity_end_kwh": cap_end,
        "capacity_fade_kwh": cap0 - cap_end,
        "capacity_fade_percent": (cap0 - cap_end) / cap0 * 100.0 if cap0 else 0.0,
        "capacity_fade_cycle_percent": fade_cycle / cap0 * 100.0 if cap0 else 0.0,
        "capacity_fade_calendar_percent": fade_other / cap0 * 100.0 if cap0 else 0.0,
        "capacity_fade_annualised_percent": (cap0 - cap_end) / cap0 * 100.0 * 365.0 / days
        if cap0 and days else 0.0,
        "equivalent_full_cycles": dc_kwh / (2.0 * cap0) if cap0 else 0.0,
        "efc_usable": tot["bess_discharge_kwh"] / usable_kwh if usable_kwh else 0.0,
        "bess_in_use": bool(has_bess),
        "ageing_model": (("blast" if bp.blast else "linear") if site.bess.ageing else "off")
        if has_bess else "none",
        "resistance_growth_percent": (ageing["resistance_rel"] - 1.0) * 100.0
        if "resistance_rel" in ageing else None,
        "t_cell_mean_c": ageing.get("t_cell_mean_c",
                                    site.bess.t_cell_c if has_bess and not bp.blast else None),
    }


def _ev_and_control_keys(out: RunOutput, ts: TableLike, sessions: pd.DataFrame,
                         n: int) -> dict[str, Any]:
    """EV sessions and waits [min], controller phases [h], safety, inputs, tariff."""
    site = out.scenario.site
    dt_h = out.scenario.config.dt / 3600.0
    phases = ts["phase"].to_numpy()
    names = {int(k): v for k, v in out.controller.phases.items()}
    waits = (sessions["wait_min"].to_numpy(dtype=float)[sessions["plug_in"].notna().to_numpy()]
             if len(sessions) else np.zeros(0))
    return {
        **session_kpis(sessions),
        "wait_mean_min": _f(np.mean(waits)) if len(waits) else 0.0,
        "wait_p95_min": _f(np.quantile(waits, 0.95)) if len(waits) else 0.0,
        # controller and safety
        "phase_names": {str(k): v for k, v in names.items()},
        "phase_hours": {names.get(int(p), str(p)): _f((phases == p).sum() * dt_h)
                        for p in np.unique(phases)},
        "safety_clamps_total": out.clamps.total,
        "safety_clamps_by_reason": dict(sorted(out.clamps.by_reason.items())),
        "reverse_flow_cuts": out.n_reverse_flow_cuts,
        "energy_balance_residual_max_kwh": _f(ts["balance_residual_kwh"].abs().max()) if n else 0.0,
        # measured input files: values filled in their short gaps (twin.components.measured,
        # twin.components.weather)
        "input_filled_values": int(out.inputs.input_filled_values),
        # tariff (seed 003 names; the peak window of a weekday)
        "osinergmin_tariff": {
            "energia_hp_soles_kwh": max(site.tariff.period_prices[p] for p in site.tariff.peak_names),
            "energia_hfp_soles_kwh": offpeak_price_per_kwh(site.tariff),
            "horas_punta": [h for h in range(24)
                            if site.tariff.peak_window_h[0] <= h < site.tariff.peak_window_h[1]],
        },
    }


def _performance_keys(out: RunOutput, n: int) -> dict[str, Any]:
    """Wall times [s], rates and decision times [µs] (volatile: not compared across runs)."""
    dec = out.rec.decide_s[:n]
    fleet = out.sessions
    events = (fleet.events if fleet is not None else 0) + n
    return {
        "sim_wall_s": out.sim_wall_s,
        "inputs_wall_s": out.inputs_wall_s,
        "ticks_per_s": n / out.sim_wall_s if out.sim_wall_s > 0 else 0.0,
        "events": events,
        "events_per_s": events / out.sim_wall_s if out.sim_wall_s > 0 else 0.0,
        "decide_median_us": _f(np.median(dec) * 1e6) if n else 0.0,
        "decide_p99_us": _f(np.quantile(dec, 0.99) * 1e6) if n else 0.0,
    }


def build_results(out: RunOutput) -> Results:
    """All tables and the summary of a run, in memory (see :func:`stream_results` to write a
    long run without building its whole table)."""
    ts = build_timeseries(out)
    sessions = build_sessions(out)
    prof = build_daily_profile(ts) if len(ts) else pd.DataFrame()
    return Results(ts, sessions, prof, build_summary(out, ts, sessions))


class SummaryColumns:
    """Columns of the per-step table over the whole run, each built when first asked for.

    ``build_summary`` reads about thirty of the table's columns; this gives them (the same
    numbers as the table's, as Series) without building the other columns, the text
    columns or the per-socket ones.
    """

    def __init__(self, out: RunOutput) -> None:
        self._rows = _Rows(out, 0, out.steps_done, _phase_name_codes(out), keep=False)

    def __getitem__(self, name: str) -> pd.Series:
        return pd.Series(self._rows[name], copy=False, name=name)

    def __len__(self) -> int:
        return self._rows.n


#: What :func:`build_summary` reads columns from: the table or :class:`SummaryColumns`.
TableLike = pd.DataFrame | SummaryColumns


@dataclass
class StreamedResults:
    """A run's sessions and summary; its per-step table and daily profile are built in
    chunks while :func:`write_results` writes them (bounded memory at 1-min ticks)."""

    out: RunOutput
    sessions: pd.DataFrame
    summary: dict[str, Any]
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    def timeseries_chunks(self) -> Iterator[pd.DataFrame]:
        """The per-step table, chunk by chunk (see :func:`iter_timeseries`)."""
        return iter_timeseries(self.out, self.chunk_rows)


def stream_results(out: RunOutput, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> StreamedResults:
    """Sessions and summary of a run, the per-step table left to be streamed to disk.

    The summary is built by :func:`build_summary` from the same column formulas as the
    table (:class:`SummaryColumns`), so its numbers equal :func:`build_results`'s.
    """
    sessions = build_sessions(out)
    summary = build_summary(out, SummaryColumns(out), sessions)
    return StreamedResults(out, sessions, summary, chunk_rows)


#: Summary keys that change from run to run (wall time), left out of determinism checks
#: (the ``volatile`` rows of the KPI catalogue).
VOLATILE_KEYS: frozenset[str] = kpi_catalogue.volatile_keys()


def iso_local(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timezone-aware timestamps as ISO 8601 strings with their UTC offset, vectorised.

    ``2024-01-01T09:15:00-05:00``; NaT becomes an empty string.
    """
    idx = pd.DatetimeIndex(ts)
    if idx.tz is None:
        raise ValueError("timestamps must be timezone-aware")
    local = idx.tz_localize(None)
    utc = idx.tz_convert("UTC").tz_localize(None)
    base = np.datetime_as_string(local.to_numpy().astype("datetime64[s]"), unit="s")
    nat = np.asarray(idx.isna())
    td = np.where(nat, np.timedelta64(0, "ns"), (local - utc).to_numpy())
    off_min = (td // np.timedelta64(1, "m")).astype(np.int64)
    uniq = {int(m): f"{'+' if m >= 0 else '-'}{abs(int(m)) // 60:02d}:{abs(int(m)) % 60:02d}"
            for m in np.unique(off_min[~nat])}
    suffix = np.array([uniq.get(int(m), "") for m in off_min]) if len(uniq) > 1 else \
        np.full(len(idx), next(iter(uniq.values()), ""))
    out = np.char.add(base.astype(str), suffix.astype(str)).astype(object)
    out[nat] = ""
    return out


def _csv_table(part: pd.DataFrame) -> Any:
    """``part`` as an Arrow table for CSV: timestamps as local ISO 8601, categories as text."""
    import pyarrow as pa

    frame = {}
    for c in part.columns:
        col = part[c]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            frame[c] = pa.array(iso_local(col), type=pa.string())
        elif isinstance(col.dtype, pd.CategoricalDtype):
            frame[c] = pa.array(col.astype(str).to_numpy(), type=pa.string())
        else:
            frame[c] = pa.array(col.to_numpy())
    return pa.table(frame)


class TableWriter:
    """Writes a table chunk by chunk: Parquet (one row group per chunk) and/or CSV.

    Parameters
    ----------
    parquet_path, csv_path : the files to write; None = not that format.
    """

    def __init__(self, parquet_path: Path | None, csv_path: Path | None) -> None:
        self.parquet_path = parquet_path
        self.csv_path = csv_path
        self._pq: Any = None
        self._csv: Any = None
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        """Append ``df`` (the same columns and types every time)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self.parquet_path is not None:
            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._pq is None:
                # dictionary pages only for the few-valued columns (text, categories, counts):
                # for floats and times they cost half the write and save nothing
                few = [f.name for f in table.schema
                       if not (pa.types.is_floating(f.type) or pa.types.is_temporal(f.type))]
                self._pq = pq.ParquetWriter(str(self.parquet_path), table.schema,
                                            use_dictionary=few)
            self._pq.write_table(table)
        if self.csv_path is not None:
            table = _csv_table(df)
            if self._csv is None:
                self._csv = pacsv.CSVWriter(str(self.csv_path), table.schema)
            self._csv.write_table(table)
        self.rows += len(df)

    def close(self) -> None:
        """Finish the files (also after a failure)."""
        for w in (self._pq, self._csv):
            if w is not None:
                w.close()
        self._pq = self._csv = None


def write_csv(df: pd.DataFrame, path: Path, chunk_rows: int = 50_000) -> None:
    """Write ``df`` as CSV quickly (pyarrow, in chunks to bound memory); timestamps as
    local ISO 8601 with their offset."""
    w = TableWriter(None, path)
    try:
        for start in range(0, max(len(df), 1), chunk_rows):
            w.write(df.iloc[start:start + chunk_rows])
    finally:
        w.close()


def write_parquet(df: pd.DataFrame, path: Path, chunk_rows: int = 100_000) -> None:
    """Write ``df`` as Parquet in row groups of ``chunk_rows`` (bounded memory)."""
    w = TableWriter(path, None)
    try:
        for start in range(0, max(len(df), 1), chunk_rows):
            w.write(df.iloc[start:start + chunk_rows])
    finally:
        w.close()


def _write_streamed(res: StreamedResults, tmp: Path, *, csv: bool, parquet: bool) -> pd.DataFrame:
    """Write the per-step table of ``res`` chunk by chunk; return the daily profile."""
    w = TableWriter(tmp / "timeseries.parquet" if parquet else None,
                    tmp / "timeseries.csv" if csv else None)
    prof = DailyProfileAccumulator()
    try:
        for chunk in res.timeseries_chunks():
            w.write(chunk)
            prof.add(chunk)
    finally:
        w.close()
    return prof.result()


def check_output_dir(out_dir: Path | str, kind: str = "run") -> Path:
    """Refuse an output folder the twin may not replace (see :func:`twin.atomic.check_output_dir`).

    Call it before the run; returns the folder made absolute.

    Raises
    ------
    twin.errors.UserError
        When ``out_dir`` is a file, or a non-empty folder that is not the project's.
    """
    return atomic.check_output_dir(out_dir, kind)


def _free_sibling(out: Path) -> Path:
    """A name next to ``out`` that does not exist yet: ``NAME-2``, ``NAME-3`` ..."""
    for i in range(2, 10_000):
        cand = out.with_name(f"{out.name}-{i}")
        if not cand.exists():
            return cand
    raise UserError(f"{out}: no free folder name next to it")


def _finite_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with non-finite numbers replaced by null, listed in ``non_finite_fields``."""
    bad: list[str] = []

    def fix(v: Any, key: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            bad.append(key)
            return None
        if isinstance(v, dict):
            return {k: fix(x, f"{key}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x, f"{key}[{i}]") for i, x in enumerate(v)]
        return v

    out = {k: fix(v, k) for k, v in summary.items()}
    if bad:
        out["non_finite_fields"] = bad
    return out


def write_results(res: Results | StreamedResults, out_dir: Path, *, csv: bool = False,
                  parquet: bool = True,
                  extra: Callable[[Path], None] | None = None) -> Path:
    """Write the run's files atomically; return the folder actually written.

    Files are written into a temporary sibling folder which then replaces the output
    folder, so a reader never sees a half-written run and a failure leaves nothing behind.
    The folder gets the project's marker (:data:`twin.atomic.MARKER`, ``complete`` false
    for an interrupted run).

    * An interrupted run (``summary["interrupted"]``) never replaces a complete one: it
      goes to ``OUT.partial`` then.
    * If the folder became unusable during the run (a user file appeared), the run goes
      to a free sibling ``OUT-2`` rather than being lost.

    Parameters
    ----------
    res : the results; a :class:`StreamedResults`' per-step table and daily profile are
        built chunk by chunk as they are written.
    csv, parquet : write the tables as CSV (``timeseries.csv``, ``sessions.csv``) and / or
        Parquet (``timeseries.parquet``, ``sessions.parquet``).
    extra : called with the temporary folder to add more files (e.g. the HIL's logs)
        before the marker lists the folder's entries.
    """
    out_dir = Path(out_dir)
    complete = not res.summary.get("interrupted", False)
    target = atomic.partial_target(out_dir) if not complete else out_dir
    try:
        target = check_output_dir(target)
    except UserError:
        target = check_output_dir(_free_sibling(atomic._absolute(target)))
    tmp = atomic.temp_sibling(target)
    try:
        if isinstance(res, StreamedResults):
            profile = _write_streamed(res, tmp, csv=csv, parquet=parquet)
        else:
            profile = res.daily_profile
            if parquet:
                write_parquet(res.timeseries, tmp / "timeseries.parquet")
            if csv:
                write_csv(res.timeseries, tmp / "timeseries.csv")
        if parquet:
            res.sessions.to_parquet(tmp / "sessions.parquet", index=False)
        if csv:
            write_csv(res.sessions, tmp / "sessions.csv")
        profile.to_csv(tmp / "daily_profile.csv", index=False, float_format="%.9g")
        with open(tmp / "summary.json", "w", encoding="utf-8") as fh:
            json.dump(_finite_summary(res.summary), fh, indent=2, sort_keys=False,
                      allow_nan=False)
            fh.write("\n")
        if extra is not None:
            extra(tmp)
        atomic.write_marker(tmp, "run", complete=complete, extra={
            "steps_done": res.summary.get("steps_done"), "n_steps": res.summary.get("n_steps")})
        atomic.replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# ----------------------------------------------------------------- reading a run back
#: Largest ``summary.json`` read [bytes] (a real one is a few kB).
SUMMARY_MAX_BYTES = 16 * 2**20
#: Largest magnitude accepted in a run's tables and KPIs [kWh, kW, kg, currency]; a bigger
#: value is a damaged or hand-edited file (the site's annual energy is ~1e7 kWh).
MAX_ABS_VALUE = 1e15

#: Types of the summary keys the tools read (``twin show``, ``export``, ``report``).
SUMMARY_TYPES: dict[str, type] = {
    "scenario": str, "site": str, "controller": str, "start": str, "end": str,
    "currency": str, "interrupted": bool, "phase_names": dict, "seed": int,
    "n_steps": int, "steps_done": int,
}


#: Summary keys that must be numbers: every number ``build_summary`` writes (the ``summary``
#: rows of the KPI catalogue, :mod:`twin.kpi_catalogue`).
NUMERIC_SUMMARY_KEYS: frozenset[str] = kpi_catalogue.summary_keys()


class SummaryError(UserError):
    """``summary.json`` of a run folder cannot be used; the message says why."""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_summary(data: Any, where: Path | str) -> dict[str, Any]:
    """Check a parsed ``summary.json``: a JSON object, known keys of the right type, KPIs finite.

    Raises
    ------
    SummaryError
        Naming the file and the field.
    """
    if not isinstance(data, dict):
        raise SummaryError(f"{where}: expected a JSON object of KPIs, found "
                           f"{'null' if data is None else type(data).__name__}; the file is not "
                           "a run summary written by the twin")
    for key, typ in SUMMARY_TYPES.items():
        if key in data and data[key] is not None:
            v = data[key]
            ok = isinstance(v, typ) and (typ is bool or not isinstance(v, bool))
            if not ok:
                raise SummaryError(f"{where}: field '{key}' should be a {typ.__name__}, found "
                                   f"{type(v).__name__} ({str(v)[:40]!r})")
    if isinstance(data.get("phase_names"), dict) and not all(
            isinstance(v, str) for v in data["phase_names"].values()):
        raise SummaryError(f"{where}: field 'phase_names' should map codes to names")
    for key, v in data.items():
        if v is None or (key not in NUMERIC_SUMMARY_KEYS and not _is_number(v)):
            continue
        if not _is_number(v):
            raise SummaryError(f"{where}: field '{key}' should be a number, found "
                               f"{type(v).__name__} ({str(v)[:40]!r})")
        if not math.isfinite(v) or abs(v) > MAX_ABS_VALUE:
            raise SummaryError(f"{where}: field '{key}' = {v!r} is not a plausible finite "
                               "value; the file is damaged")
    if _is_number(data.get("dt_s")) and not data["dt_s"] > 0:
        raise SummaryError(f"{where}: field 'dt_s' must be a positive step length [s], found "
                           f"{data['dt_s']!r}")
    for key in ("steps_done", "n_steps"):
        if isinstance(data.get(key), int) and data[key] < 0:
            raise SummaryError(f"{where}: field '{key}' is negative ({data[key]})")
    return data


def read_summary(run_dir: Path | str) -> dict[str, Any]:
    """Read and check ``RUN_DIR/summary.json`` (size cap, UTF-8, depth, types, finite KPIs).

    Raises
    ------
    SummaryError
        One paragraph naming the file and what is wrong.
    """
    p = Path(run_dir) / "summary.json"
    if not Path(run_dir).is_dir():
        raise SummaryError(f"{run_dir}: not a folder; give a run folder written by 'twin run'")
    if not p.is_file():
        raise SummaryError(f"{p}: not found; give a run folder written by 'twin run'")
    try:
        size = p.stat().st_size
        if size > SUMMARY_MAX_BYTES:
            raise SummaryError(f"{p}: {size} bytes is too big for a run summary (at most "
                               f"{SUMMARY_MAX_BYTES}); the file is not the twin's")
        with open(p, "rb") as fh:
            raw = fh.read(SUMMARY_MAX_BYTES + 1)
        data = json.loads(raw.decode("utf-8"))
    except SummaryError:
        raise
    except OSError as exc:
        raise SummaryError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SummaryError(f"{p}: not UTF-8 text (binary data); the file is damaged") from None
    except RecursionError:
        raise SummaryError(f"{p}: nested too deeply to be a run summary; the file is "
                           "damaged") from None
    except ValueError as exc:
        raise SummaryError(f"{p}: not valid JSON ({exc}); the file is damaged or was cut "
                           "short") from None
    return check_summary(data, p)


def check_columns(df: pd.DataFrame, columns: Sequence[str], where: Path | str) -> None:
    """Numeric, finite, plausible (|x| <= :data:`MAX_ABS_VALUE`) values in ``columns``.

    Raises
    ------
    SummaryError
        Naming the file and the first bad column.
    """
    for c in columns:
        s = df[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            raise SummaryError(f"{where}: column '{c}' should hold numbers, found {s.dtype}")
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v) | (np.abs(v) > MAX_ABS_VALUE)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SummaryError(f"{where}: column '{c}' holds {v[i]!r} at row {i} (not a "
                               "plausible finite value); the file is damaged")

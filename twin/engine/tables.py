"""The tables of a run, built vectorised from the recorder's arrays after the loop: the
per-step table (whole, or in chunks of whole local hours), the sessions and the 24-hour
profiles; :class:`Results` and :class:`StreamedResults` hold a run's tables and summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from twin import kpi_catalogue
from twin.components.fleet import STATUS_NAMES
from twin.engine import RunOutput, kpis
from twin.engine.balance import allocate_flows, balance_residual
from twin.tariff import offpeak_price_per_kwh
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

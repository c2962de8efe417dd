"""``twin export openmetrics``: a finished run's per-step series as OpenMetrics text.

The file is meant for Prometheus backfilling::

    twin export openmetrics runs/annual -o annual.om
    promtool tsdb create-blocks-from openmetrics annual.om /var/lib/prometheus/metrics2

The series carry the same names and units as the live twin's ``/metrics`` (see
``docs/metrics.md``), so the shipped dashboard shows a backfilled run too. Each sample is
stamped with the **end** of its step [s, Unix time] — the instant the value is known,
which is also when the live twin publishes it (``twin_sim_time_seconds``): powers are
means over the step that ends there, states (SOC, stored energy) are at that instant,
counters are cumulative up to it.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from twin.config import DEFAULT_CURRENCY
from twin.engine import kpis
from twin.engine.results import UNIT_COLUMN_KINDS, SummaryError, check_columns, read_summary
from twin.monitoring.catalogue import BY_NAME
from twin.monitoring.metrics import FLOWS, G_PER_KG, J_PER_KWH, TOTALS, W_PER_KW

#: Columns the export needs from ``timeseries.parquet``.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "timestamp", "soc_kwh", "capacity_kwh", "pv_kwh", "ev_kwh", "mall_kwh",
    "bess_charge_kwh", "bess_discharge_kwh", "grid_import_kwh", "tariff_soles_per_kwh",
    "tariff_period", "phase", "grid_cost_soles", "co2_grid_kg", "co2_avoided_indirect_kg",
    "n_plugged", "n_waiting", "safety_clamps", "p_bess_request_kw", "p_bess_command_kw",
    *FLOWS.values(),
)


class RunDirError(Exception):
    """The run folder cannot be exported (message names the file)."""


def _fmt_values(a: np.ndarray) -> list[str]:
    """Exact, shortest text of float values (``repr`` round-trips float64)."""
    return [repr(v) if math.isfinite(v) else ("NaN" if v != v else ("+Inf" if v > 0 else "-Inf"))
            for v in np.asarray(a, dtype=np.float64).tolist()]


def _fmt_times(t_s: np.ndarray) -> list[str]:
    if np.all(t_s == np.round(t_s)):
        return [str(int(v)) for v in t_s.tolist()]
    return [f"{v:.3f}" for v in t_s.tolist()]


def _labels(base: dict[str, str], extra: dict[str, str] | None = None) -> str:
    items = {**base, **(extra or {})}
    if not items:
        return ""
    esc = {k: v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
           for k, v in items.items()}
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc.items()) + "}"


class _Family:
    """One metric family: TYPE/HELP lines, then its series one after the other."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.series: list[tuple[str, np.ndarray]] = []

    def add(self, labels: str, values: np.ndarray) -> None:
        self.series.append((labels, values))

    def lines(self, times: list[str]) -> Iterator[str]:
        yield f"# TYPE {self.name} {self.kind}\n"
        yield f"# HELP {self.name} {self.help}\n"
        sample = self.name + ("_total" if self.kind == "counter" else "")
        for labels, values in self.series:
            prefix = sample + labels + " "
            yield "".join(f"{prefix}{v} {t}\n" for v, t in zip(_fmt_values(values), times,
                                                               strict=True))


#: Columns the export reads from ``sessions.parquet`` (when the run has one).
SESSION_COLUMNS: tuple[str, ...] = ("vehicle_type", "arrival", "plug_in", "leave", "socket",
                                    "e_req_kwh", "e_delivered_kwh", "status")


def load_sessions(run_dir: Path) -> pd.DataFrame | None:
    """``sessions.parquet`` of a run folder (None when it has none).

    Raises
    ------
    RunDirError
        Naming the file when it is broken or lacks a column.
    """
    p = Path(run_dir) / "sessions.parquet"
    if not p.is_file():
        return None
    try:
        df = pd.read_parquet(p)
    except Exception as exc:
        raise RunDirError(f"{p}: cannot read ({type(exc).__name__}: {exc})") from None
    missing = [c for c in SESSION_COLUMNS if c not in df.columns]
    if missing:
        raise RunDirError(f"{p}: missing column(s) {missing}; was it written by this version "
                          "of the twin?")
    if len(df):
        try:
            check_columns(df, ["socket", "e_req_kwh", "e_delivered_kwh"], p)
        except SummaryError as exc:
            raise RunDirError(str(exc)) from None
        for c in ("arrival", "plug_in", "leave"):
            if not isinstance(df[c].dtype, pd.DatetimeTZDtype):
                raise RunDirError(f"{p}: column '{c}' must be timezone-aware timestamps")
        from twin.kpi_catalogue import session_outcomes

        try:
            session_outcomes(df["status"].astype(str).to_numpy(), df["e_req_kwh"].to_numpy(),
                             df["e_delivered_kwh"].to_numpy(),
                             df["e_req_orig_kwh"].to_numpy() if "e_req_orig_kwh" in df else None)
        except ValueError as exc:
            raise RunDirError(f"{p}: column 'status': {exc}") from None
    return df


def load_run(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read ``timeseries.parquet`` (else ``timeseries.csv``; and ``summary.json`` when
    present) of a run folder.

    Raises
    ------
    RunDirError
        Naming the missing or broken file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a folder; give a run folder written by 'twin run' "
                          "or 'twin live'")
    p = run_dir / "timeseries.parquet"
    if not p.is_file() and (run_dir / "timeseries.csv").is_file():
        p = run_dir / "timeseries.csv"  # a run written with output.parquet false
    if not p.is_file():
        raise RunDirError(f"{p}: not found (nor timeseries.csv); give a run folder written "
                          "by 'twin run' or 'twin live'")
    try:
        if p.suffix == ".csv":
            ts = pd.read_csv(p)
            ts["timestamp"] = pd.to_datetime(ts["timestamp"], format="ISO8601")
        else:
            ts = pd.read_parquet(p)
    except Exception as exc:
        raise RunDirError(f"{p}: cannot read ({type(exc).__name__}: {exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in ts.columns]
    if missing:
        raise RunDirError(f"{p}: missing column(s) {missing}; was it written by this version "
                          "of the twin?")
    if not isinstance(ts["timestamp"].dtype, pd.DatetimeTZDtype):
        raise RunDirError(f"{p}: column 'timestamp' must be timezone-aware timestamps")
    try:
        check_columns(ts, [c for c in REQUIRED_COLUMNS if c not in ("timestamp", "tariff_period")],
                      p)
        if "p_socket_00_kw" in ts.columns:
            check_columns(ts, [c for c in ts.columns if str(c).startswith("p_socket_")], p)
        check_columns(ts, [c for name in battery_names(ts) for c in _unit_cols(name)], p)
        summary: dict[str, Any] = read_summary(run_dir) if (run_dir / "summary.json").exists() \
            else {}
    except SummaryError as exc:
        raise RunDirError(str(exc)) from None
    return ts, summary


def _step_s(ts: pd.DataFrame, summary: dict[str, Any], where: Path) -> float:
    dt = summary.get("dt_s")
    if isinstance(dt, int | float) and dt > 0:
        return float(dt)
    if len(ts) >= 2:
        d = np.diff(pd.DatetimeIndex(ts["timestamp"]).as_unit("ns").asi8[:2])[0] / 1e9
        if d > 0:
            return float(d)
    raise RunDirError(f"{where / 'summary.json'}: needed for the step length (field 'dt_s')")


#: Requests the in-process (``sim``) device links answer: one read of each before the first
#: step, then per step a read and a write of the battery and the chargers and a read of the
#: meters (``adapters.sim``, ``twin.engine.driver``; checked against a real run by
#: ``tests/unit/test_metrics.py``).
SIM_REQUESTS_FIRST: dict[str, int] = {"bess": 1, "chargers": 1, "meters": 1}
SIM_REQUESTS_PER_STEP: dict[str, int] = {"bess": 2, "chargers": 2, "meters": 1}


def families(ts: pd.DataFrame, summary: dict[str, Any], *, labels: dict[str, str],
             sockets: bool = True, dt_s: float,
             sessions: pd.DataFrame | None = None) -> list[_Family]:
    """The metric families of a run: names, types, labels and help texts from the catalogue
    (:data:`twin.monitoring.catalogue.CATALOGUE`), as the live ``/metrics``.

    Parameters
    ----------
    ts : the per-step table.
    summary : the run summary (phase names, currency, controller); may be empty.
    labels : labels put on every series (e.g. job, instance).
    sockets : also export per-socket power (38 more series for the Iquitos site).
    dt_s : step length [s].
    sessions : the run's sessions table (``sessions.parquet``): session counters by outcome
        and socket occupancy; None leaves them out.

    Notes
    -----
    ``twin_safety_clamps_total`` carries ``reason="all"``: the per-step table counts the
    clamps of a step, not their reasons (the live twin splits them by reason).

    A finished run has no wall-clock lag (``twin_sim_lag_seconds`` 0). Its decision times
    are the run's median and 99th percentile (``twin_controller_decide_run_seconds``): the
    outputs keep no per-step wall times (they would break bit-identical reruns). A run with
    the in-process device links (not ``twin hil``) gets their request counters and zero
    errors, retries and failsafe entries (such a link cannot fail).
    """
    b = _Builder(labels)
    col = {c: ts[c].to_numpy(dtype=np.float64) for c in REQUIRED_COLUMNS
           if c not in ("timestamp", "tariff_period", "phase")}
    currency = str(summary.get("currency", DEFAULT_CURRENCY))
    _power_and_energy(b, col, W_PER_KW / (dt_s / 3600.0), currency)
    _batteries(b, ts, W_PER_KW / (dt_s / 3600.0))
    _today(b, ts, col, currency)
    _tariff_and_controller(b, ts, col, summary, currency)
    _ev(b, ts, col, sessions, sockets=sockets, dt_s=dt_s)
    _progress(b, ts, summary, dt_s)
    return list(b.fams.values())


class _Builder:
    """Collects the series of each family, checked against the catalogue's labels."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.fams: dict[str, _Family] = {}

    def __call__(self, name: str, values: Any, extra: dict[str, str] | None = None,
                 cumulative: bool = False) -> None:
        spec = BY_NAME[name]
        got = set(extra or {})
        if got != set(spec.labels):
            raise AssertionError(f"{name}: labels {sorted(got)} differ from the catalogue's "
                                 f"{list(spec.labels)}")
        fam = self.fams.get(name)
        if fam is None:
            fam = self.fams[name] = _Family(name, spec.kind, spec.help)
        v = np.asarray(values, dtype=np.float64)
        fam.add(_labels(self.labels, extra), np.cumsum(v) if cumulative else v)


def _power_and_energy(series: _Builder, col: dict[str, np.ndarray], w: float,
                      currency: str) -> None:
    """Battery state, powers [W] (``w``: kWh per step -> W), energy, cost and CO2 counters."""
    stored, cap = col["soc_kwh"], col["capacity_kwh"]
    series("twin_bess_soc_ratio", np.where(cap > 0, stored / np.where(cap > 0, cap, 1.0), 0.0))
    series("twin_bess_stored_energy_joules", stored * J_PER_KWH)
    series("twin_bess_capacity_joules", cap * J_PER_KWH)
    e_ch, e_dis = col["bess_charge_kwh"], col["bess_discharge_kwh"]
    series("twin_pv_power_watts", col["pv_kwh"] * w)
    series("twin_pv_curtailed_power_watts", col["pv_curtailed_kwh"] * w)
    series("twin_mall_power_watts", col["mall_kwh"] * w)
    series("twin_ev_power_watts", col["ev_kwh"] * w)
    series("twin_grid_import_power_watts", col["grid_import_kwh"] * w)
    series("twin_bess_power_watts", (e_dis - e_ch) * w)
    series("twin_bess_discharge_power_watts", e_dis * w)
    series("twin_bess_charge_power_watts", e_ch * w)
    series("twin_bess_setpoint_watts", col["p_bess_request_kw"] * W_PER_KW, {"stage": "requested"})
    series("twin_bess_setpoint_watts", col["p_bess_command_kw"] * W_PER_KW, {"stage": "commanded"})
    for flow, c in FLOWS.items():
        series(f"twin_energy_{flow}_joules", col[c] * J_PER_KWH, cumulative=True)
    for flow, c in TOTALS.items():
        series(f"twin_energy_{flow}_joules", col[c] * J_PER_KWH, cumulative=True)
    series("twin_grid_cost", col["grid_cost_soles"], {"currency": currency}, cumulative=True)
    series("twin_co2_grid_grams", col["co2_grid_kg"] * G_PER_KG, cumulative=True)
    series("twin_co2_avoided_grams", col["co2_avoided_indirect_kg"] * G_PER_KG, cumulative=True)


def _unit_cols(name: str) -> list[str]:
    """The per-battery columns of battery ``name`` (``<kind>_<name>``)."""
    return [f"{kind}_{name}" for kind in UNIT_COLUMN_KINDS]


def battery_names(ts: pd.DataFrame) -> list[str]:
    """Names of the batteries with per-battery columns in ``ts`` (two or more batteries;
    none for a one-battery site), in column order."""
    cols = {str(c) for c in ts.columns}
    names = [str(c)[len("soc_kwh_"):] for c in ts.columns if str(c).startswith("soc_kwh_")]
    return [n for n in names if all(c in cols for c in _unit_cols(n))]


#: The name of the one battery of a site whose ``bess:`` is not a list (``BessConfig.name``).
ONE_BATTERY = "bess"


def _batteries(series: _Builder, ts: pd.DataFrame, w: float) -> None:
    """Per-battery power [W] (``w``: kWh per step -> W), command, state and counters, as the
    live sink: from the per-battery columns (two or more batteries), or one series from
    the totals (a one-battery site)."""
    names = battery_names(ts)
    for name in names or [ONE_BATTERY]:
        lab = {"battery": name}
        sfx = f"_{name}" if names else ""

        def c(kind: str, sfx: str = sfx) -> np.ndarray:
            return ts[f"{kind}{sfx}"].to_numpy(dtype=np.float64)

        e_ch, e_dis, stored, cap = (c("bess_charge_kwh"), c("bess_discharge_kwh"), c("soc_kwh"),
                                    c("capacity_kwh"))
        series("twin_bess_unit_power_watts", (e_dis - e_ch) * w, lab)
        series("twin_bess_unit_command_watts", c("p_bess_command_kw") * W_PER_KW, lab)
        series("twin_bess_unit_soc_ratio",
               np.where(cap > 0, stored / np.where(cap > 0, cap, 1.0), 0.0), lab)
        series("twin_bess_unit_stored_energy_joules", stored * J_PER_KWH, lab)
        series("twin_bess_unit_capacity_joules", cap * J_PER_KWH, lab)
        series("twin_bess_unit_charge_joules", e_ch * J_PER_KWH, lab, cumulative=True)
        series("twin_bess_unit_discharge_joules", e_dis * J_PER_KWH, lab, cumulative=True)


def _tariff_periods(ts: pd.DataFrame, summary: dict[str, Any]) -> list[str]:
    """The site's tariff periods in the site file's order (``tariff_bill.periods`` of the
    summary; HP / HFP for a run written before it), then any other period of ``ts``."""
    bill = summary.get("tariff_bill")
    named = bill.get("periods") if isinstance(bill, dict) else None
    out = [str(p) for p in named] if isinstance(named, dict) else ["HP", "HFP"]
    present = set(ts["tariff_period"].astype(str).tolist())
    return out + sorted(present - set(out))


def _today(series: _Builder, ts: pd.DataFrame, col: dict[str, np.ndarray],
           currency: str) -> None:
    """Counters that restart each simulated local day."""
    day = pd.DatetimeIndex(ts["timestamp"]).tz_localize(None).normalize()
    saving = kpis.savings_bess(col["ev_kwh"] + col["mall_kwh"], col["pv_kwh"],
                               col["grid_import_kwh"], col["tariff_soles_per_kwh"])

    def daily(values: np.ndarray) -> np.ndarray:
        return pd.Series(values).groupby(np.asarray(day)).cumsum().to_numpy(dtype=np.float64)

    series("twin_today_grid_cost", daily(col["grid_cost_soles"]), {"currency": currency})
    series("twin_today_bess_savings", daily(saving), {"currency": currency})
    series("twin_today_co2_grid_grams", daily(col["co2_grid_kg"] * G_PER_KG))
    series("twin_today_co2_avoided_grams", daily(col["co2_avoided_indirect_kg"] * G_PER_KG))
    for flow in ("pv", "ev", "mall", "grid_import"):
        series("twin_today_energy_joules", daily(col[f"{flow}_kwh"] * J_PER_KWH), {"flow": flow})


def _tariff_and_controller(series: _Builder, ts: pd.DataFrame, col: dict[str, np.ndarray],
                           summary: dict[str, Any], currency: str) -> None:
    """Price, tariff period, controller phase and safety clamps."""
    series("twin_tariff_price_per_joule", col["tariff_soles_per_kwh"] / J_PER_KWH,
           {"currency": currency})
    period = ts["tariff_period"].astype(str).to_numpy()
    for p in _tariff_periods(ts, summary):
        series("twin_tariff_period", (period == p).astype(float), {"period": p})
    phase = ts["phase"].to_numpy(dtype=np.int64)
    names = {int(k): str(v) for k, v in (summary.get("phase_names") or {}).items()}
    controller = str(summary.get("controller", ""))
    for code in sorted(set(names) | set(np.unique(phase).tolist())):
        series("twin_controller_phase", (phase == code).astype(float),
               {"controller": controller, "phase": names.get(code, str(code))})
    series("twin_controller_phase_code", phase)
    series("twin_safety_clamps", col["safety_clamps"], {"reason": "all"}, cumulative=True)


def _ev(series: _Builder, ts: pd.DataFrame, col: dict[str, np.ndarray],
        sessions: pd.DataFrame | None, *, sockets: bool, dt_s: float) -> None:
    """Waiting riders, session counters, socket occupancy and per-socket power."""
    n = len(ts)
    series("twin_ev_sessions_waiting", col["n_waiting"])
    t_rel = np.arange(1, n + 1, dtype=np.float64) * dt_s  # step ends [s since the start]
    sock_cols = [c for c in ts.columns if c.startswith("p_socket_") and c.endswith("_kw")]
    types = _socket_types(sessions, len(sock_cols))
    if sessions is not None and n:
        _session_series(series, sessions, pd.Timestamp(ts["timestamp"].iloc[0]), t_rel, types)
    else:
        series("twin_ev_sockets_occupied", col["n_plugged"], {"type": "all"})
    if sockets:
        for i, c in enumerate(sock_cols):
            sid = c[len("p_socket_"):-len("_kw")]
            series("twin_socket_power_watts", ts[c].to_numpy(dtype=np.float64) * W_PER_KW,
                   {"socket": sid, "type": types[i]})


def _progress(series: _Builder, ts: pd.DataFrame, summary: dict[str, Any],
              dt_s: float) -> None:
    """Simulated time, steps, lag, decision times and the in-process links' counters."""
    n = len(ts)
    t0 = pd.DatetimeIndex(ts["timestamp"]).as_unit("ns").asi8 / 1e9 if n else np.zeros(0)
    series("twin_sim_time_seconds", t0 + dt_s)
    series("twin_sim_steps", np.ones(n), cumulative=True)
    planned = summary.get("n_steps")
    series("twin_sim_steps_planned", np.full(n, float(planned if isinstance(planned, int)
                                                      and planned > 0 else n)))
    series("twin_sim_step_seconds", np.full(n, dt_s))
    series("twin_sim_lag_seconds", np.zeros(n))
    for stat, key in (("median", "decide_median_us"), ("p99", "decide_p99_us")):
        v = summary.get(key)
        if isinstance(v, int | float) and math.isfinite(v):
            series("twin_controller_decide_run_seconds", np.full(n, float(v) * 1e-6),
                   {"stat": stat})
    if "hil" not in summary:  # the in-process device links
        k = np.arange(n, dtype=np.float64)
        for dev, per in SIM_REQUESTS_PER_STEP.items():
            d = {"device": dev}
            series("twin_comm_requests", SIM_REQUESTS_FIRST[dev] + per * (k + 1), d)
            for name in ("twin_comm_errors", "twin_comm_retries", "twin_comm_failsafe",
                         "twin_comm_failsafe_entries", "twin_comm_consecutive_errors"):
                series(name, np.zeros(n), d)


def _socket_types(sessions: pd.DataFrame | None, n_sockets: int) -> list[str]:
    """Vehicle type of each socket, from the sessions that used it (a socket serves one
    type); ``all`` for a socket no session used, or without a sessions table."""
    out = ["all"] * n_sockets
    if sessions is None or not len(sessions):
        return out
    used = sessions[sessions["socket"].to_numpy() >= 0]
    for sock, vt in zip(used["socket"].to_numpy().tolist(),
                        used["vehicle_type"].astype(str).tolist(), strict=True):
        if 0 <= int(sock) < n_sockets:
            out[int(sock)] = vt
    return out


def _counts_by(times_s: np.ndarray, t_rel: np.ndarray) -> np.ndarray:
    """Cumulative count of the events at ``times_s`` up to each step end ``t_rel`` [s]."""
    return np.searchsorted(np.sort(times_s[np.isfinite(times_s)]), t_rel,
                           side="right").astype(np.float64)


def _session_series(series: Any, sessions: pd.DataFrame, start: pd.Timestamp,
                    t_rel: np.ndarray, types: list[str]) -> None:
    """Session counters by outcome and socket occupancy at each step end, from the sessions
    table (the live twin counts the same events as they happen).

    Parameters
    ----------
    start : the run's first step start.
    t_rel : step ends [s since ``start``].
    types : vehicle type of each socket.
    """
    from twin.kpi_catalogue import session_outcomes

    def rel(col: str) -> np.ndarray:
        t = pd.DatetimeIndex(sessions[col])
        return np.asarray((t - start).total_seconds(), dtype=np.float64)  # NaT -> NaN

    arr, plug, leave = rel("arrival"), rel("plug_in"), rel("leave")
    outcome = session_outcomes(sessions["status"].astype(str).to_numpy(),
                               sessions["e_req_kwh"].to_numpy(),
                               sessions["e_delivered_kwh"].to_numpy(),
                               sessions["e_req_orig_kwh"].to_numpy()
                               if "e_req_orig_kwh" in sessions else None)
    series("twin_ev_sessions_arrived", _counts_by(arr, t_rel))
    series("twin_ev_sessions_served", _counts_by(plug, t_rel))
    for name, oc, at in (("twin_ev_sessions_turned_away", "turned_away", leave),
                         ("twin_ev_sessions_refused_closing", "refused_closing", arr),
                         ("twin_ev_sessions_satisfied", "satisfied", leave),
                         ("twin_ev_sessions_satisfied_reduced", "satisfied_reduced", leave),
                         ("twin_ev_sessions_short", "short", leave)):
        series(name, _counts_by(np.where(outcome == oc, at, np.nan), t_rel))
    # occupancy: plugged from its plug-in up to (not at) its leaving, per socket
    n = len(t_rel)
    sock = sessions["socket"].to_numpy(dtype=np.int64)
    m = np.isfinite(plug) & (sock >= 0) & (sock < len(types))
    i0 = np.searchsorted(t_rel, plug[m], side="left")
    i1 = np.searchsorted(t_rel, np.where(np.isfinite(leave[m]), leave[m], np.inf), side="left")
    diff = np.zeros((len(types), n + 1))
    np.add.at(diff, (sock[m], i0), 1.0)
    np.add.at(diff, (sock[m], i1), -1.0)
    occ = np.cumsum(diff[:, :n], axis=1)
    for k, vt in enumerate(types):
        series("twin_socket_occupied", occ[k], {"socket": f"{k:02d}", "type": vt})
    for vt in sorted(set(types)):
        mask = np.array([t == vt for t in types])
        series("twin_ev_sockets_occupied", occ[mask].sum(axis=0), {"type": vt})


def write_openmetrics(run_dir: Path, out: TextIO, *, job: str = "twin",
                      instance: str | None = None, sockets: bool = True) -> int:
    """Write the run in ``run_dir`` as OpenMetrics text to ``out``; return the sample count.

    Parameters
    ----------
    run_dir : a run folder (``timeseries.parquet``, optionally ``summary.json``).
    out : text stream; ends with ``# EOF``.
    job, instance : labels on every series (``instance`` defaults to the folder name).
    sockets : also export per-socket power (the dashboard's socket panel).

    Raises
    ------
    RunDirError
        When the run folder is missing or broken.
    """
    run_dir = Path(run_dir)
    ts, summary = load_run(run_dir)
    dt_s = _step_s(ts, summary, run_dir)
    labels = {"job": job, "instance": instance or run_dir.resolve().name}
    fams = families(ts, summary, labels=labels, sockets=sockets, dt_s=dt_s,
                    sessions=load_sessions(run_dir))
    n = len(ts)
    t_end = (pd.DatetimeIndex(ts["timestamp"]).as_unit("ns").asi8 / 1e9 + dt_s) if n else \
        np.zeros(0)
    times = _fmt_times(np.asarray(t_end))
    count = 0
    for fam in fams:
        _write_all(out, fam.lines(times))
        count += n * len(fam.series)
    out.write("# EOF\n")
    return count


def _write_all(out: TextIO, chunks: Iterable[str]) -> None:
    for c in chunks:
        out.write(c)


def cmd_export_openmetrics(args: argparse.Namespace) -> int:
    """``twin export openmetrics RUN_DIR [-o FILE]``."""
    from twin.errors import EXIT_OK, UserError

    run_dir = Path(args.run_dir)
    try:
        if args.output in (None, "-"):
            n = write_openmetrics(run_dir, sys.stdout, job=args.job, instance=args.instance,
                                  sockets=args.sockets)
        else:
            from twin.atomic import hold_output

            target = Path(args.output)
            hold_output(target, "openmetrics", option="-o")
            tmp = target.with_name(f".{target.name}.tmp")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                    n = write_openmetrics(run_dir, fh, job=args.job, instance=args.instance,
                                          sockets=args.sockets)
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
            print(f"{target}: {n} samples; load with: promtool tsdb create-blocks-from "
                  f"openmetrics {target} DATA_DIR", file=sys.stderr)
    except RunDirError as exc:
        raise UserError(str(exc)) from None
    return EXIT_OK


def register_export(sub: Any) -> None:
    """Add ``twin export openmetrics`` to the ``twin`` sub-command parsers."""
    ex = sub.add_parser("export", help="export a finished run (openmetrics: for Prometheus "
                                       "backfilling)",
                        description="Export a finished run in another format.")
    fmt = ex.add_subparsers(dest="format", required=True)
    om = fmt.add_parser(
        "openmetrics", help="per-step series as OpenMetrics text with timestamps",
        description="Write the run's per-step series (SOC, powers, cumulative energy, cost and "
                    "CO2 counters, tariff, controller phase, ...) as OpenMetrics text with "
                    "timestamps [s], ending with '# EOF', for 'promtool tsdb "
                    "create-blocks-from openmetrics FILE DATA_DIR'. Samples are stamped with "
                    "the end of their step.")
    om.add_argument("run_dir", help="a run folder written by 'twin run' or 'twin live'")
    om.add_argument("-o", "--output", help="output file (default: stdout)")
    om.add_argument("--job", default="twin", help="job label on every series (default twin)")
    om.add_argument("--instance", help="instance label on every series (default: the run "
                                       "folder's name)")
    om.add_argument("--sockets", action=argparse.BooleanOptionalAction, default=True,
                    help="export per-socket power, one series per socket (default; "
                         "--no-sockets leaves them out)")
    om.set_defaults(func=cmd_export_openmetrics)
    from twin.app.citylearn import register as _reg_citylearn

    _reg_citylearn(fmt)

"""Read and validate a run folder written by ``twin run``.

A run folder holds ``summary.json``, ``timeseries.parquet`` (or ``timeseries.csv``),
``sessions.parquet`` (or ``sessions.csv``) and ``daily_profile.csv``.  Every problem the
user can fix (missing folder, missing, empty, damaged or truncated file, missing column,
inconsistent row count) raises :class:`RunFolderError` with a one-paragraph message that
names the file and says what is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from twin.atomic import is_complete, read_marker
from twin.engine import results
from twin.kpi_catalogue import session_outcomes

#: Per-step columns the report reads [kWh per step unless named otherwise].
TS_COLUMNS: tuple[str, ...] = (
    "timestamp", "pv_kwh", "ev_kwh", "mall_kwh", "load_kwh", "pv_to_ev_kwh", "pv_to_bess_kwh",
    "pv_to_mall_kwh", "pv_curtailed_kwh", "bess_charge_kwh", "bess_discharge_kwh",
    "bess_to_ev_kwh", "bess_to_mall_kwh", "grid_import_ev_kwh", "grid_import_mall_kwh",
    "grid_import_kwh", "grid_export_kwh", "soc_percent", "cost_savings_hp_soles",
    "co2_avoided_indirect_kg", "tariff_period", "tariff_soles_per_kwh", "grid_cost_soles",
    "co2_grid_kg", "grid_to_bess_kwh", "pv_export_kwh", "phase_name", "p_grid_kw",
)
#: Of :data:`TS_COLUMNS`, those that must be numeric.
TS_TEXT_COLUMNS: frozenset[str] = frozenset({"timestamp", "tariff_period", "phase_name"})
#: Optional per-socket power columns [kW].
SOCKET_RE = re.compile(r"^p_socket_\d+_kw$")
#: Optional per-battery SOC columns [%] (a site with two or more batteries).
BATTERY_SOC_RE = re.compile(r"^soc_percent_[A-Za-z][A-Za-z0-9_-]{0,39}$")
#: The optional per-step columns the report reads.
TS_OPTIONAL_RE = re.compile(f"{SOCKET_RE.pattern}|{BATTERY_SOC_RE.pattern}")

SESSION_COLUMNS: tuple[str, ...] = (
    "vehicle_type", "arrival", "plug_in", "wait_min", "e_req_kwh", "e_delivered_kwh", "status",
    "satisfied",
)
SESSION_TIME_COLUMNS: tuple[str, ...] = ("arrival", "plug_in")
#: Optional session columns: the original request of a late arrival (runs since issue 19).
SESSION_OPTIONAL_RE = re.compile(r"^e_req_orig_kwh$")

DAILY_COLUMNS: tuple[str, ...] = (
    "day_type", "hour", "pv_kwh", "ev_kwh", "mall_kwh", "pv_to_ev_kwh", "pv_to_bess_kwh",
    "pv_to_mall_kwh", "pv_curtailed_kwh", "bess_charge_kwh", "bess_to_ev_kwh",
    "bess_to_mall_kwh", "grid_import_kwh", "grid_import_ev_kwh", "grid_import_mall_kwh",
    "soc_percent",
)

#: Summary keys the report needs, with the type each must have.
SUMMARY_REQUIRED: dict[str, tuple[type, ...]] = {
    "site": (str,), "start": (str,), "days": (int, float), "dt_s": (int, float),
}

HINT = "Run 'twin run SCENARIO --out RUN_DIR' again to rewrite the run folder."


class RunFolderError(Exception):
    """A run folder (or one of its files) cannot be used; the message says why."""


@dataclass
class RunData:
    """The validated content of one run folder.

    Attributes
    ----------
    path : the run folder.
    summary : ``summary.json`` as a dict (KPIs; energies [kWh], costs [site currency], CO2 [kg]).
    ts : per-step table; ``timestamp`` is timezone-aware (step start), energies [kWh per step].
    sessions : one row per EV session (may have no rows when the site has no chargers).
    daily : mean 24-hour profile [kWh per hour] per ``day_type`` (all / weekday / weekend).
    files : the file actually read for each table (``timeseries``, ``sessions``, ...).
    label : short name used in legends (the folder name unless set by a comparison).
    """

    path: Path
    summary: dict[str, Any]
    ts: pd.DataFrame
    sessions: pd.DataFrame
    daily: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)
    label: str = ""

    @property
    def dt_h(self) -> float:
        """Step length [h]."""
        return float(self.summary["dt_s"]) / 3600.0

    @property
    def days(self) -> float:
        """Simulated horizon [d]."""
        return float(self.summary["days"])

    @property
    def socket_columns(self) -> list[str]:
        """Names of the per-socket power columns [kW] present in ``ts``."""
        return [c for c in self.ts.columns if SOCKET_RE.match(str(c))]

    @property
    def battery_soc_columns(self) -> list[str]:
        """Per-battery SOC columns [%] present in ``ts`` (two or more batteries)."""
        return [c for c in self.ts.columns if BATTERY_SOC_RE.match(str(c))]

    @property
    def vehicle_classes(self) -> list[str]:
        """The site's vehicle classes in the site file's order (``ev.vehicles``), as the
        sessions table carries them (see :func:`read_sessions`)."""
        vt = self.sessions["vehicle_type"]
        if isinstance(vt.dtype, pd.CategoricalDtype):
            return [str(c) for c in vt.cat.categories]
        return list(dict.fromkeys(vt.astype(str).tolist()))

    @property
    def tariff_prices(self) -> dict[str, float]:
        """The site's tariff periods with their energy price [currency/kWh], in the site
        file's order: ``summary["tariff_bill"]["periods"]``; for an older run the two
        periods of ``osinergmin_tariff``; then any period of the per-step table not named
        there, at its mean price over the run."""
        s = self.summary
        bill = s.get("tariff_bill")
        periods = bill.get("periods") if isinstance(bill, dict) else None
        out: dict[str, float] = {}
        if isinstance(periods, dict):
            out = {str(k): float(v) for k, v in periods.items() if _is_number(v)}
        legacy = s.get("osinergmin_tariff")
        if not out and isinstance(legacy, dict):
            for name, key in (("HP", "energia_hp_soles_kwh"), ("HFP", "energia_hfp_soles_kwh")):
                if _is_number(legacy.get(key)):
                    out[name] = float(legacy[key])
        mean = self.ts.groupby("tariff_period", sort=False)["tariff_soles_per_kwh"].mean()
        for period, price in mean.items():
            out.setdefault(str(period), float(price))
        return out

    @property
    def peak_tariff_periods(self) -> list[str]:
        """The site's most expensive tariff period(s) (several when tied), in site order."""
        prices = self.tariff_prices
        top = max(prices.values(), default=None)
        return [name for name, p in prices.items() if p == top]


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fail(path: Path, what: str, hint: str = HINT) -> RunFolderError:
    return RunFolderError(f"{path}: {what}. {hint}".strip())


def _nonempty_file(path: Path) -> None:
    if not path.is_file():
        raise _fail(path, "not found (or not a file)")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty (0 bytes)")


def read_summary(run_dir: Path) -> dict[str, Any]:
    """Read ``summary.json`` and check the keys the report needs."""
    p = run_dir / "summary.json"
    _nonempty_file(p)
    try:
        data = results.read_summary(run_dir)
    except results.SummaryError as exc:
        raise RunFolderError(f"{exc}. {HINT}") from None
    if read_marker(run_dir) is not None and not is_complete(run_dir):
        data["interrupted"] = True
    for key, types in SUMMARY_REQUIRED.items():
        if key not in data:
            raise _fail(p, f"the key '{key}' is missing")
        val = data[key]
        if not isinstance(val, types) or isinstance(val, bool):
            raise _fail(p, f"the key '{key}' has the wrong type ({type(val).__name__})")
    if not (math.isfinite(data["dt_s"]) and data["dt_s"] > 0):
        raise _fail(p, f"'dt_s' must be a positive number of seconds, found {data['dt_s']!r}")
    if not (math.isfinite(data["days"]) and data["days"] > 0):
        raise _fail(p, f"'days' must be positive, found {data['days']!r} (an empty run)")
    return data


def _pick(run_dir: Path, stem: str) -> Path:
    pq, csv = run_dir / f"{stem}.parquet", run_dir / f"{stem}.csv"
    if pq.exists():
        return pq
    if csv.exists():
        return csv
    raise _fail(pq, f"not found, and no {csv.name} either")


def _columns_of(path: Path) -> list[str]:
    """Column names of a Parquet or CSV file, without reading its data."""
    _nonempty_file(path)
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as exc:  # any reader error means a damaged file
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        raise _fail(path, f"cannot be read as {kind} ({type(exc).__name__}: {exc}); "
                          "the file is damaged or was cut short") from exc


def _read_table(path: Path, wanted: tuple[str, ...], optional: re.Pattern[str] | None = None,
                time_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read the ``wanted`` columns (plus optional ones matching ``optional``) of a table."""
    cols = _columns_of(path)
    missing = [c for c in wanted if c not in cols]
    if missing:
        raise _fail(path, f"missing column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(repr(c) for c in missing)} (the report needs them)")
    use = list(wanted) + ([c for c in cols if optional.match(c)] if optional else [])
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path, columns=use)
        else:
            df = pd.read_csv(path, usecols=use)
            for c in time_columns:
                df[c] = pd.to_datetime(df[c], format="ISO8601")
    except Exception as exc:  # any reader error means a damaged file
        raise _fail(path, f"cannot be read ({type(exc).__name__}: {exc}); "
                          "the file is damaged or was cut short") from exc
    return df[use]


def _check_numeric(path: Path, df: pd.DataFrame, cols: list[str]) -> None:
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(df[c])
           and not pd.api.types.is_bool_dtype(df[c])]
    if bad:
        raise _fail(path, f"column{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} "
                          "should hold numbers but hold text")


def _check_finite(path: Path, df: pd.DataFrame, cols: list[str]) -> None:
    try:
        results.check_columns(df, cols, path)
    except results.SummaryError as exc:
        raise RunFolderError(f"{exc}. {HINT}") from None


def _check_time(path: Path, df: pd.DataFrame, col: str) -> None:
    s = df[col]
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        raise _fail(path, f"column '{col}' should hold timezone-aware timestamps, "
                          f"found {s.dtype}")


def read_timeseries(run_dir: Path, summary: dict[str, Any]) -> tuple[pd.DataFrame, Path]:
    """Read the per-step table and check its columns, types and length."""
    path = _pick(run_dir, "timeseries")
    df = _read_table(path, TS_COLUMNS, TS_OPTIONAL_RE, ("timestamp",))
    if len(df) == 0:
        raise _fail(path, "the table has no rows (an empty run)")
    _check_time(path, df, "timestamp")
    _check_numeric(path, df, [c for c in df.columns if c not in TS_TEXT_COLUMNS])
    _check_finite(path, df, [c for c in df.columns if c not in TS_TEXT_COLUMNS])
    steps = summary.get("steps_done")
    if isinstance(steps, int) and steps != len(df):
        raise _fail(path, f"the table has {len(df)} rows but summary.json says {steps} steps "
                          "were simulated; the file is truncated or belongs to another run")
    if not df["timestamp"].is_monotonic_increasing:
        raise _fail(path, "the timestamps are not in increasing order")
    df["phase_name"] = df["phase_name"].astype(str)
    df["tariff_period"] = df["tariff_period"].astype(str)
    return df.reset_index(drop=True), path


def read_sessions(run_dir: Path, summary: dict[str, Any]) -> tuple[pd.DataFrame, Path]:
    """Read the EV sessions table (zero rows is allowed: a site without chargers)."""
    path = _pick(run_dir, "sessions")
    df = _read_table(path, SESSION_COLUMNS, SESSION_OPTIONAL_RE, SESSION_TIME_COLUMNS)
    if "e_req_orig_kwh" in df:
        _check_numeric(path, df, ["e_req_orig_kwh"])
    if len(df):
        for c in SESSION_TIME_COLUMNS:
            _check_time(path, df, c)
        _check_numeric(path, df, ["wait_min", "e_req_kwh", "e_delivered_kwh"])
        _check_finite(path, df, ["e_req_kwh", "e_delivered_kwh"])
    n = summary.get("sessions_total")
    if isinstance(n, int) and n != len(df):
        raise _fail(path, f"the table has {len(df)} sessions but summary.json says {n}; "
                          "the file is truncated or belongs to another run")
    df["status"] = df["status"].astype(str)
    # the site's vehicle classes in the site file's order: a Parquet table keeps them (the
    # run writes the column as a categorical of ``ev.vehicles``); a CSV in order of arrival
    vt = df["vehicle_type"]
    classes = ([str(c) for c in vt.cat.categories] if isinstance(vt.dtype, pd.CategoricalDtype)
               else list(dict.fromkeys(vt.astype(str).tolist())))
    df["vehicle_type"] = pd.Categorical(vt.astype(str), categories=classes)
    # the outcome by the one definition of the KPI catalogue (not the stored column: a run
    # written by an older version counted a refused session that asked ~0 kWh as satisfied)
    try:
        outcome = session_outcomes(df["status"].to_numpy(), df["e_req_kwh"].to_numpy(),
                                   df["e_delivered_kwh"].to_numpy(),
                                   df["e_req_orig_kwh"].to_numpy()
                                   if "e_req_orig_kwh" in df else None)
    except ValueError as exc:
        raise _fail(path, f"column 'status': {exc}") from None
    df["outcome"] = outcome
    df["satisfied"] = outcome == "satisfied"
    return df, path


def read_daily(run_dir: Path) -> tuple[pd.DataFrame, Path]:
    """Read ``daily_profile.csv`` (mean 24-hour profile per day type [kWh per hour])."""
    path = run_dir / "daily_profile.csv"
    df = _read_table(path, DAILY_COLUMNS)
    if len(df) == 0:
        raise _fail(path, "the table has no rows")
    _check_numeric(path, df, [c for c in DAILY_COLUMNS if c != "day_type"])
    _check_finite(path, df, [c for c in DAILY_COLUMNS if c != "day_type"])
    df["day_type"] = df["day_type"].astype(str)
    if not (df["day_type"] == "all").any():
        raise _fail(path, "no rows with day_type 'all'")
    return df, path


def load_run(run_dir: str | Path) -> RunData:
    """Read and validate one run folder.

    Parameters
    ----------
    run_dir : a folder written by ``twin run``.

    Returns
    -------
    RunData with the summary and the three tables.

    Raises
    ------
    RunFolderError
        When the folder or one of its files is missing, empty, damaged or incomplete.
    """
    d = Path(run_dir)
    if not d.exists():
        raise _fail(d, "no such folder", "Give a folder written by 'twin run' "
                                         "(e.g. 'twin run scenarios/week.yaml --out runs/week').")
    if not d.is_dir():
        raise _fail(d, "not a folder", "Give a folder written by 'twin run', not a file in it.")
    summary = read_summary(d)
    ts, ts_path = read_timeseries(d, summary)
    sessions, s_path = read_sessions(d, summary)
    daily, d_path = read_daily(d)
    files = {"summary": d / "summary.json", "timeseries": ts_path, "sessions": s_path,
             "daily_profile": d_path}
    return RunData(d, summary, ts, sessions, daily, files, label=d.resolve().name)

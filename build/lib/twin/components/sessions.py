"""EV sessions: drawn per day with a seeded generator, or read from a file (no SimPy).

Sessions (arrival, vehicle type, energy requested, vehicle power limit, planned departure,
patience) are built up front; ``twin.components.fleet`` plays them on the SimPy clock.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.config import ConfigError, EvConfig
from twin.inputs import SessionTable
from twin.types import VEHICLE_TYPES


def type_rating_kw(ev: EvConfig) -> dict[int, float]:
    """Socket rating per vehicle-type code [kW] (the lowest of its groups)."""
    out: dict[int, float] = {}
    for g in ev.sockets:
        if g.count > 0:
            c = VEHICLE_TYPES.index(g.type)
            out[c] = min(out.get(c, math.inf), g.p_rating_kw)
    return out


def draw_sessions(
    ev: EvConfig, start: pd.Timestamp, duration_s: float, rng: np.random.Generator
) -> SessionTable:
    """Draw synthetic sessions for the horizon.

    Per day and vehicle type, a Poisson number of arrivals with mean ``sessions_per_day``;
    arrival hour from ``arrival_weights`` inside opening hours, uniform within the hour;
    energy uniform in [``e_req_kwh_min``, ``e_req_kwh_max``]. The charging power
    ``p_eff = min(vehicle p_max_kw, socket rating)``.

    Stay, by ``ev.stay_model``:

    * ``charge_time`` (default): ``e_req / p_eff × L + stay_fixed_h`` with the linger factor
      ``L = 1 + Gamma(linger_shape, scale=(linger_mean - 1) / linger_shape)`` (L = 1 when
      ``linger_mean`` is 1): a rider stays until charged, and lingers a little. With an
      immediate socket at full power every session can finish.
    * ``fixed``: gamma (shape 4) with mean ``stay_h_mean``, clipped to [0.25 h,
      ``stay_h_max``], whatever the energy asked (the seeds' model).

    The stay counts from plug-in: a rider who waits for a socket leaves later by the wait
    (``SessionTable.latest_departure_s``). The planned departure is clipped to
    ``close_hour``. Late arrivals: a rider who cannot
    get the whole request at ``p_eff`` before closing asks for ``p_eff × time to closing``;
    if that is below ``ev.late_min_kwh`` the session is refused at the gate (its departure
    is set to its arrival, which the fleet plays as status ``refused_closing``).

    Random draws per vehicle type (in this order): day counts, hours, fractions in the hour,
    energies, then stays (``fixed``) or linger factors (``charge_time``).
    """
    w = np.asarray(ev.arrival_weights, dtype=float)
    hours = np.arange(24)
    open_mask = (hours + 1 > ev.open_hour) & (hours < ev.close_hour)
    w = np.where(open_mask, w, 0.0)
    if w.sum() <= 0:
        raise ConfigError("ev.arrival_weights: no weight inside the opening hours")
    p_hour = w / w.sum()
    day0 = start.normalize()
    offset0_s = (start - day0).total_seconds()
    n_days = math.ceil((offset0_s + duration_s) / 86400.0)
    ratings = type_rating_kw(ev)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("arr", "dep", "typ", "e", "p", "pat", "latest")}
    for code, vtype in enumerate(VEHICLE_TYPES):
        vc = ev.vehicles.get(vtype)  # type: ignore[call-overload]
        if vc is None or vc.sessions_per_day <= 0:
            continue
        counts = rng.poisson(vc.sessions_per_day, size=n_days)
        n = int(counts.sum())
        day = np.repeat(np.arange(n_days), counts)
        hour = rng.choice(24, size=n, p=p_hour).astype(float)
        frac = rng.random(n)
        lo = np.maximum(hour, ev.open_hour)
        hi = np.minimum(hour + 1.0, ev.close_hour)
        arr_h = lo + frac * (hi - lo)
        e_req = rng.uniform(vc.e_req_kwh_min, vc.e_req_kwh_max, size=n)
        p_eff = min(vc.p_max_kw, ratings.get(code, vc.p_max_kw))
        if ev.stay_model == "fixed":
            stay_h = np.clip(rng.gamma(4.0, vc.stay_h_mean / 4.0, size=n), 0.25, vc.stay_h_max)
        else:
            extra = vc.linger_mean - 1.0
            linger = (1.0 + rng.gamma(vc.linger_shape, extra / vc.linger_shape, size=n)
                      if extra > 0.0 else np.ones(n))
            stay_h = e_req / p_eff * linger + vc.stay_fixed_h
        e_fit = p_eff * (ev.close_hour - arr_h)
        late = e_fit < e_req
        e_req = np.where(late, e_fit, e_req)  # late riders ask for what fits before closing
        dep_h = np.minimum(arr_h + stay_h, ev.close_hour)
        dep_h = np.where(late & (e_fit < ev.late_min_kwh), arr_h, dep_h)  # refused at the gate
        base = day * 86400.0 - offset0_s
        cols["arr"].append(base + arr_h * 3600.0)
        cols["dep"].append(base + dep_h * 3600.0)
        cols["typ"].append(np.full(n, code, dtype=np.int64))
        cols["e"].append(e_req)
        cols["p"].append(np.full(n, vc.p_max_kw))
        cols["pat"].append(np.full(n, vc.patience_min * 60.0))
        cols["latest"].append(base + ev.close_hour * 3600.0)
    return _table_from_cols(cols, duration_s)


def _table_from_cols(cols: dict[str, list[np.ndarray]], duration_s: float) -> SessionTable:
    if not cols["arr"]:
        z = np.zeros(0)
        return SessionTable(z, z.copy(), np.zeros(0, dtype=np.int64), z.copy(), z.copy(), z.copy())
    arr = np.concatenate(cols["arr"])
    keep = (arr >= 0.0) & (arr < duration_s)
    order = np.argsort(arr[keep], kind="stable")

    def pick(name: str) -> np.ndarray:
        return np.concatenate(cols[name])[keep][order]

    return SessionTable(
        arrival_s=pick("arr"),
        departure_s=pick("dep"),
        type_code=pick("typ").astype(np.int64),
        e_req_kwh=pick("e"),
        p_max_kw=pick("p"),
        patience_s=pick("pat"),
        latest_departure_s=pick("latest") if cols.get("latest") else None,
    )


SESSION_FILE_COLUMNS = ("arrival", "departure", "vehicle_type", "e_req_kwh", "p_max_kw")


def read_sessions(path: Path, ev: EvConfig, start: pd.Timestamp, duration_s: float) -> SessionTable:
    """Read sessions from a CSV or Parquet file, one row per session.

    Columns: ``arrival`` and ``departure`` (timestamps; naive ones are local time),
    ``vehicle_type`` (moto / mototaxi), ``e_req_kwh`` [kWh], ``p_max_kw`` [kW].
    Patience comes from the vehicle class in the site file.

    Raises
    ------
    ConfigError
        Naming the file, the column and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: sessions file not found (field 'ev.sessions_file').")
    try:
        df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as exc:
        raise ConfigError(f"{path}: cannot read the sessions file ({type(exc).__name__}: {exc}).") from exc
    missing = [c for c in SESSION_FILE_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; a sessions file needs "
                          f"{list(SESSION_FILE_COLUMNS)} (found {list(df.columns)}).")
    tz = start.tz
    out: dict[str, Any] = {}
    for c in ("arrival", "departure"):
        try:
            ts = pd.to_datetime(df[c], errors="raise")
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: column '{c}' has values that are not timestamps ({exc}).") from exc
        ts = ts.dt.tz_localize(tz) if ts.dt.tz is None else ts.dt.tz_convert(tz)
        out[c] = ((ts - start).dt.total_seconds()).to_numpy(dtype=float)
    for c in ("e_req_kwh", "p_max_kw"):
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise ConfigError(f"{path}: column '{c}' row {row}: value {df[c].iloc[row]!r} must be a "
                              "positive number.")
        out[c] = v
    vt = df["vehicle_type"].astype(str).to_numpy()
    codes = np.full(len(vt), -1, dtype=np.int64)
    for code, name in enumerate(VEHICLE_TYPES):
        codes[vt == name] = code
    if (codes < 0).any():
        row = int(np.argmax(codes < 0))
        raise ConfigError(f"{path}: column 'vehicle_type' row {row}: {vt[row]!r} is not one of "
                          f"{list(VEHICLE_TYPES)}.")
    if (out["departure"] <= out["arrival"]).any():
        row = int(np.argmax(out["departure"] <= out["arrival"]))
        raise ConfigError(f"{path}: row {row}: departure is not after arrival.")
    pat = np.array([ev.vehicles[VEHICLE_TYPES[c]].patience_min * 60.0  # type: ignore[index]
                    if VEHICLE_TYPES[c] in ev.vehicles else 0.0 for c in codes])
    cols = {"arr": [out["arrival"]], "dep": [out["departure"]], "typ": [codes],
            "e": [out["e_req_kwh"]], "p": [out["p_max_kw"]], "pat": [pat]}
    return _table_from_cols(cols, duration_s)


__all__ = ["SESSION_FILE_COLUMNS", "draw_sessions", "read_sessions", "type_rating_kw"]

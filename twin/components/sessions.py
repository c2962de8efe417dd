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

from twin.components.taper import energy_kwh_vec, time_to_full_h_vec
from twin.config import EvConfig, VehicleClass
from twin.errors import ConfigError, file_error
from twin.inputs import SessionTable


def type_rating_kw(ev: EvConfig) -> dict[int, float]:
    """Socket rating per vehicle-class code [kW] (the lowest of its groups)."""
    out: dict[int, float] = {}
    names = ev.class_names
    for g in ev.sockets:
        if g.count > 0:
            c = names.index(g.type)
            out[c] = min(out.get(c, math.inf), g.p_rating_kw)
    return out


def _draw_stay(model: str, vc: Any, n: int, rng: np.random.Generator
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Stays [h] (``dwell``/``fixed``) or linger factors [-] (``charge_time``); the other None."""
    if model in ("dwell", "fixed"):
        return np.clip(rng.gamma(vc.stay_h_shape, vc.stay_h_mean / vc.stay_h_shape, size=n),
                       vc.stay_h_min, vc.stay_h_max), None
    extra = vc.linger_mean - 1.0
    return None, (1.0 + rng.gamma(vc.linger_shape, extra / vc.linger_shape, size=n)
                  if extra > 0.0 else np.ones(n))


def _late_riders(ev: EvConfig, arr_h: np.ndarray, stay_h: np.ndarray, e_req: np.ndarray,
                 p_eff: np.ndarray, e_t: np.ndarray, kap: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Requests [kWh] and departures [h of the day]: a late rider asks for what fits before
    closing, and is refused at the gate (departure = arrival) below ``ev.late_min_kwh``."""
    e_fit = energy_kwh_vec(e_req, p_eff, p_eff, e_t, kap, np.maximum(ev.close_hour - arr_h, 0.0))
    late = e_fit < e_req * (1.0 - 1e-12)
    e_req = np.where(late, e_fit, e_req)
    dep_h = np.minimum(arr_h + stay_h, ev.close_hour)
    return e_req, np.where(late & (e_fit < ev.late_min_kwh), arr_h, dep_h)


def _hour_probabilities(ev: EvConfig) -> np.ndarray:
    """Probability of each clock hour for an arrival (``arrival_weights`` in opening hours)."""
    w = np.asarray(ev.arrival_weights, dtype=float)
    hours = np.arange(24)
    w = np.where((hours + 1 > ev.open_hour) & (hours < ev.close_hour), w, 0.0)
    if w.sum() <= 0:
        raise ConfigError("ev.arrival_weights: no weight inside the opening hours")
    return np.asarray(w / w.sum(), dtype=np.float64)


def draw_sessions(
    ev: EvConfig, start: pd.Timestamp, duration_s: float, rng: np.random.Generator
) -> SessionTable:
    """Draw synthetic sessions for the horizon.

    Per day and vehicle type, a Poisson number of arrivals with mean ``sessions_per_day``;
    arrival hour from ``arrival_weights`` inside opening hours, uniform within the hour.
    Per vehicle: on-board charger power from ``charger_kw`` / ``charger_weights`` (or
    ``p_max_kw``), capped by ``p_max_kw``; the charging power ``p_eff = min(charger, socket
    rating)``. Energy asked: uniform in [``e_req_kwh_min``, ``e_req_kwh_max``] (arrival SOC
    ``1 − e / battery_kwh``), or with ``soc_arrival_min``/``max`` an arrival SOC uniform in
    that range and ``e = battery_kwh × (1 − SOC)``. With ``taper_soc < 1`` the vehicle
    tapers (CC-CV, ``twin.components.taper``).

    Stay, by ``ev.stay_model``:

    * ``dwell`` (default; ``fixed`` is the same): gamma with mean ``stay_h_mean`` and shape
      ``stay_h_shape``, clipped to [``stay_h_min``, ``stay_h_max``], whatever the energy
      asked: the stay does not depend on the charge time.
    * ``charge_time`` (the older linger model): time to full at ``p_eff`` (with the taper)
      × ``L + stay_fixed_h`` with ``L = 1 + Gamma(linger_shape, scale=(linger_mean - 1) /
      linger_shape)`` (L = 1 when ``linger_mean`` is 1).

    The stay counts from plug-in: a rider who waits for a socket leaves later by the wait
    (``SessionTable.latest_departure_s``). The planned departure is clipped to
    ``close_hour``. Late arrivals: a rider who cannot get the whole request at ``p_eff``
    (with the taper) before closing asks for what fits (``e_req_orig_kwh`` keeps the first
    request); if that is below ``ev.late_min_kwh`` the session is refused at the gate (its
    departure is set to its arrival, which the fleet plays as status ``refused_closing``).

    Random draws per vehicle type (in this order): day counts, hours, fractions in the hour,
    energies (or arrival SOCs), stays (``dwell``) or linger factors (``charge_time``), then
    charger powers (only with ``charger_kw`` of more than one value).
    """
    p_hour = _hour_probabilities(ev)
    day0 = start.normalize()
    offset0_s = (start - day0).total_seconds()
    n_days = math.ceil((offset0_s + duration_s) / 86400.0)
    ratings = type_rating_kw(ev)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("arr", "dep", "typ", "e", "p", "pat", "latest", "e0", "cap", "soc",
                        "tsoc", "tfl")}
    for code, vc in enumerate(ev.vehicles.values()):  # code = index in the site's classes
        if vc.sessions_per_day <= 0:
            continue
        counts = rng.poisson(vc.sessions_per_day, size=n_days)
        n = int(counts.sum())
        day = np.repeat(np.arange(n_days), counts)
        hour = rng.choice(24, size=n, p=p_hour).astype(float)
        frac = rng.random(n)
        lo = np.maximum(hour, ev.open_hour)
        hi = np.minimum(hour + 1.0, ev.close_hour)
        arr_h = lo + frac * (hi - lo)
        e_req, cap, soc0 = _draw_energy(vc, n, rng)
        stay_h, linger = _draw_stay(ev.stay_model, vc, n, rng)
        p_max = _draw_charger(vc, n, rng)
        p_eff = np.minimum(p_max, ratings.get(code, math.inf))
        e_t, kap = _taper_arrays(cap, soc0, e_req, vc.taper_soc, vc.taper_floor_frac, p_eff)
        if stay_h is None:
            assert linger is not None
            t_full = time_to_full_h_vec(e_req, p_eff, p_eff, e_t, kap)
            stay_h = t_full * linger + vc.stay_fixed_h
        e_orig = e_req
        e_req, dep_h = _late_riders(ev, arr_h, stay_h, e_req, p_eff, e_t, kap)
        base = day * 86400.0 - offset0_s
        cols["arr"].append(base + arr_h * 3600.0)
        cols["dep"].append(base + dep_h * 3600.0)
        cols["typ"].append(np.full(n, code, dtype=np.int64))
        cols["e"].append(e_req)
        cols["e0"].append(e_orig)
        cols["p"].append(p_max)
        cols["pat"].append(np.full(n, vc.patience_min * 60.0))
        cols["latest"].append(base + ev.close_hour * 3600.0)
        cols["cap"].append(cap)
        cols["soc"].append(soc0)
        cols["tsoc"].append(np.full(n, vc.taper_soc))
        cols["tfl"].append(np.full(n, vc.taper_floor_frac))
    return _table_from_cols(cols, duration_s)


def _draw_energy(vc: VehicleClass, n: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy asked [kWh], battery size [kWh] (NaN: none) and arrival SOC [-] per vehicle."""
    cap = np.full(n, math.nan if vc.battery_kwh is None else vc.battery_kwh)
    if vc.battery_kwh is not None and vc.soc_arrival_min is not None:
        assert vc.soc_arrival_max is not None
        soc0 = rng.uniform(vc.soc_arrival_min, vc.soc_arrival_max, size=n)
        return vc.battery_kwh * (1.0 - soc0), cap, soc0
    e_req = rng.uniform(vc.e_req_kwh_min, vc.e_req_kwh_max, size=n)
    soc0 = (np.clip(1.0 - e_req / vc.battery_kwh, 0.0, 1.0) if vc.battery_kwh is not None
            else np.full(n, math.nan))
    return e_req, cap, soc0


def _draw_charger(vc: VehicleClass, n: int, rng: np.random.Generator) -> np.ndarray:
    """On-board charger power per vehicle [kW], at most ``p_max_kw``."""
    if vc.charger_kw is None:
        return np.full(n, vc.p_max_kw)
    kw = np.minimum(np.asarray(vc.charger_kw, dtype=float), vc.p_max_kw)
    if kw.size == 1:
        return np.full(n, kw[0])
    w = (np.asarray(vc.charger_weights, dtype=float) if vc.charger_weights is not None
         else np.ones(kw.size))
    return kw[rng.choice(kw.size, size=n, p=w / w.sum())]


def _taper_arrays(cap: np.ndarray, soc0: np.ndarray, e_req: np.ndarray, taper_soc: float,
                  floor_frac: float, vmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(e_t [kWh], κ [1/h])`` per vehicle (see ``twin.components.taper``)."""
    if taper_soc >= 1.0 or not np.isfinite(cap).all():
        return np.full(cap.shape, -math.inf), np.zeros(cap.shape)
    k_kw = vmax * (1.0 - floor_frac) / (1.0 - taper_soc)
    return cap * (soc0 + e_req / cap - taper_soc), k_kw / cap


def _table_from_cols(cols: dict[str, list[np.ndarray]], duration_s: float) -> SessionTable:
    if not cols["arr"]:
        z = np.zeros(0)
        return SessionTable(z, z.copy(), np.zeros(0, dtype=np.int64), z.copy(), z.copy(), z.copy())
    arr = np.concatenate(cols["arr"])
    keep = (arr >= 0.0) & (arr < duration_s)
    order = np.argsort(arr[keep], kind="stable")

    def pick(name: str) -> np.ndarray:
        return np.concatenate(cols[name])[keep][order]

    def opt(name: str) -> np.ndarray | None:
        return pick(name) if cols.get(name) else None

    return SessionTable(
        arrival_s=pick("arr"),
        departure_s=pick("dep"),
        type_code=pick("typ").astype(np.int64),
        e_req_kwh=pick("e"),
        p_max_kw=pick("p"),
        patience_s=pick("pat"),
        latest_departure_s=opt("latest"),
        e_req_orig_kwh=opt("e0"),
        battery_kwh=opt("cap"),
        soc_arrival=opt("soc"),
        taper_soc=opt("tsoc"),
        taper_floor_frac=opt("tfl"),
    )


SESSION_FILE_COLUMNS = ("arrival", "departure", "vehicle_type", "e_req_kwh", "p_max_kw")
#: The columns of a charging-session log (one row per session a site's chargers recorded):
#: ``arrival``, ``departure`` (time stamps with a UTC offset), ``e_delivered_kwh``, and
#: ``vehicle_type`` or ``socket`` (0-based socket number in the site's socket order);
#: optional ``e_req_kwh`` (else the request is what was delivered) and ``p_max_kw`` (else
#: the vehicle class's).
SESSION_LOG_COLUMNS = ("arrival", "departure", "e_delivered_kwh")
#: Optional vehicle columns of both forms (written by ``twin run`` in sessions.parquet): the
#: vehicle's battery [kWh] and its SOC at arrival [-], for the CC-CV taper
#: (``twin.components.taper``). An absent column or an empty cell takes the vehicle class's
#: ``battery_kwh`` and an arrival SOC of ``1 − e_req_kwh / battery_kwh`` (the request fills the
#: battery); the charger power is ``p_max_kw``; ``taper_soc`` / ``taper_floor_frac`` are the
#: class's.
SESSION_VEHICLE_COLUMNS = ("battery_kwh", "soc_arrival")
#: Longest plausible stay at a charger [h].
MAX_STAY_H = 72.0


def _fail(path: Path, problem: str, row: int | None = None, column: str | None = None) -> ConfigError:
    return file_error("sessions", path, problem, row, column)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise _fail(path, "file not found (field 'ev.sessions_file')")
    try:
        return (pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq")
                else pd.read_csv(path))
    except Exception as exc:
        raise _fail(path, f"cannot read it ({type(exc).__name__}: {str(exc)[:160]})") from None


def _stamps(df: pd.DataFrame, path: Path, c: str, tz: Any, need_tz: bool) -> pd.Series:
    raw = df[c]
    try:
        ts = pd.to_datetime(raw, errors="raise", format="ISO8601") \
            if not pd.api.types.is_datetime64_any_dtype(raw) else raw
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"values that are not ISO 8601 time stamps with one UTC offset "
                    f"({str(exc)[:120]})", column=c) from None
    if ts.isna().any():
        raise _fail(path, "empty time stamp", row=int(np.flatnonzero(ts.isna())[0]) + 1, column=c)
    if ts.dt.tz is None:
        if need_tz:
            raise _fail(path, f"naive time stamp {raw.iloc[0]!r}: a session log needs the UTC "
                        "offset, e.g. 2024-03-04T10:00:00-05:00", row=1, column=c)
        return ts.dt.tz_localize(tz)
    return ts.dt.tz_convert(tz)


def _numbers(df: pd.DataFrame, path: Path, c: str, lo_open: bool) -> np.ndarray:
    v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) | ((v <= 0) if lo_open else (v < 0)) | (v > 1e4)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(path, f"value {df[c].iloc[i]!r} must be a {'positive' if lo_open else 'non-negative'} "
                    "number of at most 10,000 (kWh or kW)", row=i + 1, column=c)
    return v


def _types(df: pd.DataFrame, path: Path, ev: EvConfig) -> np.ndarray:
    if "vehicle_type" in df.columns:
        vt = df["vehicle_type"].astype(str).to_numpy()
        codes = np.full(len(vt), -1, dtype=np.int64)
        for code, name in enumerate(ev.class_names):
            codes[vt == name] = code
        if (codes < 0).any():
            i = int(np.argmax(codes < 0))
            raise _fail(path, f"{vt[i]!r} is not a vehicle class of the site "
                        f"{list(ev.class_names)}", row=i + 1,
                        column="vehicle_type")
        return codes
    if "socket" not in df.columns:
        raise _fail(path, f"needs a 'vehicle_type' or a 'socket' column (found {list(df.columns)})")
    by_socket = [ev.class_names.index(g.type) for g in ev.sockets for _ in range(g.count)]
    v = pd.to_numeric(df["socket"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) | (v < 0) | (v >= len(by_socket)) | (v != np.round(v))
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(path, f"socket {df['socket'].iloc[i]!r} is not a socket number 0..{len(by_socket) - 1} "
                    "of the site", row=i + 1, column="socket")
    return np.asarray(by_socket, dtype=np.int64)[v.astype(np.int64)]


def read_sessions(path: Path, ev: EvConfig, start: pd.Timestamp, duration_s: float) -> SessionTable:
    """Read sessions from a CSV or Parquet file, one row per session.

    Two forms: the twin's own (``arrival``, ``departure`` — naive time stamps are local
    time —, ``vehicle_type``, ``e_req_kwh`` [kWh], ``p_max_kw`` [kW]) or a site's session log
    (:data:`SESSION_LOG_COLUMNS`, time stamps with a UTC offset). Patience comes from the
    vehicle class in the site file. A log's sessions with nothing delivered and nothing
    requested are left out (nothing to charge).

    Raises
    ------
    ConfigError
        Naming the file, the data row, the column and the fix.
    """
    path = Path(path)
    df = _read_table(path)
    log = "e_delivered_kwh" in df.columns
    need = [c for c in ("arrival", "departure") if c not in df.columns]
    if not log:
        need += [c for c in ("e_req_kwh",) if c not in df.columns]
    if need:
        raise _fail(path, f"missing column(s) {need}; a sessions file needs "
                    f"{list(SESSION_FILE_COLUMNS)} or a session log {list(SESSION_LOG_COLUMNS)} + "
                    f"vehicle_type or socket (found {list(df.columns)})")
    tz = start.tz
    arr = _stamps(df, path, "arrival", tz, log)
    dep = _stamps(df, path, "departure", tz, log)
    stay_h = ((dep - arr).dt.total_seconds() / 3600.0).to_numpy(dtype=float)
    if (stay_h <= 0).any():
        i = int(np.argmax(stay_h <= 0))
        raise _fail(path, "departure is not after arrival", row=i + 1, column="departure")
    if (stay_h > MAX_STAY_H).any():
        i = int(np.argmax(stay_h > MAX_STAY_H))
        raise _fail(path, f"a stay of {stay_h[i]:,.1f} h (longer than {MAX_STAY_H:g} h is not a "
                    "charging session)", row=i + 1, column="departure")
    codes = _types(df, path, ev)
    key = pd.DataFrame({"a": arr, "d": dep, "t": df["socket"] if "socket" in df.columns else codes})
    dup = key.duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        raise _fail(path, "duplicate session (same arrival, departure and socket or type as an "
                    "earlier row)", row=i + 1, column="arrival")
    classes = list(ev.vehicles.values())
    p_class = np.array([classes[c].p_max_kw for c in codes])
    p_max = _numbers(df, path, "p_max_kw", True) if "p_max_kw" in df.columns else p_class
    if log:
        e_del = _numbers(df, path, "e_delivered_kwh", False)
        over = e_del > p_max * stay_h * (1 + 1e-6) + 1e-9
        if over.any():
            i = int(np.argmax(over))
            raise _fail(path, f"{e_del[i]:g} kWh delivered in a {stay_h[i]:.2f} h stay at most "
                        f"{p_max[i]:g} kW: more than the vehicle can take (Wh instead of kWh?)",
                        row=i + 1, column="e_delivered_kwh")
        e_req = _numbers(df, path, "e_req_kwh", False) if "e_req_kwh" in df.columns else e_del
        short = e_req < e_del - 1e-9
        if short.any():
            i = int(np.argmax(short))
            raise _fail(path, f"{e_req[i]:g} kWh requested but {e_del[i]:g} kWh delivered",
                        row=i + 1, column="e_req_kwh")
    else:
        e_req = _numbers(df, path, "e_req_kwh", True)
    cap, soc0, tsoc, tfl = _vehicles(df, path, ev, codes, e_req)
    keep = e_req > 0
    out = {c: ((ts - start).dt.total_seconds()).to_numpy(dtype=float)[keep]
           for c, ts in (("arrival", arr), ("departure", dep))}
    codes = codes[keep]
    pat = np.array([classes[c].patience_min * 60.0 for c in codes])
    cols = {"arr": [out["arrival"]], "dep": [out["departure"]], "typ": [codes],
            "e": [e_req[keep]], "p": [p_max[keep]], "pat": [pat], "cap": [cap[keep]],
            "soc": [soc0[keep]], "tsoc": [tsoc[keep]], "tfl": [tfl[keep]]}
    return _table_from_cols(cols, duration_s)


def _optional(df: pd.DataFrame, path: Path, c: str, lo: float, hi: float,
              hi_open: bool) -> np.ndarray:
    """An optional numeric column (NaN where absent or empty), each value in [lo, hi]."""
    if c not in df.columns:
        return np.full(len(df), math.nan)
    raw = df[c]
    v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = (raw.notna().to_numpy() & np.isnan(v)) | np.isinf(v) | (v < lo) \
        | ((v >= hi) if hi_open else (v > hi))
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(path, f"value {raw.iloc[i]!r} must be a number in [{lo:g}, {hi:g}"
                    f"{')' if hi_open else ']'} (or empty: the vehicle class's)",
                    row=i + 1, column=c)
    return v


def _vehicles(df: pd.DataFrame, path: Path, ev: EvConfig, codes: np.ndarray,
              e_req: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Battery [kWh] (NaN: no taper), arrival SOC [-], taper SOC [-] and floor [-] per row
    (:data:`SESSION_VEHICLE_COLUMNS`, class defaults where absent)."""
    by_code = list(ev.vehicles.values())
    classes: list[VehicleClass | None] = [by_code[c] for c in codes]
    cap_cls = np.array([vc.battery_kwh if vc is not None and vc.battery_kwh is not None
                        else math.nan for vc in classes], dtype=float)
    tsoc = np.array([vc.taper_soc if vc is not None else 1.0 for vc in classes], dtype=float)
    tfl = np.array([vc.taper_floor_frac if vc is not None else 1.0 for vc in classes],
                   dtype=float)
    cap_in = _optional(df, path, "battery_kwh", 1e-3, 1e4, False)
    soc_in = _optional(df, path, "soc_arrival", 0.0, 1.0, True)
    given = np.isfinite(cap_in)
    over = given & (e_req > cap_in * (1.0 - np.nan_to_num(soc_in)) * (1.0 + 1e-9) + 1e-6)
    if over.any():
        i = int(np.argmax(over))
        raise _fail(path, f"{e_req[i]:g} kWh requested (or delivered) but a {cap_in[i]:g} kWh "
                    f"battery at SOC {np.nan_to_num(soc_in[i]):g} holds only "
                    f"{cap_in[i] * (1.0 - np.nan_to_num(soc_in[i])):g} kWh more",
                    row=i + 1, column="battery_kwh")
    # the class battery where the row gives none, unless the request does not fit in it
    # (then that vehicle is not the class's: no battery model, no taper)
    cap = np.where(given, cap_in, np.where(e_req <= cap_cls, cap_cls, math.nan))
    safe = np.where(np.isfinite(cap), cap, 1.0)
    soc0 = np.where(np.isfinite(soc_in) & np.isfinite(cap), soc_in,
                    np.where(np.isfinite(cap), np.clip(1.0 - e_req / safe, 0.0, 1.0), math.nan))
    over = np.isfinite(cap) & (e_req > cap * (1.0 - soc0) * (1.0 + 1e-9) + 1e-6)
    if over.any():
        i = int(np.argmax(over))
        raise _fail(path, f"{e_req[i]:g} kWh requested (or delivered) but the class's "
                    f"{cap[i]:g} kWh battery at SOC {soc0[i]:g} holds only "
                    f"{cap[i] * (1.0 - soc0[i]):g} kWh more", row=i + 1, column="soc_arrival")
    return cap, soc0, tsoc, tfl


def read_session_log(path: Path, ev: EvConfig, start: pd.Timestamp,
                     duration_s: float) -> dict[str, float]:
    """What a session log says the site did in ``[start, start + duration_s)``: sessions
    (arrivals) and energy delivered [kWh] (checked as :func:`read_sessions`)."""
    read_sessions(path, ev, start, duration_s)  # the checks
    df = _read_table(Path(path))
    arr = _stamps(df, Path(path), "arrival", start.tz, True)
    t = (arr - start).dt.total_seconds().to_numpy(dtype=float)
    inside = (t >= 0) & (t < duration_s)
    e = pd.to_numeric(df["e_delivered_kwh"], errors="coerce").to_numpy(dtype=float)
    return {"sessions_total": float(inside.sum()), "ev_energy_delivered_kwh": float(e[inside].sum())}


__all__ = ["SESSION_FILE_COLUMNS", "SESSION_LOG_COLUMNS", "SESSION_VEHICLE_COLUMNS", "draw_sessions",
           "read_session_log", "read_sessions", "type_rating_kw"]

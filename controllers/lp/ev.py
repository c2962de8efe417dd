"""EV demand for the LP: who plugs in when, and per-type energy envelopes per step.

The LP does not plan each vehicle. Per vehicle type it plans the energy delivered per step,
bounded by two cumulative envelopes built from each session's charging window
``[plug-in, departure)`` and its deliverable energy
``D = min(requested, vehicle power × window)``:

* ``U`` (as soon as possible): every vehicle at full power from plug-in until full — no
  schedule can have delivered more by the end of a step;
* ``L`` (as late as possible): every vehicle at full power so as to finish ``D`` exactly at
  departure — a schedule that has delivered less by the end of a step leaves someone short
  (the LP may, at a penalty: the written-off energy ``W``).

The plug-in instants come from replaying the station's queue rule (a vehicle takes the
lowest free socket of its type, or waits first-in first-out for at most its patience, or
leaves): with departures fixed by the sessions, occupancy does not depend on the control.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from twin.inputs import SessionTable, SocketSpec
from twin.types import FloatArray


@dataclass(frozen=True, slots=True)
class EvWindows:
    """Charging windows of the vehicles the LP plans for (one element each).

    Attributes
    ----------
    type_code : vehicle type.
    t_plug_s, t_dep_s : charging window [s since the run start] (``t_plug = nan``: never plugs).
    p_max_kw : power the vehicle can draw [kW] (vehicle limit and socket rating).
    e_req_kwh : energy asked [kWh].
    """

    type_code: np.ndarray
    t_plug_s: FloatArray
    t_dep_s: FloatArray
    p_max_kw: FloatArray
    e_req_kwh: FloatArray


@dataclass(frozen=True, slots=True)
class EvEnvelopes:
    """Per-type EV bounds over a window of steps (arrays of shape ``(n_types, n)``).

    Attributes
    ----------
    u_kwh : cumulative energy as soon as possible, at each step end [kWh].
    l_kwh : cumulative energy as late as possible, at each step end [kWh].
    cap_kwh : energy the plugged vehicles could take in each step at full power [kWh].
    e_req_kwh : total energy asked by the vehicles of the window [kWh] (scalar).
    e_deliverable_kwh : total deliverable energy ``Σ D`` [kWh] (scalar).
    """

    u_kwh: FloatArray
    l_kwh: FloatArray
    cap_kwh: FloatArray
    e_req_kwh: float
    e_deliverable_kwh: float


def _initial_sockets(stype: list[int], busy_until_s: FloatArray | None, n_cls: int
                     ) -> tuple[list[list[int]], list[tuple[float, int]]]:
    """Free sockets per vehicle class (heaps, ``n_cls`` of them) and the busy ones'
    departures (a heap of (departure [s], socket))."""
    free: list[list[int]] = [[] for _ in range(n_cls)]
    deps: list[tuple[float, int]] = []
    for i, c in enumerate(stype):
        t_busy = -math.inf if busy_until_s is None else float(busy_until_s[i])
        if math.isfinite(t_busy) and t_busy > -math.inf:
            deps.append((t_busy, i))
        else:
            free[c].append(i)
    for h in free:
        heapq.heapify(h)
    heapq.heapify(deps)
    return free, deps


def plug_schedule(s: SessionTable, sockets: SocketSpec, busy_until_s: FloatArray | None = None
                  ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Replay the queue rule: plug-in instant and power limit of every session.

    Parameters
    ----------
    s : sessions, sorted by arrival.
    sockets : the station's sockets.
    busy_until_s : per socket, the departure of a vehicle already plugged at the start
        [s] (``-inf`` or absent: free).

    Returns
    -------
    t_plug_s : plug-in instant per session [s], NaN when it never plugs.
    p_max_kw : min(vehicle limit, socket rating) per session [kW] (0 when it never plugs).
    t_dep_s : departure [s]: planned, or for drawn sessions (``latest_departure_s`` set)
        moved by the wait for a socket, up to the latest departure (closing).
    """
    n = s.n
    t_plug = np.full(n, math.nan)
    p_max = np.zeros(n)
    t_dep = s.departure_s.astype(float).copy()
    latest = s.latest_departure_s.tolist() if s.latest_departure_s is not None else None
    rating = sockets.p_rating_kw.tolist()
    stype = sockets.type_code.tolist()
    n_cls = max(sockets.n_classes, int(s.type_code.max()) + 1 if s.n else 0)
    free, deps = _initial_sockets(stype, busy_until_s, n_cls)
    waiting: list[deque[int]] = [deque() for _ in range(n_cls)]
    arr = s.arrival_s.tolist()
    dep = s.departure_s.tolist()
    typ = s.type_code.tolist()
    pmx = s.p_max_kw.tolist()
    deadline = (s.arrival_s + s.patience_s).tolist()

    def plug(i: int, sock: int, now: float) -> bool:
        td = dep[i]
        if latest is not None and now > arr[i]:  # the stay counts from plug-in
            td = min(td + now - arr[i], latest[i])
        if td <= now:
            return False
        t_plug[i] = now
        t_dep[i] = td
        p_max[i] = min(pmx[i], rating[sock])
        heapq.heappush(deps, (td, sock))
        return True

    def free_socket(sock: int, now: float) -> None:
        c = stype[sock]
        q = waiting[c]
        while q:
            j = q.popleft()
            if deadline[j] < now:
                continue
            # as the fleet does: a waiter whose departure has passed leaves, and the socket
            # stays free for the next arrival
            plug(j, sock, now)
            if not math.isnan(t_plug[j]):
                return
            break
        heapq.heappush(free[c], sock)

    for i in range(n):
        t = arr[i]
        while deps and deps[0][0] <= t:
            td, sock = heapq.heappop(deps)
            free_socket(sock, td)
        c = typ[i]
        if dep[i] <= t:  # refused at the gate (too late before closing)
            continue
        if free[c]:
            sock = heapq.heappop(free[c])
            if not plug(i, sock, t):
                heapq.heappush(free[c], sock)
        elif deadline[i] > t:
            waiting[c].append(i)
    while deps and any(waiting):
        td, sock = heapq.heappop(deps)
        free_socket(sock, td)
    return t_plug, p_max, t_dep


def envelopes(w: EvWindows, edges_s: FloatArray, n_types: int | None = None) -> EvEnvelopes:
    """Per-type envelopes over the steps ``[edges[j], edges[j+1])`` (vectorised over
    sessions × steps; the steps need not be equal).

    Windows are clipped to the horizon: energy after its end is not deliverable.
    ``n_types``: rows of the envelopes, the site's vehicle classes (None: the largest
    ``type_code`` + 1).
    """
    if n_types is None:
        n_types = int(w.type_code.max()) + 1 if w.type_code.size else 1
    n = edges_s.shape[0] - 1
    t0_s, t_end = float(edges_s[0]), float(edges_s[-1])
    ok = np.isfinite(w.t_plug_s) & (w.p_max_kw > 0.0)
    tp = np.maximum(w.t_plug_s[ok], t0_s)
    td = np.minimum(w.t_dep_s[ok], t_end)
    keep = td > tp
    tp, td = tp[keep], td[keep]
    pmax = w.p_max_kw[ok][keep]
    typ = w.type_code[ok][keep].astype(np.int64)
    d_kwh = np.minimum(w.e_req_kwh[ok][keep], pmax * (td - tp) / 3600.0)
    e_req = float(w.e_req_kwh.sum())
    u = np.zeros((n_types, n))
    low = np.zeros((n_types, n))
    cap = np.zeros((n_types, n))
    if tp.size:
        k_first = np.clip(np.searchsorted(edges_s, tp, side="right") - 1, 0, n - 1)
        k_last = np.clip(np.searchsorted(edges_s, td, side="left") - 1, 0, n - 1)
        k_first = np.minimum(k_first, k_last)
        span = k_last - k_first + 1
        sess = np.repeat(np.arange(tp.size), span)
        offs = np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span)
        k = k_first[sess] + offs
        a = edges_s[k]
        b = edges_s[k + 1]
        p, d, s_tp, s_td = pmax[sess], d_kwh[sess], tp[sess], td[sess]

        def asap(t: FloatArray) -> FloatArray:
            return np.minimum(d, p * np.maximum(t - s_tp, 0.0) / 3600.0)

        def alap(t: FloatArray) -> FloatArray:
            return np.maximum(d - p * np.maximum(s_td - t, 0.0) / 3600.0, 0.0)

        flat = typ[sess] * n + k
        size = n_types * n
        u = np.bincount(flat, asap(b) - asap(a), size).reshape(n_types, n).cumsum(axis=1)
        low = np.bincount(flat, alap(b) - alap(a), size).reshape(n_types, n).cumsum(axis=1)
        ov = np.maximum(np.minimum(b, s_td) - np.maximum(a, s_tp), 0.0)
        cap = np.bincount(flat, p * ov / 3600.0, size).reshape(n_types, n)
    # float crumbs: keep L <= U
    low = np.minimum(low, u)
    return EvEnvelopes(u, low, cap, e_req, float(d_kwh.sum()))


def _sub(s: SessionTable, lo: int, hi: int) -> SessionTable:
    lat = s.latest_departure_s
    return SessionTable(s.arrival_s[lo:hi], s.departure_s[lo:hi], s.type_code[lo:hi],
                        s.e_req_kwh[lo:hi], s.p_max_kw[lo:hi], s.patience_s[lo:hi],
                        lat[lo:hi] if lat is not None else None)


class ReplayCache:
    """Queue replays of independent blocks of sessions, reused when a block comes again.

    A block runs between two instants at which nobody is plugged in or waiting; its replay
    depends only on its own sessions' times relative to its first arrival, so a rolling
    horizon that sees the same day again (perfect or noisy forecasts: the real arrivals;
    persistence: yesterday's arrivals moved by a day) replays it once.
    """

    def __init__(self, sockets: SocketSpec) -> None:
        self.sockets = sockets
        self._d: dict[bytes, tuple[FloatArray, FloatArray, FloatArray]] = {}
        self.hits = 0
        self.misses = 0

    def plug(self, s: SessionTable, busy_until_s: FloatArray | None = None
             ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Like ``plug_schedule`` (the same result), block by block."""
        n = s.n
        t_plug = np.full(n, math.nan)
        p_max = np.zeros(n)
        t_dep = s.departure_s.astype(float).copy()
        if n == 0:
            return t_plug, p_max, t_dep
        t_busy = -math.inf
        if busy_until_s is not None:
            fin = busy_until_s[np.isfinite(busy_until_s)]
            t_busy = float(fin.max()) if fin.size else -math.inf
        gone = s.departure_s + s.patience_s  # a wait moves the departure by at most that
        before = np.concatenate([[-math.inf], np.maximum.accumulate(gone)[:-1]])
        starts = np.flatnonzero((s.arrival_s > before) & (s.arrival_s > t_busy))
        if starts.size == 0 or starts[0] != 0:
            # the first block shares the station with the vehicles plugged now
            first_end = int(starts[0]) if starts.size else n
            tp, pm, td = plug_schedule(_sub(s, 0, first_end), self.sockets, busy_until_s)
            t_plug[:first_end], p_max[:first_end], t_dep[:first_end] = tp, pm, td
        bounds = np.append(starts, n)
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            sub = _sub(s, lo, hi)
            t0 = float(sub.arrival_s[0])
            parts = [sub.arrival_s - t0, sub.departure_s - t0, sub.type_code.astype(np.int64),
                     sub.patience_s, sub.p_max_kw]
            if sub.latest_departure_s is not None:
                parts.append(sub.latest_departure_s - t0)
            key = b"".join(a.tobytes() for a in parts)
            hit = self._d.get(key)
            if hit is None:
                self.misses += 1
                tp, pm, td = plug_schedule(sub, self.sockets)
                hit = (tp - t0, pm, td - t0)
                self._d[key] = hit
            else:
                self.hits += 1
            t_plug[lo:hi] = hit[0] + t0
            p_max[lo:hi] = hit[1]
            t_dep[lo:hi] = hit[2] + t0
        return t_plug, p_max, t_dep


def windows_from_sessions(s: SessionTable, sockets: SocketSpec,
                          busy_until_s: FloatArray | None = None,
                          cache: ReplayCache | None = None) -> EvWindows:
    """Charging windows of sessions that have not arrived yet (queue rule replayed)."""
    if cache is not None:
        t_plug, p_max, t_dep = cache.plug(s, busy_until_s)
    else:
        t_plug, p_max, t_dep = plug_schedule(s, sockets, busy_until_s)
    return EvWindows(s.type_code, t_plug, t_dep, p_max, s.e_req_kwh)


def concat_windows(a: EvWindows, b: EvWindows) -> EvWindows:
    """Both sets of windows in one."""
    return EvWindows(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in
                       ("type_code", "t_plug_s", "t_dep_s", "p_max_kw", "e_req_kwh")))


__all__ = ["EvEnvelopes", "EvWindows", "ReplayCache", "concat_windows", "envelopes",
           "plug_schedule", "windows_from_sessions"]

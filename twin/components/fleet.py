"""EV fleet and charging sockets: discrete events inside the tick.

Sessions (arrival, vehicle type, energy requested, vehicle power limit, planned departure)
are drawn up front with a seeded ``numpy.random.Generator`` — or read from a file — and
then played as discrete events at their own instants: one event per arrival instant, one
departure per plugged vehicle, on the fleet's own queue (the arrivals are a pointer into
the sorted sessions, the departures a heap). The SimPy clock drives only the ticks; the
events due in a step run inside it (``advance_to``, called by ``end_step``, or at each
event's instant by a real-time clock). Events at one instant run in the order in which
they were scheduled, and an event's time is computed as a SimPy timeout would compute it,
so the results are those of one SimPy event per arrival, departure and "full", to the bit.
A vehicle that finds no free socket of its type waits in a FIFO queue for at most its
patience, then leaves (turned away). For drawn sessions the stay counts from plug-in (a
wait shifts the departure, up to closing: ``latest_departure_s``).

Charging is exact in time (charge to the instant): at the step start each socket gets a
power limit from the controller and a plugged vehicle draws ``p = min(limit, vehicle
limit, socket rating)`` until the instant it is full or until it leaves, whichever comes
first. The "full" instant is computed when the power is set (step start or plug-in), not
queued: a departure after it finds the vehicle full, and at the step end the settlement
gives a vehicle full during the step exactly what it still asked. A vehicle that plugs in
inside a step starts at once under the limit in force for its socket (as a real charger
does), and the controller sees it at the next step. A socket's step energy is the exact
integral of these piecewise-constant powers, so a session's delivered energy does not
depend on the control step except through the limits the controller sets.

``events`` counts the EV events played: arrivals (every session that arrived, including
those refused or turned away), vehicles full inside a step while still plugged, and
departures of plugged vehicles (the run's ``events`` KPI adds one per tick).

A session whose planned departure is not after its arrival (``departure_s <=
arrival_s``) was refused at the gate (a late arrival that could not get its minimum
energy before closing, see ``twin.components.sessions``): it gets status
``refused_closing`` at its arrival and never takes a socket.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from twin.components.taper import energy_kwh, time_to_full_h
from twin.inputs import SessionTable, SocketSpec
from twin.kpi_catalogue import SATISFIED_TOL_KWH
from twin.types import FloatArray, IntArray, SocketArrays, frozen_array

STATUS_PENDING, STATUS_WAITING, STATUS_CHARGING, STATUS_DONE, STATUS_TURNED_AWAY = 0, 1, 2, 3, 4
STATUS_REFUSED_CLOSING = 5
STATUS_NAMES = {
    STATUS_PENDING: "not_arrived",
    STATUS_WAITING: "waiting",
    STATUS_CHARGING: "plugged",
    STATUS_DONE: "served",
    STATUS_TURNED_AWAY: "turned_away",
    STATUS_REFUSED_CLOSING: "refused_closing",
}


class Fleet:
    """Sessions and sockets; the SimPy environment gives the step's start time.

    Per-event work uses Python lists (cheap scalar access); per-step work uses numpy over
    the socket arrays, which are rows of one 2-D array so that a snapshot is one copy.

    Parameters
    ----------
    env : the SimPy environment (time unit: seconds) that drives the ticks.
    sessions : the sessions to play.
    sockets : the station's sockets.
    dt_s : control step [s].
    """

    # rows of the socket state array
    _VMAX, _EREM, _TDEP, _OCC, _PD = 0, 1, 2, 3, 4

    def __init__(self, env: simpy.Environment, sessions: SessionTable, sockets: SocketSpec,
                 dt_s: float) -> None:
        self.env = env
        self.s = sessions
        self.spec = sockets
        self.dt_s = dt_s
        self.dt_h = dt_s / 3600.0
        n_sock = sockets.p_rating_kw.shape[0]
        self.n_sockets = n_sock
        self._rating = sockets.p_rating_kw.tolist()
        self._stype = sockets.type_code.tolist()
        # Socket state: one stdlib array (fast scalar access from event handlers) with a
        # zero-copy numpy view (fast vector ops per step); rows are views too.
        self._st = array("d", bytes(8 * 5 * n_sock))
        self._state = np.frombuffer(self._st, dtype=np.float64).reshape(5, n_sock)
        self._state[self._TDEP] = math.inf
        self._o_vmax, self._o_erem, self._o_tdep, self._o_occ, self._o_pd = (
            r * n_sock for r in range(5))
        self.sock_vmax = self._state[self._VMAX]  # vehicle limit (<= rating), 0 when empty
        self.sock_erem = self._state[self._EREM]  # energy still asked [kWh]
        self.sock_tdep = self._state[self._TDEP]  # planned departure [s]
        self.sock_occ = self._state[self._OCC]  # 1.0 when occupied
        self.sock_pd = self._state[self._PD]  # power the vehicle would draw over a step [kW]
        self.sock_sess = [-1] * n_sock
        self._p = array("d", bytes(8 * n_sock))  # power drawn now [kW]
        self._lim = array("d", bytes(8 * n_sock))  # controller's limit in force [kW]
        self._part = array("d", bytes(8 * n_sock))  # energy of vehicles gone during the step
        self.sock_p = np.frombuffer(self._p, dtype=np.float64)
        self.sock_limit = np.frombuffer(self._lim, dtype=np.float64)
        self.sock_e_part = np.frombuffer(self._part, dtype=np.float64)
        self._taper_state(n_sock)
        self._scratch(n_sock)
        self._part_any = False
        self._t_step0 = 0.0
        self._t_step_end = dt_s
        self._mid: dict[int, float] = {}  # sockets whose power started inside the step → since [s]
        # "full" instants of this step not applied yet: socket → (t [s], sequence number)
        self._full_at: dict[int, tuple[float, int]] = {}
        self._q: list[tuple[float, int, int]] = []  # departures: (t [s], sequence, socket)
        self._seq = 0  # one counter for the order of events scheduled (ties at one instant)
        self._now = float(env.now)  # the fleet's time: the last event run [s]
        self.n_occupied = 0
        n_cls = max(sockets.n_classes,
                    int(sessions.type_code.max()) + 1 if sessions.type_code.size else 0)
        self._free: list[list[int]] = [[] for _ in range(n_cls)]
        for i, c in enumerate(self._stype):
            self._free[c].append(i)
        for h in self._free:
            heapq.heapify(h)
        self._waiting: list[deque[int]] = [deque() for _ in range(n_cls)]
        self._n_waiting = 0
        self._session_inputs(sessions)
        # per-session results (lists while running; arrays via properties)
        n = sessions.n
        self._status = [STATUS_PENDING] * n
        self._plug_s = [math.nan] * n
        self._leave_s = [math.nan] * n
        self._e_del = [0.0] * n
        self._socket_of = [-1] * n
        self.n_arrived = 0
        self.n_turned_away = 0
        self.n_refused_closing = 0
        # sessions that left their socket with / without their full request (the outcomes
        # ``satisfied`` / ``short`` of ``twin.kpi_catalogue.session_outcomes``)
        self.n_satisfied = 0
        self.n_satisfied_reduced = 0  # satisfied, but the request was cut (late arrival)
        self.n_short = 0
        self.n_full_events = 0
        #: Called as ``on_turned_away(session, t_s)`` when a vehicle leaves without a socket
        #: (``t_s``: when it left [s since start]); None costs nothing.
        self.on_turned_away: Callable[[int, float], None] | None = None
        self._empty_observation(sockets, n_sock)
        self._next_arrival = 0
        self._arr_t = math.inf  # time of the next arrival instant [s], its sequence number
        self._arr_seq = 0
        if self._arr:
            self._seq += 1
            self._arr_t = self._now + max(self._arr[0] - self._now, 0.0)
            self._arr_seq = self._seq

    def _taper_state(self, n_sock: int) -> None:
        """CC-CV taper per socket (``twin.components.taper``): e_t [kWh], κ [1/h] (0: none)."""
        self._et = array("d", [-math.inf]) * n_sock
        self._kap = array("d", bytes(8 * n_sock))
        self.sock_et = np.frombuffer(self._et, dtype=np.float64)
        self.sock_kap = np.frombuffer(self._kap, dtype=np.float64)
        self._n_taper = 0  # plugged vehicles that taper
        # per socket, the CV phase over one whole step at a limit above the taper's power:
        # energy = g0 × F with F = (1 − exp(−κ dt)) / κ [h] (the power decays as exp(−κ t))
        self._tF = array("d", bytes(8 * n_sock))

    def _scratch(self, n_sock: int) -> None:
        """Scratch rows of the step settlement, and its constants as 0-d arrays (ufuncs
        take them faster than Python floats: the same float64 operations, the same bits)."""
        self._dt_h0 = np.array(self.dt_h)
        self._zero0 = np.array(0.0)
        self._crumb0 = np.array(1e-9)
        self._buf = np.zeros(n_sock)
        self._buf2 = np.zeros(n_sock)
        self._mask = np.zeros(n_sock, dtype=bool)

    def _empty_observation(self, sockets: SocketSpec, n_sock: int) -> None:
        """Constant arrays for the observation of an empty station."""
        self._type_ro = frozen_array(sockets.type_code.copy())
        self._rating_ro = frozen_array(sockets.p_rating_kw.copy())
        self._empty = SocketArrays(
            type_code=self._type_ro,  # type: ignore[arg-type]
            p_rating_kw=self._rating_ro,  # type: ignore[arg-type]
            occupied=frozen_array(np.zeros(n_sock, dtype=bool)),  # type: ignore[arg-type]
            p_demand_kw=frozen_array(np.zeros(n_sock)),  # type: ignore[arg-type]
            e_remaining_kwh=frozen_array(np.zeros(n_sock)),  # type: ignore[arg-type]
            t_departure_s=frozen_array(np.full(n_sock, math.inf)),  # type: ignore[arg-type]
        )

    def _session_inputs(self, sessions: SessionTable) -> None:
        """The sessions' inputs as lists (fast scalar access in event handlers), with the
        CC-CV taper's per-session constants."""
        self._arr = sessions.arrival_s.tolist()
        self._dep = sessions.departure_s.tolist()
        self._typ = sessions.type_code.tolist()
        self._ereq = sessions.e_req_kwh.tolist()
        self._pmax = sessions.p_max_kw.tolist()
        eo = sessions.e_req_orig_kwh
        self._eorig = eo.tolist() if eo is not None else None
        self._deadline = (sessions.arrival_s + sessions.patience_s).tolist()
        latest = sessions.latest_departure_s
        self._latest = latest.tolist() if latest is not None else None
        # per session, CC-CV taper (``twin.components.taper``): e_t [kWh] and κ / vmax [1/kWh]
        # (κ = vmax × this at the socket; e_t does not depend on the power); None: no taper
        self._tap_et: list[float] | None = None
        self._tap_kr: list[float] = []
        cap, soc0 = sessions.battery_kwh, sessions.soc_arrival
        tsoc, tfl = sessions.taper_soc, sessions.taper_floor_frac
        if cap is not None and soc0 is not None and tsoc is not None and tfl is not None:
            ok = np.isfinite(cap) & (cap > 0.0) & (tsoc < 1.0) & np.isfinite(soc0)
            safe_cap = np.where(ok, cap, 1.0)
            self._tap_et = np.where(ok, safe_cap * (soc0 - tsoc) + sessions.e_req_kwh,
                                    -math.inf).tolist()
            self._tap_kr = np.where(ok, (1.0 - tfl) / (np.where(ok, 1.0 - tsoc, 1.0)
                                                        * safe_cap), 0.0).tolist()

    # ------------------------------------------------------------ results
    @property
    def events(self) -> int:
        """EV events played: arrivals + fulls (still plugged) + departures (each departure
        is one of satisfied, satisfied with a cut request, short)."""
        return (self.n_arrived + self.n_full_events + self.n_satisfied
                + self.n_satisfied_reduced + self.n_short)

    @property
    def status(self) -> np.ndarray:
        """Per-session status code (see ``STATUS_NAMES``)."""
        return np.asarray(self._status, dtype=np.int8)

    @property
    def plug_s(self) -> FloatArray:
        """Plug-in time per session [s] (NaN if never plugged)."""
        return np.asarray(self._plug_s, dtype=float)

    @property
    def leave_s(self) -> FloatArray:
        """Leaving time per session [s] (NaN if still there)."""
        return np.asarray(self._leave_s, dtype=float)

    @property
    def e_del_kwh(self) -> FloatArray:
        """Energy delivered per session [kWh]."""
        return np.asarray(self._e_del, dtype=float)

    @property
    def socket_of(self) -> IntArray:
        """Socket used per session (-1 if none)."""
        return np.asarray(self._socket_of, dtype=np.int64)

    # ------------------------------------------------------------------ events
    # The fleet keeps its own event queue: arrivals (a pointer into the sorted sessions)
    # and departures (a heap of ``(t, seq, socket)``); "full" is computed, not queued.
    # Every event gets a sequence number from one counter at the instant it is scheduled,
    # and its time is ``now + (t - now)`` as a SimPy timeout would compute it, so that
    # events at one instant run in the order in which they were scheduled (as on SimPy).
    @property
    def next_event_s(self) -> float:
        """Time of the next arrival or departure [s] (inf when none is left)."""
        q = self._q
        t = self._arr_t
        return q[0][0] if q and q[0][0] < t else t

    def advance_to(self, t_s: float) -> None:
        """Run every arrival and departure due at or before ``t_s`` [s], in time order.

        Events at one instant run in the order in which they were scheduled. A "full" is
        not an event on the queue: it is the instant computed when the power was set (see
        ``_schedule_full``), applied before a departure that comes after it and at the step
        end otherwise.
        """
        q = self._q
        pop = heapq.heappop
        depart = self._depart
        ta, sa = self._arr_t, self._arr_seq  # (departures do not move the arrivals)
        while True:
            if q:
                td, sd, sock = q[0]
                if td < ta or (td == ta and sd < sa):
                    if td > t_s:
                        break
                    pop(q)
                    self._now = td
                    depart(sock, td, sd)
                    continue
            if ta > t_s:
                break
            self._now = ta
            self._on_arrival(ta)
            ta, sa = self._arr_t, self._arr_seq
        if t_s > self._now:
            self._now = t_s

    def _on_arrival(self, now: float) -> None:
        """The arrival it was scheduled for, plus any at the same instant; then schedule
        the next one (one event per arrival instant)."""
        arr = self._arr
        n = len(arr)
        i = self._next_arrival
        while True:  # each arrival (``_arrive`` inlined: one call less per vehicle)
            self.n_arrived += 1
            if self._dep[i] <= arr[i]:  # refused at the gate: too late before closing
                self._refuse(i)
            else:
                c = self._typ[i]
                free = self._free[c]
                if free:
                    self._plug(i, heapq.heappop(free), now)
                else:
                    self._queue_or_turn_away(i, c, now)
            i += 1
            if i >= n or arr[i] > now:
                break
        self._next_arrival = i
        if i < n:  # the next arrival instant, as a timeout at ``now`` would place it
            self._seq += 1
            self._arr_t = now + (arr[i] - now)
            self._arr_seq = self._seq
        else:
            self._arr_t = math.inf

    def _refuse(self, i: int) -> None:
        """Refused at the gate: too late before closing."""
        self._status[i] = STATUS_REFUSED_CLOSING
        self._leave_s[i] = self._arr[i]
        self.n_refused_closing += 1

    def _queue_or_turn_away(self, i: int, c: int, now: float) -> None:
        """No free socket of type ``c``: wait (with patience) or leave at once."""
        if self._deadline[i] > self._arr[i]:
            self._status[i] = STATUS_WAITING
            self._waiting[c].append(i)
            self._n_waiting += 1
        else:
            self._turn_away(i, now)

    def _turn_away(self, i: int, t: float) -> None:
        self._status[i] = STATUS_TURNED_AWAY
        self._leave_s[i] = t
        self.n_turned_away += 1
        if self.on_turned_away is not None:
            self.on_turned_away(i, t)

    def _schedule_full(self, sock: int, now: float, t_full_h: float) -> None:
        """Note the instant the vehicle on ``sock`` is full, ``t_full_h`` [h] after ``now``
        (in this step).

        No event is queued: the instant and its sequence number are kept per socket; the
        full is applied by a later departure of that socket or at the step end.
        """
        t_full = now + t_full_h * 3600.0
        if t_full > self._t_step_end:  # float crumbs: never past the step end
            t_full = self._t_step_end
        self._seq += 1
        t_evt = now + (t_full - now)  # as a timeout at ``now`` would place it
        if t_evt <= self._t_step_end:
            self._full_at[sock] = (t_evt, self._seq)
        else:  # it would fall in the next step, where it was void: none
            self._full_at.pop(sock, None)

    def _plug(self, i: int, sock: int, now: float) -> None:
        t_dep = self._dep[i]
        latest = self._latest
        if latest is not None and now > self._arr[i]:  # the stay counts from plug-in
            t_dep += now - self._arr[i]
            if t_dep > latest[i]:
                t_dep = latest[i]
        if t_dep <= now:
            self._turn_away(i, now)
            heapq.heappush(self._free[self._stype[sock]], sock)
            return
        self._status[i] = STATUS_CHARGING
        self._plug_s[i] = now
        self._socket_of[i] = sock
        self.sock_sess[sock] = i
        pmax = self._pmax[i]
        rating = self._rating[sock]
        vmax = pmax if pmax < rating else rating
        erem = self._ereq[i]
        st = self._st
        n = self.n_sockets
        st[sock] = vmax  # rows: VMAX, EREM, TDEP, OCC, PD
        st[n + sock] = erem
        st[2 * n + sock] = t_dep
        st[3 * n + sock] = 1.0
        dt_h = self.dt_h
        e_step = vmax * dt_h
        pd = vmax if e_step <= erem else erem / dt_h
        e_t, kap = -math.inf, 0.0
        if self._tap_et is not None:
            kap = vmax * self._tap_kr[i]
            if kap > 0.0:
                e_t = self._tap_et[i]
                self._tF[sock] = -math.expm1(-kap * dt_h) / kap
                self._n_taper += 1
                if erem < e_t:  # in its taper already: the power limit now
                    g = vmax - kap * (e_t - erem)
                    pd = g if g < pd else pd
        self._et[sock] = e_t
        self._kap[sock] = kap
        st[4 * n + sock] = pd
        lim = self._lim[sock]
        p = lim if lim < vmax else vmax
        if p < 0.0 or erem <= 0.0:
            p = 0.0
        self._p[sock] = p
        self._mid[sock] = now
        t_end = self._t_step_end
        if p > 0.0 and p * (t_end - now) / 3600.0 > erem:
            t_h = time_to_full_h(erem, p, vmax, e_t, kap)
            if kap <= 0.0 or now + t_h * 3600.0 <= t_end:
                self._schedule_full(sock, now, t_h)
        self.n_occupied += 1
        self._seq += 1
        heapq.heappush(self._q, (now + (t_dep - now), self._seq, sock))

    def _apply_full(self, sock: int) -> None:
        """The vehicle on a socket is full: its energy so far is exactly what it asked."""
        self.n_full_events += 1
        self._mid.pop(sock, None)
        o = self._o_erem + sock
        self._part[sock] += self._st[o]
        self._part_any = True
        self._st[o] = 0.0
        self._st[self._o_pd + sock] = 0.0
        self._p[sock] = 0.0
        if self._kap[sock] > 0.0:
            self._untaper(sock)

    def _untaper(self, sock: int) -> None:
        """The vehicle on ``sock`` is full or gone: no taper to follow any more."""
        self._n_taper -= 1
        self._kap[sock] = 0.0
        self._et[sock] = -math.inf

    def _depart(self, sock: int, now: float, seq: int) -> None:
        fa = self._full_at
        if fa:
            full = fa.pop(sock, None)
            if full is not None and (full[0] < now or (full[0] == now and full[1] < seq)):
                self._apply_full(sock)  # full before it left (else the full is void)
        t0 = self._mid.pop(sock, None)
        i = self.sock_sess[sock]
        pl = self._p
        p = pl[sock]
        st = self._st
        o = self._o_erem + sock
        erem = st[o]
        kaps = self._kap
        kap = kaps[sock]
        e_part = 0.0
        if p > 0.0:
            tau_h = (now - (self._t_step0 if t0 is None else t0)) / 3600.0
            e_part = p * tau_h
            if kap > 0.0 and erem - e_part < self._et[sock]:  # the taper may bind
                e_part = energy_kwh(erem, p, st[sock], self._et[sock], kap, tau_h)
            if e_part > erem:
                e_part = erem
            self._part[sock] += e_part
            self._part_any = True
        ereq = self._ereq[i]
        e_del = ereq - erem + e_part
        self._e_del[i] = e_del
        if e_del >= ereq - SATISFIED_TOL_KWH:  # as session_outcomes
            eorig = self._eorig
            if eorig is not None and eorig[i] > ereq + SATISFIED_TOL_KWH:
                self.n_satisfied_reduced += 1
            else:
                self.n_satisfied += 1
        else:
            self.n_short += 1
        self._status[i] = STATUS_DONE
        self._leave_s[i] = now
        self.sock_sess[sock] = -1
        st[sock] = 0.0  # rows: VMAX, EREM, TDEP, OCC, PD
        st[o] = 0.0
        st[self._o_tdep + sock] = math.inf
        st[self._o_occ + sock] = 0.0
        st[self._o_pd + sock] = 0.0
        pl[sock] = 0.0
        if kaps[sock] > 0.0:  # no taper to follow any more (``_untaper`` inlined)
            self._n_taper -= 1
            kaps[sock] = 0.0
            self._et[sock] = -math.inf
        self.n_occupied -= 1
        c = self._stype[sock]
        q = self._waiting[c]
        while q:
            j = q.popleft()
            self._n_waiting -= 1
            if self._deadline[j] < now:
                self._turn_away(j, self._deadline[j])
                continue
            self._plug(j, sock, now)
            return
        heapq.heappush(self._free[c], sock)

    def _prune_waiting(self) -> None:
        now = self.env.now
        for q in self._waiting:
            while q:
                j = q[0]
                if self._deadline[j] >= now:
                    break
                q.popleft()
                self._n_waiting -= 1
                self._turn_away(j, self._deadline[j])

    # -------------------------------------------------------------- step API
    @property
    def n_waiting(self) -> int:
        """Vehicles waiting for a socket now (expired ones pruned)."""
        if self._n_waiting:
            self._prune_waiting()
        return self._n_waiting

    def observe(self) -> SocketArrays:
        """Socket arrays at the step start (fresh read-only arrays)."""
        if self.n_occupied == 0:
            return self._empty
        snap = self._state.copy()
        snap.flags.writeable = False
        pd_kw = snap[self._PD]
        return SocketArrays(  # positional: type, rating, occupied, demand, e_rem, t_dep, n, Σ
            self._type_ro, self._rating_ro,  # type: ignore[arg-type]
            frozen_array(np.greater(snap[self._OCC], self._zero0)),  # type: ignore[arg-type]
            pd_kw, snap[self._EREM], snap[self._TDEP], self.n_occupied,
            float(np.add.reduce(pd_kw)),
        )

    def begin_step(self, p_max_kw: FloatArray) -> None:
        """Apply per-socket limits [kW] for the step that starts now.

        Each plugged vehicle with energy still asked draws ``min(limit, vehicle limit)``;
        for those that will be full before the step ends the "full" instant is noted.
        """
        now = self.env.now
        self._t_step0 = now
        self._t_step_end = now + self.dt_s
        self._full_at.clear()  # (applied at the last step end already)
        self.sock_limit[:] = p_max_kw
        self._mid.clear()
        if self.n_occupied == 0:
            return
        p = self.sock_p
        mask = self._mask
        np.minimum(p_max_kw, self.sock_vmax, out=p)
        np.maximum(p, self._zero0, out=p)
        erem = self.sock_erem
        np.less_equal(erem, self._zero0, mask)
        p[mask] = 0.0
        buf = self._buf
        np.multiply(p, self._dt_h0, buf)
        np.greater(buf, erem, mask)
        fin = mask.nonzero()[0]  # full before the step ends (without taper; a candidate with)
        if fin.size:
            pl = self._p
            st = self._st
            o, ov = self._o_erem, self._o_vmax
            kaps, ets, tf = self._kap, self._et, self._tF
            for sock in fin.tolist():
                kap = kaps[sock]
                if kap > 0.0:
                    er = st[o + sock]
                    et = ets[sock]
                    g0 = st[ov + sock] - kap * (et - er)  # the taper's power limit now
                    if er < et and 0.0 < g0 <= pl[sock]:  # in its CV phase all step
                        if g0 * tf[sock] < er:
                            continue  # the whole step's energy falls short: not full
                        t_h = -math.log1p(-kap * er / g0) / kap
                    else:
                        t_h = time_to_full_h(er, pl[sock], st[ov + sock], et, kap)
                        if t_h > self.dt_h:
                            continue
                else:
                    t_h = st[o + sock] / pl[sock]
                self._schedule_full(sock, now, t_h)

    def end_step(self, e_socket_kwh: FloatArray) -> float:
        """Close the step: write per-socket energy [kWh] into ``e_socket_kwh``; return the total.

        First the arrivals and departures due up to the step end run (``advance_to``).
        The energy of a socket is the exact integral of its power over the step: vehicles
        that were full or left during the step contributed up to that instant.
        """
        self.advance_to(self._t_step_end)
        full_now = None
        if self._full_at:
            # Vehicles full during the step and still there: counted here; their energy is
            # what they still asked, which the settlement below gives them (the power and
            # the time they charged cover it: that is what made them full), and their
            # remaining energy and demand become 0.
            self.n_full_events += len(self._full_at)
            if self._n_taper:
                full_now = list(self._full_at)
            self._full_at.clear()
        if self.n_occupied == 0 and not self._part_any:
            return 0.0  # the recorder row is already zero
        erem = self.sock_erem
        np.multiply(self.sock_p, self._dt_h0, e_socket_kwh)
        tapering: list[int] = []
        if self._n_taper > 0:  # vehicles whose taper may bind in the step: closed form
            tapering = self._taper_fix(e_socket_kwh)
        if self._mid:  # sockets whose power started inside the step: from their start only
            now = self._t_step_end
            p = self._p
            st = self._st
            kaps, ets, o = self._kap, self._et, self._o_erem
            for sock, t0 in self._mid.items():
                kap = kaps[sock]
                e = p[sock] * (now - t0) / 3600.0
                if kap > 0.0 and st[o + sock] - e < ets[sock]:  # the taper may bind
                    e = energy_kwh(st[o + sock], p[sock], st[self._o_vmax + sock], ets[sock],
                                   kap, (now - t0) / 3600.0)
                e_socket_kwh[sock] = e
            self._mid.clear()
        np.minimum(e_socket_kwh, erem, out=e_socket_kwh)  # never more than asked
        np.subtract(erem, e_socket_kwh, erem)
        mask = self._mask
        np.less(erem, self._crumb0, mask)
        erem[mask] = 0.0  # float crumbs of a charge that ended at the step end
        pd = self.sock_pd
        np.divide(erem, self._dt_h0, pd)
        np.minimum(pd, self.sock_vmax, out=pd)
        if full_now is not None:  # full vehicles no longer taper (after their settlement)
            kaps = self._kap
            for sock in full_now:
                if kaps[sock] > 0.0:
                    self._untaper(sock)
        if tapering:  # demand: the taper's power limit now, vmax − κ (e_t − erem)
            st, kaps, ets = self._st, self._kap, self._et
            o, ov, opd = self._o_erem, self._o_vmax, self._o_pd
            for sock in tapering:
                kap = kaps[sock]
                er = st[o + sock]
                if kap > 0.0 and er < ets[sock]:
                    g = st[ov + sock] - kap * (ets[sock] - er)
                    if g < st[opd + sock]:
                        st[opd + sock] = g
        if self._part_any:
            np.add(e_socket_kwh, self.sock_e_part, e_socket_kwh)
            self.sock_e_part.fill(0.0)
            self._part_any = False
        return float(np.add.reduce(e_socket_kwh))

    def _taper_fix(self, e_kwh: FloatArray) -> list[int]:
        """Replace ``e_kwh`` (``p × dt``) by the closed-form CC-CV energy over the step where
        the taper may bind: a vehicle that tapers whose energy left after the step would
        fall below its taper start ``e_t`` (a necessary condition: under a limit the taper
        binds later still). Returns those sockets (every vehicle in its taper at the step
        end is one of them)."""
        mask = self._mask
        b = self._buf2
        np.subtract(self.sock_erem, e_kwh, b)
        np.less(b, self.sock_et, mask)
        idx = mask.nonzero()[0].tolist()
        if not idx:
            return idx
        st, ov, kaps, ets, tf = self._st, self._o_vmax, self._kap, self._et, self._tF
        o = self._o_erem
        pl = self._p  # (the numpy view ``sock_p`` as Python floats: the same values)
        tau_h = self.dt_h
        exp = math.expm1
        for sock in idx:
            kap = kaps[sock]
            p = pl[sock]
            if kap <= 0.0 or p <= 0.0:
                continue
            # energy_kwh inlined (twin.components.taper): the hot loop of a tapering fleet
            er = st[o + sock]
            if er <= 0.0:
                continue
            vmax = st[ov + sock]
            et = ets[sock]
            g0 = vmax - kap * (et - er)  # the taper's power limit now
            if g0 <= p:  # CV phase all step: g0 (1 − e^−κτ) / κ
                e = g0 * tf[sock] if g0 > 0.0 else 0.0
                e_kwh[sock] = e if e < er else er
                continue
            e_b = et - (vmax - p) / kap
            lin = er - e_b if er > e_b else 0.0
            e_lin = p * tau_h
            if e_lin <= lin:
                continue  # constant power all step: p × tau already
            u1 = vmax - kap * (et - (er - lin))
            if u1 > p:
                u1 = p
            e = lin - u1 * exp(-kap * (tau_h - lin / p)) / kap if u1 > 0.0 else lin
            e_kwh[sock] = e if e < er else er
        return idx

    def finish(self) -> None:
        """Close the books at the end of the horizon (plugged vehicles are cut off)."""
        now = self.env.now
        self._prune_waiting()
        for sock, i in enumerate(self.sock_sess):
            if i >= 0:
                self._e_del[i] = self._ereq[i] - self._st[self._o_erem + sock]
                self._leave_s[i] = now

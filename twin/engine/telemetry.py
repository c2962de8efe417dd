"""A run's record from what the adapters read (a run against devices).

Against devices the driver sees only telemetry, so the plant-side columns of step ``k``
come from the read at ``t_{k+1}``:

* battery AC energy: the measured mean power over the step (``BessState.p_kw``, + discharge
  / − charge) × dt; stored energy and capacity: SoC × capacity after the step;
* per-socket energy: each socket's measured mean power over the step
  (``SocketArrays.p_last_kw``) × dt; EV energy: their sum;
* PV and mall (recorded by the driver at the step start): the meters.

Only new samples become energy: a reading marked invalid, or held (``Telemetry.held``:
the read failed and the adapter kept the last values, or the device heartbeat did not
move), adds no kWh to its step (PV and mall: the driver records 0 kW for a step whose
meter reading is invalid). ``not_counted`` counts those steps per device.

Sessions are rebuilt from the sockets: a session starts when a socket's vehicle appears
(or its session energy counter restarts, or the energy still requested jumps up: another
vehicle) and ends when it is gone; its energy delivered is the charger's session counter
(``e_session``; without one, the socket's energy while plugged) plus what the socket
delivered after the last read before it left; its energy asked for = delivered up to the
last read while plugged + still requested at that read (so "satisfied" = the vehicle
asked for nothing more; a late rider whose request was cut to what fits before closing
asks the charger for the cut request, so it counts as satisfied: the "satisfied, reduced
request" outcome needs the rider's first wish, which no charger reports). Vehicles turned
away without ever plugging in are not seen by the chargers (``n_waiting`` is recorded per
step).
"""

from __future__ import annotations

import math

import numpy as np

from adapters.base import Telemetry
from twin.inputs import SessionTable
from twin.record import Recorder

STATUS_SERVED, STATUS_PLUGGED = 3, 2


class SocketSessions:
    """Sessions seen by the chargers, in the shape ``twin.engine.results`` reads.

    Attributes (after ``finish``)
    ----------------------------
    s : SessionTable of the sessions seen (arrival = plug-in read; departure = the
        planned departure the charger reported at plug-in, else the leave time).
    status, plug_s, leave_s, e_del_kwh, socket_of : one element per session.
    events : plug-ins + plug-outs seen.
    n_waiting : always 0 here (the queue is recorded per step).
    """

    def __init__(self, n_sockets: int, type_code: np.ndarray) -> None:
        self.n_sockets = n_sockets
        self.type_code = np.asarray(type_code, dtype=np.int64)
        self.cur = [-1] * n_sockets  # session index per socket, -1 when empty
        self.last_e = [0.0] * n_sockets
        self.last_es = [0.0] * n_sockets
        # plug_s, dep_s, type, e_still_requested (last read), p_max, leave, e_del, socket,
        # e_del at the last read
        self.rows: list[list[float]] = []
        self.events = 0
        self.n_waiting = 0

    def update(self, t_s: float, tel: Telemetry, e_step_kwh: np.ndarray | None) -> None:
        """Account the read at ``t_s``; ``e_step_kwh`` = per-socket energy of the step that
        just ended."""
        s = tel.sockets
        if not s.valid:
            return
        n = self.n_sockets
        occ = s.occupied.tolist()
        erem = s.e_remaining_kwh.tolist()
        tdep = s.t_departure_s.tolist()
        rating = s.p_rating_kw.tolist()
        has_es = s.e_session_kwh is not None
        es = s.e_session_kwh.tolist() if s.e_session_kwh is not None else [0.0] * n
        e_step = e_step_kwh.tolist() if e_step_kwh is not None else [0.0] * n
        rows = self.rows
        for i in range(n):
            j = self.cur[i]
            new_vehicle = occ[i] and (
                j < 0 or erem[i] > self.last_e[i] + 1e-3
                or (has_es and es[i] < self.last_es[i] - 1e-3))
            if j >= 0 and (not occ[i] or new_vehicle):
                # left during the step: the step's energy, less what the next vehicle got
                tail = e_step[i] - (es[i] if new_vehicle and has_es else 0.0)
                rows[j][6] = rows[j][8] + max(tail, 0.0)
                rows[j][5] = t_s
                self.cur[i] = -1
                self.events += 1
            elif j >= 0:
                rows[j][6] = es[i] if has_es else rows[j][6] + e_step[i]
                rows[j][3] = erem[i]
                rows[j][8] = rows[j][6]
            if new_vehicle:
                # plugged in during the step that just ended: that energy is its own
                e0 = es[i] if has_es else (e_step[i] if j < 0 else 0.0)
                dep = tdep[i] if math.isfinite(tdep[i]) else math.nan
                rows.append([t_s, dep, float(self.type_code[i]), erem[i], rating[i],
                             math.nan, e0, float(i), e0])
                self.cur[i] = len(rows) - 1
                self.events += 1
            self.last_e[i] = erem[i] if occ[i] else 0.0
            self.last_es[i] = es[i] if occ[i] else 0.0

    def finish(self) -> None:
        """Build the arrays; sessions still plugged are marked so."""
        r = np.asarray(self.rows, dtype=float).reshape(-1, 9)
        plugged = np.isnan(r[:, 5])
        dep = np.where(np.isnan(r[:, 1]), r[:, 5], r[:, 1])
        dep = np.where(np.isnan(dep), np.inf, dep)
        # energy asked for = delivered up to the last read while plugged + still requested then
        self.s = SessionTable(r[:, 0].copy(), dep, r[:, 2].astype(np.int64), r[:, 8] + r[:, 3],
                              r[:, 4].copy(), np.zeros(len(r)))
        self.status = np.where(plugged, STATUS_PLUGGED, STATUS_SERVED).astype(np.int8)
        self.plug_s = r[:, 0].copy()
        self.leave_s = r[:, 5].copy()
        self.e_del_kwh = r[:, 6].copy()
        self.socket_of = r[:, 7].astype(np.int64)


class TelemetryRecorder:
    """Fills the plant-side columns of a ``Recorder`` from telemetry.

    Parameters
    ----------
    rec : the run's record.
    dt_s : step length [s].
    n_sockets : sockets on site; type_code : their vehicle types.
    """

    def __init__(self, rec: Recorder, dt_s: float, n_sockets: int, type_code: np.ndarray) -> None:
        self.rec = rec
        self.dt_s = dt_s
        self.dt_h = dt_s / 3600.0
        self.sessions = SocketSessions(n_sockets, type_code)
        self.n_reverse_flow_cuts = 0
        #: Steps whose reading at the step end was not integrated (invalid or held).
        self.not_counted = {"bess": 0, "chargers": 0}
        self._last_stored = 0.0
        self._last_cap = 0.0
        #: several batteries: each one's last counted stored energy and capacity [kWh]
        self._last_units: list[tuple[float, float]] = []

    def start(self, tel: Telemetry) -> None:
        """The read at ``t_0``: vehicles already plugged start their sessions."""
        b = tel.bess
        self._last_stored, self._last_cap = b.e_kwh, b.e_capacity_kwh
        self._last_units = [(u.e_kwh, u.e_capacity_kwh) for u in tel.batteries]
        self.sessions.update(0.0, tel, None)

    def record(self, k: int, tel: Telemetry) -> None:
        """Step ``k`` from the read at ``t_{k+1}``."""
        rec = self.rec
        dt_h = self.dt_h
        b = tel.bess
        if rec.units is not None and len(tel.batteries) == len(rec.units.names):
            self._record_units(k, tel)
        elif not b.valid or "bess" in tel.held:
            self.not_counted["bess"] += 1
        else:
            p = b.p_kw
            if p > 0.0:
                rec.b_e_bess_discharge_kwh[k] = p * dt_h
            elif p < 0.0:
                rec.b_e_bess_charge_kwh[k] = -p * dt_h
            self._last_stored, self._last_cap = b.e_kwh, b.e_capacity_kwh
        if rec.units is None:
            rec.b_e_bess_stored_kwh[k] = self._last_stored
            rec.b_cap_kwh[k] = self._last_cap
        s = tel.sockets
        e_sock = None
        if not s.valid or "chargers" in tel.held:
            self.not_counted["chargers"] += 1
        elif s.p_last_kw is not None:
            e_sock = np.asarray(s.p_last_kw, dtype=float) * dt_h
            rec.e_socket_kwh[k] = e_sock
            rec.b_e_ev_kwh[k] = float(e_sock.sum())
        self.sessions.update((k + 1) * self.dt_s, tel, e_sock)

    def _record_units(self, k: int, tel: Telemetry) -> None:
        """Step ``k`` of several batteries: each one's energies from its own reading (an
        invalid or held reading: not integrated, its stored energy held); the totals are
        the sums of the parts."""
        rec = self.rec
        units = rec.units
        assert units is not None
        dt_h = self.dt_h
        held = "bess" in tel.held
        if len(self._last_units) != len(tel.batteries):
            self._last_units = [(0.0, 0.0)] * len(tel.batteries)
        counted = False
        for i, u in enumerate(tel.batteries):
            if u.valid and not held:
                p = u.p_kw
                if p > 0.0:
                    units.e_discharge_kwh[k, i] = p * dt_h
                elif p < 0.0:
                    units.e_charge_kwh[k, i] = -p * dt_h
                self._last_units[i] = (u.e_kwh, u.e_capacity_kwh)
                counted = True
            units.e_stored_kwh[k, i], units.cap_kwh[k, i] = self._last_units[i]
        if not counted or not all(u.valid for u in tel.batteries):
            self.not_counted["bess"] += 1
        rec.b_e_bess_discharge_kwh[k] = math.fsum(units.e_discharge_kwh[k])
        rec.b_e_bess_charge_kwh[k] = math.fsum(units.e_charge_kwh[k])
        rec.b_e_bess_stored_kwh[k] = math.fsum(units.e_stored_kwh[k])
        rec.b_cap_kwh[k] = math.fsum(units.cap_kwh[k])

    def finish(self) -> SocketSessions:
        """Close the session log."""
        self.sessions.finish()
        return self.sessions


__all__ = ["SocketSessions", "TelemetryRecorder"]

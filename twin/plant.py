"""The plant: PV, mall, EV fleet and battery on one SimPy clock; it records each step.

Inputs (PV, mall, sessions) are built up front (``twin.components.inputs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from twin.components.ageing import cell_temperature_c
from twin.components.bess import Battery, BessParams, no_reverse_flow_kw
from twin.components.fleet import Fleet
from twin.config import SiteConfig
from twin.inputs import PlantInputs, SocketSpec
from twin.record import Recorder, as_array
from twin.types import FloatArray, SocketArrays, frozen_array


class Plant:
    """The physical site on a SimPy environment.

    Parameters
    ----------
    env : SimPy environment (seconds).
    inputs : exogenous profiles and sessions.
    site : the site configuration.
    rec : where the plant records what happened in each step (EV, battery and socket
        energy); a new ``Recorder`` when None.
    battery_in_use : False for a run without a battery (the ``no_bess`` baseline): the
        idle battery does not age.

    With BLAST-Lite ageing the battery ages once per simulated day (``_age_chunk``, from
    the recorded SOC and the container model's cell temperature, at the end of each full
    day of the run), not in the step.
    """

    def __init__(self, env: simpy.Environment, inputs: PlantInputs, site: SiteConfig,
                 rec: Recorder | None = None, battery_in_use: bool = True) -> None:
        self.env = env
        self.inputs = inputs
        self.site = site
        self.dt_s = inputs.dt_s
        self.dt_h = inputs.dt_s / 3600.0
        # per-step inputs as stdlib arrays (cheap scalar reads, a quarter of a list's memory)
        self.p_pv_kw = as_array(inputs.p_pv_kw)
        self.p_mall_kw = as_array(inputs.p_mall_kw)
        self.p_ev_prof_kw = as_array(inputs.p_ev_profile_kw) if inputs.p_ev_profile_kw is not None else None
        self.battery = Battery(BessParams.from_config(site.bess, in_use=battery_in_use))
        spec = SocketSpec.from_config(site.ev)
        self.n_sockets = int(spec.p_rating_kw.shape[0])
        self.fleet: Fleet | None = None
        if inputs.sessions is not None:
            self.fleet = Fleet(env, inputs.sessions, spec, inputs.dt_s)
        else:
            z = np.zeros(self.n_sockets)
            self._empty_sockets = SocketArrays(
                type_code=frozen_array(spec.type_code.copy()),  # type: ignore[arg-type]
                p_rating_kw=frozen_array(spec.p_rating_kw.copy()),  # type: ignore[arg-type]
                occupied=frozen_array(np.zeros(self.n_sockets, dtype=bool)),  # type: ignore[arg-type]
                p_demand_kw=frozen_array(z.copy()),  # type: ignore[arg-type]
                e_remaining_kwh=frozen_array(z.copy()),  # type: ignore[arg-type]
                t_departure_s=frozen_array(np.full(self.n_sockets, math.inf)),  # type: ignore[arg-type]
            )
        self.export_limit_kw = site.grid.export_limit_kw
        n = len(inputs.index)
        self.rec = rec if rec is not None else Recorder(n, self.n_sockets)
        self._e_sock = np.zeros(self.n_sockets)  # float64 scratch row for the fleet
        self.k = 0
        self.p_bess_setpoint_kw = 0.0
        self.n_reverse_flow_cuts = 0
        self._init_ageing(inputs)

    def _init_ageing(self, inputs: PlantInputs) -> None:
        """Daily BLAST-Lite ageing: cell temperatures per step and the first day's end."""
        bat = self.battery
        self._age_every = 0  # steps per ageing chunk (0: no chunked ageing)
        self._age_next = -1  # ``k`` at which the next chunk ends
        self._age_start = 0
        self._age_soc0 = bat.soc_frac
        self.t_cell_c: FloatArray | None = None
        if bat.ageing is None:
            return
        pr = bat.params
        n = len(inputs.index)
        t_air = (inputs.t_air_c if inputs.t_air_c is not None
                 else np.full(n, pr.hvac_setpoint_c))
        self.t_cell_c = cell_temperature_c(t_air, self.dt_s, pr.hvac_setpoint_c,
                                           pr.hvac_coupling_frac, pr.container_tau_h)
        self._age_every = max(1, round(86400.0 / self.dt_s))
        self._age_next = self._age_every
        self.rec.bess_ageing = {"t_cell_mean_c": float(self.t_cell_c.mean()) if n else 0.0,
                                "t_cell_max_c": float(self.t_cell_c.max()) if n else 0.0}

    def _age_chunk(self) -> None:
        """Age the battery over the steps since the last chunk (BLAST-Lite, once a day)."""
        end, start = self.k, self._age_start
        if end <= start or self.t_cell_c is None:
            return
        rec, bat = self.rec, self.battery
        e = rec.e_bess_stored_kwh[start:end]
        cap = rec.cap_kwh[start:end]
        soc = np.empty(end - start + 1)
        soc[0] = self._age_soc0
        np.divide(e, cap, out=soc[1:], where=cap > 0.0)
        soc[1:][cap <= 0.0] = 0.0
        t_c = self.t_cell_c
        temp = np.concatenate((t_c[max(start - 1, 0):start] if start else t_c[:1], t_c[start:end]))
        t_s = np.arange(start, end + 1, dtype=np.float64) * self.dt_s
        bat.age_chunk(t_s, soc, temp)
        # the step that closes the chunk carries the day's fade (as ``apply``'s ageing term)
        rec.b_cap_kwh[end - 1] = bat.cap_kwh
        rec.b_e_bess_stored_kwh[end - 1] = bat.e_kwh
        a = bat.ageing
        assert a is not None
        rec.bess_ageing.update(fade_cycle_kwh=bat.fade_cycle_kwh,
                               fade_calendar_kwh=bat.fade_calendar_kwh, efc_blast=a.efc,
                               days=a.t_days)
        if a.r is not None:
            rec.bess_ageing["resistance_rel"] = a.r
        self._age_start = end
        self._age_soc0 = bat.soc_frac
        self._age_next = end + self._age_every

    # ---- device-side API used by the sim adapters
    def observe_sockets(self) -> SocketArrays:
        """Socket arrays at the step start."""
        if self.fleet is None:
            return self._empty_sockets
        return self.fleet.observe()

    def begin_sockets(self, p_max_kw: FloatArray) -> None:
        """Per-socket limits for the step that starts now [kW]."""
        if self.fleet is not None:
            self.fleet.begin_step(p_max_kw)

    def waiting_fn(self) -> Callable[[], int]:
        """A cheap callable giving the number of waiting vehicles."""
        fleet = self.fleet
        if fleet is None:
            return lambda: 0
        return lambda: fleet._n_waiting and fleet.n_waiting

    @property
    def n_waiting(self) -> int:
        """Vehicles waiting for a socket."""
        return self.fleet.n_waiting if self.fleet is not None else 0

    # ---- the physics of one step
    def settle(self) -> None:
        """Integrate step ``k`` (which just ended) and record it; advance ``k``."""
        k = self.k
        rec = self.rec
        dt_h = self.dt_h
        if self.fleet is not None:
            e_ev = self.fleet.end_step(self._e_sock)
            if e_ev:
                rec.e_socket_kwh[k] = self._e_sock
        else:
            e_ev = 0.0
        if self.p_ev_prof_kw is not None:
            e_ev += self.p_ev_prof_kw[k] * dt_h
        p_b = self.p_bess_setpoint_kw
        if p_b > 0.0:
            # The inverter cannot push power back into an isolated grid: the discharge is cut
            # to the site's net load after PV (EVs may have left during the step).
            cap = no_reverse_flow_kw(e_ev / dt_h + self.p_mall_kw[k] - self.p_pv_kw[k],
                                     self.export_limit_kw)
            if p_b > cap:
                p_b = cap
                self.n_reverse_flow_cuts += 1
        bat = self.battery
        bat.apply(p_b, dt_h)
        rec.b_e_ev_kwh[k] = e_ev
        if p_b > 0.0:
            rec.b_e_bess_discharge_kwh[k] = p_b * dt_h
        elif p_b < 0.0:
            rec.b_e_bess_charge_kwh[k] = -p_b * dt_h
        rec.b_e_bess_stored_kwh[k] = bat.e_kwh
        rec.b_cap_kwh[k] = bat.cap_kwh
        rec.k_done = k + 1
        self.k = k + 1
        if self.k == self._age_next:
            self._age_chunk()

    def finish(self) -> None:
        """Close the books (vehicles still plugged at the end are cut off).

        The battery ages at full days' ends only: a last, partial day (an interrupted run)
        is not aged, so the recorded last step stays what the live metrics showed."""
        if self.fleet is not None:
            self.fleet.finish()

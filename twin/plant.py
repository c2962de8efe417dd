"""The plant: PV, mall, EV fleet and battery on one SimPy clock; it records each step.

Inputs (PV, mall, sessions) are built up front (``twin.components.inputs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from twin.components.bess import Battery, BessParams
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
    """

    def __init__(self, env: simpy.Environment, inputs: PlantInputs, site: SiteConfig,
                 rec: Recorder | None = None) -> None:
        self.env = env
        self.inputs = inputs
        self.site = site
        self.dt_s = inputs.dt_s
        self.dt_h = inputs.dt_s / 3600.0
        # per-step inputs as stdlib arrays (cheap scalar reads, a quarter of a list's memory)
        self.p_pv_kw = as_array(inputs.p_pv_kw)
        self.p_mall_kw = as_array(inputs.p_mall_kw)
        self.p_ev_prof_kw = as_array(inputs.p_ev_profile_kw) if inputs.p_ev_profile_kw is not None else None
        self.battery = Battery(BessParams.from_config(site.bess))
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
            cap = max(e_ev / dt_h + self.p_mall_kw[k] - self.p_pv_kw[k], 0.0) + self.export_limit_kw
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

    def finish(self) -> None:
        """Close the books (vehicles still plugged at the end are cut off)."""
        if self.fleet is not None:
            self.fleet.finish()

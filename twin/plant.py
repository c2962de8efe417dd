"""The plant: PV, mall, EV fleet and battery on one SimPy clock; it records each step.

Inputs (PV, mall, sessions) are built up front (``twin.components.inputs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from twin.components.ageing import cell_temperature_c
from twin.components.bess import Battery, BessParams, no_reverse_flow_kw, split_power_kw
from twin.components.fleet import Fleet
from twin.config import SiteConfig
from twin.inputs import PlantInputs, SocketSpec
from twin.record import Recorder, as_array
from twin.types import BessState, FloatArray, SocketArrays, frozen_array


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
        cfgs = site.batteries
        #: the site's batteries (one for a one-battery site); ``battery`` is the first
        self.batteries = [Battery(BessParams.from_config(b, in_use=battery_in_use)) for b in cfgs]
        self.battery = self.batteries[0]
        self.multi = len(self.batteries) >= 2
        #: per-battery setpoints of the step [kW] (several batteries; empty: split the total
        #: by ``split_power_kw``)
        self.p_bess_split_kw: tuple[float, ...] = ()
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
        self.rec = rec if rec is not None else Recorder(
            n, self.n_sockets, tuple(b.name for b in cfgs) if self.multi else ())
        if self.multi and (self.rec.units is None or len(self.rec.units.names) != len(cfgs)):
            raise ValueError(f"the record has no columns for the site's {len(cfgs)} batteries")
        self._e_sock = np.zeros(self.n_sockets)  # float64 scratch row for the fleet
        self.k = 0
        self.p_bess_setpoint_kw = 0.0
        self.n_reverse_flow_cuts = 0
        self._init_ageing(inputs)

    def _init_ageing(self, inputs: PlantInputs) -> None:
        """Daily BLAST-Lite ageing: cell temperatures per step and the first day's end."""
        self._age_every = 0  # steps per ageing chunk (0: no chunked ageing)
        self._age_next = -1  # ``k`` at which the next chunk ends
        self._age_start = 0
        self._age_soc0 = [b.soc_frac for b in self.batteries]
        #: cell temperature per step of each battery (None: no BLAST-Lite ageing) [°C]
        self._t_cell: list[FloatArray | None] = []
        n = len(inputs.index)
        units = self.rec.units
        for i, bat in enumerate(self.batteries):
            if bat.ageing is None:
                self._t_cell.append(None)
                continue
            pr = bat.params
            t_air = (inputs.t_air_c if inputs.t_air_c is not None
                     else np.full(n, pr.hvac_setpoint_c))
            t_cell = cell_temperature_c(t_air, self.dt_s, pr.hvac_setpoint_c,
                                        pr.hvac_coupling_frac, pr.container_tau_h)
            self._t_cell.append(t_cell)
            fig = {"t_cell_mean_c": float(t_cell.mean()) if n else 0.0,
                   "t_cell_max_c": float(t_cell.max()) if n else 0.0}
            if units is None:
                self.rec.bess_ageing = fig
            else:
                units.ageing[i] = fig
        self.t_cell_c: FloatArray | None = self._t_cell[0]
        if all(t is None for t in self._t_cell):
            return
        self._age_every = max(1, round(86400.0 / self.dt_s))
        self._age_next = self._age_every
        if units is not None:
            self._ageing_totals()

    def _ageing_totals(self) -> None:
        """The record's ageing figures of several batteries: fades summed [kWh], cell
        temperature and resistance as capacity-weighted means of the aged batteries."""
        units = self.rec.units
        assert units is not None
        aged = [(b.cap0_kwh, a) for b, a in zip(self.batteries, units.ageing, strict=True) if a]
        w = math.fsum(c for c, _ in aged)
        tot: dict[str, float] = {}
        for key in ("t_cell_mean_c", "resistance_rel"):
            if w > 0.0 and all(key in a for _, a in aged):
                tot[key] = math.fsum(c * a[key] for c, a in aged) / w
        for key in ("fade_cycle_kwh", "fade_calendar_kwh", "efc_blast"):
            if any(key in a for _, a in aged):
                tot[key] = math.fsum(a.get(key, 0.0) for _, a in aged)
        tot["t_cell_max_c"] = max(a["t_cell_max_c"] for _, a in aged)
        if any("days" in a for _, a in aged):
            tot["days"] = max(a.get("days", 0.0) for _, a in aged)
        self.rec.bess_ageing = tot

    def _age_chunk(self) -> None:
        """Age the batteries over the steps since the last chunk (BLAST-Lite, once a day)."""
        end, start = self.k, self._age_start
        if end <= start:
            return
        rec = self.rec
        units = rec.units
        for i, bat in enumerate(self.batteries):
            t_c = self._t_cell[i]
            if t_c is None:
                continue
            if units is None:
                e, cap = rec.e_bess_stored_kwh[start:end], rec.cap_kwh[start:end]
            else:
                e, cap = units.e_stored_kwh[start:end, i], units.cap_kwh[start:end, i]
            soc = np.empty(end - start + 1)
            soc[0] = self._age_soc0[i]
            np.divide(e, cap, out=soc[1:], where=cap > 0.0)
            soc[1:][cap <= 0.0] = 0.0
            temp = np.concatenate((t_c[max(start - 1, 0):start] if start else t_c[:1],
                                   t_c[start:end]))
            t_s = np.arange(start, end + 1, dtype=np.float64) * self.dt_s
            bat.age_chunk(t_s, soc, temp)
            a = bat.ageing
            assert a is not None
            fig = {"fade_cycle_kwh": bat.fade_cycle_kwh, "fade_calendar_kwh": bat.fade_calendar_kwh,
                   "efc_blast": a.efc, "days": a.t_days}
            if a.r is not None:
                fig["resistance_rel"] = a.r
            # the step that closes the chunk carries the day's fade (as ``apply``'s ageing term)
            if units is None:
                rec.b_cap_kwh[end - 1] = bat.cap_kwh
                rec.b_e_bess_stored_kwh[end - 1] = bat.e_kwh
                rec.bess_ageing.update(fig)
            else:
                units.cap_kwh[end - 1, i] = bat.cap_kwh
                units.e_stored_kwh[end - 1, i] = bat.e_kwh
                units.ageing[i].update(fig)
            self._age_soc0[i] = bat.soc_frac
        if units is not None:
            rec.b_cap_kwh[end - 1] = math.fsum(b.cap_kwh for b in self.batteries)
            rec.b_e_bess_stored_kwh[end - 1] = math.fsum(b.e_kwh for b in self.batteries)
            self._ageing_totals()
        self._age_start = end
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
        if self.multi:
            self._apply_units(k, e_ev)
        else:
            self._apply_one(k, e_ev, dt_h, rec)
        rec.k_done = k + 1
        self.k = k + 1
        if self.k == self._age_next:
            self._age_chunk()

    def _apply_one(self, k: int, e_ev: float, dt_h: float, rec: Recorder) -> None:
        """The one battery over step ``k`` (its setpoint, cut to no reverse flow)."""
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

    def battery_states(self) -> tuple[BessState, ...]:
        """Each battery's telemetry now."""
        return tuple(b.state() for b in self.batteries)

    def _apply_units(self, k: int, e_ev: float) -> None:
        """Several batteries over step ``k``: the per-battery setpoints (or the default split
        of the total), the discharging parts cut together to no reverse flow; records each
        battery and the totals (sums of the parts)."""
        rec = self.rec
        units = rec.units
        assert units is not None
        dt_h = self.dt_h
        bats = self.batteries
        parts = list(self.p_bess_split_kw)
        if len(parts) != len(bats):
            parts = list(split_power_kw(self.p_bess_setpoint_kw, self.battery_states(), dt_h))
        pos = math.fsum(p for p in parts if p > 0.0)
        if pos > 0.0:
            neg = math.fsum(p for p in parts if p < 0.0)
            cap = no_reverse_flow_kw(e_ev / dt_h + self.p_mall_kw[k] - self.p_pv_kw[k],
                                     self.export_limit_kw)
            if pos + neg > cap:
                f = max(0.0, (cap - neg) / pos)
                parts = [p * f if p > 0.0 else p for p in parts]
                self.n_reverse_flow_cuts += 1
        for i, (bat, p) in enumerate(zip(bats, parts, strict=True)):
            bat.apply(p, dt_h)
            if p > 0.0:
                units.e_discharge_kwh[k, i] = p * dt_h
            elif p < 0.0:
                units.e_charge_kwh[k, i] = -p * dt_h
            units.e_stored_kwh[k, i] = bat.e_kwh
            units.cap_kwh[k, i] = bat.cap_kwh
        rec.b_e_ev_kwh[k] = e_ev
        rec.b_e_bess_discharge_kwh[k] = math.fsum(units.e_discharge_kwh[k])
        rec.b_e_bess_charge_kwh[k] = math.fsum(units.e_charge_kwh[k])
        rec.b_e_bess_stored_kwh[k] = math.fsum(units.e_stored_kwh[k])
        rec.b_cap_kwh[k] = math.fsum(units.cap_kwh[k])

    def finish(self) -> None:
        """Close the books (vehicles still plugged at the end are cut off).

        The battery ages at full days' ends only: a last, partial day (an interrupted run)
        is not aged, so the recorded last step stays what the live metrics showed."""
        if self.fleet is not None:
            self.fleet.finish()

"""Playing a plan back through the normal tick: socket limits and a battery setpoint.

The plan gives, per step, the battery power and the EV energy per vehicle type. The
type's energy is shared over its plugged vehicles earliest departure first, each up to what
it can draw before it leaves; what is left is for vehicles that plug in during the step:
the free sockets of that type are then opened at their rating. The battery setpoint is
kept inside the battery's envelope and the no-reverse-flow limit as the safety layer
computes them (the same functions, ``twin.components.bess``),
so a plan is never bent by it (a deviation is counted here instead).
"""

from __future__ import annotations

import math

import numpy as np

from twin.components.bess import allowed_charge_kw, allowed_discharge_kw, no_reverse_flow_kw
from twin.types import FloatArray, SiteObservation

#: Energy below which a share is treated as zero [kWh].
TOL_KWH = 1e-6
#: Power kept inside the safety layer's limits [kW].
TOL_KW = 1e-7


def socket_limits(obs: SiteObservation, e_type_kwh: FloatArray,
                  e_asap_kwh: FloatArray | None = None, strict: bool = False) -> FloatArray:
    """Per-socket limits [kW] that deliver ``e_type_kwh[c]`` to the vehicles of type ``c``.

    When the plan gives a type all it could take in the step (``e_asap_kwh[c]``, everyone at
    full power, arrivals included), its sockets are simply opened at their rating — unless
    ``strict`` (a peak charge prices each step's import: vehicles behind the plan do not
    catch up above it).
    """
    s = obs.sockets
    dt_h = obs.dt_s / 3600.0
    lim = np.zeros(s.n)
    occ = s.occupied
    for c, e_c in enumerate(e_type_kwh):
        of_type = s.type_code == c
        left = float(e_c)
        if (not strict and e_asap_kwh is not None and left >= float(e_asap_kwh[c]) - TOL_KWH
                and left > TOL_KWH):
            lim[of_type] = s.p_rating_kw[of_type]
            continue
        idx = np.flatnonzero(occ & of_type)
        cap_plugged = 0.0
        if idx.size and left > TOL_KWH:
            idx = idx[np.argsort(s.t_departure_s[idx], kind="stable")]
            frac = np.clip((s.t_departure_s[idx] - obs.t_s) / obs.dt_s, 0.0, 1.0)
            cap = s.p_demand_kw[idx] * frac * dt_h
            cap_plugged = float(cap.sum())
            before = np.concatenate([[0.0], np.cumsum(cap)[:-1]])
            alloc = np.clip(left - before, 0.0, cap)
            with np.errstate(divide="ignore", invalid="ignore"):
                p = np.where(cap > 0.0, alloc / (frac * dt_h), 0.0)
            lim[idx] = np.minimum(p, s.p_demand_kw[idx])
            left -= float(alloc.sum())
        if left > TOL_KWH:
            # the rest is for vehicles that plug in during the step: at full power they
            # would take what the plan's envelope expects of them; open the free sockets
            # in that proportion
            empty = of_type & ~occ
            share = 1.0
            if e_asap_kwh is not None:
                arriving = float(e_asap_kwh[c]) - cap_plugged
                if arriving > TOL_KWH:
                    share = min(1.0, left / arriving)
            lim[empty] = s.p_rating_kw[empty] * share
    return lim


def bess_setpoint(obs: SiteObservation, p_plan_kw: float, p_socket_kw: FloatArray,
                  export_limit_kw: float) -> tuple[float, bool]:
    """The planned battery power [kW] kept inside the SOC window and the no-reverse-flow
    limit; and whether it had to be changed."""
    b = obs.bess
    dt_h = obs.dt_s / 3600.0
    p = p_plan_kw
    if p > 0.0:
        s = obs.sockets
        p_ev = float(np.minimum(p_socket_kw, s.p_demand_kw).sum()) if s.n_occupied else 0.0
        net = p_ev + obs.p_ev_inflexible_kw + obs.p_mall_kw - obs.p_pv_kw
        p_max = min(allowed_discharge_kw(b, dt_h), no_reverse_flow_kw(net, export_limit_kw))
        if p > p_max:
            return max(p_max - TOL_KW, 0.0), p > p_max + 1e-3
    elif p < 0.0:
        p_max = allowed_charge_kw(b, dt_h)
        if -p > p_max:
            return -max(p_max - TOL_KW, 0.0), -p > p_max + 1e-3
    return p, False


def bess_split_setpoints(obs: SiteObservation, p_plan_kw: FloatArray, p_socket_kw: FloatArray,
                         export_limit_kw: float) -> tuple[tuple[float, ...], bool]:
    """A plan's per-battery powers [kW] (``p_plan_kw[i]`` for ``obs.batteries[i]``) kept
    inside each battery's envelope, their discharging parts cut together to the
    no-reverse-flow limit; and whether any had to be changed."""
    dt_h = obs.dt_s / 3600.0
    parts: list[float] = []
    adjusted = False
    for b, p in zip(obs.batteries, p_plan_kw.tolist(), strict=True):
        if p > 0.0:
            p_max = allowed_discharge_kw(b, dt_h) if b.valid else 0.0
            if p > p_max:
                adjusted |= p > p_max + 1e-3
                p = max(p_max - TOL_KW, 0.0)
        elif p < 0.0:
            p_max = allowed_charge_kw(b, dt_h) if b.valid else 0.0
            if -p > p_max:
                adjusted |= -p > p_max + 1e-3
                p = -max(p_max - TOL_KW, 0.0)
        parts.append(p)
    pos = math.fsum(p for p in parts if p > 0.0)
    if pos > 0.0:
        s = obs.sockets
        p_ev = float(np.minimum(p_socket_kw, s.p_demand_kw).sum()) if s.n_occupied else 0.0
        net = p_ev + obs.p_ev_inflexible_kw + obs.p_mall_kw - obs.p_pv_kw
        neg = math.fsum(p for p in parts if p < 0.0)
        cap = no_reverse_flow_kw(net, export_limit_kw)
        if pos + neg > cap:
            adjusted |= pos + neg > cap + 1e-3
            f = max(0.0, (cap - TOL_KW - neg) / pos)
            parts = [p * f if p > 0.0 else p for p in parts]
    return tuple(parts), adjusted


__all__ = ["bess_setpoint", "bess_split_setpoints", "socket_limits"]

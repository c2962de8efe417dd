"""The one safety layer between every controller and the devices.

It is the only place where a setpoint is bent, and it reports every bend (a ``Clamp``
with a reason) to a ``ClampLog``. Checks, in order:

1. telemetry invalid → battery to 0 kW, sockets to their failsafe power;
2. non-finite values → 0;
3. battery power limits (charge / discharge);
4. battery SOC window over the step (with the one-way efficiencies); with several
   batteries (``obs.batteries``) 3-4 hold for each battery and for the total, and the
   kept total is split over the batteries (``split_kw``, ``split_power_kw``);
5. socket limits: 0 ≤ p ≤ rating;
6. no reverse flow: discharge ≤ site load after PV + export limit;
7. grid import limit (if set): cut battery charging first, then scale the sockets.

Checks 6 and 7 need the meters. When a meter reading is invalid (comm failure, garbage),
they use the last valid PV and mall values with a margin on the safe side of each check
(no reverse flow: PV higher and mall lower by ``meter_margin_frac``; import limit: the
other way round), and every such step is counted (reason ``meters_invalid``): never a
frozen value silently. Before any valid reading, the battery may not discharge.
"""

from __future__ import annotations

import math

import numpy as np

from twin.components.bess import (
    allowed_charge_kw,
    allowed_discharge_kw,
    no_reverse_flow_kw,
    split_power_kw,
    window_charge_kw,
    window_discharge_kw,
)
from twin.types import (
    BessState,
    Clamp,
    ClampLog,
    FloatArray,
    Setpoints,
    SiteObservation,
    SocketArrays,
)

_EPS_KW = 1e-9

#: Every reason the safety layer reports (metrics pre-create them so that they read 0).
CLAMP_REASONS: tuple[str, ...] = (
    "bess_telemetry_invalid", "bess_not_finite", "sockets_telemetry_invalid", "socket_rating",
    "socket_negative", "socket_not_finite", "bess_discharge_limit", "bess_charge_limit",
    "bess_soc_min", "bess_soc_max", "meters_invalid", "no_reverse_flow", "grid_import_limit",
)


class SafetyLayer:
    """Keeps setpoints inside the devices' envelope.

    Parameters
    ----------
    export_limit_kw : power the site may push into the grid [kW] (0 = isolated grid).
    import_limit_kw : grid import limit [kW], or None for no limit.
    socket_failsafe_kw : per-socket power commanded while charger telemetry is invalid [kW].
    log : where clamps are reported.
    meter_margin_frac : margin on the last valid meter values while the meters are
        invalid [fraction].
    """

    def __init__(self, export_limit_kw: float = 0.0, import_limit_kw: float | None = None,
                 socket_failsafe_kw: float = 0.0, log: ClampLog | None = None,
                 meter_margin_frac: float = 0.2) -> None:
        self.export_limit_kw = export_limit_kw
        self.meter_margin_frac = meter_margin_frac
        self._meters: tuple[float, float] | None = None  # last valid (PV, mall) [kW]
        self.import_limit_kw = import_limit_kw
        self.socket_failsafe_kw = socket_failsafe_kw
        self.log = log if log is not None else ClampLog()
        self.n_step_clamps = 0
        self._checked: object = None  # a read-only setpoint array already found in bounds
        #: per-battery powers of the last clamp [kW] (several batteries; empty with one)
        self.split_kw: tuple[float, ...] = ()
        self._given: list[float] | None = None  # the controller's per-battery request, clamped

    def _bend(self, k: int, reason: str, device: str, req: float, app: float) -> None:
        self.log.add(Clamp(k, reason, device, req, app))
        self.n_step_clamps += 1

    def clamp(self, sp: Setpoints, obs: SiteObservation) -> tuple[float, FloatArray]:
        """Return (battery power [kW], per-socket limits [kW]) that are safe to apply."""
        self.n_step_clamps = 0
        k = obs.k
        b = obs.bess
        s = obs.sockets
        rating = s.p_rating_kw
        p = float(sp.p_bess_kw)
        ps = sp.p_socket_max_kw
        if ps is not rating and ps.shape != rating.shape:
            raise ValueError(
                f"controller returned {ps.shape[0] if ps.ndim else 0} socket setpoints "
                f"for {rating.shape[0]} sockets"
            )
        units = obs.batteries
        multi = len(units) >= 2
        if not multi:  # 1-2 for one battery (several: ``_clamp_units``)
            p = self._battery_valid_and_finite(k, b, p)
        ps = self._sockets_valid(k, s, ps)
        dt_h = obs.dt_s / 3600.0
        p = (self._clamp_units(k, sp, units, dt_h) if multi
             else self._envelope(k, "bess", b, p, dt_h))
        p, ps = self._site_bus(k, obs, p, ps)
        if multi:
            self._split(p, units, dt_h)
        return p, ps

    def _battery_valid_and_finite(self, k: int, b: BessState, p: float) -> float:
        """Checks 1-2 on one battery: invalid telemetry or a non-finite request → 0 kW."""
        if not b.valid:
            if p != 0.0:
                self._bend(k, "bess_telemetry_invalid", "bess", p, 0.0)
            return 0.0
        if not math.isfinite(p):
            self._bend(k, "bess_not_finite", "bess", p, 0.0)
            return 0.0
        return p

    def _sockets_valid(self, k: int, s: SocketArrays, ps: FloatArray) -> FloatArray:
        """Checks 1, 2 and 5 on the sockets: failsafe power on invalid telemetry; limits
        finite and within 0 .. rating."""
        rating = s.p_rating_kw
        if not s.valid:
            safe = np.minimum(rating, self.socket_failsafe_kw)
            if not np.array_equal(ps, safe):
                self._bend(k, "sockets_telemetry_invalid", "sockets", float(np.nansum(ps)),
                           float(safe.sum()))
            ps = safe
        elif ps is not rating and ps is not self._checked:
            over = ps > rating
            under = ps < 0.0
            bad = ~np.isfinite(ps)
            if over.any() or under.any() or bad.any():
                fixed = np.clip(np.where(bad, 0.0, ps), 0.0, rating)
                for reason, mask in (("socket_rating", over), ("socket_negative", under),
                                     ("socket_not_finite", bad)):
                    if mask.any():
                        self._bend(k, reason, "sockets", float(np.nansum(ps[mask])),
                                   float(fixed[mask].sum()))
                ps = fixed
            elif not ps.flags.writeable:
                self._checked = ps  # cannot change any more: no need to check it again
        return ps

    def _site_bus(self, k: int, obs: SiteObservation, p: float,
                  ps: FloatArray) -> tuple[float, FloatArray]:
        """Checks 6-7 at the site bus: no reverse flow into the grid, the import limit."""
        s = obs.sockets
        rating = s.p_rating_kw
        # 6-7: site bus
        if not s.n_occupied:
            p_ev = 0.0
        elif ps is rating:  # full allowance: demand is already <= rating
            p_ev = s.p_demand_total_kw
        else:
            p_ev = float(np.minimum(ps, s.p_demand_kw).sum())
        p_ev_all = p_ev + obs.p_ev_inflexible_kw
        if obs.meters_valid:
            self._meters = (obs.p_pv_kw, obs.p_mall_kw)
            net_kw = net_hi = p_ev_all + obs.p_mall_kw - obs.p_pv_kw
        else:
            m = self.meter_margin_frac
            if self._meters is None:
                net_kw, net_hi = -math.inf, math.inf  # nothing known: no discharge
            else:
                pv, mall = self._meters
                net_kw = p_ev_all + mall * (1.0 - m) - pv * (1.0 + m)  # low: no reverse flow
                net_hi = p_ev_all + mall * (1.0 + m) - pv * (1.0 - m)  # high: import limit
            self._bend(k, "meters_invalid", "meters", obs.p_pv_kw, obs.p_mall_kw)
        if p > 0.0:
            cap = no_reverse_flow_kw(net_kw, self.export_limit_kw)
            if p > cap + _EPS_KW:
                self._bend(k, "no_reverse_flow", "bess", p, cap)
                p = cap
        lim = self.import_limit_kw
        if lim is not None:
            imp = net_hi - p
            if imp > lim + _EPS_KW:
                excess = imp - lim
                if p < 0.0:
                    cut = min(-p, excess)
                    self._bend(k, "grid_import_limit", "bess", p, p + cut)
                    p += cut
                    excess -= cut
                if excess > _EPS_KW and p_ev > 0.0:
                    scale = max(0.0, (p_ev - excess) / p_ev)
                    new_ps = np.minimum(ps, s.p_demand_kw) * scale
                    self._bend(k, "grid_import_limit", "sockets", p_ev, p_ev * scale)
                    ps = new_ps
        return p, ps

    def _envelope(self, k: int, dev: str, b: BessState, p: float, dt_h: float) -> float:
        """Checks 3-4 on one battery: the envelope (``twin.components.bess.allowed_*_kw``)
        in its two parts, each with its own reason: 3, the power ratings; 4, the SOC
        window over the step. ``p`` [kW] finite; returns the power kept [kW]."""
        if p > b.p_discharge_max_kw + _EPS_KW:
            self._bend(k, "bess_discharge_limit", dev, p, b.p_discharge_max_kw)
            p = b.p_discharge_max_kw
        elif p < -b.p_charge_max_kw - _EPS_KW:
            self._bend(k, "bess_charge_limit", dev, p, -b.p_charge_max_kw)
            p = -b.p_charge_max_kw
        # (exact: an excess below _EPS_KW is cut silently, not let through; for a small
        # battery 1e-9 kW over a step is a large part of its window)
        if p > 0.0:
            p_max = window_discharge_kw(b, dt_h)
            if p > p_max:  # crumbs below _EPS_KW are cut without a clamp record
                if p > p_max + _EPS_KW:
                    self._bend(k, "bess_soc_min", dev, p, p_max)
                p = p_max
        elif p < 0.0:
            p_max = window_charge_kw(b, dt_h)
            if -p > p_max:
                if -p > p_max + _EPS_KW:
                    self._bend(k, "bess_soc_max", dev, p, -p_max)
                p = -p_max
        return p

    def _clamp_units(self, k: int, sp: Setpoints, units: tuple[BessState, ...],
                     dt_h: float) -> float:
        """Checks 1-4 for several batteries; returns the site's battery power [kW].

        A per-battery request (``sp.p_bess_split_kw``) is clamped battery by battery
        (devices ``bess[i]``). A total is clamped against the sum of the valid batteries'
        ratings, then of their allowed powers (the same reasons as for one battery); the
        split follows the site checks (``_split``). An invalid battery gets 0 kW.
        """
        self._given = None
        req = sp.p_bess_split_kw
        if req is not None and len(req) == len(units):
            parts = []
            for i, (b, q) in enumerate(zip(units, req, strict=True)):
                dev = f"bess[{i}]"
                q = float(q)
                if not b.valid:
                    if q != 0.0:
                        self._bend(k, "bess_telemetry_invalid", dev, q, 0.0)
                    q = 0.0
                elif not math.isfinite(q):
                    self._bend(k, "bess_not_finite", dev, q, 0.0)
                    q = 0.0
                else:
                    q = self._envelope(k, dev, b, q, dt_h)
                parts.append(q)
            self._given = parts
            return math.fsum(parts)
        p = float(sp.p_bess_kw)
        ok = [b for b in units if b.valid]
        if not ok or not math.isfinite(p):
            if p != 0.0:
                reason = "bess_telemetry_invalid" if not ok else "bess_not_finite"
                self._bend(k, reason, "bess", p, 0.0)
            return 0.0
        if p > 0.0:
            rating = math.fsum(b.p_discharge_max_kw for b in ok)
            if p > rating + _EPS_KW:
                self._bend(k, "bess_discharge_limit", "bess", p, rating)
                p = rating
            p_max = math.fsum(allowed_discharge_kw(b, dt_h) for b in ok)
            if p > p_max:
                if p > p_max + _EPS_KW:
                    self._bend(k, "bess_soc_min", "bess", p, p_max)
                p = p_max
        elif p < 0.0:
            rating = math.fsum(b.p_charge_max_kw for b in ok)
            if -p > rating + _EPS_KW:
                self._bend(k, "bess_charge_limit", "bess", p, -rating)
                p = -rating
            p_max = math.fsum(allowed_charge_kw(b, dt_h) for b in ok)
            if -p > p_max:
                if -p > p_max + _EPS_KW:
                    self._bend(k, "bess_soc_max", "bess", p, -p_max)
                p = -p_max
        return p

    def _split(self, p: float, units: tuple[BessState, ...], dt_h: float) -> None:
        """``split_kw``: the per-battery powers [kW] of the site battery power ``p`` kept by
        every check. The controller's own split while the site checks left its sum alone
        (else its discharging, or charging, parts scaled down together); without one the
        default split (``split_power_kw``)."""
        parts = self._given
        if parts is None:
            self.split_kw = split_power_kw(p, units, dt_h)
            return
        total = math.fsum(parts)
        if p != total:
            pos = math.fsum(q for q in parts if q > 0.0)
            neg = total - pos
            if p < total and pos > 0.0:  # less discharge (no reverse flow)
                f = max(0.0, (p - neg) / pos)
                parts = [q * f if q > 0.0 else q for q in parts]
            elif p > total and neg < 0.0:  # less charge (import limit)
                f = max(0.0, (p - pos) / neg)
                parts = [q * f if q < 0.0 else q for q in parts]
        self.split_kw = tuple(parts)

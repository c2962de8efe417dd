"""Battery energy storage: an energy-reservoir model.

Physics as pure functions (``bess_step``), a thin class holding parameters and state.
Capacity fade is throughput based, as CityLearn's ``Battery.degrade``:
``Δcapacity = capacity_loss_coefficient × capacity_0 × |Δe| / (2 × capacity_now)``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from twin.config import BessConfig
from twin.types import BessState


@dataclass(frozen=True, slots=True)
class BessParams:
    """Battery parameters.

    Attributes
    ----------
    e_capacity_kwh : nominal capacity [kWh].
    p_charge_max_kw, p_discharge_max_kw : power limits [kW], >= 0.
    eta_charge, eta_discharge : one-way efficiencies [0-1] (product = round trip).
    soc_min_frac, soc_max_frac : SOC window [0-1].
    soc_initial_frac : SOC at the start [0-1].
    capacity_loss_coefficient : fade per unit of normalised throughput [-].
    self_discharge_frac_per_h : share of the stored energy lost per hour [1/h].
    curve_x, curve_eta : optional one-way efficiency as a function of |p| / p_nominal.
    """

    e_capacity_kwh: float
    p_charge_max_kw: float
    p_discharge_max_kw: float
    eta_charge: float
    eta_discharge: float
    soc_min_frac: float
    soc_max_frac: float
    soc_initial_frac: float
    capacity_loss_coefficient: float = 0.0
    self_discharge_frac_per_h: float = 0.0
    curve_x: tuple[float, ...] = ()
    curve_eta: tuple[float, ...] = ()

    @classmethod
    def from_config(cls, cfg: BessConfig) -> BessParams:
        """Build from the validated site config (round trip split evenly)."""
        eta = math.sqrt(cfg.eta_roundtrip)
        curve = cfg.efficiency_curve or []
        return cls(
            e_capacity_kwh=cfg.e_capacity_kwh,
            p_charge_max_kw=cfg.p_charge_max_kw,
            p_discharge_max_kw=cfg.p_discharge_max_kw,
            eta_charge=eta,
            eta_discharge=eta,
            soc_min_frac=cfg.soc_min_frac,
            soc_max_frac=cfg.soc_max_frac,
            soc_initial_frac=cfg.soc_initial_frac,
            capacity_loss_coefficient=cfg.capacity_loss_coefficient,
            self_discharge_frac_per_h=cfg.self_discharge_frac_per_h,
            curve_x=tuple(p[0] for p in curve),
            curve_eta=tuple(p[1] for p in curve),
        )


def curve_efficiency(x: float, xs: tuple[float, ...], etas: tuple[float, ...]) -> float:
    """Linear interpolation of a one-way efficiency curve at ``x = |p| / p_nominal`` [-]."""
    if x <= xs[0]:
        return etas[0]
    if x >= xs[-1]:
        return etas[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1 = xs[i - 1], xs[i]
    return etas[i - 1] + (etas[i] - etas[i - 1]) * (x - x0) / (x1 - x0)


def bess_step(
    e_kwh: float, cap_kwh: float, p_kw: float, dt_h: float, eta_charge: float, eta_discharge: float
) -> float:
    """Stored energy after applying ``p_kw`` for ``dt_h`` hours [kWh].

    Parameters
    ----------
    e_kwh : stored energy before the step [kWh].
    cap_kwh : present capacity [kWh] (not enforced here; the safety layer keeps the window).
    p_kw : AC power [kW], + discharge / − charge.
    dt_h : step [h].
    eta_charge, eta_discharge : one-way efficiencies [0-1].
    """
    if p_kw >= 0.0:
        return e_kwh - p_kw * dt_h / eta_discharge
    return e_kwh - p_kw * dt_h * eta_charge


class Battery:
    """The battery device model: holds parameters and state, delegates to ``bess_step``."""

    __slots__ = ("_state", "cap0_kwh", "cap_kwh", "e_kwh", "p_kw", "params", "throughput_kwh")

    def __init__(self, params: BessParams) -> None:
        self.params = params
        self.cap0_kwh = params.e_capacity_kwh
        self.cap_kwh = params.e_capacity_kwh
        self.e_kwh = params.soc_initial_frac * params.e_capacity_kwh
        self.p_kw = 0.0
        self.throughput_kwh = 0.0
        self._state: BessState | None = None

    @property
    def soc_frac(self) -> float:
        """State of charge of the present capacity [0-1]."""
        return self.e_kwh / self.cap_kwh if self.cap_kwh > 0 else 0.0

    def efficiencies(self, p_kw: float) -> tuple[float, float]:
        """One-way (charge, discharge) efficiencies at power ``p_kw`` [-]."""
        pr = self.params
        if not pr.curve_x:
            return pr.eta_charge, pr.eta_discharge
        p_nom = max(pr.p_charge_max_kw, pr.p_discharge_max_kw)
        eta = curve_efficiency(abs(p_kw) / p_nom if p_nom > 0 else 0.0, pr.curve_x, pr.curve_eta)
        return eta, eta

    def state(self) -> BessState:
        """Telemetry snapshot (the same frozen object while nothing changed)."""
        st = self._state
        if st is not None and st.e_kwh == self.e_kwh and st.p_kw == self.p_kw \
                and st.e_capacity_kwh == self.cap_kwh:
            return st
        pr = self.params
        eta_c, eta_d = pr.eta_charge, pr.eta_discharge
        st = BessState(
            soc_frac=self.soc_frac,
            e_kwh=self.e_kwh,
            e_capacity_kwh=self.cap_kwh,
            p_charge_max_kw=pr.p_charge_max_kw,
            p_discharge_max_kw=pr.p_discharge_max_kw,
            soc_min_frac=pr.soc_min_frac,
            soc_max_frac=pr.soc_max_frac,
            eta_charge=eta_c,
            eta_discharge=eta_d,
            p_kw=self.p_kw,
        )
        self._state = st
        return st

    def apply(self, p_kw: float, dt_h: float) -> float:
        """Apply AC power ``p_kw`` [kW] for ``dt_h`` [h]; return the stored-energy change [kWh].

        The power is applied as asked: keeping it inside the SOC window and the power
        limits is the safety layer's job, not the device's (a real inverter trips).
        """
        pr = self.params
        e0 = self.e_kwh
        if p_kw != 0.0:
            eta_c, eta_d = self.efficiencies(p_kw) if pr.curve_x else (pr.eta_charge, pr.eta_discharge)
            e1 = bess_step(e0, self.cap_kwh, p_kw, dt_h, eta_c, eta_d)
        else:
            e1 = e0
        if pr.self_discharge_frac_per_h > 0.0:
            e1 *= 1.0 - pr.self_discharge_frac_per_h * dt_h
        de = e1 - e0
        if de != 0.0 and pr.capacity_loss_coefficient > 0.0 and self.cap_kwh > 0:
            self.cap_kwh -= pr.capacity_loss_coefficient * self.cap0_kwh * abs(de) / (2.0 * self.cap_kwh)
        if e1 > self.cap_kwh:  # cannot hold more than the (faded) capacity
            e1 = self.cap_kwh
        self.throughput_kwh += abs(de)
        self.e_kwh = e1
        self.p_kw = p_kw
        return de

"""Battery energy storage: an energy-reservoir model with cycle and calendar ageing.

Physics as pure functions (``bess_step``, ``ageing_kwh``), a thin class holding parameters
and state.

Energy per step (``Battery.apply``), AC power ``p`` [kW] (+ discharge), step ``dt`` [h]::

    e' = e + η_c·charge − discharge/η_d            (charge, discharge: AC energies [kWh])
    e'' = max(e' × (1 − self_discharge_frac_per_h·dt), min(e', soc_min·cap))
                                                    (self-discharge stops at the SOC floor)
    cap' = cap − fade_cycle − fade_calendar (− legacy CityLearn fade)
    e_next = min(e'', cap')                         (the ageing term of the stored energy)

so the stored-energy change is η_c·charge − discharge/η_d minus self-discharge, minus
what a battery held above its faded capacity loses (only when it sits at the top of a
window that reaches 100 % SOC). ``twin.engine`` tests check exactly this per step.

Ageing
------
``ageing_model: blast`` (the default): NREL BLAST-Lite's model of the chemistry (LFP:
250 Ah prismatic cell; NMC: Kokam 75 Ah; LTO: NMC/LTO 10 Ah), ported in
``twin.components.ageing`` and fed once a day (``Battery.age_chunk``, called by the
plant at each day's end) with the day's SOC, cell temperature (container model) and
time (LFP: calendar fade ~√t, cycle fade ~EFC^0.83, resistance growth). Nothing of it
runs in the per-step ``apply``.

``ageing_model: linear`` (the older model, kept as an option): two additive mechanisms,
linear in their drivers (a first-years approximation: measured calendar fade slows down
roughly as √t, so extrapolating a year's fade over a decade overstates it):

* **Cycle ageing** (throughput): every equivalent full cycle (EFC = DC throughput
  ``|Δe|`` of charge plus discharge over ``2 × nominal capacity``) costs
  ``(1 − eol_capacity_frac) / cycle_life_efc`` of the nominal capacity.
* **Calendar ageing**: a fade rate [1/yr of nominal capacity]
  ``r = calendar_fade_frac_per_year × (1 + calendar_soc_coeff × (SOC − 0.5)) ×
  calendar_q10 ** ((t_cell_c − 25) / 10)``, applied per hour at the SOC at the step start
  (higher SOC and temperature age faster; the Q10 form stands in for an Arrhenius law:
  Q10 = 2 is an activation energy of about 50 kJ/mol around 25 °C).

Presets (``twin.config.AGEING_PRESETS``; defaults: LFP):

===== ============== =============================== ============== ======
chem  cycle life     calendar at 25 °C, 50 % SOC     SOC slope      Q10
===== ============== =============================== ============== ======
lfp   6,000 EFC→80 % 0.8 %/yr                        1.0            2.0
nmc   3,500 EFC→80 % 1.5 %/yr                        2.0            2.0
lto   15,000 EFC→80 % 0.4 %/yr                       0.5            1.8
===== ============== =============================== ============== ======

Sources (round figures inside the ranges they report, not fits; written without network
access, so check the exact values before relying on them):

* LFP cycle life: stationary LFP cell and rack datasheets commonly state 6,000 cycles or
  more to 80 % at 25 °C and ≤ 0.5 C; Naumann, Spingler, Jossen, "Analysis and modeling of
  cycle aging of a commercial LiFePO4/graphite cell", J. Power Sources 451 (2020) 227666.
* LFP calendar ageing rising with SOC and temperature, of the order of 1 %/yr at 25 °C
  and mid SOC: Naumann, Schimpe, Keil, Hesse, Jossen, "Analysis and modeling of calendar
  aging of a commercial LiFePO4/graphite cell", J. Energy Storage 17 (2018) 153–169.
* NMC: Schmalstieg, Käbitz, Ecker, Sauer, "A holistic aging model for Li(NiMnCo)O2 based
  18650 lithium-ion batteries", J. Power Sources 257 (2014) 325–334 (stronger SOC and
  temperature dependence, shorter cycle life).
* LTO: manufacturer figures of 15,000–20,000 cycles (e.g. Toshiba SCiB).

The older CityLearn-style throughput fade (``capacity_loss_coefficient``, as
``Battery.degrade``: ``Δcap = coeff × cap0 × |Δe| / (2 × cap)``) can be added on top.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from twin.components.ageing import BLAST_MODELS, BlastAgeing
from twin.config import BessConfig
from twin.types import BessState, FloatArray

HOURS_PER_YEAR = 8760.0


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
    capacity_loss_coefficient : CityLearn fade per unit of normalised throughput [-].
    self_discharge_frac_per_h : share of the stored energy lost per hour [1/h].
    curve_x, curve_eta : optional one-way efficiency as a function of |p| / p_nominal.
    cycle_fade_per_kwh : capacity lost per kWh of DC throughput [kWh/kWh]
        (``(1 − eol) / (2 × cycle_life_efc)``); this and the calendar terms are the linear
        model's, applied per step with ``ageing_model: linear``; with ``blast`` the plant
        does not use them (the LP planners keep them as their estimate of the fade).
    calendar_fade_per_h : calendar fade at 50 % SOC [kWh of capacity per hour].
    calendar_soc_coeff : relative slope of the calendar rate with SOC [-].
    blast : BLAST-Lite ageing, updated per chunk (``Battery.age_chunk``) [-].
    chemistry : cell chemistry (``lfp``, ``nmc``, ``lto``): the BLAST-Lite model.
    hvac_setpoint_c, hvac_coupling_frac, container_tau_h : container model of the cell
        temperature (``twin.components.ageing.cell_temperature_c``) [°C, -, h].
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
    cycle_fade_per_kwh: float = 0.0
    calendar_fade_per_h: float = 0.0
    calendar_soc_coeff: float = 0.0
    blast: bool = False
    chemistry: str = "lfp"
    hvac_setpoint_c: float = 25.0
    hvac_coupling_frac: float = 0.0
    container_tau_h: float = 0.0

    @classmethod
    def from_config(cls, cfg: BessConfig, in_use: bool = True) -> BessParams:
        """Build from the validated site config (round trip split evenly).

        ``in_use=False``: the run has no battery (the ``no_bess`` baseline): no ageing at all.
        """
        eta = math.sqrt(cfg.eta_roundtrip)
        curve = cfg.efficiency_curve or []
        on = cfg.ageing and in_use
        blast = on and cfg.ageing_model == "blast"
        # the linear coefficients: the plant's ageing with ``ageing_model: linear``; with
        # ``blast`` they stay the planners' (optimal / mpc LP) estimate of the fade
        lin = on
        cycle = (1.0 - cfg.eol_capacity_frac) / (2.0 * cfg.cycle_life_efc) if lin else 0.0
        cal = (cfg.calendar_fade_frac_per_year * cfg.e_capacity_kwh / HOURS_PER_YEAR
               * cfg.calendar_q10 ** ((cfg.t_cell_c - 25.0) / 10.0)) if lin else 0.0
        return cls(
            e_capacity_kwh=cfg.e_capacity_kwh,
            p_charge_max_kw=cfg.p_charge_max_kw,
            p_discharge_max_kw=cfg.p_discharge_max_kw,
            eta_charge=eta,
            eta_discharge=eta,
            soc_min_frac=cfg.soc_min_frac,
            soc_max_frac=cfg.soc_max_frac,
            soc_initial_frac=cfg.soc_initial_frac,
            capacity_loss_coefficient=cfg.capacity_loss_coefficient if in_use else 0.0,
            self_discharge_frac_per_h=cfg.self_discharge_frac_per_h,
            curve_x=tuple(p[0] for p in curve),
            curve_eta=tuple(p[1] for p in curve),
            cycle_fade_per_kwh=cycle,
            calendar_fade_per_h=cal,
            calendar_soc_coeff=cfg.calendar_soc_coeff if lin else 0.0,
            blast=blast,
            chemistry=cfg.chemistry,
            hvac_setpoint_c=cfg.hvac_setpoint_c,
            hvac_coupling_frac=cfg.hvac_coupling_frac,
            container_tau_h=cfg.container_tau_h,
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


def window_discharge_kw(b: BessState, dt_h: float) -> float:
    """Discharge power [kW] that the SOC window allows over a step of ``dt_h`` [h].

    The AC power that takes the stored energy ``b.e_kwh`` down to the floor
    ``soc_min · capacity`` in one step, through the discharge efficiency; >= 0.
    """
    return max(0.0, (b.e_kwh - b.soc_min_frac * b.e_capacity_kwh) * b.eta_discharge / dt_h)


def window_charge_kw(b: BessState, dt_h: float) -> float:
    """Charge power [kW] (>= 0) that the SOC window allows over a step of ``dt_h`` [h]:
    the AC power that fills the battery to ``soc_max · capacity`` in one step."""
    return max(0.0, (b.soc_max_frac * b.e_capacity_kwh - b.e_kwh) / b.eta_charge / dt_h)


def allowed_discharge_kw(b: BessState, dt_h: float) -> float:
    """The battery's allowed discharge power now [kW] (OpenEMS's *AllowedDischargePower*).

    The one battery envelope: the SOC window over the step (``window_discharge_kw``)
    and the discharge rating, both from the battery state ``b``; ``dt_h`` the tick [h].
    The safety layer applies its two parts in turn (rating, then window, each with its
    own clamp reason); the LP playback and the plant use the whole.
    """
    return min(window_discharge_kw(b, dt_h), b.p_discharge_max_kw)


def allowed_charge_kw(b: BessState, dt_h: float) -> float:
    """The battery's allowed charge power now [kW], >= 0 (OpenEMS's *AllowedChargePower*):
    the SOC window over a step of ``dt_h`` [h] and the charge rating (see
    ``allowed_discharge_kw``)."""
    return min(window_charge_kw(b, dt_h), b.p_charge_max_kw)


def split_power_kw(p_kw: float, states: tuple[BessState, ...], dt_h: float) -> tuple[float, ...]:
    """The default split of a site battery power ``p_kw`` [kW] (+ discharge) over several
    batteries: proportional to each one's allowed power in that direction
    (``allowed_discharge_kw`` / ``allowed_charge_kw`` over a step of ``dt_h`` [h]).

    Each part stays inside its battery's envelope when ``|p_kw|`` does not exceed the sum
    of the allowed powers (the safety layer sees to that); beyond it every battery gets
    its allowed power. With nothing allowed in that direction the parts are 0.
    """
    if p_kw == 0.0:
        return (0.0,) * len(states)
    if p_kw > 0.0:
        allowed = [allowed_discharge_kw(b, dt_h) if b.valid else 0.0 for b in states]
    else:
        allowed = [allowed_charge_kw(b, dt_h) if b.valid else 0.0 for b in states]
    total = math.fsum(allowed)
    if total <= 0.0:
        return (0.0,) * len(states)
    mag = abs(p_kw)
    sign = 1.0 if p_kw > 0.0 else -1.0
    return tuple(sign * min(a, mag * a / total) for a in allowed)


def aggregate_state(states: tuple[BessState, ...]) -> BessState:
    """One battery state standing for several (what a controller sees as ``obs.bess``).

    Energies, capacities and power ratings are sums [kWh, kW]; the SOC window is the
    capacity-weighted one (so the window energy is the sum of the parts'); the one-way
    efficiencies are capacity-weighted means; ``valid`` when every part is valid.
    """
    cap = math.fsum(b.e_capacity_kwh for b in states)
    e = math.fsum(b.e_kwh for b in states)

    def mean(vals: list[float]) -> float:
        if cap <= 0.0:
            return vals[0]
        return math.fsum(v * b.e_capacity_kwh for v, b in zip(vals, states, strict=True)) / cap

    return BessState(
        soc_frac=e / cap if cap > 0.0 else 0.0, e_kwh=e, e_capacity_kwh=cap,
        p_charge_max_kw=math.fsum(b.p_charge_max_kw for b in states),
        p_discharge_max_kw=math.fsum(b.p_discharge_max_kw for b in states),
        soc_min_frac=mean([b.soc_min_frac for b in states]),
        soc_max_frac=mean([b.soc_max_frac for b in states]),
        eta_charge=mean([b.eta_charge for b in states]),
        eta_discharge=mean([b.eta_discharge for b in states]),
        p_kw=math.fsum(b.p_kw for b in states),
        valid=all(b.valid for b in states))


def no_reverse_flow_kw(net_load_kw: float, export_limit_kw: float) -> float:
    """Most the battery may discharge into the site bus [kW]: the site's net load after PV
    (``net_load_kw``, negative: PV surplus) plus what the grid takes (``export_limit_kw``;
    0 for an isolated grid). The inverter cannot push power back past that."""
    return max(net_load_kw, 0.0) + export_limit_kw


def ageing_kwh(throughput_kwh: float, soc_frac: float, dt_h: float,
               params: BessParams) -> tuple[float, float]:
    """Capacity lost in one step [kWh]: (cycle ageing, calendar ageing).

    Parameters
    ----------
    throughput_kwh : DC energy in or out of the cells in the step [kWh], >= 0.
    soc_frac : state of charge at the step start [0-1].
    dt_h : step [h].
    params : battery parameters (``cycle_fade_per_kwh``, ``calendar_fade_per_h``,
        ``calendar_soc_coeff``).
    """
    cyc = params.cycle_fade_per_kwh * throughput_kwh
    rate = 1.0 + params.calendar_soc_coeff * (soc_frac - 0.5)
    cal = params.calendar_fade_per_h * dt_h * (rate if rate > 0.0 else 0.0)
    return cyc, cal


class Battery:
    """The battery device model: holds parameters and state, delegates to ``bess_step``."""

    __slots__ = ("_age", "_state", "ageing", "cap0_kwh", "cap_kwh", "e_kwh", "fade_calendar_kwh",
                 "fade_cycle_kwh", "fade_legacy_kwh", "p_kw", "params", "throughput_kwh")

    def __init__(self, params: BessParams) -> None:
        self.params = params
        self.cap0_kwh = params.e_capacity_kwh
        self.cap_kwh = params.e_capacity_kwh
        self.e_kwh = params.soc_initial_frac * params.e_capacity_kwh
        self.p_kw = 0.0
        self.throughput_kwh = 0.0
        self.fade_cycle_kwh = 0.0  # capacity lost to cycling so far [kWh]
        self.fade_calendar_kwh = 0.0  # capacity lost to calendar ageing so far [kWh]
        self.fade_legacy_kwh = 0.0  # CityLearn-style fade so far [kWh]
        self._age = not params.blast and (params.cycle_fade_per_kwh > 0.0
                                          or params.calendar_fade_per_h > 0.0)
        self._state: BessState | None = None
        #: BLAST-Lite ageing state (``age_chunk``), None with the linear model or none
        self.ageing: BlastAgeing | None = (BLAST_MODELS[params.chemistry]()
                                           if params.blast and params.e_capacity_kwh > 0.0 else None)

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
        dc = abs(e1 - e0)  # DC throughput of the cells [kWh]
        if pr.self_discharge_frac_per_h > 0.0:
            # self-discharge stops at the SOC floor (the BMS disconnects the string there);
            # it never takes the battery below the floor the safety layer keeps
            floor = pr.soc_min_frac * self.cap_kwh
            e_sd = e1 * (1.0 - pr.self_discharge_frac_per_h * dt_h)
            e1 = max(e_sd, min(e1, floor))
        de = e1 - e0
        cap = self.cap_kwh
        if self._age:
            cyc, cal = ageing_kwh(dc, e0 / cap if cap > 0.0 else 0.0, dt_h, pr)
            self.fade_cycle_kwh += cyc
            self.fade_calendar_kwh += cal
            cap -= cyc + cal
        if de != 0.0 and pr.capacity_loss_coefficient > 0.0 and cap > 0.0:
            legacy = pr.capacity_loss_coefficient * self.cap0_kwh * abs(de) / (2.0 * cap)
            self.fade_legacy_kwh += legacy
            cap -= legacy
        if cap < 0.0:
            cap = 0.0
        self.cap_kwh = cap
        if e1 > cap:  # cannot hold more than the (faded) capacity
            e1 = cap
        self.throughput_kwh += dc
        self.e_kwh = e1
        self.p_kw = p_kw
        return e1 - e0

    def age_chunk(self, t_s: FloatArray, soc: FloatArray, t_cell_c: FloatArray) -> None:
        """BLAST-Lite ageing over one chunk (a day) of the run; updates the capacity.

        Parameters
        ----------
        t_s : times of the chunk's points [s] (the chunk start, then each step end).
        soc : SOC of the present capacity at those points [0-1].
        t_cell_c : cell temperature at those points [°C].

        The capacity becomes ``cap0 × q − legacy fade``, but never rises: a modelled gain
        (BLAST-Lite's LTO model gains capacity with time at rest) is not credited — the BMS
        keeps the rated capacity. The stored energy is cut to it (the same ageing term as
        in ``apply``).
        """
        a = self.ageing
        if a is None or len(t_s) < 2:
            return
        a.update(t_s, soc, t_cell_c)
        cap0 = self.cap0_kwh
        self.fade_cycle_kwh = cap0 * a.fade_cycle
        self.fade_calendar_kwh = cap0 * a.fade_calendar
        cap = min(max(cap0 * a.q - self.fade_legacy_kwh, 0.0), self.cap_kwh)
        self.cap_kwh = cap
        if self.e_kwh > cap:
            self.e_kwh = cap

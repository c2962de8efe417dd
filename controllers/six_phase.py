"""``six_phase``: the site's own rule set (docs/spec.md §4.1; seed 002, parameters of seed 001 v5.5).

Phases and their order of precedence
------------------------------------
Time windows are local time, ``[start, end)``.

Defaults for the Iquitos site: chargers from ``ev_open_h`` 09:00 to ``ev_close_h`` 22:00
(the station's hours), battery closure at ``closure_h`` = the end of the peak tariff
(23:00, the end of the tariff's first weekday peak window), drain window from
``drain_start_h`` = the start of that window (18:00).

====== ============== ================================================= ==============================
phase  window         trigger                                           action
====== ============== ================================================= ==============================
6      23:00-06:00    always (daily closure)                            BESS idle, chargers off
1      06:00-09:00    always                                            chargers off; BESS absorbs
                                                                        all PV it can; rest → mall
4      10:00-23:00    PV < mall and mall > 1,900 kW and SOC ≥ 50 %      discharge: EV deficit + mall
                                                                        grid draw above 1,900 kW
5      09:00-23:00    EV deficit (EV > PV) and SOC > SOC min            discharge: EV deficit, then
                                                                        the mall's grid draw
7      18:00-23:00    drain on, SOC > closure SOC and the drain power   discharge the drain power:
                      exceeds what phases 4/5 ask                       (SOC − closure SOC) × E ×
                                                                        η_d / hours to closure
3      09:00-23:00    SOC ≥ 99 %                                        hold (0 kW); surplus → mall
2      09:00-23:00    otherwise (SOC < 99 %)                            EV at full power from PV;
                                                                        BESS charges from PV surplus
====== ============== ================================================= ==============================

Inside 09:00-23:00 the precedence is **4 > 5 > 3 > 2**, and inside the drain window phase
7 replaces any of them whose discharge is below the drain power: peak shaving first (it
also covers the EV deficit, since BESS → EV comes first in the flow allocation), then the
EV deficit, then holding a full battery, then charging from surplus. Chargers run at full
power from 09:00 to 22:00; between 22:00 and the closure they are off (the EV demand
counts as zero) while the battery keeps serving the mall through the peak tariff.

The drain follows the seeds' intent ("SOC = SOC min at the closure"): the energy above
``closure_soc_frac`` (default: the battery's ``soc_min_frac``) is spread evenly over the
hours left to the closure, so the battery reaches it at the end of the peak rather than
sitting on unused energy overnight. ``drain_to_closure: false`` turns it off;
``closure_h: 22`` restores the older 22:00 closure. The safety layer keeps every setpoint
inside the SOC window, the power limits and the no-reverse-flow envelope, so the rules
need not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers.base import register
from twin.config import SiteConfig
from twin.types import Setpoints, SiteObservation

PHASES = {
    1: "morning_pv_to_bess",
    2: "ev_priority_charge_surplus",
    3: "hold_full",
    4: "peak_shaving",
    5: "ev_deficit_discharge",
    6: "night_idle",
    7: "drain_to_closure",
}


@dataclass(frozen=True, slots=True)
class SixPhaseParams:
    """Thresholds of the rule set (hours local [h], powers [kW], SOC [0-1])."""

    morning_start_h: float = 6.0
    ev_open_h: float = 9.0
    ev_close_h: float = 22.0
    closure_h: float = 23.0
    drain_start_h: float = 18.0
    drain_to_closure: bool = True
    closure_soc_frac: float = 0.20
    peak_start_h: float = 10.0
    mall_peak_kw: float = 1900.0
    peak_soc_min_frac: float = 0.50
    hold_soc_frac: float = 0.99
    soc_min_frac: float = 0.20


def six_phase_rule(hour: float, p_pv_kw: float, p_mall_kw: float, p_ev_kw: float,
                   soc_frac: float, prm: SixPhaseParams, e_capacity_kwh: float = 0.0,
                   eta_discharge: float = 1.0) -> tuple[int, float, bool]:
    """Apply the rule set to one snapshot.

    Parameters
    ----------
    hour : local hour of day [h].
    p_pv_kw : PV power available [kW].
    p_mall_kw : mall demand [kW].
    p_ev_kw : EV demand at full charging power [kW].
    soc_frac : battery state of charge [0-1].
    prm : thresholds.
    e_capacity_kwh : present battery capacity [kWh] (0: no drain to the closure).
    eta_discharge : one-way discharge efficiency [0-1].

    Returns
    -------
    phase : acting phase (1-6).
    p_bess_kw : battery setpoint [kW], + discharge / − charge (before the safety layer).
    chargers_on : whether the sockets may charge at full power.
    """
    if hour >= prm.closure_h or hour < prm.morning_start_h:
        return 6, 0.0, False
    if hour < prm.ev_open_h:
        return 1, -p_pv_kw, False
    on = hour < prm.ev_close_h
    phase, p = _day_rule(hour, p_pv_kw, p_mall_kw, p_ev_kw if on else 0.0, soc_frac, prm)
    if (prm.drain_to_closure and hour >= prm.drain_start_h and e_capacity_kwh > 0.0
            and soc_frac > prm.closure_soc_frac):
        p_drain = ((soc_frac - prm.closure_soc_frac) * e_capacity_kwh * eta_discharge
                   / (prm.closure_h - hour))
        if p_drain > p:
            return 7, p_drain, on
    return phase, p, on


def _day_rule(hour: float, p_pv_kw: float, p_mall_kw: float, p_ev_kw: float,
              soc_frac: float, prm: SixPhaseParams) -> tuple[int, float]:
    """Phases 4, 5, 3, 2 in their precedence (inside the opening window)."""
    ev_deficit = p_ev_kw - p_pv_kw
    pv_after_ev = -ev_deficit if ev_deficit < 0.0 else 0.0
    if (hour >= prm.peak_start_h and p_pv_kw < p_mall_kw and p_mall_kw > prm.mall_peak_kw
            and soc_frac >= prm.peak_soc_min_frac):
        mall_grid = p_mall_kw - min(pv_after_ev, p_mall_kw)
        return 4, max(ev_deficit, 0.0) + max(mall_grid - prm.mall_peak_kw, 0.0)
    if ev_deficit > 0.0 and soc_frac > prm.soc_min_frac + 1e-9:
        return 5, ev_deficit + p_mall_kw
    if soc_frac >= prm.hold_soc_frac:
        return 3, 0.0
    return 2, -pv_after_ev


@register("six_phase", "the site's 6-phase rules: PV→EV first, BESS from surplus, peak shaving "
          "above 1,900 kW, EV-deficit discharge, night idle")
class SixPhaseController:
    """The site's 6-phase rule set as a controller."""

    name = "six_phase"
    phases = PHASES

    def __init__(self, site: SiteConfig, **params: float) -> None:
        base: dict[str, Any] = {
            "ev_open_h": site.ev.open_hour, "ev_close_h": site.ev.close_hour,
            "soc_min_frac": site.bess.soc_min_frac,
            "closure_h": float(max(site.tariff.peak_window_h[1], site.ev.close_hour)),
            "drain_start_h": float(site.tariff.peak_window_h[0]),
            "closure_soc_frac": site.bess.soc_min_frac}
        base.update(params)
        self.params = SixPhaseParams(**base)
        self._off: np.ndarray | None = None

    def reset(self, *, seed: int | None = None) -> None:
        """No state to forget."""

    def decide(self, obs: SiteObservation) -> Setpoints:
        """Setpoints from the rule set."""
        s = obs.sockets
        b = obs.bess
        phase, p_bess, on = six_phase_rule(obs.hour, obs.p_pv_kw, obs.p_mall_kw, obs.p_ev_kw,
                                           b.soc_frac, self.params, b.e_capacity_kwh,
                                           b.eta_discharge)
        # "all it can": the rules respect the battery's power limits themselves; the SOC
        # window is left to the safety layer.
        if p_bess > b.p_discharge_max_kw:
            p_bess = b.p_discharge_max_kw
        elif p_bess < -b.p_charge_max_kw:
            p_bess = -b.p_charge_max_kw
        if on:
            sockets = s.p_rating_kw
        else:
            if self._off is None or self._off.shape != s.p_rating_kw.shape:
                self._off = np.zeros_like(s.p_rating_kw)
                self._off.flags.writeable = False
            sockets = self._off
        return Setpoints(p_bess, sockets, phase)

"""``arbitrage``: tariff arbitrage (docs/spec.md §4.2, seed 003).

* HFP (off-peak), 06:00-23:00 outside the peak: PV surplus after the EVs charges the
  battery (phase 1); from 06:00 to 12:00 the grid tops it up at full power while
  SOC < 80 % (phase 2).
* HP (peak, 18:00-22:59 by default, from the tariff): discharge to the EV deficit, then
  to the mall (phase 3).
* 23:00-06:00: idle (phase 0).

Chargers always run at full power (vehicles only come in opening hours).
"""

from __future__ import annotations

from dataclasses import dataclass

from controllers.base import register
from twin.config import SiteConfig
from twin.types import Setpoints, SiteObservation

PHASES = {0: "idle", 1: "hfp_pv_charge", 2: "hfp_grid_topup", 3: "hp_discharge"}


@dataclass(frozen=True, slots=True)
class ArbitrageParams:
    """Hours local [h], SOC [0-1]."""

    idle_start_h: float = 23.0
    idle_end_h: float = 6.0
    topup_start_h: float = 6.0
    topup_end_h: float = 12.0
    topup_soc_frac: float = 0.80


def arbitrage_rule(hour: float, is_peak: bool, p_pv_kw: float, p_mall_kw: float, p_ev_kw: float,
                   soc_frac: float, p_charge_max_kw: float, prm: ArbitrageParams) -> tuple[int, float]:
    """Phase and battery setpoint [kW] (+ discharge / − charge) for one snapshot."""
    if is_peak:
        ev_deficit = p_ev_kw - p_pv_kw
        pv_after_ev = max(-ev_deficit, 0.0)
        return 3, max(ev_deficit, 0.0) + max(p_mall_kw - pv_after_ev, 0.0)
    if hour >= prm.idle_start_h or hour < prm.idle_end_h:
        return 0, 0.0
    if prm.topup_start_h <= hour < prm.topup_end_h and soc_frac < prm.topup_soc_frac:
        return 2, -p_charge_max_kw
    return 1, -max(p_pv_kw - p_ev_kw, 0.0)


@register("arbitrage", "tariff arbitrage: charge from PV surplus (and grid 06-12 below 80 % SOC) "
          "off-peak, discharge to EV then mall in the peak")
class ArbitrageController:
    """Time-of-use arbitrage."""

    name = "arbitrage"
    phases = PHASES

    def __init__(self, site: SiteConfig, **params: float) -> None:
        self.params = ArbitrageParams(**params)

    def reset(self, *, seed: int | None = None) -> None:
        """No state to forget."""

    def decide(self, obs: SiteObservation) -> Setpoints:
        """Setpoints from the arbitrage rules."""
        s = obs.sockets
        phase, p = arbitrage_rule(obs.hour, obs.tariff.is_peak, obs.p_pv_kw, obs.p_mall_kw, obs.p_ev_kw,
                                  obs.bess.soc_frac, obs.bess.p_charge_max_kw, self.params)
        b = obs.bess
        p = min(max(p, -b.p_charge_max_kw), b.p_discharge_max_kw)
        return Setpoints(p, s.p_rating_kw, phase)

"""``no_bess``: the site without a battery; EVs charge at full power on arrival.

The baseline for savings and CO2 avoided (docs/spec.md §4.3).
"""

from __future__ import annotations

from controllers.base import register
from twin.config import SiteConfig
from twin.types import Setpoints, SiteObservation

PHASES = {0: "no_bess"}


@register("no_bess", "baseline: battery idle, EVs at full power on arrival")
class NoBessController:
    """Battery always at 0 kW, sockets at their rating."""

    name = "no_bess"
    phases = PHASES
    #: the site without a battery: the plant does not age the idle battery, the summary
    #: reports no fade and no cycles
    uses_battery = False

    def __init__(self, site: SiteConfig, **params: float) -> None:
        if params:
            raise TypeError(f"no_bess takes no parameters, got {sorted(params)}")

    def reset(self, *, seed: int | None = None) -> None:
        """No state to forget."""

    def decide(self, obs: SiteObservation) -> Setpoints:
        """0 kW battery, full sockets."""
        return Setpoints(0.0, obs.sockets.p_rating_kw, 0)

"""The site's linear program, shared by the ``optimal`` and ``mpc`` controllers.

* ``controllers.lp.ev`` — EV charging windows (queue rule replayed) and per-type envelopes;
* ``controllers.lp.model`` — the LP (sparse build, HiGHS solve);
* ``controllers.lp.playback`` — a plan's step as socket limits and a battery setpoint;
* ``controllers.lp.cost`` — the same objective evaluated on a finished run.
"""

from controllers.lp.cost import run_cost
from controllers.lp.model import BatteryData, HorizonData, Plan, SiteLp, Weights

__all__ = ["BatteryData", "HorizonData", "Plan", "SiteLp", "Weights", "run_cost"]

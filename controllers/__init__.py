"""Controllers: a registry of decision rules behind one interface (see ``controllers.base``)."""

from controllers import arbitrage, mpc, no_bess, optimal, rl, six_phase
from controllers.base import REGISTRY, Controller, make_controller

__all__ = ["REGISTRY", "Controller", "arbitrage", "make_controller", "mpc", "no_bess", "optimal",
           "rl", "six_phase"]

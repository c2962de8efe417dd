"""Controllers: a registry of decision rules behind one interface (see ``controllers.base``)."""

from controllers import arbitrage, no_bess, rl, six_phase
from controllers.base import REGISTRY, Controller, make_controller

__all__ = ["REGISTRY", "Controller", "arbitrage", "make_controller", "no_bess", "rl", "six_phase"]

"""The engine: the one tick driver, its clocks, the safety layer, results and KPIs."""

from twin.engine.clocks import Clock, SimPyClock, WallClock
from twin.engine.driver import (
    RunOutput,
    SessionLog,
    StepRecord,
    Twin,
    get_controller,
    make_context,
    simulate,
)
from twin.engine.sites import DeviceSiteIO, PlantSiteIO, SiteIO

__all__ = ["Clock", "DeviceSiteIO", "PlantSiteIO", "RunOutput", "SessionLog", "SimPyClock", "SiteIO",
           "StepRecord", "Twin", "WallClock",
           "get_controller", "make_context", "simulate"]

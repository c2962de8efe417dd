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

__all__ = ["Clock", "RunOutput", "SessionLog", "SimPyClock", "StepRecord", "Twin", "WallClock",
           "get_controller", "make_context", "simulate"]

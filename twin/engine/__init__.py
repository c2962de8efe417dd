"""The engine: the one tick driver, the safety layer, results and KPIs."""

from twin.engine.driver import (
    ControlLoop,
    RunOutput,
    TickWake,
    Twin,
    get_controller,
    simulate,
)

__all__ = ["ControlLoop", "RunOutput", "TickWake", "Twin", "get_controller", "simulate"]

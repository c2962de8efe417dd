"""Clocks: what moves the world from one tick to the next.

The driver writes the setpoints of step ``k`` and then calls ``clock.advance(k)``; when it
returns, the devices' telemetry describes the instant ``t_{k+1}``. Three clocks:

* ``SimPyClock`` — the in-process plant on a SimPy environment that drives the ticks:
  the EV arrivals and departures up to and including ``t_{k+1}`` run at their own
  instants on the fleet's queue inside the tick, then the plant settles the step. As fast
  as possible (``twin run``), or paced by the wall clock when the environment is real-time
  (``twin live``: the clock then wakes at each EV event's instant).
* ``adapters.modbus.site.LockstepClock`` — our Modbus simulator advanced one step by a
  write to its clock device (``twin hil``, deterministic).
* ``WallClock`` — sleep to the next tick boundary (``speed`` simulated seconds per wall
  second) while real devices (or our simulator in real time) move on their own.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

import simpy
import simpy.rt

from twin.plant import Plant


@runtime_checkable
class Clock(Protocol):
    """Moves the world over one step."""

    #: Name recorded in the run summary (``fast-forward``, ``lockstep``, ``wall``).
    name: str

    def start(self) -> None:
        """Called once before step 0 (a wall clock takes its time origin here)."""
        ...

    def advance(self, k: int) -> None:
        """Run the world over step ``k``; return at ``t_{k+1}``."""
        ...

    def close(self) -> None:
        """Release what the clock holds."""
        ...


def run_step_events(env: simpy.Environment, dt_s: float) -> None:
    """Run every SimPy event due up to the end of the step that starts at ``env.now``.

    Only public SimPy API: a timeout marks the step end; all events due at or before it
    run (``peek`` / ``step``), including those scheduled at exactly the step end, whatever
    the order in which they were scheduled.
    """
    target = env.now + dt_s
    env.timeout(dt_s)
    peek = env.peek
    step = env.step
    while peek() <= target:
        step()


class SimPyClock:
    """The in-process plant on its SimPy environment.

    Only public SimPy API: a timeout marks ``t_{k+1}``; every SimPy event due at or before
    it runs (``env.peek()`` / ``env.step()``). The fleet's arrivals and departures are on
    its own queue: those due at or before ``t_{k+1}`` (including exactly at it) run when
    the plant settles the step, in time order, before the next tick. Then the plant
    integrates the step.

    Parameters
    ----------
    env : the plant's environment (a ``simpy.rt.RealtimeEnvironment`` paces it).
    plant : the plant to settle after each step.
    dt_s : step length [s].
    """

    name = "fast-forward"

    def __init__(self, env: simpy.Environment, plant: Plant, dt_s: float) -> None:
        self.env = env
        self.plant = plant
        self.dt_s = dt_s

    def start(self) -> None:
        """Nothing to do: the environment starts at 0."""

    def run_events(self) -> None:
        """Run every event due up to the end of the step that starts now.

        The fleet's arrivals and departures are on its own queue and run inside the tick
        (when the plant settles the step). On a real-time environment the clock still
        wakes at each of their instants, so that they happen at their wall-clock time.
        """
        env = self.env
        fleet = self.plant.fleet
        if fleet is None or not isinstance(env, simpy.rt.RealtimeEnvironment):
            run_step_events(env, self.dt_s)
            return
        target = env.now + self.dt_s
        env.timeout(self.dt_s)
        while (t := fleet.next_event_s) <= target:
            wake = env.timeout(max(t - env.now, 0.0))
            while not wake.processed:
                env.step()
            fleet.advance_to(t)
        while env.peek() <= target:
            env.step()

    def advance(self, k: int) -> None:
        """Run every event up to ``t_{k+1}`` and settle step ``k``."""
        self.run_events()
        self.plant.settle()

    def close(self) -> None:
        """Close the plant's books (vehicles still plugged are cut off)."""
        self.plant.finish()


class WallClock:
    """Sleep to the next tick boundary: ``t0 + (k + 1) · dt / speed`` of wall time.

    The reads of a step start ``lag_frac`` of a step after its boundary, so that devices
    that update at the boundary (a step-based simulator, a meter's averaging window) have
    published; setpoints then apply from that instant.

    Parameters
    ----------
    dt_s : step length [s of simulated time].
    speed : simulated seconds per wall second (> 0; 1 = real time).
    stop : an event that cuts a sleep short (a stop request from a signal handler).
    lag_frac : where inside the step the tick happens [fraction of a step, 0-0.5].
    """

    name = "wall"

    def __init__(self, dt_s: float, speed: float = 1.0, stop: threading.Event | None = None,
                 lag_frac: float = 0.02) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        if not 0.0 <= lag_frac <= 0.5:
            raise ValueError(f"lag_frac must be in [0, 0.5], got {lag_frac!r}")
        self.lag_frac = lag_frac
        self.dt_s = dt_s
        self.speed = speed
        self.stop = stop if stop is not None else threading.Event()
        self.t0 = 0.0
        self.max_lag_s = 0.0

    def start(self) -> None:
        """Take the wall-clock origin of step 0."""
        self.t0 = time.monotonic()

    def advance(self, k: int) -> None:
        """Sleep until the start of step ``k + 1`` (at once when late)."""
        due = self.t0 + (k + 1 + self.lag_frac) * self.dt_s / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            if self.stop.wait(delay):
                raise KeyboardInterrupt
        else:
            self.max_lag_s = max(self.max_lag_s, -delay)

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["Clock", "SimPyClock", "WallClock", "run_step_events"]

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

Every clock tells the simulated time now (``now_s``): the adapters stamp heartbeats,
backoff and staleness with it; no shared mutable time.

Real-time pacing is written once, in :class:`Pacer` (sleep, in slices that a stop request
cuts short, until a simulated instant is due on the wall clock). ``WallClock`` waits on it
for each tick; :class:`PacedEnvironment` is a SimPy environment whose ``step`` waits on it
for each event (SimPy's ``RealtimeEnvironment`` shape: real time is one override of
``step``) — ``twin live`` and the real-time Modbus simulator run the plant on it.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, runtime_checkable

import simpy
from simpy.core import EmptySchedule, Environment, Infinity

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

    def now_s(self) -> float:
        """Simulated time now [s from the run start]."""
        ...


class Pacer:
    """The one real-time pacing loop: wait until a simulated instant is due on the wall clock.

    Simulated time ``t`` is due at ``wall0 + (t - sim0) / speed`` (monotonic wall clock).
    The wait is cut into slices of at most ``slice_s`` so that a stop request is seen
    within a slice; a stop raises ``KeyboardInterrupt`` (between two events or ticks,
    never inside one), which ``Twin.run`` turns into a clean, interrupted run.

    Parameters
    ----------
    speed : simulated seconds per wall second (> 0; 1 = real time).
    stop : set to stop (a signal handler); a fresh event when None.
    slice_s : longest single wait [s of wall time].
    """

    def __init__(self, speed: float = 1.0, stop: threading.Event | None = None,
                 slice_s: float = 0.05) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.speed = speed
        self.stop = stop if stop is not None else threading.Event()
        self.slice_s = slice_s
        self.wall0 = time.monotonic()
        self.sim0 = 0.0
        self.started = False

    def start(self, sim0_s: float = 0.0) -> None:
        """Take the wall-clock origin now, for the simulated instant ``sim0_s`` [s]."""
        self.wall0 = time.monotonic()
        self.sim0 = sim0_s
        self.started = True

    def due(self, t_s: float) -> float:
        """Wall-clock instant (``time.monotonic``) at which ``t_s`` is due [s]."""
        return self.wall0 + (t_s - self.sim0) / self.speed

    def wait_until(self, t_s: float) -> float:
        """Sleep until ``t_s`` is due (at once when late); return the lateness [s wall, >= 0].

        Raises
        ------
        KeyboardInterrupt
            A stop was requested (before or during the wait).
        """
        due = self.due(t_s)
        stop = self.stop
        while True:
            if stop.is_set():
                raise KeyboardInterrupt
            delta = due - time.monotonic()
            if delta <= 0:
                return -delta
            stop.wait(min(delta, self.slice_s))

    def now_s(self) -> float:
        """Simulated time the wall clock says now [s] (``sim0`` until started)."""
        if not self.started:
            return self.sim0
        return self.sim0 + (time.monotonic() - self.wall0) * self.speed


class PacedEnvironment(Environment):
    """A SimPy environment paced by a :class:`Pacer`: each event waits until it is due.

    A slow step is caught up, not an error (as ``RealtimeEnvironment(strict=False)``).

    Parameters
    ----------
    speed : simulated seconds per wall second (> 0).
    slice_s : longest single wait [s of wall time].
    stop : an event that stops the environment (``KeyboardInterrupt`` before the next event).
    """

    def __init__(self, speed: float, slice_s: float = 0.05,
                 stop: threading.Event | None = None) -> None:
        super().__init__()
        self.pacer = Pacer(speed, stop, slice_s)
        self.pacer.start(self.now)
        self.speed = speed
        self.slice_s = slice_s

    @property
    def stop_flag(self) -> bool:
        """True once a stop was requested; setting it requests one."""
        return self.pacer.stop.is_set()

    @stop_flag.setter
    def stop_flag(self, value: bool) -> None:
        if value:
            self.pacer.stop.set()
        else:
            self.pacer.stop.clear()

    def sync(self) -> None:
        """Take the wall-clock origin now, at the present simulated time."""
        self.pacer.start(self.now)

    def lag_s(self) -> float:
        """How far the clock is behind its schedule now [s of wall time] (< 0: ahead)."""
        return time.monotonic() - self.pacer.due(self.now)

    def step(self) -> None:
        """Wait until the next event is due, then process it."""
        t = self.peek()
        if t is Infinity:
            raise EmptySchedule
        self.pacer.wait_until(t)
        Environment.step(self)


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
    env : the plant's environment (a ``PacedEnvironment`` paces it).
    plant : the plant to settle after each step.
    dt_s : step length [s].
    lock : held while the plant settles the step (a real-time simulator: its Modbus
        servers touch the plant from other threads); None = no lock.
    """

    name = "fast-forward"

    def __init__(self, env: simpy.Environment, plant: Plant, dt_s: float,
                 lock: AbstractContextManager[Any] | None = None) -> None:
        self.env = env
        self.plant = plant
        self.dt_s = dt_s
        self.lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self._locked = lock is not None
        #: the fleet's instants need no wake-up of their own (not a real-time environment)
        self._fast = plant.fleet is None or not isinstance(env, PacedEnvironment)

    def start(self) -> None:
        """Nothing to do: the environment starts at 0."""

    def now_s(self) -> float:
        """The environment's time [s]."""
        return float(self.env.now)

    def run_events(self) -> None:
        """Run every event due up to the end of the step that starts now.

        The fleet's arrivals and departures are on its own queue and run inside the tick
        (when the plant settles the step). On a real-time environment the clock still
        wakes at each of their instants, so that they happen at their wall-clock time.
        """
        env = self.env
        if self._fast:
            run_step_events(env, self.dt_s)
            return
        fleet = self.plant.fleet
        assert fleet is not None
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
        if not self._locked:
            self.plant.settle()
            return
        with self.lock:
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
        if not 0.0 <= lag_frac <= 0.5:
            raise ValueError(f"lag_frac must be in [0, 0.5], got {lag_frac!r}")
        self.pacer = Pacer(speed, stop)
        self.lag_frac = lag_frac
        self.dt_s = dt_s
        self.speed = speed
        self.stop = self.pacer.stop
        self.max_lag_s = 0.0
        #: How late the last tick was [s of wall time] (0 when on time).
        self.lag_s = 0.0

    @property
    def t0(self) -> float:
        """Wall-clock origin of step 0 (``time.monotonic``) [s]."""
        return self.pacer.wall0

    def start(self) -> None:
        """Take the wall-clock origin of step 0."""
        self.pacer.start(0.0)

    def now_s(self) -> float:
        """Scenario time the wall clock says now [s] (0 before the start)."""
        return self.pacer.now_s()

    def advance(self, k: int) -> None:
        """Sleep until the start of step ``k + 1`` (at once when late)."""
        late = self.pacer.wait_until((k + 1 + self.lag_frac) * self.dt_s)
        self.lag_s = late
        if late > 0:
            self.max_lag_s = max(self.max_lag_s, late)

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["Clock", "PacedEnvironment", "Pacer", "SimPyClock", "WallClock", "run_step_events"]

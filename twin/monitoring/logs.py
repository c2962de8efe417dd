"""Structured logs of a run (structlog): events with fields, not prose.

* JSON lines when the stream is not a terminal (piped, journald, a file); a readable,
  coloured console format on a terminal.
* Every line carries ``run_id``, the simulated time (``t_s`` [s since the scenario start]
  and ``sim_time``, local ISO 8601 with offset) and the wall time ``ts`` (UTC ISO 8601).
* Events: ``run_started``, ``metrics_listening``, ``phase_changed``, ``safety_clamp``,
  ``session_turned_away``, ``stop_requested``, ``run_stopped``, ``outputs_written``.
  There is no per-step line: a fast annual run logs a few thousand events at most.

No global structlog configuration is touched: :func:`make_logger` builds a logger with
its own processor chain, so two runs in one process keep their own ``run_id``.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

import structlog

from twin.types import Clamp

if TYPE_CHECKING:
    import simpy

    from twin.engine import Twin

EventDict = MutableMapping[str, Any]


def new_run_id(name: str, now: datetime | None = None) -> str:
    """A run id: scenario name, UTC wall time of the start and 6 random hex digits.

    Parameters
    ----------
    name : scenario name.
    now : wall time of the start (aware); the current UTC time when None.
    """
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{name}-{t:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class SimClock:
    """structlog processor adding the simulated time to every line.

    An explicit ``t_s`` in the event (e.g. the start of the step a phase acted in) wins
    over the clock's ``env.now``.

    Parameters
    ----------
    env : the SimPy environment of the run (time unit: seconds since the start); None
        before the twin exists (then ``t_s`` = 0).
    start_utc : scenario start (aware).
    tz : site time zone name, for ``sim_time``.
    """

    def __init__(self, env: simpy.Environment | None, start_utc: datetime, tz: str) -> None:
        self.env = env
        self.start_utc = start_utc
        self.tz = ZoneInfo(tz)

    def iso(self, t_s: float) -> str:
        """Local ISO 8601 time of ``t_s`` [s since the start]."""
        return (self.start_utc + timedelta(seconds=t_s)).astimezone(self.tz).isoformat()

    def __call__(self, logger: Any, method: str, ev: EventDict) -> EventDict:
        """Add ``t_s`` [s] and ``sim_time`` (ISO) to ``ev``."""
        t = ev.get("t_s")
        if t is None:
            t = float(self.env.now) if self.env is not None else 0.0
            ev["t_s"] = t
        ev["sim_time"] = self.iso(float(t))
        return ev


def make_logger(run_id: str, clock: SimClock, *, stream: TextIO | None = None,
                json: bool | None = None, level: int = logging.INFO,
                **bind: Any) -> Any:
    """A structlog logger for one run.

    Parameters
    ----------
    run_id : bound to every line.
    clock : adds the simulated time.
    stream : where lines go (default: ``sys.stderr``).
    json : JSON lines when True, console format when False; when None, JSON unless
        ``stream`` is a terminal.
    level : minimum level (``logging.INFO`` …).
    bind : more fields bound to every line.

    Returns
    -------
    A bound structlog logger: ``log.info("event_name", key=value, ...)``.
    """
    out = stream if stream is not None else sys.stderr
    if json is None:
        isatty = getattr(out, "isatty", None)
        json = not (isatty is not None and isatty())
    processors: list[Callable[..., Any]] = [
        structlog.processors.add_log_level,
        clock,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.processors.format_exc_info,
    ]
    if json:
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=True))
    return structlog.wrap_logger(
        structlog.PrintLogger(file=out),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        context_class=dict,
        cache_logger_on_first_use=True,
    ).bind(run_id=run_id, **bind)


class EventLog:
    """Log a twin's events: phase changes, safety clamps, vehicles turned away.

    Clamps and turned-away vehicles come through the callbacks ``ClampLog.on_clamp`` and
    ``Fleet.on_turned_away``; phase changes through :meth:`on_step` (one integer
    comparison per step).

    Parameters
    ----------
    twin : the wired-up twin.
    log : a logger from :func:`make_logger`.
    """

    def __init__(self, twin: Twin, log: Any) -> None:
        self.twin = twin
        self.log = log
        self.dt_s = float(twin.inputs.dt_s)
        self.phases = {int(k): str(v) for k, v in getattr(twin.controller, "phases", {}).items()}
        self._phase: int | None = None
        self._rec_phase = twin.rec.phase
        self.n_events = 0

    def attach(self) -> EventLog:
        """Install the clamp and turned-away callbacks; return self."""
        self.twin.clamps.on_clamp = self.on_clamp
        fleet = self.twin.plant.fleet if self.twin.plant is not None else None
        if fleet is not None:
            fleet.on_turned_away = self.on_turned_away
        return self

    def detach(self) -> None:
        """Remove the callbacks."""
        self.twin.clamps.on_clamp = None
        fleet = self.twin.plant.fleet if self.twin.plant is not None else None
        if fleet is not None:
            fleet.on_turned_away = None

    def on_step(self, k: int) -> None:
        """Log a phase change in step ``k`` (stamped with the step start)."""
        code = int(self._rec_phase[k])
        if code == self._phase:
            return
        prev = self._phase
        self._phase = code
        self.n_events += 1
        self.log.info("phase_changed", k=k, t_s=k * self.dt_s,
                      phase=self.phases.get(code, str(code)), phase_code=code,
                      previous=None if prev is None else self.phases.get(prev, str(prev)))

    def on_clamp(self, c: Clamp) -> None:
        """Log one safety-layer clamp."""
        self.n_events += 1
        self.log.warning("safety_clamp", k=c.k, reason=c.reason, device=c.device,
                         requested_kw=c.requested, applied_kw=c.applied)

    def on_turned_away(self, i: int, t_s: float) -> None:
        """Log a vehicle that left without a socket."""
        self.n_events += 1
        fleet = self.twin.plant.fleet if self.twin.plant is not None else None
        fields: dict[str, Any] = {"session": i}
        if fleet is not None:
            s = fleet.s
            arr = float(s.arrival_s[i])
            fields.update(vehicle_type=self.twin.scn.site.ev.class_names[int(s.type_code[i])],
                          e_req_kwh=float(s.e_req_kwh[i]), waited_min=(t_s - arr) / 60.0)
        self.log.info("session_turned_away", t_s=float(t_s), **fields)

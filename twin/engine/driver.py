"""The tick loop: the one place where the order inside a step is written.

For each step ``k`` (interval ``[t_k, t_k + dt)``):

1. **observe** — read the meters, the battery and the chargers through the adapters
   into one frozen ``SiteObservation``;
2. **decide** — ``controller.decide(obs)`` returns ``Setpoints``;
3. **clamp** — the safety layer bends what is outside the envelope, and reports it;
4. **apply** — the adapters write the setpoints to the devices;
5. the SimPy clock runs to ``t_k + dt``: EV arrivals and departures happen as events at
   their own instants (they run before the tick at equal times: the tick wakes with a
   lower priority);
6. **settle** — the plant integrates the step (EV energy, battery, no reverse flow) and
   records it.

Only the clock and the adapters change between an annual run, a real-time run and a
hardware-in-the-loop run; the controller object is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import simpy
from simpy.events import Event

from adapters.base import BessAdapter, ChargerAdapter, MeterAdapter
from adapters.sim import SimBessAdapter, SimChargerAdapter, SimMeterAdapter
from controllers.base import REGISTRY as CONTROLLERS
from controllers.base import (
    Controller,
    UnknownControllerError,
    make_controller,
    prepare_controller,
)
from twin.components.inputs import build_inputs
from twin.config import ConfigError, Scenario
from twin.engine.safety import SafetyLayer
from twin.forecast import ControlContext, make_forecaster
from twin.inputs import PlantInputs, SocketSpec
from twin.plant import Plant, Recorder
from twin.types import ClampLog, SiteObservation, TariffState

#: SimPy priority of the tick wake-up: after every event (NORMAL = 1) at the same instant.
TICK_PRIORITY = 2

ProgressFn = Callable[[int, int], None]


class TickWake(Event):
    """A timeout that fires after all normal events scheduled for the same instant."""

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        self.env = env
        self.callbacks = []
        self._value = None
        self._ok = True
        env.schedule(self, TICK_PRIORITY, delay)  # type: ignore[arg-type]


def get_controller(scn: Scenario, name: str | None = None) -> Controller:
    """Build the scenario's controller (or ``name``), as a user error if unknown."""
    cname = name or scn.config.controller
    try:
        return make_controller(cname, scn.site, scn.config.controller_params)
    except UnknownControllerError:
        raise ConfigError(
            f"{scn.path}: field 'controller': unknown controller {cname!r}; "
            f"registered: {sorted(CONTROLLERS)} (see 'twin controllers')"
        ) from None
    except TypeError as exc:
        raise ConfigError(f"{scn.path}: field 'controller_params': {exc}") from None


def make_context(scn: Scenario, inputs: PlantInputs) -> ControlContext:
    """The horizon, tariff, sockets and forecaster a planning controller receives."""
    try:
        fc = make_forecaster(scn.config.forecast, inputs, scn.config.seed)
    except ValueError as exc:
        raise ConfigError(f"{scn.path}: field 'forecast': {exc}") from None
    return ControlContext(index=inputs.index, dt_s=inputs.dt_s, n_steps=len(inputs.index),
                          price_per_kwh=inputs.price_per_kwh, is_peak=inputs.is_peak,
                          sockets=SocketSpec.from_config(scn.site.ev), site=scn.site,
                          forecaster=fc, seed=scn.config.seed)


class ControlLoop:
    """Observe → decide → clamp → apply, for one step, through the adapters."""

    def __init__(self, controller: Controller, safety: SafetyLayer, bess: BessAdapter,
                 chargers: ChargerAdapter, meters: MeterAdapter, inputs: PlantInputs,
                 rec: Recorder, tz: str, waiting: Callable[[], int]) -> None:
        self.controller = controller
        self.safety = safety
        self.bess = bess
        self.chargers = chargers
        self.meters = meters
        self.rec = rec
        self.tz = tz
        self.dt_s = inputs.dt_s
        self.hour = inputs.hour.tolist()
        self.weekday = inputs.weekday.tolist()
        self.ev_open = inputs.ev_open.tolist()
        self.is_peak = inputs.is_peak.tolist()
        self.p_ev_prof = inputs.p_ev_profile_kw.tolist() if inputs.p_ev_profile_kw is not None else None
        price = inputs.price_per_kwh.tolist()
        states: dict[tuple[float, bool], TariffState] = {}
        # one shared TariffState per distinct (price, period), referenced per step
        self.tariff_k = [states.setdefault((p, pk), TariffState(p, pk))
                         for p, pk in zip(price, self.is_peak, strict=True)]
        self.start_utc = inputs.index[0].to_pydatetime().astimezone(UTC)
        self.waiting = waiting
        self.last_obs: SiteObservation | None = None

    def observe(self, k: int) -> SiteObservation:
        """One frozen snapshot for step ``k``."""
        p_pv, p_mall = self.meters.read()
        b = self.bess.read()
        s = self.chargers.read()
        p_inflex = self.p_ev_prof[k] if self.p_ev_prof is not None else 0.0
        return SiteObservation(
            k, k * self.dt_s, self.dt_s, self.start_utc, self.tz, self.hour[k], self.weekday[k],
            p_pv, p_mall, s.p_demand_total_kw + p_inflex, p_inflex, self.ev_open[k], b, s,
            self.tariff_k[k], self.waiting(),
        )

    def step(self, k: int) -> None:
        """Run the control part of step ``k``."""
        obs = self.observe(k)
        perf = time.perf_counter
        t0 = perf()
        sp = self.controller.decide(obs)
        t1 = perf()
        safety = self.safety
        p_bess, p_sock = safety.clamp(sp, obs)
        self.bess.write(p_bess)
        self.chargers.write(p_sock)
        rec = self.rec
        rec.b_decide_s[k] = t1 - t0
        rec.b_phase[k] = sp.phase
        rec.b_p_bess_request_kw[k] = sp.p_bess_kw
        rec.b_p_bess_command_kw[k] = p_bess
        rec.b_n_clamps[k] = safety.n_step_clamps
        rec.b_n_plugged[k] = obs.sockets.n_occupied
        rec.b_n_waiting[k] = obs.n_waiting
        self.last_obs = obs


@dataclass
class RunOutput:
    """What a finished run hands to the results module."""

    scenario: Scenario
    controller: Controller
    inputs: PlantInputs
    plant: Plant
    clamps: ClampLog
    sim_wall_s: float
    inputs_wall_s: float
    steps_done: int
    interrupted: bool = False


class Twin:
    """A scenario wired up: plant, adapters, safety layer, controller, clock."""

    def __init__(self, scn: Scenario, controller: Controller | None = None,
                 env: simpy.Environment | None = None, inputs: PlantInputs | None = None) -> None:
        self.scn = scn
        t0 = time.perf_counter()
        self.inputs = inputs if inputs is not None else build_inputs(scn)
        self.inputs_wall_s = time.perf_counter() - t0
        self.controller = controller if controller is not None else get_controller(scn)
        self.controller.reset(seed=scn.config.seed)
        self.context = make_context(scn, self.inputs)
        prepare_controller(self.controller, self.context)
        self.env = env if env is not None else simpy.Environment()
        self.plant = Plant(self.env, self.inputs, scn.site)
        self.clamps = ClampLog()
        grid = scn.site.grid
        self.safety = SafetyLayer(grid.export_limit_kw, grid.import_limit_kw, log=self.clamps)
        self.loop = ControlLoop(
            self.controller, self.safety, SimBessAdapter(self.plant), SimChargerAdapter(self.plant),
            SimMeterAdapter(self.plant), self.inputs, self.plant.rec, scn.site.location.tz,
            self.plant.waiting_fn(),
        )
        self.n_steps = scn.config.n_steps
        self.on_step: Callable[[int], None] | None = None
        self.stop_requested = False

    def _process(self, progress: ProgressFn | None) -> Generator[Event, Any, None]:
        env = self.env
        dt = self.scn.config.dt
        n = self.n_steps
        loop_step = self.loop.step
        settle = self.plant.settle
        every = max(1, n // 200)
        on_step = self.on_step
        for k in range(n):
            loop_step(k)
            yield TickWake(env, dt)
            settle()
            if on_step is not None:
                on_step(k)
            if progress is not None and (k + 1) % every == 0:
                progress(k + 1, n)
            if self.stop_requested:
                return

    def run(self, progress: ProgressFn | None = None) -> RunOutput:
        """Run the horizon (or until ``stop_requested``) and return the raw output."""
        proc = self.env.process(self._process(progress))
        t0 = time.perf_counter()
        try:
            self.env.run(until=proc)
        except KeyboardInterrupt:
            self.stop_requested = True
        wall = time.perf_counter() - t0
        self.plant.finish()
        if progress is not None:
            progress(self.plant.rec.k_done, self.n_steps)
        return RunOutput(self.scn, self.controller, self.inputs, self.plant, self.clamps, wall,
                         self.inputs_wall_s, self.plant.rec.k_done,
                         interrupted=self.plant.rec.k_done < self.n_steps)


def simulate(scn: Scenario, controller: Controller | None = None,
             progress: ProgressFn | None = None) -> RunOutput:
    """Run a scenario in fast-forward with the in-process (sim) adapters."""
    return Twin(scn, controller).run(progress)

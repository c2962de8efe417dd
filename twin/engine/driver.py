"""The tick driver: the one place where the order inside a step is written.

For each step ``k`` (interval ``[t_k, t_k + dt)``):

1. **observe** — the telemetry read at ``t_k`` (meters, battery, chargers, one consistent
   snapshot) becomes a frozen ``SiteObservation``;
2. **decide** — ``controller.decide(obs)`` returns ``Setpoints`` (or the caller of
   ``step()`` gives them);
3. **clamp** — the safety layer bends what is outside the envelope, and reports it;
4. **apply** — the site's I/O writes the setpoints to the devices;
5. **advance** — the clock moves the world to ``t_{k+1}``: the in-process plant on SimPy
   (EV arrivals and departures at their own instants, then the plant settles the step),
   our Modbus simulator one lockstep tick, or the wall clock while devices run;
6. **record** — the telemetry read at ``t_{k+1}`` closes step ``k``: in a simulation the
   plant has recorded its exact energies, against devices they come from what the
   adapters read (``twin.engine.telemetry``); that read is also step ``k + 1``'s
   observation.

``Twin`` runs a whole horizon (``run``) or one tick at a time (``reset`` / ``step`` /
``done`` / ``record``) — an RL environment, a trial runner or a notebook drives the same
engine as ``twin run``, ``twin live`` and ``twin hil``; only the clock and the site's
I/O change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, NamedTuple

import numpy as np
import simpy

from adapters.base import Telemetry
from controllers.base import REGISTRY as CONTROLLERS
from controllers.base import (
    Controller,
    UnknownControllerError,
    make_controller,
    prepare_controller,
)
from twin.components.inputs import build_inputs
from twin.config import ConfigError, Scenario
from twin.engine.balance import split_bus
from twin.engine.clocks import Clock
from twin.engine.safety import SafetyLayer
from twin.engine.sites import PlantSiteIO, SessionLog, SiteIO
from twin.forecast import ControlContext, make_forecaster
from twin.inputs import PlantInputs, SocketSpec
from twin.plant import Plant
from twin.record import Recorder, as_array
from twin.tariff import schedule as tariff_schedule
from twin.types import ClampLog, Setpoints, SiteObservation, TariffState

ProgressFn = Callable[[int, int], None]


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
                          forecaster=fc, seed=scn.config.seed,
                          tariff=tariff_schedule(scn.site.tariff, inputs.index, inputs.hour))


class StepRecord(NamedTuple):
    """What happened in the step just run (energies [kWh] over the step).

    ``e_grid_import_kwh`` and ``e_curtailed_kwh`` are the results' split of the site bus
    (``twin.engine.balance.split_bus``): import covers what PV and the battery do not;
    surplus PV beyond the export limit is curtailed.
    """

    k: int
    e_pv_kwh: float
    e_mall_kwh: float
    e_ev_kwh: float
    e_bess_charge_kwh: float
    e_bess_discharge_kwh: float
    e_grid_import_kwh: float
    e_curtailed_kwh: float
    soc_frac: float
    n_clamps: int
    p_bess_command_kw: float


@dataclass
class RunOutput:
    """What a finished run hands to the results module (no live SimPy objects)."""

    scenario: Scenario
    controller: Controller
    inputs: PlantInputs
    rec: Recorder
    sessions: SessionLog | None
    clamps: ClampLog
    sim_wall_s: float
    inputs_wall_s: float
    steps_done: int
    interrupted: bool = False
    n_reverse_flow_cuts: int = 0
    clock: str = "fast-forward"
    extra: dict[str, Any] = field(default_factory=dict)


class Twin:
    """A scenario wired up: site I/O, safety layer, controller, clock — and the tick.

    Parameters
    ----------
    scn : the scenario.
    controller : the controller (default: the scenario's); ``step(setpoints)`` may bypass it.
    site : the site's I/O (``twin.engine.sites``): None = the twin's own plant in-process
        (a simulation, ``PlantSiteIO``); ``DeviceSiteIO`` = devices (``twin hil``). It
        carries its clock and its socket failsafe power.
    inputs : prebuilt inputs of ``scn`` (shared by runs of the same seed).
    env : SimPy environment of the in-process plant (``twin live`` passes a paced one);
        only without ``site``.
    """

    def __init__(self, scn: Scenario, controller: Controller | None = None, *,
                 site: SiteIO | None = None, inputs: PlantInputs | None = None,
                 env: simpy.Environment | None = None) -> None:
        if site is not None and env is not None:
            raise ValueError("env is the in-process plant's; a given site brings its own clock")
        self.scn = scn
        self.dt_s = scn.config.dt
        self.n_steps = scn.config.n_steps
        self.controller = controller if controller is not None else get_controller(scn)
        self.site: SiteIO = site if site is not None else PlantSiteIO(
            scn.site, self.dt_s, env=env,
            battery_in_use=getattr(self.controller, "uses_battery", True))
        self.on_step: Callable[[int], None] | None = None
        self.stop_requested = False
        self.inputs_wall_s = 0.0
        self.inputs = inputs if inputs is not None else self._build_inputs(scn.config.seed)
        self.seed = scn.config.seed
        self._build()

    @property
    def plant(self) -> Plant:
        """The in-process plant (``PlantSiteIO``); a run against devices has none."""
        if not isinstance(self.site, PlantSiteIO):
            raise AttributeError("a run against devices has no in-process plant")
        return self.site.plant

    @property
    def env(self) -> simpy.Environment:
        """The in-process plant's SimPy environment; a run against devices has none."""
        if not isinstance(self.site, PlantSiteIO):
            raise AttributeError("a run against devices has no SimPy environment")
        return self.site.env

    # ----------------------------------------------------------------- wiring
    def _seeded(self, seed: int) -> Scenario:
        """The scenario with ``seed`` (itself for its own seed)."""
        scn = self.scn
        if seed != scn.config.seed:
            scn = scn.model_copy(update={"config": scn.config.model_copy(update={"seed": seed})})
        return scn

    def _build_inputs(self, seed: int) -> PlantInputs:
        scn = self._seeded(seed)
        t0 = time.perf_counter()
        inputs = build_inputs(scn)
        self.inputs_wall_s = time.perf_counter() - t0
        return inputs

    def _build(self) -> None:
        """A fresh world, record, safety layer and controller state (step 0 not read yet)."""
        scn = self.scn
        inp = self.inputs
        spec = SocketSpec.from_config(scn.site.ev)
        self.n_sockets = int(spec.p_rating_kw.shape[0])
        units = scn.site.batteries
        self.multi = len(units) >= 2
        self.rec = Recorder(self.n_steps, self.n_sockets,
                            tuple(b.name for b in units) if self.multi else ())
        self.site.open(self.rec, inp)
        self.clock: Clock = self.site.clock
        self.clamps = ClampLog()
        grid = scn.site.grid
        self.safety = SafetyLayer(grid.export_limit_kw, grid.import_limit_kw,
                                  socket_failsafe_kw=self.site.socket_failsafe_kw,
                                  log=self.clamps)
        self.controller.reset(seed=self.seed)
        self.context = make_context(scn, inp)
        prepare_controller(self.controller, self.context)
        # per-step lookups: stdlib arrays (cheap scalar access, 8 bytes a float, not a list's
        # 32), a list of bools (shared objects)
        self.hour = as_array(inp.hour)
        self.weekday = inp.weekday.tolist()
        self.ev_open = inp.ev_open.tolist()
        self.p_ev_prof = as_array(inp.p_ev_profile_kw) if inp.p_ev_profile_kw is not None else None
        tar = self.context.tariff
        pname = ([tar.names[c] for c in tar.period.tolist()] if tar is not None
                 else [""] * len(inp.price_per_kwh))
        states: dict[tuple[float, bool, str], TariffState] = {}
        self.tariff_k = [states.setdefault((p, pk, nm), TariffState(p, pk, nm))
                         for p, pk, nm in zip(inp.price_per_kwh.tolist(), inp.is_peak.tolist(),
                                              pname, strict=True)]
        self.start_utc = inp.index[0].to_pydatetime().astimezone(UTC)
        self.tz = scn.site.location.tz
        self.k = 0
        self.done = self.n_steps == 0
        self.obs: SiteObservation | None = None
        #: The last telemetry read (``t_k`` after step ``k - 1``), for the metrics.
        self.tel: Telemetry | None = None
        #: The per-socket limits in force (last written, after the safety layer) [kW].
        self.p_socket_limit_kw = np.zeros(self.n_sockets)
        self.last_step: StepRecord | None = None
        self.wall_s = 0.0
        self.interrupted = False
        self._finished = False
        self._sessions: SessionLog | None = None
        self._started = False

    # -------------------------------------------------------------- observe
    def _observe(self, k: int, tel: Telemetry) -> SiteObservation:
        m = tel.meters
        s = tel.sockets
        p_inflex = self.p_ev_prof[k] if self.p_ev_prof is not None else 0.0
        return SiteObservation(
            k, k * self.dt_s, self.dt_s, self.start_utc, self.tz, self.hour[k],
            self.weekday[k], m.p_pv_kw, m.p_mall_kw, s.p_demand_total_kw + p_inflex, p_inflex,
            self.ev_open[k], tel.bess, s, self.tariff_k[k], tel.n_waiting, m.valid,
            tel.batteries,
        )

    # ------------------------------------------------------------ stepping
    def reset(self, seed: int | None = None) -> SiteObservation:
        """Start (or restart) the run at step 0 and return its observation.

        Parameters
        ----------
        seed : None = the scenario's seed; another seed rebuilds the inputs (PV, mall,
            EV sessions) from it. A run against devices cannot be restarted.
        """
        if self._started and not self.site.resettable:
            raise RuntimeError("a run against devices cannot be reset; start a new Twin")
        target = seed if seed is not None else self.scn.config.seed
        if target != self.seed:
            self.inputs = self._build_inputs(target)
            self.seed = target
            self._build()
        elif self._started:
            self._build()
        self._started = True
        self.tel = tel = self.site.start()
        self.obs = self._observe(0, tel) if not self.done else None
        return self.obs  # type: ignore[return-value]

    def step(self, setpoints: Setpoints | None = None) -> SiteObservation:
        """Run one tick and return the next step's observation (the last one when done).

        Parameters
        ----------
        setpoints : what to ask of the devices; None = the controller decides. The safety
            layer clamps either.
        """
        if not self._started:
            self.reset()
        if self.done:
            raise RuntimeError("the run is done; reset() to start again")
        obs = self.obs
        assert obs is not None
        k = self.k
        rec = self.rec
        if setpoints is None:
            perf = time.perf_counter
            t0 = perf()
            sp = self.controller.decide(obs)
            rec.b_decide_s[k] = perf() - t0
        else:
            sp = setpoints
        safety = self.safety
        p_bess, p_sock = safety.clamp(sp, obs)
        if self.multi:
            split = safety.split_kw
            self.site.write(p_bess, p_sock, split)
            units = rec.units
            assert units is not None
            units.p_command_kw[k] = split
        else:
            self.site.write(p_bess, p_sock)
        self.p_socket_limit_kw = p_sock
        if obs.meters_valid:  # a held (invalid) meter reading is never turned into kWh
            rec.b_p_pv_kw[k] = obs.p_pv_kw
            rec.b_p_mall_kw[k] = obs.p_mall_kw
        rec.b_phase[k] = sp.phase
        rec.b_p_bess_request_kw[k] = sp.p_bess_kw
        rec.b_p_bess_command_kw[k] = p_bess
        rec.b_n_clamps[k] = safety.n_step_clamps
        rec.b_n_plugged[k] = obs.sockets.n_occupied
        rec.b_n_waiting[k] = obs.n_waiting
        self.tel = tel = self.site.advance(k)
        k1 = k + 1
        self.k = rec.k_done = k1
        if k1 >= self.n_steps:
            self.done = True
        else:
            self.obs = self._observe(k1, tel)
        if self.on_step is not None:
            self.on_step(k)
        return self.obs  # type: ignore[return-value]

    def step_record(self, k: int) -> StepRecord:
        """Energies of step ``k`` (done) on the site bus [kWh], for a reward or a test."""
        rec = self.rec
        dt_h = self.dt_s / 3600.0
        e_pv = float(rec.p_pv_kw[k]) * dt_h
        e_mall = float(rec.p_mall_kw[k]) * dt_h
        e_ev = float(rec.e_ev_kwh[k])
        e_ch = float(rec.e_bess_charge_kwh[k])
        e_dis = float(rec.e_bess_discharge_kwh[k])
        # the results' split of the bus (``split_bus``), on floats: the same bits as the row
        fl = split_bus(e_pv, e_ev, e_mall, e_ch, e_dis, self.scn.site.grid.export_limit_kw * dt_h,
                       min, max)
        cap = float(rec.cap_kwh[k])
        soc = float(rec.e_bess_stored_kwh[k]) / cap if cap > 0 else 0.0
        return StepRecord(k, e_pv, e_mall, e_ev, e_ch, e_dis, fl.grid_import_kwh,
                          fl.pv_curtailed_kwh, soc,
                          int(rec.n_clamps[k]), float(rec.p_bess_command_kw[k]))

    # ----------------------------------------------------------------- run
    def run(self, progress: ProgressFn | None = None) -> RunOutput:
        """Run the horizon (or until ``stop_requested`` / Ctrl-C) and return the output."""
        n = self.n_steps
        every = max(1, n // 200)
        t0 = time.perf_counter()
        try:
            if not self._started:
                self.reset()
            step = self.step
            while not self.done:
                step()
                if progress is not None and self.k % every == 0:
                    progress(self.k, n)
                if self.stop_requested:
                    break
        except KeyboardInterrupt:
            # a Ctrl-C is never swallowed: even one that lands in the last step marks the run
            # interrupted, so that a caller running many (a trial) stops too
            self.stop_requested = True
            self.interrupted = True
        self.wall_s += time.perf_counter() - t0
        out = self.record()
        if progress is not None:
            progress(out.steps_done, n)
        return out

    def record(self) -> RunOutput:
        """The run's output so far (closes the books: vehicles still plugged are cut off)."""
        if not self._finished:
            self._sessions = self.site.finish()
            self._finished = True
        sessions = self._sessions
        cuts = self.site.n_reverse_flow_cuts
        # the scenario the inputs were built for (a reset with another seed: that seed)
        return RunOutput(self._seeded(self.seed), self.controller, self.inputs, self.rec,
                         sessions, self.clamps,
                         self.wall_s, self.inputs_wall_s, self.k,
                         interrupted=self.k < self.n_steps or self.interrupted,
                         n_reverse_flow_cuts=cuts,
                         clock=self.clock.name)


def simulate(scn: Scenario, controller: Controller | None = None,
             progress: ProgressFn | None = None, inputs: PlantInputs | None = None) -> RunOutput:
    """Run a scenario in fast-forward with the twin's own plant (in-process adapters)."""
    return Twin(scn, controller, inputs=inputs).run(progress)


__all__ = ["RunOutput", "SessionLog", "StepRecord", "Twin", "get_controller", "make_context",
           "simulate"]

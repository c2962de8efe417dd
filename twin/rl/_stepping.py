"""TEMPORARY: the stepping API on the present ``Twin``, until the engine's own lands.

Drives the same ``ControlLoop``, plant and SimPy clock as ``Twin.run`` (observe → decide
→ clamp → apply → clock to the next tick, events first → settle), one tick per call.
Removed when ``twin.engine.Twin`` has ``reset``/``step``/``last_step`` itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from twin.engine.driver import RunOutput, TickWake, Twin
from twin.types import Setpoints, SiteObservation


class StepRecord(NamedTuple):
    """What one tick did (energies over the step [kWh])."""

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


class _Given:
    name = "given"
    def __init__(self) -> None:
        self.phases = {0: "given", 1: "charge", 2: "discharge"}
        self.sp: Setpoints | None = None

    def reset(self, *, seed: int | None = None) -> None:
        self.sp = None

    def decide(self, obs: SiteObservation) -> Setpoints:
        assert self.sp is not None
        return self.sp


class SteppingTwin(Twin):
    """``Twin`` with ``reset``/``step``/``done``/``last_step``/``record``."""

    def __init__(self, scn: Any, controller: Any = None, **kw: Any) -> None:
        self._given = _Given()
        super().__init__(scn, controller if controller is not None else self._given, **kw)
        self.k = 0
        self._last_obs: SiteObservation | None = None
        self.last_step: StepRecord | None = None

    @property
    def done(self) -> bool:
        return self.k >= self.n_steps

    def reset(self, seed: int | None = None) -> SiteObservation:
        self._last_obs = self.loop.observe(0)
        return self._last_obs

    def step(self, setpoints: Setpoints | None = None) -> SiteObservation:
        k = self.k
        if setpoints is not None:
            self.loop.controller = self._given
            self._given.sp = setpoints
        self.loop.step(k)
        self.env.run(until=TickWake(self.env, self.scn.config.dt))
        self.plant.settle()
        rec = self.plant.rec
        dt_h = self.plant.dt_h
        e_pv = self.plant.p_pv_kw[k] * dt_h
        e_mall = self.plant.p_mall_kw[k] * dt_h
        e_ev = rec.b_e_ev_kwh[k]
        e_c = rec.b_e_bess_charge_kwh[k]
        e_d = rec.b_e_bess_discharge_kwh[k]
        net = e_ev + e_mall + e_c - e_pv - e_d
        cap = rec.b_cap_kwh[k]
        self.last_step = StepRecord(k, e_pv, e_mall, e_ev, e_c, e_d, max(net, 0.0), max(-net, 0.0),
                                    rec.b_e_bess_stored_kwh[k] / cap if cap > 0 else 0.0,
                                    rec.b_n_clamps[k], rec.b_p_bess_command_kw[k])
        self.k = k + 1
        if self.k < self.n_steps:
            self._last_obs = self.loop.observe(self.k)
        assert self._last_obs is not None
        return self._last_obs

    def record(self) -> RunOutput:
        self.plant.finish()
        return RunOutput(self.scn, self.controller, self.inputs, self.plant, self.clamps, 0.0,
                         self.inputs_wall_s, self.plant.rec.k_done,
                         interrupted=self.plant.rec.k_done < self.n_steps)

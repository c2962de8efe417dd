"""``TwinEnv``: a gymnasium environment that drives the twin's own engine, one tick a step.

Not a copy of the physics: ``reset`` builds a ``twin.engine.Twin`` for the episode window
and ``step`` calls its stepping API (``Twin.step(setpoints)``), so the policy faces the
same plant, safety layer and EV sessions as in ``twin run``, ``twin live`` and ``twin hil``.
Observations and actions are encoded by ``controllers.rl.encoding`` (the module the
``rl`` controller uses), so a policy trained here runs unchanged in the twin.

Episode: a window of ``episode_days`` (default 7) starting at local midnight of a day
drawn (seeded) from ``start_days`` (default: every day whose window fits in the scenario);
``episode_days=None`` runs the whole scenario.

Reward (docs/spec.md §4.4): a weighted sum of five terms, each ≤ 0 and normalised by the site's
scales so that one is "the whole reference power for the whole step":

==========  ======  ======================================================================
term        weight  value per step
==========  ======  ======================================================================
``co2``     0.50    − grid import [kWh] / ((``ev_kw`` + ``mall_kw``) × dt) — the isolated
                    grid's CO2 is proportional to the import
``solar``   0.20    − PV curtailed [kWh] / (``pv_ac_kw`` × dt) — self-consumption lost
``ev``      0.15    − (EV energy the plugged vehicles could take at full allowance −
                    EV energy delivered) / (``ev_kw`` × dt)
``ramp``    0.10    − |grid import − previous step's grid import| / ((``ev_kw`` +
                    ``mall_kw``) × dt)
``cost``    0.05    − grid import × price / ((``ev_kw`` + ``mall_kw``) × dt × peak price)
==========  ======  ======================================================================

``info`` carries every term (``r_co2``, ...), the clamps of the step and the step index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pandas as pd

from controllers.rl.encoding import PHASES, ActionMapper, Encoder, Options, Spec, build_spec
from twin.config import Scenario, load_scenario
from twin.engine import Twin
from twin.engine.balance import split_bus
from twin.inputs import PlantInputs
from twin.record import Recorder
from twin.types import Setpoints, SiteObservation

DAY_S = 86400.0



class EnvActions:
    """The controller slot of the env's ``Twin``: the agent's actions arrive as setpoints.

    Named ``rl`` with the ``rl`` controller's phases, so that a run through the env
    records the same ``phase``/``phase_name`` as ``twin run --controller rl``.
    """

    name = "rl"

    def __init__(self) -> None:
        self.phases = dict(PHASES)

    def reset(self, *, seed: int | None = None) -> None:
        """No state."""

    def decide(self, obs: SiteObservation) -> Setpoints:
        """Never called: ``TwinEnv.step`` always gives the setpoints."""
        raise RuntimeError("TwinEnv gives the setpoints; the twin never asks this controller")


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward terms (docs/spec.md §4.4 defaults)."""

    co2: float = 0.50
    solar: float = 0.20
    ev: float = 0.15
    ramp: float = 0.10
    cost: float = 0.05


def window_scenario(scn: Scenario, start_day: int, days: float) -> Scenario:
    """``scn`` cut to ``days`` days from local midnight of day ``start_day`` (0-based)."""
    cfg = scn.config
    start = pd.Timestamp(cfg.start) + pd.Timedelta(days=start_day)
    new_cfg = cfg.model_copy(update={"start": start.to_pydatetime(), "duration": days * DAY_S})
    return scn.model_copy(update={"config": new_cfg})


def slice_inputs(inputs: PlantInputs, k0: int, n: int) -> PlantInputs:
    """Steps ``k0 .. k0 + n - 1`` of ``inputs``; sessions arriving in them, times shifted to 0."""
    from twin.inputs import SessionTable

    sl = slice(k0, k0 + n)
    t0, t1 = k0 * inputs.dt_s, (k0 + n) * inputs.dt_s
    s = inputs.sessions
    sess = None
    if s is not None:
        m = (s.arrival_s >= t0) & (s.arrival_s < t1)
        sess = SessionTable(s.arrival_s[m] - t0, s.departure_s[m] - t0, s.type_code[m], s.e_req_kwh[m],
                            s.p_max_kw[m], s.patience_s[m])
    prof = inputs.p_ev_profile_kw
    return PlantInputs(index=inputs.index[sl], dt_s=inputs.dt_s, p_pv_kw=inputs.p_pv_kw[sl],
                       p_mall_kw=inputs.p_mall_kw[sl], p_ev_profile_kw=None if prof is None else prof[sl],
                       sessions=sess, hour=inputs.hour[sl], weekday=inputs.weekday[sl],
                       price_per_kwh=inputs.price_per_kwh[sl], is_peak=inputs.is_peak[sl],
                       ev_open=inputs.ev_open[sl],
                       t_air_c=None if inputs.t_air_c is None else inputs.t_air_c[sl])


class TwinEnv(gym.Env[np.ndarray, np.ndarray]):
    """The twin as a gymnasium environment.

    Parameters
    ----------
    scenario : a scenario (or the path of its YAML file); its site, step and seed are used.
    episode_days : episode length [days]; None = the whole scenario.
    start_days : days (0-based from the scenario start) an episode may start on;
        default every day whose window fits.
    options : encoding options (forecast hours in the observation).
    weights : reward weights.
    inputs : the scenario's inputs, if already built (shared by several environments);
        episodes run on windows cut from them (the same PV, mall and sessions as a run of
        the whole scenario).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}  # type: ignore[misc]

    def __init__(self, scenario: Scenario | Path | str, *, episode_days: float | None = 7.0,
                 start_days: Sequence[int] | None = None, options: Options | None = None,
                 weights: RewardWeights | None = None, inputs: PlantInputs | None = None) -> None:
        self.scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.rl_spec: Spec = build_spec(self.scn.site, options)
        self.encoder = Encoder(self.rl_spec)
        self._to_setpoints = ActionMapper(self.rl_spec)
        self.weights = weights or RewardWeights()
        n_days_total = self.scn.config.duration / DAY_S
        if episode_days is not None and episode_days > n_days_total + 1e-9:
            raise ValueError(f"episode_days={episode_days} is longer than the scenario "
                             f"({n_days_total:g} days)")
        self.episode_days = episode_days
        if episode_days is None:
            self.start_days: list[int] = [0]
        elif start_days is None:
            self.start_days = list(range(int(np.floor(n_days_total - episode_days + 1e-9)) + 1))
        else:
            self.start_days = [int(d) for d in start_days]
            bad = [d for d in self.start_days if d < 0 or d + episode_days > n_days_total + 1e-9]
            if bad or not self.start_days:
                raise ValueError(f"start_days {bad or '[]'}: windows must fit in the scenario's "
                                 f"{n_days_total:g} days")
        self.observation_space = gym.spaces.Box(np.asarray(self.rl_spec.obs_low, np.float32),
                                                np.asarray(self.rl_spec.obs_high, np.float32),
                                                dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, shape=(self.rl_spec.n_act,), dtype=np.float32)
        s = self.rl_spec.scales
        self._e_ref_per_h = s.ev_kw + s.mall_kw
        self._pv_ref = s.pv_ac_kw
        self._ev_ref = s.ev_kw
        self._price_ref = s.price_per_kwh
        if inputs is None:
            from twin.components.inputs import build_inputs

            inputs = build_inputs(self.scn)
        self.inputs = inputs
        self._spd = round(DAY_S / self.scn.config.dt)
        self.twin: Twin | None = None
        self._obs: SiteObservation | None = None
        self._prev_import_kwh = 0.0
        self.start_day = 0
        self._dt_s = self._dt_h = self._e_ref = self._pv_ref_kwh = self._ev_ref_kwh = float("nan")
        self._cost_ref = self._bus_dt_h = self._export_kwh = float("nan")
        self._rec: Recorder | None = None
        self._w_src: RewardWeights | None = None
        self._w: tuple[float, ...] = ()
        self._rec_bufs: tuple[Any, ...] = ()

    # -- gymnasium API ---------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``options={'start_day': d}`` picks the window."""
        super().reset(seed=seed)
        if options and "start_day" in options:
            day = int(options["start_day"])
        else:
            day = int(self.start_days[int(self.np_random.integers(len(self.start_days)))])
        self.start_day = day
        if self.episode_days is None:
            scn, inputs = self.scn, self.inputs
        else:
            scn = window_scenario(self.scn, day, self.episode_days)
            inputs = slice_inputs(self.inputs, day * self._spd, scn.config.n_steps)
        twin = Twin(scn, EnvActions(), inputs=inputs)
        self.twin = twin
        obs = twin.reset()
        self.encoder.prepare(twin.context.forecaster, twin.context.n_steps, twin.context.dt_s)
        self._obs = obs
        self._prev_import_kwh = 0.0
        self._set_step_length(twin.dt_s)
        self._bus_dt_h = twin.dt_s / 3600.0
        self._export_kwh = self.scn.site.grid.export_limit_kw * self._bus_dt_h
        return self.encoder.encode(obs), {"start_day": day, "n_steps": twin.n_steps}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for one tick; return (observation, reward, terminated, truncated, info)."""
        twin, obs = self.twin, self._obs
        if twin is None or obs is None:
            raise RuntimeError("call reset() before step()")
        if twin.done:
            raise RuntimeError("the episode is over: call reset()")
        nxt = twin.step(self._to_setpoints(action, obs))
        k = twin.k - 1
        if obs.dt_s != self._dt_s:
            self._set_step_length(obs.dt_s)
        rec = twin.rec
        if rec is not self._rec:
            self._bind_record(rec)
        # the site bus of the step just run: the results' split (``split_bus``, as
        # ``Twin.step_record``), read from the record's stdlib arrays (Python floats)
        b_ev, b_pv, b_dis, b_mall, b_ch, b_clamps = self._rec_bufs
        bus_h = self._bus_dt_h
        e_ev = b_ev[k]
        fl = split_bus(b_pv[k] * bus_h, e_ev, b_mall[k] * bus_h, b_ch[k], b_dis[k],
                       self._export_kwh, min, max)
        imp = fl.grid_import_kwh
        curtailed = fl.pv_curtailed_kwh
        dt_h = self._dt_h
        e_ref = self._e_ref
        p_ev, p_inflex = obs[9:11]  # p_ev_kw, p_ev_inflexible_kw (order guarded in encoding)
        ev_possible = p_ev - p_inflex  # max(·, 0.0) as the builtin: 0.0 only when 0.0 > it
        ev_possible = (0.0 if ev_possible < 0.0 else ev_possible) * dt_h
        ev_done = e_ev - p_inflex * dt_h
        ev_short = ev_possible - (0.0 if ev_done < 0.0 else ev_done)
        r_co2 = -imp / e_ref
        r_solar = -curtailed / self._pv_ref_kwh
        r_ev = -(0.0 if ev_short < 0.0 else ev_short) / self._ev_ref_kwh
        r_ramp = -abs(imp - self._prev_import_kwh) / e_ref if k > 0 else 0.0
        r_cost = -imp * obs.tariff.price_per_kwh / self._cost_ref
        w = self.weights
        if w is not self._w_src:
            self._w_src, self._w = w, (w.co2, w.solar, w.ev, w.ramp, w.cost)
        w_co2, w_solar, w_ev, w_ramp, w_cost = self._w
        reward = w_co2 * r_co2 + w_solar * r_solar + w_ev * r_ev + w_ramp * r_ramp + w_cost * r_cost
        self._prev_import_kwh = imp
        self._obs = nxt
        info: dict[str, Any] = {"k": k, "n_clamps": b_clamps[k], "r_co2": r_co2,
                                "r_solar": r_solar, "r_ev": r_ev, "r_ramp": r_ramp, "r_cost": r_cost}
        return self.encoder.encode(nxt), float(reward), twin.done, False, info

    def _bind_record(self, rec: Recorder) -> None:
        """Read the step energies from ``rec`` (the running twin's record)."""
        self._rec = rec
        self._rec_bufs = (rec.b_e_ev_kwh, rec.b_p_pv_kw, rec.b_e_bess_discharge_kwh, rec.b_p_mall_kw,
                          rec.b_e_bess_charge_kwh, rec.b_n_clamps)

    def _set_step_length(self, dt_s: float) -> None:
        """The reward's denominators for observations of steps of ``dt_s`` [s] (the same
        products as computing them every step)."""
        dt_h = dt_s / 3600.0
        self._dt_s, self._dt_h = dt_s, dt_h
        self._e_ref = self._e_ref_per_h * dt_h
        self._pv_ref_kwh = self._pv_ref * dt_h
        self._ev_ref_kwh = self._ev_ref * dt_h
        self._cost_ref = self._e_ref * self._price_ref

    # -- helpers ---------------------------------------------------------------------
    @property
    def site_obs(self) -> SiteObservation | None:
        """The raw observation of the coming step (what a rule controller would see)."""
        return self._obs

    def describe(self) -> dict[str, Any]:
        """Configuration of the environment (for training.json)."""
        return {"scenario": str(self.scn.path), "episode_days": self.episode_days,
                "start_days": self.start_days, "weights": asdict(self.weights),
                "options": asdict(self.rl_spec.options), "spec_hash": self.rl_spec.hash,
                "n_obs": self.rl_spec.n_obs, "n_act": self.rl_spec.n_act}


__all__ = ["RewardWeights", "TwinEnv", "slice_inputs", "window_scenario"]

"""Forecasts for controllers, and the context a controller may prepare with.

A controller that plans (an LP, an MPC, an RL policy with look-ahead) implements the
optional ``prepare(context)``; the driver calls it once before the first step with a
``ControlContext``: the horizon (step index, ``dt_s``), the tariff over the horizon, the
socket specs and a ``Forecaster``.

Forecaster methods take a first step ``k0`` (0-based step index of the run) and a number
of steps ``n`` and return one value per step ``k0 .. k0 + n - 1``. Steps past the end of
the scenario repeat the last simulated day (the same time of day), so a rolling horizon
may run past the end.

Implementations (scenario key ``forecast``):

* ``perfect`` — the scenario's own inputs (perfect foresight).
* ``persistence`` — the same time of day on the most recent day that is known at ``k0``
  (yesterday, for the first 24 h ahead); before one day of history exists the value
  measured at ``k0`` is held.
* ``{noisy: {rmse_frac: 0.15}}`` — perfect values × (1 + e), e ~ N(0, rmse_frac) drawn once
  per step from the scenario seed (a step's forecast does not change with the lead time
  or with who asks), clipped at 0. EV energy per step and each session's energy get their
  own draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from twin.config import NoisyForecastSpec, SiteConfig
from twin.inputs import PlantInputs, SessionTable, SocketSpec
from twin.tariff import TariffSchedule
from twin.types import BoolArray, FloatArray


@runtime_checkable
class Forecaster(Protocol):
    """Forecasts of the exogenous inputs, one value per step from step ``k0``."""

    name: str

    def pv_kw(self, k0: int, n: int) -> FloatArray:
        """PV AC power available, mean per step [kW]."""
        ...

    def mall_kw(self, k0: int, n: int) -> FloatArray:
        """Mall demand, mean per step [kW]."""
        ...

    def ev_energy_kwh(self, k0: int, n: int) -> FloatArray:
        """EV energy requested by the vehicles that arrive in each step [kWh] (for an
        inflexible EV profile: the profile's energy in each step)."""
        ...

    def sessions(self, k0: int, n: int) -> SessionTable:
        """Sessions arriving in steps ``k0 .. k0 + n - 1`` (times in s since the run start)."""
        ...


def _wrap_index(k: np.ndarray, n_steps: int, spd: int) -> np.ndarray:
    """Indices past the end mapped onto the last simulated day (same time of day)."""
    if n_steps <= 0:
        return np.zeros_like(k)
    over = k >= n_steps
    if over.any():
        back = np.ceil((k[over] - (n_steps - 1)) / spd).astype(np.int64) * spd
        k = k.copy()
        k[over] = np.maximum(k[over] - back, 0)
    return k


def ev_energy_per_step(inputs: PlantInputs) -> FloatArray:
    """EV energy requested by arrivals in each step [kWh] (or the profile's energy)."""
    n = len(inputs.index)
    if inputs.p_ev_profile_kw is not None:
        return np.asarray(inputs.p_ev_profile_kw, float) * (inputs.dt_s / 3600.0)
    s = inputs.sessions
    if s is None or s.n == 0:
        return np.zeros(n)
    k = np.minimum((s.arrival_s // inputs.dt_s).astype(np.int64), n - 1)
    return np.bincount(k, weights=s.e_req_kwh, minlength=n).astype(float)


def _subset(s: SessionTable, mask: np.ndarray, shift_s: float = 0.0,
            e_scale: np.ndarray | None = None) -> SessionTable:
    e = s.e_req_kwh[mask]
    if e_scale is not None:
        e = e * e_scale[mask]
    latest = s.latest_departure_s
    return SessionTable(s.arrival_s[mask] + shift_s, s.departure_s[mask] + shift_s,
                        s.type_code[mask], e, s.p_max_kw[mask], s.patience_s[mask],
                        latest[mask] + shift_s if latest is not None else None)


class PerfectForecaster:
    """Perfect foresight from the scenario's own inputs."""

    name = "perfect"

    def __init__(self, inputs: PlantInputs) -> None:
        self.inputs = inputs
        self.n_steps = len(inputs.index)
        self.dt_s = inputs.dt_s
        self.spd = max(1, round(86400.0 / inputs.dt_s))
        self._pv = np.asarray(inputs.p_pv_kw, float)
        self._mall = np.asarray(inputs.p_mall_kw, float)
        self._ev = ev_energy_per_step(inputs)

    def _idx(self, k0: int, n: int) -> np.ndarray:
        if k0 < 0 or n < 0:
            raise ValueError(f"forecast window k0={k0}, n={n}: both must be >= 0")
        return _wrap_index(np.arange(k0, k0 + n, dtype=np.int64), self.n_steps, self.spd)

    def pv_kw(self, k0: int, n: int) -> FloatArray:
        """PV AC power available, mean per step [kW]."""
        return self._pv[self._idx(k0, n)]

    def mall_kw(self, k0: int, n: int) -> FloatArray:
        """Mall demand, mean per step [kW]."""
        return self._mall[self._idx(k0, n)]

    def ev_energy_kwh(self, k0: int, n: int) -> FloatArray:
        """EV energy requested by arrivals per step [kWh]."""
        return self._ev[self._idx(k0, n)]

    def sessions(self, k0: int, n: int) -> SessionTable:
        """The sessions that arrive in the window (perfect: the real ones)."""
        s = self._sessions()
        t0, t1 = k0 * self.dt_s, (k0 + n) * self.dt_s
        return _subset(s, (s.arrival_s >= t0) & (s.arrival_s < t1))

    def _sessions(self) -> SessionTable:
        s = self.inputs.sessions
        if s is None:
            z = np.zeros(0)
            return SessionTable(z, z, np.zeros(0, np.int64), z, z, z)
        return s


class PersistenceForecaster(PerfectForecaster):
    """Tomorrow looks like today: the same time of day on the latest known day."""

    name = "persistence"

    def _persist(self, series: FloatArray, k0: int, n: int) -> FloatArray:
        if k0 < 0 or n < 0:
            raise ValueError(f"forecast window k0={k0}, n={n}: both must be >= 0")
        k = np.arange(k0, k0 + n, dtype=np.int64)
        # the smallest m >= 1 with k - m*spd <= k0 (known at k0)
        m = np.maximum(1, np.ceil((k - k0) / self.spd).astype(np.int64))
        src = k - m * self.spd
        known = src >= 0
        last = series[min(k0, self.n_steps - 1)]
        out = np.full(n, last, dtype=float)
        out[known] = series[src[known]]
        return out

    def pv_kw(self, k0: int, n: int) -> FloatArray:
        """PV power of the same step on the latest known day [kW]."""
        return self._persist(self._pv, k0, n)

    def mall_kw(self, k0: int, n: int) -> FloatArray:
        """Mall demand of the same step on the latest known day [kW]."""
        return self._persist(self._mall, k0, n)

    def ev_energy_kwh(self, k0: int, n: int) -> FloatArray:
        """EV energy requested in the same step on the latest known day [kWh]."""
        return self._persist(self._ev, k0, n)

    def sessions(self, k0: int, n: int) -> SessionTable:
        """The last known day's sessions moved forward by whole days.

        Target instants in ``[t0 + (m-1) day, t0 + m day)`` copy the arrivals of
        ``[t0 - day, t0)`` moved by ``m`` days (``t0`` = start of step ``k0``, the last
        instant known when the controller decides).
        """
        s = self._sessions()
        day_s = self.spd * self.dt_s
        t0, t1 = k0 * self.dt_s, (k0 + n) * self.dt_s
        parts: list[SessionTable] = []
        m = 1
        while t0 + (m - 1) * day_s < t1:
            lo = t0 + (m - 1) * day_s
            hi = min(t1, t0 + m * day_s)
            src = (s.arrival_s >= lo - m * day_s) & (s.arrival_s < hi - m * day_s)
            parts.append(_subset(s, src, shift_s=m * day_s))
            m += 1
        return _concat(parts)


def _concat(parts: list[SessionTable]) -> SessionTable:
    if not parts:
        z = np.zeros(0)
        return SessionTable(z, z, np.zeros(0, np.int64), z, z, z)
    cols = [np.concatenate([getattr(p, f) for p in parts]) for f in
            ("arrival_s", "departure_s", "type_code", "e_req_kwh", "p_max_kw", "patience_s")]
    order = np.argsort(cols[0], kind="stable")
    lat = [p.latest_departure_s for p in parts if p.latest_departure_s is not None]
    latest = np.concatenate(lat)[order] if len(lat) == len(parts) else None
    a, d, t, e, pm, pat = (c[order] for c in cols)
    return SessionTable(a, d, t, e, pm, pat, latest_departure_s=latest)


class NoisyForecaster(PerfectForecaster):
    """Perfect values with a seeded multiplicative error of a given RMSE."""

    name = "noisy"

    def __init__(self, inputs: PlantInputs, rmse_frac: float, seed: int) -> None:
        super().__init__(inputs)
        if not 0.0 <= rmse_frac <= 1.0:
            raise ValueError(f"rmse_frac must be in [0, 1], got {rmse_frac!r}")
        self.rmse_frac = rmse_frac
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0F0CA57]))
        n = self.n_steps
        self._e_pv = rng.normal(0.0, rmse_frac, n)
        self._e_mall = rng.normal(0.0, rmse_frac, n)
        self._e_ev = rng.normal(0.0, rmse_frac, n)
        s = self._sessions()
        self._e_sess = 1.0 + rng.normal(0.0, rmse_frac, s.n)
        self._pv = np.maximum(self._pv * (1.0 + self._e_pv), 0.0)
        self._mall = np.maximum(self._mall * (1.0 + self._e_mall), 0.0)
        self._ev = np.maximum(self._ev * (1.0 + self._e_ev), 0.0)

    def sessions(self, k0: int, n: int) -> SessionTable:
        """The real arrivals with a noisy energy request each."""
        s = self._sessions()
        t0, t1 = k0 * self.dt_s, (k0 + n) * self.dt_s
        return _subset(s, (s.arrival_s >= t0) & (s.arrival_s < t1),
                       e_scale=np.maximum(self._e_sess, 0.0))


def make_forecaster(spec: Any, inputs: PlantInputs, seed: int) -> Forecaster:
    """The forecaster a scenario's ``forecast`` key names."""
    if spec == "perfect" or spec is None:
        return PerfectForecaster(inputs)
    if spec == "persistence":
        return PersistenceForecaster(inputs)
    if isinstance(spec, NoisyForecastSpec):
        return NoisyForecaster(inputs, spec.noisy.rmse_frac, seed)
    raise ValueError(f"unknown forecast {spec!r}: use perfect, persistence or "
                     "{noisy: {rmse_frac: 0.15}}")


@dataclass(frozen=True)
class ControlContext:
    """What a planning controller receives once before the first step.

    Attributes
    ----------
    index : step starts (site-local, tz-aware), the whole horizon.
    dt_s : step length [s].
    n_steps : steps in the horizon.
    price_per_kwh : energy price per step [currency/kWh].
    is_peak : peak-tariff flag per step.
    sockets : the station's sockets (type code and rating [kW] per socket).
    site : the validated site configuration (battery, grid, tariff, ...).
    forecaster : forecasts of PV, mall and EV demand (see ``twin.forecast``).
    seed : the scenario seed.
    tariff : the tariff on the horizon's steps (periods, billing months, demand charges,
        fixed charge: ``twin.tariff.TariffSchedule``); None: energy prices only.
    """

    index: pd.DatetimeIndex
    dt_s: float
    n_steps: int
    price_per_kwh: FloatArray
    is_peak: BoolArray
    sockets: SocketSpec
    site: SiteConfig
    forecaster: Forecaster
    seed: int
    tariff: TariffSchedule | None = None


__all__ = ["ControlContext", "Forecaster", "NoisyForecaster", "PerfectForecaster",
           "PersistenceForecaster", "ev_energy_per_step", "make_forecaster"]

"""Prometheus metrics of shadow mode (``twin shadow``): the site as measured, and measured
vs predicted.

On one registry (:class:`~twin.monitoring.metrics.ConsistentRegistry`):

* the live metric catalogue of ``twin live`` / ``twin hil`` (same names, labels, units) for
  **the site as measured**: each tick's telemetry is recorded into a ``Recorder`` by the
  devices' ``SiteIO`` (:class:`twin.engine.sites.DeviceSiteIO`, whose
  :class:`~twin.engine.telemetry.TelemetryRecorder` never integrates an invalid or held
  reading as energy) and published by the same :class:`~twin.monitoring.metrics.MetricsSink`
  (:class:`MeasuredSite` is what it reads, in place of a ``Twin``). A step is settled when
  the next tick reads its end, so a run of N ticks settles N - 1 steps (the last tick's
  step has no next read; as ``timeseries.parquet``). A battery reading is integrated only
  when it is the battery's very next update (its heartbeat moved by one: the shadow
  model's ``bess_updates`` 1), as the per-step table. The families of
  :data:`~twin.monitoring.catalogue.CONTROLLER_ONLY` (phase, decide time, clamps,
  setpoints, socket limits) are not exported: shadow mode controls nothing;
* its own gauges, units in the names: ``twin_shadow_<q>_measured``, ``_predicted``,
  ``_residual`` (measured - predicted) for ``q`` in ``pv_power_kw``, ``bess_soc_percent``,
  ``bess_energy_kwh``, ``grid_import_kw`` (absent until a tick has both values: a NaN is
  not exported); ``twin_shadow_ghi_w_m2``, ``twin_shadow_air_temperature_celsius``,
  ``twin_shadow_module_temperature_celsius`` (the weather station); ``twin_shadow_step``
  (ticks done), ``twin_shadow_charger_fault`` (1: the charge-point controller reports a
  fault), ``twin_shadow_reading_age_seconds{device}`` (site time since the device's last
  valid reading [s]), ``twin_shadow_devices_lost`` (1: a device has not answered for
  ``--device-timeout``).

Alerting rules on the shadow gauges: ``config/prometheus/alerts.yml``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adapters.base import DeviceIO, Telemetry
from twin.config import Scenario
from twin.engine.clocks import Clock
from twin.engine.safety import ClampLog
from twin.engine.sites import DeviceSiteIO
from twin.inputs import SocketSpec
from twin.monitoring.metrics import MetricsSink, TwinMetrics
from twin.record import Recorder
from twin.shadow.model import QUANTITIES
from twin.tariff import clock_hour
from twin.tariff import schedule as tariff_schedule

KINDS = ("measured", "predicted", "residual")
WEATHER = (("ghi_w_m2", "twin_shadow_ghi_w_m2", "Global horizontal irradiance measured [W/m2]"),
           ("t_amb_c", "twin_shadow_air_temperature_celsius", "Air temperature measured [C]"),
           ("t_module_c", "twin_shadow_module_temperature_celsius",
            "Back-of-module temperature measured [C]"))


@dataclass(frozen=True)
class Calendar:
    """The run's calendar as the sink reads it (``SinkInputs``): step starts, step length
    [s], local hour of each step start, energy price per step [currency/kWh]."""

    index: pd.DatetimeIndex
    dt_s: float
    hour: np.ndarray
    price_per_kwh: np.ndarray

    @classmethod
    def of(cls, scn: Scenario) -> Calendar:
        """The calendar of ``scn`` (as ``build_inputs`` computes it, without the models)."""
        idx = scn.index
        hour = clock_hour(idx)
        price = tariff_schedule(scn.site.tariff, idx, hour).price_per_kwh
        return cls(idx, float(scn.config.dt), hour, price)


class MeasuredSite:
    """The site as ``twin shadow`` measures it, in the shape
    :class:`~twin.monitoring.metrics.MetricsSink` reads (``SinkSource``): the record the
    devices' ``SiteIO`` fills from each tick's read. No controller, no write.

    Parameters
    ----------
    scn : the scenario (horizon, step, the site's batteries, sockets and tariff).
    io : the connected, read-only devices (``adapters.modbus.site.ModbusSiteIO``).
    clock : the run's wall clock (the adapters' simulated time).
    """

    #: Nothing is controlled: the sink updates no controller-only family.
    controller: object | None = None

    def __init__(self, scn: Scenario, io: DeviceIO, clock: Clock) -> None:
        self.scn = scn
        self.n_steps = scn.config.n_steps
        self.inputs = Calendar.of(scn)
        spec = SocketSpec.from_config(scn.site.ev)
        n_sock = int(spec.p_rating_kw.shape[0])
        names = tuple(b.name for b in scn.site.batteries)
        self.rec = Recorder(self.n_steps, n_sock, names if len(names) >= 2 else ())
        self.site = DeviceSiteIO(io, clock, dt_s=scn.config.dt, type_code=spec.type_code)
        self.site.open(self.rec)
        self.clamps = ClampLog()  # never clamps: nothing is commanded
        self.p_socket_limit_kw = np.zeros(n_sock)  # nothing is commanded
        self.tel: Telemetry | None = None
        #: the last step is settled (the sink renders it at once)
        self.done = False

    def tick(self, k: int, tel: Telemetry, bess_aligned: bool) -> None:
        """Tick ``k``'s read (at ``t_k``, a little after the step boundary): it settles step
        ``k - 1`` (battery and sockets over that step, at its end) and gives the meters of
        step ``k`` (recorded as the tick driver does: only a valid reading).
        ``bess_aligned``: the battery reading is the update right after the last tick's
        (else it is not integrated: held)."""
        rec = self.rec
        if k > 0 and not bess_aligned and "bess" not in tel.held:
            self.site.take(k - 1, tel._replace(held=(*tel.held, "bess")))
        else:
            self.site.take(k - 1, tel)
        self.tel = tel
        if k < self.n_steps:
            m = tel.meters
            if m.valid:  # a held (invalid) meter reading is never turned into kWh
                rec.b_p_pv_kw[k] = m.p_pv_kw
                rec.b_p_mall_kw[k] = m.p_mall_kw
            rec.b_n_plugged[k] = tel.sockets.n_occupied
            rec.b_n_waiting[k] = tel.n_waiting
        rec.k_done = max(k, 0)
        self.done = k + 1 >= self.n_steps


class ShadowMetrics:
    """The metrics of a shadow run (see the module docstring)."""

    def __init__(self) -> None:
        from prometheus_client import Gauge

        #: the live catalogue, less the controller-only families
        self.site = TwinMetrics(controller=False)
        self.registry = r = self.site.registry
        self.q = {(q, kind): Gauge(f"twin_shadow_{q}_{kind}", f"{q.replace('_', ' ')} {kind}"
                                   + (" (measured - predicted)" if kind == "residual" else ""),
                                   registry=r)
                  for q in QUANTITIES for kind in KINDS}
        self.weather = {col: Gauge(name, doc, registry=r) for col, name, doc in WEATHER}
        self.step = Gauge("twin_shadow_step", "Ticks done in the shadow run", registry=r)
        self.charger_fault = Gauge("twin_shadow_charger_fault", "1 when the charge-point "
                                   "controller reports a fault", registry=r)
        self.age = Gauge("twin_shadow_reading_age_seconds", "Site time since the device's "
                         "last valid reading [s]", ["device"], registry=r)
        self.lost = Gauge("twin_shadow_devices_lost", "1 when a device stopped answering",
                          registry=r)
        self.measured: MeasuredSite | None = None
        self.sink: MetricsSink | None = None
        self._speed = 0.0
        self._lag_fn: Callable[[], float] | None = None

    def follow(self, measured: MeasuredSite, speed: float,
               lag_fn: Callable[[], float] | None = None) -> None:
        """Publish the site as measured (before tick 0); ``speed``: simulated seconds per
        wall second; ``lag_fn``: how far the run is behind its schedule [s wall]."""
        self.measured, self._speed, self._lag_fn = measured, speed, lag_fn

    def update(self, row: dict[str, float], age_s: dict[str, float], lost: bool,
               tel: Telemetry | None = None) -> None:
        """Publish one tick's row (``ShadowModel.step``), the readings' ages [s] and, with
        ``tel`` (the tick's read) once :meth:`follow` was called, the step it settles."""
        with self.registry.update_lock:
            self._gauges(row, age_s, lost)
        if self.measured is None or tel is None:
            return
        k = int(row["step"])
        self.measured.tick(k, tel, row.get("bess_updates") == 1.0)
        if self.sink is None:
            self.sink = MetricsSink(self.measured, self.site, mode="shadow", speed=self._speed)
            self.sink.lag_fn = self._lag_fn
        if k > 0:
            self.sink(k - 1)

    def _gauges(self, row: dict[str, float], age_s: dict[str, float], lost: bool) -> None:
        for (q, kind), g in self.q.items():
            v = row.get(f"{q}_{kind}", math.nan)
            if math.isfinite(v):
                g.set(v)
        for col, g in self.weather.items():
            v = row.get(col, math.nan)
            if math.isfinite(v):
                g.set(v)
        self.step.set(row["step"] + 1)
        self.charger_fault.set(row.get("charger_fault", 0.0))
        for dev, a in age_s.items():
            self.age.labels(device=dev).set(a)
        self.lost.set(1.0 if lost else 0.0)

    def names(self) -> list[str]:
        """The shadow's own families (``twin_shadow_*``; for tests and docs)."""
        return [fam.name for fam in self.registry.collect()
                if fam.name.startswith("twin_shadow_")]


__all__ = ["Calendar", "MeasuredSite", "ShadowMetrics"]

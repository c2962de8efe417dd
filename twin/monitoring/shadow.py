"""Prometheus metrics of shadow mode (``twin shadow``): measured, predicted, residual.

Gauges (own registry), units in the names:

* ``twin_shadow_<q>_measured``, ``_predicted``, ``_residual`` (measured - predicted) for
  ``q`` in ``pv_power_kw``, ``bess_soc_percent``, ``bess_energy_kwh``, ``grid_import_kw``
  (absent until a tick has both values: a NaN is not exported);
* ``twin_shadow_ghi_w_m2``, ``twin_shadow_air_temperature_celsius``,
  ``twin_shadow_module_temperature_celsius`` (the weather station);
* ``twin_shadow_step`` (ticks done), ``twin_shadow_charger_fault`` (1: the charge-point
  controller reports a fault), ``twin_shadow_reading_age_seconds{device}`` (site time since
  the device's last valid reading [s]), ``twin_shadow_devices_lost`` (1: a device has not
  answered for ``--device-timeout``).

Alerting rules on them: ``config/prometheus/alerts.yml``.
"""

from __future__ import annotations

import math

from twin.shadow.model import QUANTITIES

KINDS = ("measured", "predicted", "residual")
WEATHER = (("ghi_w_m2", "twin_shadow_ghi_w_m2", "Global horizontal irradiance measured [W/m2]"),
           ("t_amb_c", "twin_shadow_air_temperature_celsius", "Air temperature measured [C]"),
           ("t_module_c", "twin_shadow_module_temperature_celsius",
            "Back-of-module temperature measured [C]"))


class ShadowMetrics:
    """The gauges of a shadow run (see the module docstring)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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

    def update(self, row: dict[str, float], age_s: dict[str, float], lost: bool) -> None:
        """Publish one tick's row (``ShadowModel.step``) and the readings' ages [s]."""
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
        """Every family this registry exports (for tests and docs)."""
        out: list[str] = []
        for fam in self.registry.collect():
            out.append(fam.name)
        return out


__all__ = ["ShadowMetrics"]

"""Link metrics of a run against devices (``twin hil``): steps, cycle time, Modbus counters.

They come on top of the full metric catalogue (``twin.monitoring.metrics``), which
``twin hil`` publishes as ``twin live`` does, on the same registry.
"""

from __future__ import annotations

from typing import Any


class HilMetrics:
    """Link metrics of a HIL run (base units: seconds, counts), on ``registry`` (the
    catalogue's) or their own.

    ``twin_hil_step`` (steps done), ``twin_hil_cycle_seconds`` (histogram of control
    cycles), and per ``device``: ``twin_hil_requests_total``, ``twin_hil_comm_errors_total``,
    ``twin_hil_retries_total``, ``twin_hil_timeouts_total``, ``twin_hil_reconnects_total``,
    ``twin_hil_invalid_reads_total``, ``twin_hil_write_failures_total`` and the gauge
    ``twin_hil_telemetry_valid`` (1 valid, 0 invalid).
    """

    COUNTERS = (("requests", "requests"), ("comm_errors", "errors"), ("retries", "retries"),
                ("timeouts", "timeouts"), ("reconnects", "reconnects"),
                ("invalid_reads", "invalid_reads"), ("write_failures", "write_failures"))

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self.registry = registry if registry is not None else CollectorRegistry(
            auto_describe=True)
        self.cycle = Histogram("twin_hil_cycle_seconds", "Control cycle over Modbus (read all, "
                               "decide, clamp, write all) [s]", registry=self.registry,
                               buckets=(5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1,
                                        0.25, 0.5, 1.0, 2.5))
        self.step = 0
        self.devices: dict[str, dict[str, float]] = {}
        self.valid: dict[str, bool] = {}
        self.registry.register(self)

    def describe(self) -> list[Any]:
        """No fixed descriptions (collected at scrape time)."""
        return []

    def collect(self) -> Any:
        """The per-device families, from the last update."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        g = GaugeMetricFamily("twin_hil_step", "Steps done in the HIL run")
        g.add_metric([], float(self.step))
        yield g
        for name, key in self.COUNTERS:
            c = CounterMetricFamily(f"twin_hil_{name}", f"Modbus {name.replace('_', ' ')} "
                                    "per device", labels=["device"])
            for dev, d in sorted(self.devices.items()):
                c.add_metric([dev], float(d.get(key, 0.0)))
            yield c
        v = GaugeMetricFamily("twin_hil_telemetry_valid", "1 when the device's telemetry "
                              "was valid in the last cycle", labels=["device"])
        for dev, ok in sorted(self.valid.items()):
            v.add_metric([dev], 1.0 if ok else 0.0)
        yield v

    def update(self, k: int, cycle_s: float, devices: dict[str, dict[str, Any]],
               valid: dict[str, bool]) -> None:
        """Record step ``k`` (done) and its cycle time [s]."""
        self.step = k + 1
        self.cycle.observe(cycle_s)
        self.devices = {d: {k2: float(v) for k2, v in s.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)}
                        for d, s in devices.items()}
        self.valid = valid


__all__ = ["HilMetrics"]

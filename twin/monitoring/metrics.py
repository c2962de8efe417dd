"""Prometheus metrics of the twin: the catalogue, in base units, and the per-step sink.

Everything inside the twin is in kW, kWh, kg and fractions (docs/spec.md §3); Prometheus wants
base units (watts, joules, grams, ratios, seconds). This module is the only place where
that conversion happens.

* :class:`TwinMetrics` — every metric of the catalogue on its own ``CollectorRegistry``
  (no global registry; several twins can live in one process). The registry is
  :class:`ConsistentRegistry`: a scrape never sees a half-updated step.
* :class:`MetricsSink` — fed once per settled step through ``Twin.on_step``; it reads the
  recorder's row for the step, splits the step energies into flows with
  :func:`twin.engine.balance.allocate_flows` (the same function the results use) and updates
  the metrics.

The catalogue (name, type, labels, unit, meaning, help) is one table,
:data:`twin.monitoring.catalogue.CATALOGUE`; the collectors here, the OpenMetrics export
and the tables of ``docs/metrics.md`` all come from it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.metrics_core import Metric

from adapters.base import Telemetry
from twin.config import Scenario
from twin.engine import kpis
from twin.engine.balance import allocate_flows
from twin.engine.safety import CLAMP_REASONS, ClampLog
from twin.engine.sites import SessionCounts
from twin.inputs import SocketSpec
from twin.monitoring.catalogue import BY_NAME, CONTROLLER_ONLY
from twin.record import Recorder
from twin.tariff import schedule as tariff_schedule

#: Conversions, written once [base unit per twin unit].
W_PER_KW = 1_000.0
J_PER_KWH = 3.6e6
G_PER_KG = 1_000.0

#: Energy flows with a counter each: name in the metric → column of the per-step table.
FLOWS: dict[str, str] = {
    "pv_to_ev": "pv_to_ev_kwh",
    "pv_to_bess": "pv_to_bess_kwh",
    "pv_to_mall": "pv_to_mall_kwh",
    "pv_curtailed": "pv_curtailed_kwh",
    "pv_export": "pv_export_kwh",
    "bess_to_ev": "bess_to_ev_kwh",
    "bess_to_mall": "bess_to_mall_kwh",
    "grid_to_ev": "grid_import_ev_kwh",
    "grid_to_mall": "grid_import_mall_kwh",
    "grid_to_bess": "grid_to_bess_kwh",
}

#: Totals with a counter each (not flows; sums of flows or meter readings).
TOTALS: dict[str, str] = {
    "pv": "pv_kwh",
    "ev": "ev_kwh",
    "mall": "mall_kwh",
    "grid_import": "grid_import_kwh",
    "bess_charge": "bess_charge_kwh",
    "bess_discharge": "bess_discharge_kwh",
}


#: Per-battery families (label ``battery``), in the order :class:`MetricsSink` fills them:
#: power, command, SOC, stored energy, capacity, charge and discharge counters.
UNIT_FAMILIES: tuple[str, ...] = (
    "twin_bess_unit_power_watts", "twin_bess_unit_command_watts", "twin_bess_unit_soc_ratio",
    "twin_bess_unit_stored_energy_joules", "twin_bess_unit_capacity_joules",
    "twin_bess_unit_charge_joules", "twin_bess_unit_discharge_joules")

#: Device links with communication-health metrics (filled from the adapters' ``health``).
COMM_DEVICES: tuple[str, ...] = ("bess", "chargers", "meters")

#: Buckets of the controller decide-time histogram [s].
DECIDE_BUCKETS: tuple[float, ...] = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,
                                     5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25,
                                     0.5, 1.0)

class ConsistentRegistry(CollectorRegistry):
    """A registry whose ``collect`` and the sink's updates exclude each other.

    The sink updates a few dozen metrics per step; holding :attr:`update_lock` while it
    does, and while a scrape takes its snapshot, makes every scrape show one step.
    """

    def __init__(self) -> None:
        super().__init__(auto_describe=True)
        self.update_lock = threading.Lock()
        #: Bumped by the sink after each step (under the lock): scrapes of one version
        #: may share one rendering (``twin.monitoring.http``).
        self.version = 0
        #: Set by the HTTP server: the sink then renders the exposition after a step when
        #: it is due, in its own thread, so scrapes only send bytes.
        self.serving = False
        self._render_lock = threading.Lock()
        self._rendered = b""
        self._rendered_version = -1
        self._rendered_t = -math.inf

    #: Shortest time between two renderings of a served registry [s] (see :meth:`exposition`).
    MIN_REFRESH_S = 0.1
    #: Longest a rendering is reused [s] (values set outside the sink).
    MAX_AGE_S = 0.25

    def exposition(self, *, fresh: bool = False) -> bytes:
        """The Prometheus text exposition, rendered once per :attr:`version` at most every
        :attr:`MIN_REFRESH_S` (a twin running flat out settles thousands of steps a second;
        rendering each would starve the scrapers), redone after :attr:`MAX_AGE_S` anyway.

        A rendering is one consistent step; it may lag the newest step by at most
        :attr:`MIN_REFRESH_S` of wall time.
        """
        with self._render_lock:
            now = time.monotonic()
            age = now - self._rendered_t
            if fresh or age > self.MAX_AGE_S or (self.version != self._rendered_version
                                                 and age >= self.MIN_REFRESH_S):
                version = self.version
                self._rendered = generate_latest(self)
                self._rendered_version, self._rendered_t = version, now
            return self._rendered

    def collect(self) -> Iterable[Metric]:
        """Snapshot every collector under the update lock, then yield the snapshot."""
        with self.update_lock:
            snapshot = list(super().collect())
        yield from snapshot


class TwinMetrics:
    """The metric catalogue of the twin on its own registry.

    Parameters
    ----------
    registry : where to register; a fresh :class:`ConsistentRegistry` when None.
    controller : False: the families of
        :data:`~twin.monitoring.catalogue.CONTROLLER_ONLY` are created but not registered
        (not exported): a run that controls nothing (``twin shadow``).

    Notes
    -----
    Names carry base units: ``_watts``, ``_joules_total``, ``_grams_total``, ``_ratio``,
    ``_seconds``. Money has no base unit; cost metrics carry a ``currency`` label.
    """

    def __init__(self, registry: ConsistentRegistry | None = None, *,
                 controller: bool = True) -> None:
        r = registry if registry is not None else ConsistentRegistry()
        self.registry = r
        self.controller = controller
        # run
        self.run_info = self._m("twin_run")
        self.sim_time = self._m("twin_sim_time_seconds")
        self.sim_steps = self._m("twin_sim_steps")
        self.sim_steps_planned = self._m("twin_sim_steps_planned")
        self.sim_step_seconds = self._m("twin_sim_step_seconds")
        self.sim_speed = self._m("twin_sim_speed_ratio")
        self.sim_lag = self._m("twin_sim_lag_seconds")
        # powers (mean over the last settled step)
        self.pv_power = self._m("twin_pv_power_watts")
        self.pv_curtailed_power = self._m("twin_pv_curtailed_power_watts")
        self.mall_power = self._m("twin_mall_power_watts")
        self.ev_power = self._m("twin_ev_power_watts")
        self.grid_import_power = self._m("twin_grid_import_power_watts")
        self.bess_power = self._m("twin_bess_power_watts")
        self.bess_discharge_power = self._m("twin_bess_discharge_power_watts")
        self.bess_charge_power = self._m("twin_bess_charge_power_watts")
        self.bess_setpoint = self._m("twin_bess_setpoint_watts")
        # battery state (end of the last settled step)
        self.bess_soc = self._m("twin_bess_soc_ratio")
        self.bess_energy = self._m("twin_bess_stored_energy_joules")
        self.bess_capacity = self._m("twin_bess_capacity_joules")
        # per battery (two or more batteries; label ``battery``), in UNIT_FAMILIES order
        self.units = tuple(self._m(name) for name in UNIT_FAMILIES)
        # energy counters
        self.energy_flow = {f: self._m(f"twin_energy_{f}_joules") for f in FLOWS}
        self.energy_total = {f: self._m(f"twin_energy_{f}_joules") for f in TOTALS}
        # cost and CO2
        self.grid_cost = self._m("twin_grid_cost")
        self.co2_grid = self._m("twin_co2_grid_grams")
        self.co2_avoided = self._m("twin_co2_avoided_grams")
        self.today_cost = self._m("twin_today_grid_cost")
        self.today_savings = self._m("twin_today_bess_savings")
        self.today_co2_grid = self._m("twin_today_co2_grid_grams")
        self.today_co2_avoided = self._m("twin_today_co2_avoided_grams")
        self.today_energy = self._m("twin_today_energy_joules")
        # tariff
        self.tariff_price = self._m("twin_tariff_price_per_joule")
        self.tariff_period = self._m("twin_tariff_period")
        # controller
        self.phase = self._m("twin_controller_phase")
        self.phase_code = self._m("twin_controller_phase_code")
        self.decide = self._m("twin_controller_decide_seconds")
        self.decide_run = self._m("twin_controller_decide_run_seconds")  # export only
        self.clamps = self._m("twin_safety_clamps")
        self.reverse_flow_cuts = self._m("twin_plant_reverse_flow_cuts")
        # EV sessions and sockets
        self.sessions_arrived = self._m("twin_ev_sessions_arrived")
        self.sessions_served = self._m("twin_ev_sessions_served")
        self.sessions_turned_away = self._m("twin_ev_sessions_turned_away")
        self.sessions_satisfied = self._m("twin_ev_sessions_satisfied")
        self.sessions_short = self._m("twin_ev_sessions_short")
        self.sessions_satisfied_reduced = self._m("twin_ev_sessions_satisfied_reduced")
        self.sessions_refused = self._m("twin_ev_sessions_refused_closing")
        self.sessions_waiting = self._m("twin_ev_sessions_waiting")
        self.sockets_occupied = self._m("twin_ev_sockets_occupied")
        self.socket_power = self._m("twin_socket_power_watts")
        self.socket_limit = self._m("twin_socket_limit_watts")
        self.socket_occupied = self._m("twin_socket_occupied")
        # communication health (sim adapters count requests; Modbus adapters fill the rest)
        self.comm_requests = self._m("twin_comm_requests")
        self.comm_errors = self._m("twin_comm_errors")
        self.comm_retries = self._m("twin_comm_retries")
        self.comm_failsafe = self._m("twin_comm_failsafe")
        self.comm_failsafe_entries = self._m("twin_comm_failsafe_entries")
        self.comm_consecutive_errors = self._m("twin_comm_consecutive_errors")
        for dev in COMM_DEVICES:
            for m in (self.comm_requests, self.comm_errors, self.comm_retries,
                      self.comm_failsafe, self.comm_failsafe_entries,
                      self.comm_consecutive_errors):
                m.labels(device=dev)
        for reason in CLAMP_REASONS:
            self.clamps.labels(reason=reason)

    def _m(self, name: str) -> Any:
        """Create the collector of catalogue row ``name`` on this registry."""
        spec = BY_NAME[name]
        cls = {"gauge": Gauge, "counter": Counter, "histogram": Histogram, "info": Info}[spec.kind]
        kw: dict[str, Any] = {"buckets": DECIDE_BUCKETS} if spec.kind == "histogram" else {}
        reg = self.registry if self.controller or name not in CONTROLLER_ONLY else None
        return cls(spec.name, spec.help, list(spec.labels), registry=reg, **kw)

    def names(self) -> list[str]:
        """Every sample name the registry exposes (for the docs check)."""
        return sorted({s.name for m in self.registry.collect() for s in m.samples})


def _health_of(adapter: object) -> Any:
    return getattr(adapter, "health", None)


class SinkInputs(Protocol):
    """The calendar the sink reads (``PlantInputs`` has it)."""

    @property
    def index(self) -> Any:
        """Step starts (``pd.DatetimeIndex``, site-local)."""
        ...

    @property
    def dt_s(self) -> float:
        """Step length [s]."""
        ...

    @property
    def hour(self) -> Any:
        """Local hour of each step start (float array)."""
        ...

    @property
    def price_per_kwh(self) -> Any:
        """Energy price per step [currency/kWh] (float array)."""
        ...


class SinkSite(Protocol):
    """What the sink reads of the site's I/O (``twin.engine.sites.SiteIO`` has it)."""

    @property
    def adapters(self) -> dict[str, object]:
        """Device adapters by name (their ``health``)."""
        ...

    @property
    def n_reverse_flow_cuts(self) -> int:
        """Battery discharge cuts so far."""
        ...

    def session_counts(self) -> SessionCounts:
        """EV sessions so far."""
        ...


class SinkSource(Protocol):
    """What :class:`MetricsSink` reads: a :class:`~twin.engine.Twin` (``twin run``,
    ``live``, ``hil``), or the site as measured by ``twin shadow``
    (:class:`twin.monitoring.shadow.MeasuredSite`), whose ``controller`` is None: the
    sink then leaves the controller-only families alone."""

    @property
    def scn(self) -> Scenario:
        """The scenario."""
        ...

    @property
    def inputs(self) -> SinkInputs:
        """The run's calendar."""
        ...

    @property
    def controller(self) -> object | None:
        """The controller (``name``, ``phases``); None: nothing is controlled."""
        ...

    @property
    def site(self) -> SinkSite:
        """The site's I/O."""
        ...

    @property
    def n_steps(self) -> int:
        """Steps in the horizon."""
        ...

    @property
    def tel(self) -> Telemetry | None:
        """The last telemetry read (at the end of the last settled step)."""
        ...

    @property
    def rec(self) -> Recorder:
        """The run's record."""
        ...

    @property
    def clamps(self) -> ClampLog:
        """The safety layer's clamp log."""
        ...

    @property
    def p_socket_limit_kw(self) -> np.ndarray:
        """Per-socket limits in force [kW]."""
        ...


class MetricsSink:
    """Per-step feed from a :class:`~twin.engine.Twin` (or any :class:`SinkSource`) into
    :class:`TwinMetrics`.

    Call it with the index of the step that was just settled (``Twin.on_step``). Powers
    are means over that step; states (SOC, sockets, waiting vehicles) are at its end;
    ``twin_sim_time_seconds`` is the instant of its end.

    Parameters
    ----------
    twin : the wired-up twin (before or during its run), or another :class:`SinkSource`;
        one without a controller (``twin shadow``) updates no family of
        :data:`~twin.monitoring.catalogue.CONTROLLER_ONLY`.
    metrics : the catalogue to update; a fresh one when None.
    run_id : identity of the run, exposed in ``twin_run_info``.
    mode : ``run``, ``live``, ``hil`` or ``shadow``.
    speed : target simulated seconds per wall second (0 = as fast as possible).
    """

    def __init__(self, twin: SinkSource, metrics: TwinMetrics | None = None, *, run_id: str = "",
                 mode: str = "run", speed: float = 0.0) -> None:
        self.twin = twin
        self.m = m = metrics if metrics is not None else TwinMetrics()
        scn = twin.scn
        site = scn.site
        inp = twin.inputs
        self.lock = m.registry.update_lock if isinstance(m.registry, ConsistentRegistry) \
            else threading.Lock()
        self.dt_s = float(inp.dt_s)
        self.dt_h = self.dt_s / 3600.0
        self.price: list[float] = inp.price_per_kwh.tolist()
        idx = inp.index
        # the site's tariff periods (names from the site file) and the one in force per step
        sched = tariff_schedule(site.tariff, idx, inp.hour)
        self.period: list[int] = sched.period.tolist()
        self.t0_unix = float(idx[0].timestamp())
        local = idx.tz_localize(None) if idx.tz is not None else idx
        self.day: list[int] = local.to_numpy().astype("datetime64[D]").astype(np.int64).tolist()
        self.export_kwh = site.grid.export_limit_kw * self.dt_h
        self.co2_kg_per_kwh = site.grid.co2_kg_per_kwh
        cur = site.tariff.currency
        self.currency = cur
        # pre-bound children (label lookups once)
        self._cost_c = m.grid_cost.labels(currency=cur)
        self._today_cost = m.today_cost.labels(currency=cur)
        self._today_sav = m.today_savings.labels(currency=cur)
        self._price = m.tariff_price.labels(currency=cur)
        self._periods = [m.tariff_period.labels(period=p) for p in sched.names]
        self._period_now: int | None = None
        self._sp_req = m.bess_setpoint.labels(stage="requested")
        self._sp_cmd = m.bess_setpoint.labels(stage="commanded")
        self._today_e = {f: m.today_energy.labels(flow=f) for f in ("pv", "ev", "mall",
                                                                   "grid_import")}
        ctrl = twin.controller
        self.controlled = ctrl is not None
        self.controller_name = (str(getattr(ctrl, "name", type(ctrl).__name__))
                                if ctrl is not None else "none")
        self.phase_names: dict[int, str] = {int(k): str(v) for k, v in
                                            getattr(ctrl, "phases", {}).items()}
        self._phase_child: dict[int, Any] = {
            code: m.phase.labels(controller=self.controller_name, phase=name)
            for code, name in self.phase_names.items()}
        self._phase: int | None = None
        self._socket_children(SocketSpec.from_config(site.ev))
        # running state
        self._cur_day: int | None = None
        self._today = dict.fromkeys(("cost", "sav", "co2", "co2_av", "pv", "ev", "mall",
                                     "grid_import"), 0.0)
        self._clamps_seen: dict[str, int] = {}
        self._sessions_seen = SessionCounts()
        self._cuts_seen = 0
        self._comm_seen: dict[str, tuple[int, int, int, bool]] = {}
        self._adapters = dict(twin.site.adapters)
        self.lag_fn: Callable[[], float] | None = None
        m.run_info.info({"run_id": run_id, "scenario": scn.config.name, "site": site.name,
                         "controller": self.controller_name, "mode": mode})
        m.sim_steps_planned.set(twin.n_steps)
        m.sim_step_seconds.set(self.dt_s)
        m.sim_speed.set(speed)
        m.sim_time.set(self.t0_unix)
        if twin.tel is not None:  # the last read (else the site's initial state)
            b = twin.tel.bess
            soc, e_kwh, cap = b.soc_frac, b.e_kwh, b.e_capacity_kwh
        else:
            cap = site.bess.e_capacity_kwh
            soc, e_kwh = site.bess.soc_initial_frac, site.bess.soc_initial_frac * cap
        m.bess_soc.set(soc)
        m.bess_energy.set(e_kwh * J_PER_KWH)
        m.bess_capacity.set(cap * J_PER_KWH)
        self._battery_children()
        self._set_tariff(0)
        self._update_comm()

    # ------------------------------------------------------------------ helpers
    def _socket_children(self, spec: SocketSpec) -> None:
        """Pre-bound per-socket and per-class children (classes from the site, no plant
        internals)."""
        m = self.m
        names = spec.class_names
        types = [names[c] for c in spec.type_code.tolist()]
        self.socket_types = types
        codes = np.asarray(spec.type_code, dtype=np.int64)
        self._sock_p = [m.socket_power.labels(socket=f"{i:02d}", type=t)
                        for i, t in enumerate(types)]
        self._sock_lim = [m.socket_limit.labels(socket=f"{i:02d}", type=t)
                          for i, t in enumerate(types)]
        self._sock_occ = [m.socket_occupied.labels(socket=f"{i:02d}", type=t)
                          for i, t in enumerate(types)]
        self._occ_type = [(codes == names.index(t), m.sockets_occupied.labels(type=t))
                          for t in sorted(set(types))]

    def _battery_children(self) -> None:
        """Pre-bound per-battery children (label ``battery`` = the name in the site file),
        at the last telemetry read or the site's initial state: one per battery of a site
        with two or more (the record's per-battery columns), exactly one for a one-battery
        site (equal to the totals)."""
        m, twin = self.m, self.twin
        units = twin.rec.units
        cfgs = twin.scn.site.batteries
        names = units.names if units is not None else (cfgs[0].name,)
        tel = twin.tel
        self._units: list[tuple[Any, ...]] = []
        for i, name in enumerate(names):
            kids = tuple(fam.labels(battery=name) for fam in m.units)
            self._units.append(kids)
            if tel is not None:
                b = tel.batteries[i] if units is not None and len(tel.batteries) == len(names) \
                    else tel.bess
                e_kwh, cap = b.e_kwh, b.e_capacity_kwh
            else:
                cap = cfgs[i].e_capacity_kwh
                e_kwh = cfgs[i].soc_initial_frac * cap
            kids[2].set(e_kwh / cap if cap > 0 else 0.0)
            kids[3].set(e_kwh * J_PER_KWH)
            kids[4].set(cap * J_PER_KWH)

    def _set_tariff(self, k: int) -> None:
        self._price.set(self.price[k] / J_PER_KWH)
        code = self.period[k]
        if code != self._period_now:
            for j, child in enumerate(self._periods):
                child.set(1.0 if j == code else 0.0)
            self._period_now = code

    def _set_phase(self, code: int) -> None:
        if code == self._phase:
            return
        if self._phase is not None:
            self._phase_child[self._phase].set(0.0)
        child = self._phase_child.get(code)
        if child is None:
            name = self.phase_names.get(code, str(code))
            child = self.m.phase.labels(controller=self.controller_name, phase=name)
            self._phase_child[code] = child
        child.set(1.0)
        self._phase = code
        self.m.phase_code.set(code)

    def _update_comm(self) -> None:
        m = self.m
        for dev, ad in self._adapters.items():
            h = _health_of(ad)
            if h is None:
                continue
            req, err, ret, failed = int(h.requests), int(h.errors), int(h.retries), \
                bool(h.comm_failed)
            r0, e0, t0, f0 = self._comm_seen.get(dev, (0, 0, 0, False))
            if req > r0:
                m.comm_requests.labels(device=dev).inc(req - r0)
            if err > e0:
                m.comm_errors.labels(device=dev).inc(err - e0)
            if ret > t0:
                m.comm_retries.labels(device=dev).inc(ret - t0)
            if failed and not f0:
                m.comm_failsafe_entries.labels(device=dev).inc()
            m.comm_failsafe.labels(device=dev).set(1.0 if failed else 0.0)
            m.comm_consecutive_errors.labels(device=dev).set(int(h.consecutive_errors))
            self._comm_seen[dev] = (req, err, ret, failed)

    # -------------------------------------------------------------------- step
    def __call__(self, k: int) -> None:
        """Publish step ``k`` (just settled)."""
        with self.lock:
            self._step(k)
            reg = self.m.registry
            if isinstance(reg, ConsistentRegistry):
                reg.version += 1
        if isinstance(reg, ConsistentRegistry) and reg.serving:
            # renders here (sink thread) when due, not in the server; the run's last step
            # (done or stopping) is rendered at once, so a scrape after the run sees it
            twin = self.twin
            reg.exposition(fresh=bool(getattr(twin, "done", False)
                                      or getattr(twin, "stop_requested", False)))

    def _step(self, k: int) -> None:
        """Step ``k`` from the record, the clamp log and the site's last telemetry."""
        twin = self.twin
        rec = twin.rec
        dt_h = self.dt_h
        p_pv = float(rec.p_pv_kw[k])  # the meters read (0 while invalid)
        p_mall = float(rec.p_mall_kw[k])
        e_pv = p_pv * dt_h
        e_mall = p_mall * dt_h
        e_ev = float(rec.e_ev_kwh[k])
        e_ch = float(rec.e_bess_charge_kwh[k])
        e_dis = float(rec.e_bess_discharge_kwh[k])
        fl = allocate_flows(np.array([e_pv]), np.array([e_ev]), np.array([e_mall]),
                            np.array([e_ch]), np.array([e_dis]), self.export_kwh)
        f = {name: float(a[0]) for name, a in fl.items()}
        m = self.m
        m.pv_power.set(p_pv * W_PER_KW)
        m.mall_power.set(p_mall * W_PER_KW)
        self._energy(k, e_pv, e_mall, e_ev, e_ch, e_dis, f)
        self._cost(k, e_pv, e_mall, e_ev, f)
        # tariff and controller (in force during the step)
        self._set_tariff(k)
        if self.controlled:
            self._controller(k)
        cuts = twin.site.n_reverse_flow_cuts
        if cuts > self._cuts_seen:
            m.reverse_flow_cuts.inc(cuts - self._cuts_seen)
            self._cuts_seen = cuts
        self._sessions(twin.site.session_counts())
        self._sockets(k)
        # progress
        m.sim_steps.inc()
        m.sim_time.set(self.t0_unix + (k + 1) * self.dt_s)
        if self.lag_fn is not None:
            m.sim_lag.set(max(self.lag_fn(), 0.0))
        self._update_comm()

    def _controller(self, k: int) -> None:
        """Phase, decide time and clamps of step ``k`` (a controlled run only)."""
        rec, m = self.twin.rec, self.m
        self._set_phase(int(rec.phase[k]))
        m.decide.observe(float(rec.decide_s[k]))
        if rec.n_clamps[k]:
            for reason, n in self.twin.clamps.by_reason.items():
                seen = self._clamps_seen.get(reason, 0)
                if n > seen:
                    m.clamps.labels(reason=reason).inc(n - seen)
                    self._clamps_seen[reason] = n

    def _energy(self, k: int, e_pv: float, e_mall: float, e_ev: float, e_ch: float,
                e_dis: float, f: dict[str, float]) -> None:
        """Powers [W], battery state and energy counters [J] of step ``k``."""
        m = self.m
        rec = self.twin.rec
        dt_h = self.dt_h
        w = W_PER_KW / dt_h  # kWh over the step -> W
        m.pv_curtailed_power.set(f["pv_curtailed_kwh"] * w)
        m.ev_power.set(e_ev * w)
        m.grid_import_power.set(f["grid_import_kwh"] * w)
        m.bess_power.set((e_dis - e_ch) * w)
        m.bess_discharge_power.set(e_dis * w)
        m.bess_charge_power.set(e_ch * w)
        if self.controlled:
            self._sp_req.set(float(rec.p_bess_request_kw[k]) * W_PER_KW)
            self._sp_cmd.set(float(rec.p_bess_command_kw[k]) * W_PER_KW)
        stored = float(rec.e_bess_stored_kwh[k])
        cap = float(rec.cap_kwh[k])
        m.bess_soc.set(stored / cap if cap > 0 else 0.0)
        m.bess_energy.set(stored * J_PER_KWH)
        m.bess_capacity.set(cap * J_PER_KWH)
        for name, col in FLOWS.items():
            v = f[col]
            if v > 0.0:
                m.energy_flow[name].inc(v * J_PER_KWH)
        totals = {"pv": e_pv, "ev": e_ev, "mall": e_mall, "grid_import": f["grid_import_kwh"],
                  "bess_charge": e_ch, "bess_discharge": e_dis}
        for name, v in totals.items():
            if v > 0.0:
                m.energy_total[name].inc(v * J_PER_KWH)
        self._battery_step(k)

    def _battery_step(self, k: int) -> None:
        """Per-battery power [W], command [W], state and counters [J] of step ``k`` (the
        record's per-battery columns; the totals for a one-battery site)."""
        rec = self.twin.rec
        u = rec.units
        w = W_PER_KW / self.dt_h
        if u is None:
            ch, dis = [float(rec.e_bess_charge_kwh[k])], [float(rec.e_bess_discharge_kwh[k])]
            cmd, stored, cap = ([float(rec.p_bess_command_kw[k])],
                                [float(rec.e_bess_stored_kwh[k])], [float(rec.cap_kwh[k])])
        else:
            ch, dis = u.e_charge_kwh[k].tolist(), u.e_discharge_kwh[k].tolist()
            cmd, stored, cap = (u.p_command_kw[k].tolist(), u.e_stored_kwh[k].tolist(),
                                u.cap_kwh[k].tolist())
        for i, (p, c, soc, e, cp, e_ch, e_dis) in enumerate(self._units):
            p.set((dis[i] - ch[i]) * w)
            if self.controlled:
                c.set(cmd[i] * W_PER_KW)
            soc.set(stored[i] / cap[i] if cap[i] > 0 else 0.0)
            e.set(stored[i] * J_PER_KWH)
            cp.set(cap[i] * J_PER_KWH)
            if ch[i] > 0.0:
                e_ch.inc(ch[i] * J_PER_KWH)
            if dis[i] > 0.0:
                e_dis.inc(dis[i] * J_PER_KWH)

    def _cost(self, k: int, e_pv: float, e_mall: float, e_ev: float,
              f: dict[str, float]) -> None:
        """Cost and CO2 counters, and the totals of the simulated local day."""
        m = self.m
        price = self.price[k]
        cost = f["grid_import_kwh"] * price
        saving = float(kpis.savings_bess(e_ev + e_mall, e_pv, f["grid_import_kwh"], price))
        co2_g = f["grid_import_kwh"] * self.co2_kg_per_kwh * G_PER_KG
        co2_av_g = float(kpis.co2_avoided_bess_seed_formula_kg(
            f["bess_to_ev_kwh"] + f["bess_to_mall_kwh"], self.co2_kg_per_kwh)) * G_PER_KG
        if cost > 0.0:
            self._cost_c.inc(cost)
        if co2_g > 0.0:
            m.co2_grid.inc(co2_g)
        if co2_av_g > 0.0:
            m.co2_avoided.inc(co2_av_g)
        day = self.day[k]
        t = self._today
        if day != self._cur_day:
            self._cur_day = day
            for key in t:
                t[key] = 0.0
        t["cost"] += cost
        t["sav"] += saving
        t["co2"] += co2_g
        t["co2_av"] += co2_av_g
        t["pv"] += e_pv
        t["ev"] += e_ev
        t["mall"] += e_mall
        t["grid_import"] += f["grid_import_kwh"]
        self._today_cost.set(t["cost"])
        self._today_sav.set(t["sav"])
        m.today_co2_grid.set(t["co2"])
        m.today_co2_avoided.set(t["co2_av"])
        for key, child in self._today_e.items():
            child.set(t[key] * J_PER_KWH)

    def _sessions(self, now: SessionCounts) -> None:
        """EV session counters (what the site reports: the fleet, or the chargers seen)."""
        m = self.m
        seen = self._sessions_seen
        for counter, n_now, n_seen in (
                (m.sessions_arrived, now.arrived, seen.arrived),
                (m.sessions_turned_away, now.turned_away, seen.turned_away),
                (m.sessions_served, now.served, seen.served),
                (m.sessions_satisfied, now.satisfied, seen.satisfied),
                (m.sessions_short, now.short, seen.short),
                (m.sessions_satisfied_reduced, now.satisfied_reduced, seen.satisfied_reduced),
                (m.sessions_refused, now.refused_closing, seen.refused_closing)):
            if n_now > n_seen:
                counter.inc(n_now - n_seen)
        self._sessions_seen = SessionCounts(*(max(a, b) for a, b in zip(now, seen, strict=True)))
        m.sessions_waiting.set(now.waiting)

    def _sockets(self, k: int) -> None:
        """Per-socket power over step ``k`` (record), limit in force and occupancy at its
        end (the last telemetry)."""
        twin = self.twin
        w = W_PER_KW / self.dt_h
        tel = twin.tel
        if tel is None or not tel.sockets.valid:
            return
        occ = tel.sockets.occupied.tolist()
        if self.controlled:
            for child, lim in zip(self._sock_lim, twin.p_socket_limit_kw.tolist(), strict=True):
                child.set(lim * W_PER_KW)
        for i, p in enumerate((twin.rec.e_socket_kwh[k] * w).tolist()):
            self._sock_p[i].set(p)
            self._sock_occ[i].set(1.0 if occ[i] else 0.0)
        occ_arr = np.asarray(tel.sockets.occupied, dtype=bool)
        for mask, child in self._occ_type:
            child.set(int(np.count_nonzero(occ_arr & mask)))


def chain_on_step(*fns: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """One ``on_step`` callable calling each of ``fns`` in order (None entries skipped)."""
    live = [f for f in fns if f is not None]
    if not live:
        return None
    if len(live) == 1:
        return live[0]

    def on_step(k: int) -> None:
        for fn in live:
            fn(k)

    return on_step


def family_names(metrics: TwinMetrics) -> list[str]:
    """Metric family names as exposed (``_total`` on counters, ``_info`` on infos)."""
    out: set[str] = set()
    for fam in metrics.registry.collect():
        if fam.type == "counter":
            out.add(fam.name + "_total")
        elif fam.type == "info":
            out.add(fam.name + "_info")
        else:
            out.add(fam.name)
    return sorted(out)


def samples_by_name(metrics: TwinMetrics) -> Mapping[str, list[tuple[dict[str, str], float]]]:
    """All current samples, keyed by sample name (for tests and debugging)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in metrics.registry.collect():
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out

"""The KPI catalogue: one row per number a run's ``summary.json`` holds, read by every view.

Each :class:`Kpi` row says what the number is (key, label, unit, direction), how it is
shown (scale, unit and format in the terminal table and the HTML report), where it is shown
(:data:`VIEWS`), and what kind of number it is (a counterfactual, a wall-clock measurement).
The readers:

* the terminal KPI table (:mod:`twin.app.table`) shows the ``table`` rows;
* the HTML report's KPI table (:mod:`twin.report.kpis`) shows the ``report`` rows, grouped
  by :attr:`Kpi.section`;
* the A/B trials (:func:`twin.trials.ab.default_kpis`) compare the ``trials`` rows;
* the summary check (:data:`twin.engine.results.NUMERIC_SUMMARY_KEYS`) takes every
  ``summary`` row as a number; :data:`VOLATILE_KEYS` (wall clock) are left out of
  determinism checks (``twin.engine.results.VOLATILE_KEYS``, ``twin.trials.runner.WALL_KEYS``);
* :attr:`Kpi.metric` names the Prometheus metric of :mod:`twin.monitoring.catalogue` that
  tracks the same quantity live (a link, not a copy: the metric catalogue stays the table of
  metrics).

Adding a KPI is one row here plus its formula (``twin.engine.results.build_summary``, from
the per-step arrays of ``twin.engine.kpis``). Money units are written ``{cur}`` and shown in
the site's currency (``site.tariff.currency``, the summary's ``currency``): see
:func:`unit_text`.

This module imports nothing heavy: ``twin`` reads it each time it builds its parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: Where a row can be shown.
VIEWS = frozenset({"table", "report", "trials", "metrics"})

Better = Literal["lower", "higher"] | None


@dataclass(frozen=True)
class Kpi:
    """One KPI (one number of a run's summary).

    Attributes
    ----------
    key : summary key (``summary.json``).
    label : full name (the report's row label).
    unit : unit of the stored value ("" for counts, "fraction" for 0-1 shares; ``{cur}``
        is the site's currency).
    section : heading of its group in the report.
    views : where it is shown: any of :data:`VIEWS` (``metrics`` when :attr:`metric` is set).
    shown_unit : unit shown in the table and report (None: :attr:`unit`; "" for a count).
    scale : factor from :attr:`unit` to :attr:`shown_unit` (e.g. 1e-3 for kWh → MWh).
    fmt : format spec of the shown value in the report (and the table when it ends in ``e``).
    better : ``"lower"``, ``"higher"`` or None (no direction).
    counterfactual : computed against a site without the battery and/or PV, not measured.
    volatile : a wall-clock measurement (differs between identical runs).
    metric : the Prometheus metric family (``twin.monitoring.catalogue``) of the same
        quantity, or None.
    short : the terminal table's label (""; :attr:`label`); two leading spaces indent it
        under the row above.
    name : the trials' label ("": :attr:`short` or :attr:`label`).
    requires : shown only when this summary key holds a number (e.g. the import-limit rows
        need the site's ``import_limit_kw``).
    source : ``summary`` (written by ``build_summary``) or ``trials`` (derived by the trial
        runner from summary keys, ``twin.trials.runner.numeric_kpis``).
    """

    key: str
    label: str
    unit: str
    section: str
    views: frozenset[str] = frozenset()
    shown_unit: str | None = None
    scale: float = 1.0
    fmt: str = ",.2f"
    better: Better = None
    counterfactual: bool = False
    volatile: bool = False
    metric: str | None = None
    short: str = ""
    name: str = ""
    requires: str | None = None
    source: Literal["summary", "trials"] = "summary"

    def __post_init__(self) -> None:
        if not self.views <= VIEWS:
            raise ValueError(f"KPI {self.key!r}: unknown view(s) {sorted(self.views - VIEWS)}; "
                             f"one of {sorted(VIEWS)}")
        if self.better not in ("lower", "higher", None):
            raise ValueError(f"KPI {self.key!r}: better is 'lower', 'higher' or None, "
                             f"not {self.better!r}")
        if "metrics" in self.views and self.metric is None:
            raise ValueError(f"KPI {self.key!r}: shown in 'metrics' but names no metric")
        if self.metric is not None:  # a KPI with a metric is shown in the metrics
            object.__setattr__(self, "views", self.views | {"metrics"})

    @property
    def table_label(self) -> str:
        """The label in the terminal table."""
        return self.short or self.label

    @property
    def trials_label(self) -> str:
        """The label in the trials' tables and figures."""
        return self.name or self.table_label.strip()

    @property
    def display_unit(self) -> str:
        """The unit shown in the table and report (``{cur}`` not yet replaced)."""
        return self.unit if self.shown_unit is None else self.shown_unit

    @property
    def lower_is_better(self) -> bool | None:
        """:attr:`better` as the trials' statistics take it."""
        return None if self.better is None else self.better == "lower"


def _views(*names: str) -> frozenset[str]:
    return frozenset(names)


_R = _views("report")
_TR = _views("table", "report")
_TRT = _views("table", "report", "trials")


def _mwh(key: str, label: str, section: str, views: frozenset[str] = _R, **kw: Any) -> Kpi:
    """An energy [kWh] shown in MWh."""
    return Kpi(key, label, "kWh", section, views, "MWh", 1e-3, ",.1f", **kw)


def _kwh(key: str, label: str, section: str, **kw: Any) -> Kpi:
    """An energy [kWh] not shown in the table or report."""
    return Kpi(key, label, "kWh", section, **kw)


def _pct(key: str, label: str, section: str, views: frozenset[str] = _R, **kw: Any) -> Kpi:
    """A fraction (0-1) shown in percent."""
    return Kpi(key, label, "fraction", section, views, "%", 100.0, ".1f", **kw)


def _kcur(key: str, label: str, views: frozenset[str] = _R, **kw: Any) -> Kpi:
    """Money [currency] shown in thousands."""
    return Kpi(key, label, "{cur}", "Cost", views, "k{cur}", 1e-3, ",.1f", **kw)


def _tonne(key: str, label: str, views: frozenset[str] = _R, **kw: Any) -> Kpi:
    """A mass of CO2 [kg] shown in tonnes."""
    return Kpi(key, label, "kg", "CO₂", views, "t", 1e-3, ",.1f", **kw)


def _count(key: str, label: str, section: str, views: frozenset[str] = _R, **kw: Any) -> Kpi:
    """A count."""
    return Kpi(key, label, "", section, views, None, 1.0, ",.0f", **kw)


_E, _P, _B, _G, _S, _C = ("Energy", "Performance", "Battery", "Grid", "EV sessions",
                          "Controller and safety")

#: Every KPI, in the order of the views (the report groups them by section in this order).
CATALOGUE: tuple[Kpi, ...] = (
    # run identity (numbers of the summary, shown in the report's run table, not as KPIs)
    Kpi("seed", "Seed", "", "Run"),
    Kpi("dt_s", "Step", "s", "Run"),
    Kpi("n_steps", "Steps planned", "", "Run"),
    Kpi("steps_done", "Steps done", "", "Run"),
    Kpi("days", "Days simulated", "d", "Run"),
    # energy [kWh]
    _mwh("pv_kwh", "PV generation", _E, _TR, short="PV energy", metric="twin_energy_pv_joules"),
    Kpi("pv_specific_yield_kwh_per_kwp", "PV specific yield", "kWh/kWp/yr", _E, _TR,
        fmt=",.0f", better="higher"),
    _mwh("mall_kwh", "Mall demand", _E, _TR, metric="twin_energy_mall_joules"),
    _mwh("ev_kwh", "EV energy delivered", _E, _TRT, better="higher",
         metric="twin_energy_ev_joules"),
    _mwh("load_kwh", "Total load (mall + EV)", _E),
    _mwh("grid_import_kwh", "Grid import", _E, _TRT, name="grid import", better="lower",
         metric="twin_energy_grid_import_joules"),
    _mwh("grid_export_kwh", "Grid export", _E, metric="twin_energy_pv_export_joules"),
    _mwh("pv_curtailed_kwh", "PV curtailed", _E, _TRT, better="lower",
         metric="twin_energy_pv_curtailed_joules"),
    _mwh("bess_charge_kwh", "BESS charge", _E, metric="twin_energy_bess_charge_joules"),
    _mwh("bess_discharge_kwh", "BESS discharge", _E, _TR,
         metric="twin_energy_bess_discharge_joules"),
    _mwh("bess_throughput_kwh", "Battery throughput (charge + discharge)", _E,
         _views("trials"), name="battery throughput", source="trials"),
    _kwh("pv_to_ev_kwh", "PV to EV", _E, metric="twin_energy_pv_to_ev_joules"),
    _kwh("pv_to_bess_kwh", "PV to BESS", _E, metric="twin_energy_pv_to_bess_joules"),
    _kwh("pv_to_mall_kwh", "PV to mall", _E, metric="twin_energy_pv_to_mall_joules"),
    _kwh("bess_to_ev_kwh", "BESS to EV", _E, metric="twin_energy_bess_to_ev_joules"),
    _kwh("bess_to_mall_kwh", "BESS to mall", _E, metric="twin_energy_bess_to_mall_joules"),
    _kwh("grid_import_ev_kwh", "Grid to EV", _E, metric="twin_energy_grid_to_ev_joules"),
    _kwh("grid_import_mall_kwh", "Grid to mall", _E, metric="twin_energy_grid_to_mall_joules"),
    _kwh("grid_to_bess_kwh", "Grid to BESS", _E, metric="twin_energy_grid_to_bess_joules"),
    _kwh("pv_annualised_kwh", "PV energy per year (extrapolated)", _E),
    _kwh("mall_annualised_kwh", "Mall demand per year (extrapolated)", _E),
    _kwh("ev_annualised_kwh", "EV energy per year (extrapolated)", _E),
    # performance [0-1]
    _pct("self_sufficiency", "Self-sufficiency", _P, _TR, better="higher"),
    _pct("pv_self_consumption", "PV self-consumption", _P, _TR, better="higher"),
    _pct("ev_coverage", "EV energy from PV + BESS (seed allocation: battery to EVs first)",
         _P, _TR, short="EV from PV+BESS (seed allocation)", better="higher"),
    _pct("ev_coverage_bess", "EV energy from the BESS (seed allocation: battery to EVs first)",
         _P, better="higher"),
    _pct("ev_coverage_no_grid_charge",
         "EV energy from PV + BESS, grid-charged battery energy excluded (seed allocation)",
         _P, _TR, short="  of it not grid-charged", better="higher"),
    _pct("ev_coverage_counterfactual",
         "EV energy not drawn from the grid (counterfactual: site import with − without the "
         "EV load, same PV and battery)", _P, _TR, short="EV not from the grid (counterfactual)",
         better="higher"),
    _pct("ev_coverage_pro_rata",
         "EV energy from PV + BESS, local supply shared pro rata between the EVs and the mall",
         _P, _TR, short="EV from PV+BESS (pro rata)", better="higher"),
    _pct("bess_discharge_grid_share",
         "Battery output that was grid-charged (proportional colour of the stored energy)",
         _B, better="lower"),
    # battery
    Kpi("capacity_kwh", "Capacity", "kWh", _B, _R, fmt=",.0f"),
    Kpi("nominal_power_kw", "Nominal power", "kW", _B, _R, fmt=",.0f"),
    _pct("dod", "Depth of discharge", _B),
    _pct("eta_roundtrip", "Round-trip efficiency", _B),
    Kpi("efc_usable_per_day", "Equivalent full cycles per day (usable SOC window: discharge ÷ "
        "((SOC max − SOC min) × capacity))", "1/d", _B, _TR, fmt=".3f",
        short="BESS full cycles per day (usable window)"),
    Kpi("discharge_per_nominal_capacity_per_day", "Discharge per nominal capacity per day "
        "(was: cycles per day)", "1/d", _B, _R, fmt=".3f"),
    Kpi("soc_min_percent", "SOC minimum", "%", _B, _R, fmt=".1f"),
    Kpi("soc_mean_percent", "SOC mean", "%", _B, _R, fmt=".1f"),
    Kpi("soc_max_percent", "SOC maximum", "%", _B, _R, fmt=".1f"),
    Kpi("capacity_fade_percent", "Capacity fade", "%", _B, _TRT, fmt=".3f", better="lower",
        name="capacity fade"),
    Kpi("capacity_end_kwh", "Capacity at the end", "kWh", _B),
    Kpi("capacity_fade_kwh", "Capacity fade", "kWh", _B, better="lower"),
    Kpi("capacity_fade_cycle_percent", "Capacity fade from cycling", "%", _B, better="lower"),
    Kpi("capacity_fade_calendar_percent", "Capacity fade from calendar ageing", "%", _B,
        better="lower"),
    Kpi("capacity_fade_annualised_percent", "Capacity fade per year (mean over the run)", "%",
        _B, better="lower"),
    Kpi("resistance_growth_percent", "Resistance growth (BLAST-Lite)", "%", _B, _TR,
        fmt=".3f", better="lower", requires="resistance_growth_percent"),
    Kpi("t_cell_mean_c", "Cell temperature, mean (container model)", "°C", _B, _R, fmt=".1f",
        requires="t_cell_mean_c"),
    Kpi("equivalent_full_cycles", "Equivalent full cycles (DC throughput ÷ 2 × nominal "
        "capacity)", "", _B),
    Kpi("efc_usable", "Equivalent full cycles over the usable SOC window", "", _B, _R,
        fmt=",.1f"),
    # cost [currency]
    _kcur("cost_baseline_soles", "Cost without PV and BESS", counterfactual=True),
    _kcur("cost_pv_only_soles", "Cost without the BESS (PV only)", counterfactual=True),
    _kcur("cost_grid_import_soles", "Energy cost with PV + BESS", _TRT, short="Grid energy cost",
          name="grid cost", better="lower", metric="twin_grid_cost"),
    _kcur("cost_demand_soles", "Demand charges (per kW of the monthly peak import)", _TR,
          short="  Demand charges", better="lower"),
    Kpi("cost_fixed_soles", "Fixed charges (per billing month)", "{cur}", "Cost", _TR,
        fmt=",.2f", short="  Fixed charges", better="lower"),
    _kcur("cost_total_soles", "Grid bill: energy + demand + fixed", _TRT, short="Grid bill total",
          name="grid bill", better="lower"),
    _kcur("savings_bess_soles", "Savings from the BESS", _TRT, name="savings from the BESS",
          better="higher", counterfactual=True, metric="twin_today_bess_savings"),
    _kcur("savings_total_soles", "Savings from PV + BESS", better="higher", counterfactual=True),
    _kcur("cost_savings_hp_soles", "Peak-period savings (seed formula)", _TR, better="higher",
          counterfactual=True),
    # CO2 [kg]
    _tonne("co2_baseline_kg", "CO₂ if all from the grid", counterfactual=True),
    _tonne("co2_emissions_kg", "CO₂ emitted (grid import)", _TRT, short="CO2 emitted",
           name="CO2 emitted", better="lower", metric="twin_co2_grid_grams"),
    _tonne("co2_no_bess_kg", "CO₂ without the BESS (PV only)", counterfactual=True),
    _tonne("co2_avoided_kg", "CO₂ avoided by PV + BESS", better="higher", counterfactual=True),
    Kpi("co2_reduction_percent_pv_and_bess", "CO₂ reduction by PV + BESS (vs all-grid)", "%",
        "CO₂", _TR, fmt=".1f", short="CO2 reduction by PV + BESS", better="higher",
        counterfactual=True),
    _tonne("co2_avoided_bess_kg", "CO₂ avoided by the BESS (vs PV only)", _TRT,
           short="CO2 avoided by the BESS", name="CO2 avoided by the BESS", better="higher",
           counterfactual=True),
    Kpi("co2_reduction_percent_bess", "CO₂ reduction by the BESS (vs PV only)", "%", "CO₂", _TR,
        fmt=".1f", short="CO2 reduction by the BESS", better="higher", counterfactual=True),
    _tonne("co2_avoided_bess_seed_formula_kg",
           "CO₂ avoided by the BESS (seed formula: BESS→loads × factor)", _TR,
           short="CO2 avoided by the BESS (seed formula)", better="higher",
           counterfactual=True, metric="twin_co2_avoided_grams"),
    # grid
    Kpi("peak_grid_import_kw", "Peak grid import", "kW", _G, _TRT, fmt=",.0f", better="lower",
        name="peak grid import"),
    Kpi("import_limit_kw", "Import limit", "kW", _G, _R, fmt=",.0f", requires="import_limit_kw"),
    _count("import_limit_exceeded_steps", "Steps above the import limit", _G, _TR,
           short="  steps above the import limit", better="lower", requires="import_limit_kw"),
    _mwh("import_limit_exceeded_kwh", "Energy above the import limit", _G, _TR,
         short="  energy above the import limit", better="lower", requires="import_limit_kw"),
    _count("reverse_flow_cuts", "Reverse-flow cuts", _G, better="lower",
           metric="twin_plant_reverse_flow_cuts"),
    # EV sessions: the outcomes (SESSION_OUTCOMES) split the arrivals, one row each
    _count("sessions_total", "Sessions (arrivals)", _S, _TR, short="EV sessions (arrivals)",
           metric="twin_ev_sessions_arrived"),
    Kpi("sessions_satisfied", "Satisfied (got a socket and the full request)", "sessions", _S,
        _TRT, "", fmt=",.0f", short="  satisfied (full request)", name="sessions satisfied",
        better="higher", metric="twin_ev_sessions_satisfied"),
    _count("sessions_satisfied_reduced",
           "Satisfied with a reduced request (late arrival: request cut to what fits before "
           "closing)", _S, _TR, short="  satisfied (reduced request, late)", better="higher",
           metric="twin_ev_sessions_satisfied_reduced"),
    _count("sessions_short", "Short (got a socket, left with less than requested)", _S, _TR,
           short="  short (left with less)", better="lower", metric="twin_ev_sessions_short"),
    _count("sessions_unfinished", "Unfinished at the end of the run (plugged in or waiting)",
           _S, _TR, short="  unfinished at the end", better="lower"),
    _count("sessions_refused_closing", "Refused (too close to closing)", _S, _TR,
           short="  refused (too close to closing)", better="lower",
           metric="twin_ev_sessions_refused_closing"),
    _count("sessions_turned_away", "Turned away (no free socket)", _S, _TR,
           short="  turned away (no free socket)", better="lower",
           metric="twin_ev_sessions_turned_away"),
    _pct("sessions_satisfied_share", "Satisfied share (satisfied / arrivals)", _S, _TR,
         short="Satisfied share of arrivals", better="higher"),
    Kpi("sessions_satisfied_frac", "Sessions satisfied (share of arrivals)", "fraction", _S,
        better="higher", source="trials"),
    _count("sessions_served", "Got a socket (satisfied + short + still plugged in)", _S,
           better="higher", metric="twin_ev_sessions_served"),
    _mwh("ev_energy_requested_kwh", "EV energy requested (all arrivals)", _S, _TR,
         short="EV energy requested (all arrivals)"),
    _mwh("ev_energy_requested_socket_kwh", "EV energy requested by sessions that got a socket",
         _S),
    _mwh("ev_energy_delivered_kwh", "EV energy delivered to the sessions", _S, _TR,
         short="EV energy delivered to the sessions", better="higher"),
    Kpi("wait_mean_min", "Mean wait for a socket", "min", _S, _R, fmt=".2f", better="lower"),
    Kpi("wait_p95_min", "95th-percentile wait", "min", _S, _R, fmt=".2f", better="lower"),
    # controller and safety
    _count("safety_clamps_total", "Safety clamps", _C, _TR, metric="twin_safety_clamps"),
    _count("input_filled_values", "Input values filled (short gaps of measured files)", _C, _R,
           better="lower"),
    Kpi("energy_balance_residual_max_kwh", "Max energy-balance residual", "kWh", _C, _TR,
        fmt=".1e", short="Max balance residual", better="lower"),
    Kpi("sim_wall_s", "Simulation wall time", "s", _C, _TR, fmt=".2f", volatile=True,
        better="lower"),
    # performance of the simulation (wall clock)
    Kpi("inputs_wall_s", "Inputs build wall time", "s", _C, volatile=True, better="lower"),
    Kpi("ticks_per_s", "Ticks per wall second", "1/s", _C, volatile=True, better="higher"),
    # one per tick + one per EV event played: arrival (every session), vehicle full inside a
    # step while plugged, departure of a plugged vehicle; against devices (``twin hil``) the
    # chargers show no arrivals or fulls: one per tick + plug-in + plug-out seen
    _count("events", "Events (ticks + EV arrivals, fulls, departures)", _C, frozenset()),
    Kpi("events_per_s", "Events per wall second", "1/s", _C, volatile=True, better="higher"),
    Kpi("decide_median_us", "Controller decision time, median", "µs", _C, volatile=True,
        better="lower", metric="twin_controller_decide_seconds"),
    Kpi("decide_p99_us", "Controller decision time, 99th percentile", "µs", _C, volatile=True,
        better="lower", metric="twin_controller_decide_seconds"),
)

_U = "Per battery"

#: The per-battery numbers of a site with two or more batteries: ``summary["batteries"]``
#: holds one dict per battery with its ``name``, ``chemistry`` and these keys (built by
#: ``twin.engine.results.battery_summaries``). The report's "Per battery" table shows the
#: ``report`` rows, one column per battery; :attr:`Kpi.metric` names the per-battery
#: Prometheus family (label ``battery``) of the same quantity.
BATTERY_CATALOGUE: tuple[Kpi, ...] = (
    Kpi("capacity_kwh", "Capacity", "kWh", _U, _R, fmt=",.0f"),
    Kpi("p_charge_max_kw", "Charge power rating", "kW", _U, _R, fmt=",.0f"),
    Kpi("p_discharge_max_kw", "Discharge power rating", "kW", _U, _R, fmt=",.0f"),
    _mwh("bess_charge_kwh", "BESS charge", _U, metric="twin_bess_unit_charge_joules"),
    _mwh("bess_discharge_kwh", "BESS discharge", _U, metric="twin_bess_unit_discharge_joules"),
    Kpi("soc_min_percent", "SOC minimum", "%", _U, _R, fmt=".1f"),
    Kpi("soc_mean_percent", "SOC mean", "%", _U, _R, fmt=".1f",
        metric="twin_bess_unit_soc_ratio"),
    Kpi("soc_max_percent", "SOC maximum", "%", _U, _R, fmt=".1f"),
    Kpi("capacity_end_kwh", "Capacity at the end", "kWh", _U, _R, fmt=",.1f",
        metric="twin_bess_unit_capacity_joules"),
    Kpi("capacity_fade_percent", "Capacity fade", "%", _U, _R, fmt=".3f", better="lower"),
    Kpi("equivalent_full_cycles", "Equivalent full cycles (DC throughput ÷ 2 × nominal "
        "capacity)", "", _U, _R, fmt=",.2f"),
    Kpi("efc_usable", "Equivalent full cycles over the usable SOC window", "", _U, _R,
        fmt=",.1f"),
    Kpi("resistance_growth_percent", "Resistance growth (BLAST-Lite)", "%", _U, _R,
        fmt=".3f", better="lower"),
)


@dataclass(frozen=True)
class SessionOutcome:
    """One outcome of an EV session; every arrival has exactly one.

    Attributes
    ----------
    name : the value of the ``outcome`` column of ``sessions.parquet``.
    key : the summary key counting it.
    label : plain-language meaning (legends, captions).
    """

    name: str
    key: str
    label: str


#: The outcomes of a session, in display order. They split the arrivals: their counts sum to
#: ``sessions_total``. The summary, the KPI table, the report's EV figures and the metrics
#: all use these (see :func:`session_outcomes`).
SESSION_OUTCOMES: tuple[SessionOutcome, ...] = (
    SessionOutcome("satisfied", "sessions_satisfied",
                   "Satisfied: got a socket and left with its full request"),
    SessionOutcome("satisfied_reduced", "sessions_satisfied_reduced",
                   "Satisfied (reduced): a late arrival whose request was cut to what fits "
                   "before closing, and got it"),
    SessionOutcome("short", "sessions_short",
                   "Short: got a socket, left with less than it requested"),
    SessionOutcome("unfinished", "sessions_unfinished",
                   "Unfinished: still plugged in or waiting when the run ended"),
    SessionOutcome("refused_closing", "sessions_refused_closing",
                   "Refused at the gate: too close to closing for its minimum energy"),
    SessionOutcome("turned_away", "sessions_turned_away",
                   "Turned away: no free socket within its patience"),
)

#: A session is satisfied when it left with what it asked for, to 1 Wh (the resolution of
#: the chargers' energy registers: a run against devices rebuilds sessions from them) [kWh].
SATISFIED_TOL_KWH = 1e-3


def session_outcomes(status: Any, e_req_kwh: Any, e_delivered_kwh: Any,
                     e_req_orig_kwh: Any = None) -> Any:
    """The outcome name (:data:`SESSION_OUTCOMES`) of each session.

    Parameters
    ----------
    status : fleet status names per session (``served``, ``plugged``, ``waiting``,
        ``refused_closing``, ``turned_away``).
    e_req_kwh, e_delivered_kwh : energy requested and delivered per session [kWh].
    e_req_orig_kwh : what the rider wanted before a late arrival's request was cut to what
        fits before closing [kWh] (None: as ``e_req_kwh``); a satisfied session whose request
        was cut (by more than :data:`SATISFIED_TOL_KWH`) is ``satisfied_reduced``.

    Returns
    -------
    numpy array of str: ``satisfied`` only for a session that left its socket (``served``)
    with its request to :data:`SATISFIED_TOL_KWH`; a refused or turned-away session is never
    satisfied, whatever it asked for.
    """
    import numpy as np

    st = np.asarray(status, dtype=object).astype(str)
    req = np.asarray(e_req_kwh, dtype=float)
    dl = np.asarray(e_delivered_kwh, dtype=float)
    known = {"served", "plugged", "waiting", "refused_closing", "turned_away"}
    bad = sorted(set(st.tolist()) - known)
    if bad:
        raise ValueError(f"unknown session status(es) {bad}; one of {sorted(known)}")
    full = dl >= req - SATISFIED_TOL_KWH
    cut = (np.zeros(req.shape, dtype=bool) if e_req_orig_kwh is None
           else np.asarray(e_req_orig_kwh, dtype=float) > req + SATISFIED_TOL_KWH)
    return np.select(
        [(st == "served") & full & ~cut, (st == "served") & full, st == "served",
         (st == "plugged") | (st == "waiting"), st == "refused_closing"],
        ["satisfied", "satisfied_reduced", "short", "unfinished", "refused_closing"],
        default="turned_away")


def outcome_counts(outcomes: Any) -> dict[str, int]:
    """``{summary key: count}`` of each outcome (all :data:`SESSION_OUTCOMES`, zeros too)."""
    import numpy as np

    o = np.asarray(outcomes, dtype=object).astype(str)
    return {oc.key: int(np.count_nonzero(o == oc.name)) for oc in SESSION_OUTCOMES}


def rows(view: str) -> tuple[Kpi, ...]:
    """The rows shown in ``view`` (one of :data:`VIEWS`), in catalogue order.

    ``metrics`` gives the rows that name a metric. Reads :data:`CATALOGUE` at call time (a
    test may add a row).
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; one of {sorted(VIEWS)}")
    return tuple(k for k in CATALOGUE if view in k.views)


def by_key() -> dict[str, Kpi]:
    """The catalogue as ``{key: row}``."""
    return {k.key: k for k in CATALOGUE}


def summary_keys() -> frozenset[str]:
    """Keys of the numbers ``build_summary`` writes (the ``summary`` rows)."""
    return frozenset(k.key for k in CATALOGUE if k.source == "summary")


def volatile_keys() -> frozenset[str]:
    """Keys of the wall-clock measurements (they differ between identical runs)."""
    return frozenset(k.key for k in CATALOGUE if k.volatile)


def unit_text(unit: str, currency: object) -> str:
    """``unit`` with ``{cur}`` replaced by the site's ``currency`` (the summary's
    ``currency``; "(currency)" when a summary has none)."""
    cur = currency if isinstance(currency, str) and currency else "(currency)"
    return unit.replace("{cur}", cur)


__all__ = ["BATTERY_CATALOGUE", "CATALOGUE", "SATISFIED_TOL_KWH", "SESSION_OUTCOMES", "VIEWS",
           "Better", "Kpi", "SessionOutcome", "by_key", "outcome_counts", "rows", "session_outcomes",
           "summary_keys", "unit_text", "volatile_keys"]

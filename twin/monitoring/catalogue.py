# ruff: noqa: E501  (the table rows hold the docs text verbatim)
"""The metric catalogue: one table for the live sink, the OpenMetrics export and the docs.

Every metric of the twin is one :class:`MetricSpec` row of :data:`CATALOGUE`:
``twin.monitoring.metrics.TwinMetrics`` creates its collectors from it, ``twin export
openmetrics`` takes names, types, labels and help texts from it, and the tables of
``docs/metrics.md`` are generated from it (``python -m twin.monitoring.catalogue
--write-docs``; a test checks they are up to date).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MetricSpec:
    """One metric family.

    Attributes
    ----------
    section : heading of its table in ``docs/metrics.md``.
    name : family name as given to ``prometheus_client`` (no ``_total``/``_info``).
    kind : ``gauge``, ``counter``, ``histogram`` or ``info``.
    labels : label names (``le`` of histograms not included).
    labels_doc : the labels as the docs show them (values listed), markdown.
    unit : unit as the docs show it.
    doc : meaning, as the docs show it (markdown).
    help : the ``# HELP`` text of the exposition.
    live : published by a running twin (``twin run``/``live``/``hil``; ``twin shadow``
        all but :data:`CONTROLLER_ONLY`); False: only by ``twin export openmetrics`` for a
        finished run."""

    section: str
    name: str
    kind: str
    labels: tuple[str, ...]
    labels_doc: str
    unit: str
    doc: str
    help: str
    live: bool = True

    @property
    def exposed(self) -> str:
        """The sample name a scrape shows (``_total`` on counters, ``_info`` on infos)."""
        return self.name + {"counter": "_total", "info": "_info"}.get(self.kind, "")


#: Every metric of the twin, in the order of the docs.
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec('Run and clock', 'twin_run', 'info', (),
               '`run_id`, `scenario`, `site`, `controller`, `mode`', '1',
               'Identity of the run; `mode` is `run`, `live`, `hil` or `shadow`.',
               'Run identity: run_id, scenario, site, controller, mode (run / live / hil / shadow).'),
    MetricSpec('Run and clock', 'twin_sim_time_seconds', 'gauge', (),
               '', 's (Unix time)',
               'Simulated instant reached: end of the last settled step.',
               'Simulated instant reached (end of the last settled step) as a Unix timestamp [s].'),
    MetricSpec('Run and clock', 'twin_sim_steps', 'counter', (),
               '', 'steps',
               'Control steps settled.',
               'Control steps settled.'),
    MetricSpec('Run and clock', 'twin_sim_steps_planned', 'gauge', (),
               '', 'steps',
               'Steps in the scenario horizon.',
               'Steps in the scenario horizon.'),
    MetricSpec('Run and clock', 'twin_sim_step_seconds', 'gauge', (),
               '', 's',
               'Control step length `dt`.',
               'Control step length [s].'),
    MetricSpec('Run and clock', 'twin_sim_speed_ratio', 'gauge', (),
               '', 's/s',
               'Target simulated seconds per wall second (`--speed`; 0 = as fast as possible).',
               'Target simulated seconds per wall second (0 = as fast as possible).'),
    MetricSpec('Run and clock', 'twin_sim_lag_seconds', 'gauge', (),
               '', 's (wall)',
               'How far a real-time run is behind its schedule (0 when on time).',
               'How far the real-time run is behind its schedule, in wall time [s] (0 when on time).'),
    MetricSpec('Power (mean over the last settled step)', 'twin_pv_power_watts', 'gauge', (),
               '', 'W',
               'PV AC power available.',
               'PV AC power available [W].'),
    MetricSpec('Power (mean over the last settled step)', 'twin_pv_curtailed_power_watts', 'gauge', (),
               '', 'W',
               'PV power curtailed (isolated grid, nothing can take it).',
               'PV power curtailed (isolated grid) [W].'),
    MetricSpec('Power (mean over the last settled step)', 'twin_mall_power_watts', 'gauge', (),
               '', 'W',
               'Mall demand.',
               'Mall demand [W].'),
    MetricSpec('Power (mean over the last settled step)', 'twin_ev_power_watts', 'gauge', (),
               '', 'W',
               'EV charging power delivered (all sockets, plus any replayed EV profile).',
               'EV charging power delivered [W].'),
    MetricSpec('Power (mean over the last settled step)', 'twin_grid_import_power_watts', 'gauge', (),
               '', 'W',
               'Power imported from the grid.',
               'Power imported from the grid [W].'),
    MetricSpec('Power (mean over the last settled step)', 'twin_bess_power_watts', 'gauge', (),
               '', 'W',
               'Battery AC power, **+ discharge / − charge**.',
               'Battery AC power [W], + discharge / - charge.'),
    MetricSpec('Power (mean over the last settled step)', 'twin_bess_discharge_power_watts', 'gauge', (),
               '', 'W',
               'Battery discharge power, ≥ 0.',
               'Battery discharge power [W], >= 0.'),
    MetricSpec('Power (mean over the last settled step)', 'twin_bess_charge_power_watts', 'gauge', (),
               '', 'W',
               'Battery charge power, ≥ 0.',
               'Battery charge power [W], >= 0.'),
    MetricSpec('Power (mean over the last settled step)', 'twin_bess_setpoint_watts', 'gauge', ('stage',),
               '`stage` = `requested` / `commanded`', 'W',
               'Battery setpoint asked by the controller, and sent after the safety layer (+ discharge).',
               'Battery power setpoint [W] (+ discharge), by stage: requested by the controller or commanded after the safety layer.'),
    MetricSpec('Battery state (end of the last settled step)', 'twin_bess_soc_ratio', 'gauge', (),
               '', 'ratio 0–1',
               'State of charge of the present (faded) capacity.',
               'Battery state of charge [0-1] of the present capacity.'),
    MetricSpec('Battery state (end of the last settled step)', 'twin_bess_stored_energy_joules', 'gauge', (),
               '', 'J',
               'Energy stored.',
               'Energy stored in the battery [J].'),
    MetricSpec('Battery state (end of the last settled step)', 'twin_bess_capacity_joules', 'gauge', (),
               '', 'J',
               'Present capacity after fade.',
               'Present battery capacity after fade [J].'),
    MetricSpec('Per battery', 'twin_bess_unit_power_watts', 'gauge', ('battery',),
               '`battery` = the name in the site file (`bess` for a one-battery site)', 'W',
               'AC power of one battery over the last settled step, **+ discharge / − charge**; the batteries sum to `twin_bess_power_watts`.',
               'AC power of one battery [W], + discharge / - charge; the batteries sum to twin_bess_power_watts.'),
    MetricSpec('Per battery', 'twin_bess_unit_command_watts', 'gauge', ('battery',),
               '`battery`', 'W',
               "One battery's share of the commanded setpoint (after the safety layer, + discharge).",
               'Power commanded to one battery after the safety layer [W], + discharge.'),
    MetricSpec('Per battery', 'twin_bess_unit_soc_ratio', 'gauge', ('battery',),
               '`battery`', 'ratio 0–1',
               'State of charge of one battery (of its present capacity), end of the last settled step.',
               'State of charge [0-1] of one battery, of its present capacity.'),
    MetricSpec('Per battery', 'twin_bess_unit_stored_energy_joules', 'gauge', ('battery',),
               '`battery`', 'J',
               'Energy stored in one battery; the batteries sum to `twin_bess_stored_energy_joules`.',
               'Energy stored in one battery [J].'),
    MetricSpec('Per battery', 'twin_bess_unit_capacity_joules', 'gauge', ('battery',),
               '`battery`', 'J',
               'Present capacity of one battery after fade; the batteries sum to `twin_bess_capacity_joules`.',
               'Present capacity of one battery after fade [J].'),
    MetricSpec('Per battery', 'twin_bess_unit_charge_joules', 'counter', ('battery',),
               '`battery`', 'J',
               'AC energy into one battery (`bess_charge_kwh_<name>`); the batteries sum to `twin_energy_bess_charge_joules_total`.',
               'AC energy charged into one battery [J].'),
    MetricSpec('Per battery', 'twin_bess_unit_discharge_joules', 'counter', ('battery',),
               '`battery`', 'J',
               'AC energy out of one battery (`bess_discharge_kwh_<name>`); the batteries sum to `twin_energy_bess_discharge_joules_total`.',
               'AC energy discharged from one battery [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_pv_to_ev_joules', 'counter', (),
               '', 'J',
               'PV → EV (`pv_to_ev_kwh`).',
               'Energy pv to ev since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_pv_to_bess_joules', 'counter', (),
               '', 'J',
               'PV → battery (`pv_to_bess_kwh`).',
               'Energy pv to bess since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_pv_to_mall_joules', 'counter', (),
               '', 'J',
               'PV → mall (`pv_to_mall_kwh`).',
               'Energy pv to mall since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_pv_curtailed_joules', 'counter', (),
               '', 'J',
               'PV curtailed (`pv_curtailed_kwh`).',
               'Energy pv curtailed since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_pv_export_joules', 'counter', (),
               '', 'J',
               'PV exported, 0 on the isolated grid (`pv_export_kwh`).',
               'Energy pv export since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_bess_to_ev_joules', 'counter', (),
               '', 'J',
               'Battery → EV (`bess_to_ev_kwh`).',
               'Energy bess to ev since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_bess_to_mall_joules', 'counter', (),
               '', 'J',
               'Battery → mall (`bess_to_mall_kwh`).',
               'Energy bess to mall since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_grid_to_ev_joules', 'counter', (),
               '', 'J',
               'Grid → EV (`grid_import_ev_kwh`).',
               'Energy grid to ev since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_grid_to_mall_joules', 'counter', (),
               '', 'J',
               'Grid → mall (`grid_import_mall_kwh`).',
               'Energy grid to mall since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_grid_to_bess_joules', 'counter', (),
               '', 'J',
               'Grid → battery (`grid_to_bess_kwh`).',
               'Energy grid to bess since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_pv_joules', 'counter', (),
               '', 'J',
               'PV available (`pv_kwh`).',
               'Energy pv since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_ev_joules', 'counter', (),
               '', 'J',
               'EV energy delivered (`ev_kwh`).',
               'Energy ev since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_mall_joules', 'counter', (),
               '', 'J',
               'Mall demand (`mall_kwh`).',
               'Energy mall since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_grid_import_joules', 'counter', (),
               '', 'J',
               'Grid import, all sinks (`grid_import_kwh`).',
               'Energy grid import since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_bess_charge_joules', 'counter', (),
               '', 'J',
               'Battery AC charge (`bess_charge_kwh`).',
               'Energy bess charge since the run start [J].'),
    MetricSpec('Energy counters (since the run start)', 'twin_energy_bess_discharge_joules', 'counter', (),
               '', 'J',
               'Battery AC discharge (`bess_discharge_kwh`).',
               'Energy bess discharge since the run start [J].'),
    MetricSpec('Cost and CO2', 'twin_grid_cost', 'counter', ('currency',),
               '`currency`', 'currency',
               'Cost of grid imports since the start (`grid_cost_soles`).',
               'Cost of grid imports since the run start [currency].'),
    MetricSpec('Cost and CO2', 'twin_co2_grid_grams', 'counter', (),
               '', 'g',
               'CO2 of grid imports since the start (`co2_grid_kg`).',
               'CO2 emitted by grid imports since the run start [g].'),
    MetricSpec('Cost and CO2', 'twin_co2_avoided_grams', 'counter', (),
               '', 'g',
               'CO2 avoided by battery discharge, seed formula (`co2_avoided_indirect_kg`).',
               'CO2 avoided by battery discharge (seed formula: discharge x grid factor) since the run start [g].'),
    MetricSpec('Cost and CO2', 'twin_today_grid_cost', 'gauge', ('currency',),
               '`currency`', 'currency',
               'Grid cost on the simulated local day of the last settled step.',
               'Cost of grid imports on the simulated local day of the last settled step [currency].'),
    MetricSpec('Cost and CO2', 'twin_today_bess_savings', 'gauge', ('currency',),
               '`currency`', 'currency',
               'Saving of the battery against PV-only on that day: (max(load − PV, 0) − grid import) × price.',
               'Saving of the battery against PV-only on the simulated local day [currency].'),
    MetricSpec('Cost and CO2', 'twin_today_co2_grid_grams', 'gauge', (),
               '', 'g',
               'CO2 of grid imports on that day.',
               'CO2 of grid imports on the simulated local day [g].'),
    MetricSpec('Cost and CO2', 'twin_today_co2_avoided_grams', 'gauge', (),
               '', 'g',
               'CO2 avoided by the battery on that day.',
               'CO2 avoided by the battery on the simulated local day [g].'),
    MetricSpec('Cost and CO2', 'twin_today_energy_joules', 'gauge', ('flow',),
               '`flow` = `pv` / `ev` / `mall` / `grid_import`', 'J',
               'Energy on that day.',
               'Energy on the simulated local day, by flow: pv, ev, mall, grid_import [J].'),
    MetricSpec('Tariff', 'twin_tariff_price_per_joule', 'gauge', ('currency',),
               '`currency`', 'currency/J',
               'Price of imported energy in force (× 3.6e6 for currency/kWh).',
               'Price of imported energy in force [currency/J] (x 3.6e6 for currency/kWh).'),
    MetricSpec('Tariff', 'twin_tariff_period', 'gauge', ('period',),
               "`period` = the site's tariff periods (`HP` / `HFP` at Iquitos)", '1',
               "1 for the period in force, 0 for the site's other periods (`tariff.periods` of the site file).",
               "Tariff period in force: 1 for the acting period of the site's tariff, 0 for the others."),
    MetricSpec('Controller and safety', 'twin_controller_phase', 'gauge', ('controller', 'phase'),
               '`controller`, `phase`', '1',
               "1 for the phase that acted in the last settled step, 0 for the controller's other phases.",
               'Controller phase: 1 for the phase that acted in the last settled step, 0 for the others.'),
    MetricSpec('Controller and safety', 'twin_controller_phase_code', 'gauge', (),
               '', 'code',
               'Numeric code of that phase (`Setpoints.phase`).',
               'Numeric code of the acting controller phase.'),
    MetricSpec('Controller and safety', 'twin_controller_decide_seconds', 'histogram', (),
               '`le`', 's (wall)',
               'Wall time of one `controller.decide` call (buckets 1 µs … 1 s).',
               'Wall time of one controller.decide call [s].'),
    MetricSpec('Controller and safety', 'twin_controller_decide_run_seconds', 'gauge', ('stat',),
               '`stat` = `median` / `p99`', 's (wall)',
               'Decision time over the whole run (`decide_median_us`, `decide_p99_us` of `summary.json`); written by `twin export openmetrics` for a finished run (its steps were not timed one by one into the outputs), not by the live twin, which has the histogram.',
               'Controller decision time over the whole run [s], from summary.json (backfilled runs).',
               live=False),
    MetricSpec('Controller and safety', 'twin_safety_clamps', 'counter', ('reason',),
               '`reason`', 'clamps',
               'Setpoints bent by the safety layer, by reason (`bess_soc_min`, `bess_soc_max`, `no_reverse_flow`, `grid_import_limit`, …; every reason of `twin/engine/safety.py` is pre-created at 0).',
               'Setpoints bent by the safety layer, by reason.'),
    MetricSpec('Controller and safety', 'twin_plant_reverse_flow_cuts', 'counter', (),
               '', 'cuts',
               "Battery discharge cut inside a step by the inverter's no-export limit.",
               "Battery discharge cut by the inverter's no-export limit."),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_arrived', 'counter', (),
               '', 'vehicles',
               'Vehicles arrived.',
               'Vehicles arrived.'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_served', 'counter', (),
               '', 'vehicles',
               'Vehicles that got a socket (as `sessions_served` in `summary.json`).',
               'Vehicles that got a socket.'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_turned_away', 'counter', (),
               '', 'vehicles',
               'Vehicles that left without a socket (patience ran out; outcome `turned_away`).',
               'Vehicles that left without a socket.'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_satisfied', 'counter', (),
               '', 'vehicles',
               'Sessions that left their socket with the full request (outcome `satisfied`, as `sessions_satisfied` in `summary.json`).',
               'Sessions that left their socket with the full request.'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_satisfied_reduced', 'counter', (),
               '', 'vehicles',
               'Late arrivals whose request was cut to what fits before closing and who got it (outcome `satisfied_reduced`).',
               'Late arrivals that got their reduced request.'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_short', 'counter', (),
               '', 'vehicles',
               'Sessions that left their socket with less than requested (outcome `short`).',
               'Sessions that left their socket with less than requested.'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_refused_closing', 'counter', (),
               '', 'vehicles',
               'Sessions refused at the gate, too close to closing (outcome `refused_closing`).',
               'Sessions refused at the gate (too close to closing).'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sessions_waiting', 'gauge', (),
               '', 'vehicles',
               'Vehicles queueing for a socket now.',
               'Vehicles waiting for a socket.'),
    MetricSpec('EV sessions and sockets', 'twin_ev_sockets_occupied', 'gauge', ('type',),
               "`type` = the site's vehicle class (`ev.vehicles`)", 'sockets',
               'Sockets with a vehicle plugged in.',
               'Sockets with a vehicle plugged in, by vehicle type.'),
    MetricSpec('EV sessions and sockets', 'twin_socket_power_watts', 'gauge', ('socket', 'type'),
               '`socket` (`00`…), `type`', 'W',
               'Charging power per socket (mean over the step).',
               'Charging power per socket [W] (mean over the last settled step).'),
    MetricSpec('EV sessions and sockets', 'twin_socket_limit_watts', 'gauge', ('socket', 'type'),
               '`socket`, `type`', 'W',
               'Per-socket power limit in force (controller, after the safety layer).',
               'Per-socket power limit set by the controller after the safety layer [W].'),
    MetricSpec('EV sessions and sockets', 'twin_socket_occupied', 'gauge', ('socket', 'type'),
               '`socket`, `type`', '1',
               '1 while a vehicle is plugged in.',
               '1 when a vehicle is plugged into the socket, else 0.'),
    MetricSpec('Communication health (per device link)', 'twin_comm_requests', 'counter', ('device',),
               '`device`', 'requests',
               'Requests sent to the device.',
               'Requests sent to the device.'),
    MetricSpec('Communication health (per device link)', 'twin_comm_errors', 'counter', ('device',),
               '`device`', 'requests',
               'Requests that failed.',
               'Requests to the device that failed.'),
    MetricSpec('Communication health (per device link)', 'twin_comm_retries', 'counter', ('device',),
               '`device`', 'retries',
               'Retries made.',
               'Retries made to reach the device.'),
    MetricSpec('Communication health (per device link)', 'twin_comm_consecutive_errors', 'gauge', ('device',),
               '`device`', 'requests',
               'Errors since the last success.',
               'Errors since the last successful request.'),
    MetricSpec('Communication health (per device link)', 'twin_comm_failsafe', 'gauge', ('device',),
               '`device`', '1',
               '1 while the link is down and the device is in failsafe.',
               '1 while the device link is down and the device is in failsafe, else 0.'),
    MetricSpec('Communication health (per device link)', 'twin_comm_failsafe_entries', 'counter', ('device',),
               '`device`', 'entries',
               'Times the link went down (failsafe entered).',
               'Times the device link went down (failsafe entered).'),
)

#: The catalogue by family name.
BY_NAME: dict[str, MetricSpec] = {s.name: s for s in CATALOGUE}

#: Live families that only a controlled run publishes: what the controller decided and the
#: safety layer did (phase, decide time, clamps, battery setpoints and per-battery
#: commands, per-socket limits). ``twin shadow`` controls nothing: it does not export them
#: (every other ``live`` row it exports, for the site as measured).
CONTROLLER_ONLY: frozenset[str] = frozenset({
    "twin_controller_phase", "twin_controller_phase_code", "twin_controller_decide_seconds",
    "twin_safety_clamps", "twin_bess_setpoint_watts", "twin_bess_unit_command_watts",
    "twin_socket_limit_watts"})

#: Markers around each generated table in ``docs/metrics.md``.
_BEGIN = "<!-- catalogue: {section} -->"
_END = "<!-- /catalogue -->"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def sections() -> list[str]:
    """Section headings, in catalogue order."""
    out: list[str] = []
    for s in CATALOGUE:
        if s.section not in out:
            out.append(s.section)
    return out


def markdown_table(section: str) -> str:
    """The docs table of one section (markdown, no trailing newline)."""
    rows = ["| Name | Type | Labels | Unit | Meaning |", "|---|---|---|---|---|"]
    for s in CATALOGUE:
        if s.section == section:
            kind = "gauge (info)" if s.kind == "info" else s.kind
            rows.append(f"| `{s.exposed}` | {kind} | {s.labels_doc} | {s.unit} | {s.doc} |"
                        .replace("|  |", "| |"))
    return "\n".join(rows)


def render_docs(text: str) -> str:
    """``text`` (the docs page) with every generated table replaced by the catalogue's."""
    for section in sections():
        begin = _BEGIN.format(section=section)
        pat = re.compile(re.escape(begin) + r".*?" + re.escape(_END), re.S)
        if not pat.search(text):
            raise ValueError(f"docs/metrics.md has no '{begin}' ... '{_END}' block")
        block = f"{begin}\n{markdown_table(section)}\n{_END}"
        text = pat.sub(lambda _m, block=block: block, text, count=1)  # type: ignore[misc]
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m twin.monitoring.catalogue [--write-docs]``: print or write the tables."""
    ap = argparse.ArgumentParser(description="The metric catalogue of the twin.")
    ap.add_argument("--write-docs", action="store_true",
                    help=f"rewrite the generated tables of {DOCS.name}")
    a = ap.parse_args(argv)
    if a.write_docs:
        DOCS.write_text(render_docs(DOCS.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"{DOCS}: tables rewritten from the catalogue ({len(CATALOGUE)} metrics)")
    else:
        for section in sections():
            print(f"### {section}\n\n{markdown_table(section)}\n")
    return 0


__all__ = ["BY_NAME", "CATALOGUE", "CONTROLLER_ONLY", "DOCS", "MetricSpec", "markdown_table", "render_docs",
           "sections"]

if __name__ == "__main__":
    raise SystemExit(main())

"""The summary of a run (docs/spec.md §5): the KPIs of :mod:`twin.kpi_catalogue`, computed
from the per-step table or from :class:`SummaryColumns` (the same columns without the table).
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np
import pandas as pd

from twin import kpi_catalogue
from twin.components.bess import BessParams
from twin.engine import RunOutput, kpis
from twin.engine.tables import _phase_name_codes, _Rows
from twin.record import as_array
from twin.tariff import Bill, offpeak_price_per_kwh, tariff_summary
from twin.tariff import bill as tariff_bill
from twin.tariff import schedule as tariff_schedule

#: A session is satisfied when it left with what it asked for, to 1 Wh (one definition:
#: :data:`twin.kpi_catalogue.SATISFIED_TOL_KWH`).
SATISFIED_TOL_KWH = kpi_catalogue.SATISFIED_TOL_KWH


def battery_summaries(out: RunOutput, n: int) -> list[dict[str, Any]]:
    """Per-battery KPIs of a run with two or more batteries (``summary['batteries']``):
    name, ratings, AC charge / discharge [kWh], SOC range and mean [%], capacity at the end
    and fade [kWh, %], equivalent full cycles (DC throughput over twice the capacity, and
    AC discharge over the usable window) and the BLAST-Lite resistance growth [%]."""
    units = out.rec.units
    if units is None:
        return []
    rows = []
    for i, cfg in enumerate(out.scenario.site.batteries):
        cap0 = cfg.e_capacity_kwh
        ch = _f(units.e_charge_kwh[:n, i].sum())
        dis = _f(units.e_discharge_kwh[:n, i].sum())
        cap = units.cap_kwh[:n, i]
        soc = np.divide(units.e_stored_kwh[:n, i], cap, out=np.zeros(n), where=cap > 0) * 100.0
        cap_end = _f(cap[-1]) if n else cap0
        bp = BessParams.from_config(cfg)
        dc = bp.eta_charge * ch + (dis / bp.eta_discharge if bp.eta_discharge > 0 else 0.0)
        usable = (cfg.soc_max_frac - cfg.soc_min_frac) * cap0
        ageing = units.ageing[i]
        rows.append({
            "name": cfg.name, "capacity_kwh": cap0, "p_charge_max_kw": cfg.p_charge_max_kw,
            "p_discharge_max_kw": cfg.p_discharge_max_kw, "chemistry": cfg.chemistry,
            "bess_charge_kwh": ch, "bess_discharge_kwh": dis,
            "soc_min_percent": _f(soc.min()) if n else 0.0,
            "soc_max_percent": _f(soc.max()) if n else 0.0,
            "soc_mean_percent": _f(soc.mean()) if n else 0.0,
            "capacity_end_kwh": cap_end,
            "capacity_fade_percent": (cap0 - cap_end) / cap0 * 100.0 if cap0 else 0.0,
            "equivalent_full_cycles": _f(dc / (2.0 * cap0)) if cap0 else 0.0,
            "efc_usable": dis / usable if usable else 0.0,
            "resistance_growth_percent": (ageing["resistance_rel"] - 1.0) * 100.0
            if "resistance_rel" in ageing else None,
        })
    return rows


def _f(x: Any) -> float:
    v = float(x)
    return v if math.isfinite(v) else 0.0


def _import_limit_kpis(ts: TableLike, limit_kw: float | None, dt_h: float) -> dict[str, Any]:
    """Steps whose grid import is above the site's import limit, and the energy above it.

    The safety layer enforces the limit as far as it can (battery charging cut first, then
    EV charging scaled down); the mall's own demand cannot be curtailed, so a limit below
    it is exceeded, and every such step is reported here.
    """
    if limit_kw is None:
        return {"import_limit_kw": None, "import_limit_exceeded_steps": 0,
                "import_limit_exceeded_kwh": 0.0}
    p = ts["p_grid_kw"].to_numpy(dtype=float)
    over = p - limit_kw
    mask = over > 1e-6 * max(limit_kw, 1.0)
    return {"import_limit_kw": float(limit_kw),
            "import_limit_exceeded_steps": int(mask.sum()),
            "import_limit_exceeded_kwh": _f(over[mask].sum() * dt_h)}


def _orig(sessions: pd.DataFrame) -> Any:
    """The sessions' original requests [kWh] (None for tables written before the column)."""
    return sessions["e_req_orig_kwh"].to_numpy() if "e_req_orig_kwh" in sessions else None


def session_kpis(sessions: pd.DataFrame) -> dict[str, Any]:
    """Session counts and energies of the summary, by the outcomes of the KPI catalogue.

    The outcome counts (:data:`twin.kpi_catalogue.SESSION_OUTCOMES`) sum to
    ``sessions_total``; ``ev_energy_requested_kwh`` is what all arrivals asked for.
    """
    n_sess = len(sessions)
    if n_sess:
        outcome = kpi_catalogue.session_outcomes(sessions["status"].astype(str).to_numpy(),
                                                 sessions["e_req_kwh"].to_numpy(),
                                                 sessions["e_delivered_kwh"].to_numpy(),
                                                 _orig(sessions))
    else:
        outcome = np.zeros(0, dtype=str)
    counts = kpi_catalogue.outcome_counts(outcome)
    socket = sessions["status"].astype(str).isin(["served", "plugged"]).to_numpy() if n_sess \
        else np.zeros(0, bool)  # got a socket
    req = sessions["e_req_kwh"].to_numpy(dtype=float) if n_sess else np.zeros(0)
    return {
        "sessions_total": n_sess,
        "sessions_served": int(socket.sum()),
        **counts,
        "sessions_satisfied_share": counts["sessions_satisfied"] / n_sess if n_sess else 0.0,
        "ev_energy_requested_kwh": _f(req.sum()),
        "ev_energy_requested_socket_kwh": _f(req[socket].sum()),
        "ev_energy_delivered_kwh": _f(sessions["e_delivered_kwh"].sum()) if n_sess else 0.0,
    }


def ev_shares(ts: TableLike, eta_charge: float, stored0_kwh: float) -> dict[str, float]:
    """EV shares that do not hang on the seed's allocation order (issue 19, point 5).

    * ``bess_discharge_grid_share``: share of the battery's output that was grid-charged,
      by a proportional colour of the stored energy (each step's output takes the grid
      share of what is stored; charge from the grid adds to it; the stored energy is the
      run's own SOC series). The initial content counts as grid-charged (unknown origin).
    * ``ev_coverage_no_grid_charge``: the seed allocation's EV share from PV + BESS with the
      grid-charged part of the battery's output to the EVs taken out.
    * ``ev_coverage_counterfactual``: 1 − (grid energy the EV load causes) / EV energy,
      where the EV load causes, per step, the site's import to the loads minus the import
      the mall alone would have needed from the same local supply (PV used + battery
      output that was not grid-charged): ``(load − local) − max(mall − local, 0)``.
      The EVs count as the last load served: the share is a lower bound, and it does not
      depend on which load the battery's output is said to go to.
    * ``ev_coverage_pro_rata``: each step's local supply to the loads shared in proportion
      to the loads (``Σ ev × local / load``): no load first, no load last (grid-charged
      battery output is not local).
    """
    # stdlib arrays, not lists: the same Python floats on read, 8 bytes an item instead of
    # a list's 32 (at 1-min ticks four lists were ~70 MiB, the run's peak memory)
    dis = as_array(ts["bess_discharge_kwh"].to_numpy(dtype=float))
    c_g = as_array(ts["grid_to_bess_kwh"].to_numpy(dtype=float))
    c_pv = as_array(ts["pv_to_bess_kwh"].to_numpy(dtype=float))
    stored = as_array(ts["soc_kwh"].to_numpy(dtype=float))
    grid_f = array("d", bytes(8 * len(stored)))  # grid share of the stored energy, step start
    f, prev = 1.0, stored0_kwh  # grid share of the stored energy; stored energy [kWh]
    for k, s_k in enumerate(stored):
        grid_f[k] = f
        out_dc = prev + (c_pv[k] + c_g[k]) * eta_charge - s_k  # taken out (output, losses)
        pool = f * max(prev - max(out_dc, 0.0), 0.0) + c_g[k] * eta_charge
        f = min(pool / s_k, 1.0) if s_k > 1e-9 else 0.0
        prev = s_k
    del c_g, c_pv, stored
    e_dis = float(sum(dis))
    gf = np.frombuffer(grid_f, dtype=np.float64)
    grid_dis = np.frombuffer(dis, dtype=np.float64) * gf  # battery output that was grid-charged
    del dis
    ev = ts["ev_kwh"].to_numpy(dtype=float)
    e_ev = float(ev.sum())
    mall = ts["mall_kwh"].to_numpy(dtype=float)
    load = ts["load_kwh"].to_numpy(dtype=float)
    # the same operations as the formulas in the docstring, in place (fewer temporaries)
    local = ts["grid_import_kwh"].to_numpy(dtype=float) - ts["grid_to_bess_kwh"].to_numpy(
        dtype=float)
    np.maximum(local, 0.0, out=local)  # grid import to the loads
    np.subtract(load, local, out=local)
    local -= grid_dis
    # local supply to the loads: PV used + battery output that was not grid-charged
    np.clip(local, 0.0, load, out=local)
    ev_grid = mall - local
    np.maximum(ev_grid, 0.0, out=ev_grid)
    np.subtract(load - local, ev_grid, out=ev_grid)
    np.clip(ev_grid, 0.0, ev, out=ev_grid)
    e_ev_grid = float(ev_grid.sum())
    np.multiply(ev, local, out=ev_grid)
    del local
    ev_grid /= np.where(load > 0, load, 1.0)
    pro_rata = float(np.sum(ev_grid))
    del ev_grid
    to_ev = ts["bess_to_ev_kwh"].to_numpy(dtype=float)
    grid_to_ev = float(np.sum(to_ev * gf))
    pv_to_ev = float(ts["pv_to_ev_kwh"].sum())
    return {
        "ev_coverage_counterfactual": 1.0 - e_ev_grid / e_ev if e_ev else 0.0,
        "ev_coverage_pro_rata": pro_rata / e_ev if e_ev else 0.0,
        "bess_discharge_grid_share": float(grid_dis.sum()) / e_dis if e_dis else 0.0,
        "ev_coverage_no_grid_charge": (pv_to_ev + float(to_ev.sum()) - grid_to_ev) / e_ev
        if e_ev else 0.0,
    }


#: Per-step columns summed into the run's totals.
_TOTALS = ("pv_kwh", "ev_kwh", "mall_kwh", "load_kwh", "pv_to_ev_kwh", "pv_to_bess_kwh",
           "pv_to_mall_kwh", "pv_curtailed_kwh", "bess_charge_kwh", "bess_discharge_kwh",
           "bess_to_ev_kwh", "bess_to_mall_kwh", "grid_import_ev_kwh", "grid_import_mall_kwh",
           "grid_import_kwh", "grid_export_kwh", "grid_to_bess_kwh", "grid_cost_soles",
           "cost_savings_hp_soles", "co2_avoided_indirect_kg", "co2_grid_kg",
           "co2_avoided_bess_kg")


def build_summary(out: RunOutput, ts: TableLike, sessions: pd.DataFrame) -> dict[str, Any]:
    """Per-run KPIs (the seed-003 ``bess_results.json`` fields and more).

    ``ts`` is the per-step table, or :class:`SummaryColumns` (the same columns, built one
    at a time over the whole run without the table). The keys are the rows of
    :mod:`twin.kpi_catalogue`; each part below builds one group of them, in order.
    """
    n = out.steps_done
    days = n * out.scenario.config.dt / 3600.0 / 24.0
    tot = {c: _f(ts[c].sum()) for c in _TOTALS}
    tariff = out.scenario.site.tariff
    # the bill: energy (the per-step column) + demand charges per billing month + fixed
    sched = tariff_schedule(tariff, out.inputs.index[:n], out.inputs.hour[:n])
    bill = tariff_bill(sched, ts["grid_import_kwh"].to_numpy(), out.scenario.config.dt)
    summary: dict[str, Any] = {
        **_run_keys(out, n, days),
        **_energy_keys(out, ts, tot, days),
        **_money_and_co2_keys(out, ts, tot, n, bill),
        **_battery_state_keys(out, ts, tot, n, days),
        **_ev_and_control_keys(out, ts, sessions, n),
        "tariff_bill": tariff_summary(tariff, bill, sched),
        **_performance_keys(out, n),
    }
    if out.rec.units is not None:  # two or more batteries: each one's figures
        summary["batteries"] = battery_summaries(out, n)
    # a controller may add its own keys (e.g. ``optimal``: the LP and its gap to this run)
    extra = getattr(out.controller, "summary", None)
    if callable(extra):
        summary.update(extra(summary))
    return summary


def _run_keys(out: RunOutput, n: int, days: float) -> dict[str, Any]:
    """What ran: scenario, site, controller, seed, horizon; the battery's nameplate."""
    scn, site, cfg = out.scenario, out.scenario.site, out.scenario.config
    return {
        "scenario": cfg.name,
        "scenario_file": str(scn.path),
        "site": site.name,
        "controller": out.controller.name,
        "seed": cfg.seed,
        "start": str(scn.index[0]),
        "end": str(scn.index[0] + pd.Timedelta(seconds=n * cfg.dt)),
        "dt_s": cfg.dt,
        "n_steps": cfg.n_steps,
        "steps_done": n,
        "interrupted": out.interrupted,
        "days": days,
        # battery (seed 003 names)
        "capacity_kwh": site.bess.e_capacity_kwh,
        "nominal_power_kw": max(site.bess.p_charge_max_kw, site.bess.p_discharge_max_kw),
        "dod": site.bess.soc_max_frac - site.bess.soc_min_frac,
        "eta_roundtrip": site.bess.eta_roundtrip,
        "technology": site.bess.technology,
        "chemistry": site.bess.chemistry,
    }


def _energy_keys(out: RunOutput, ts: TableLike, tot: dict[str, float],
                 days: float) -> dict[str, Any]:
    """Energy totals [kWh], annualised figures, shares and cycles."""
    site = out.scenario.site
    pv_kwp = site.pv.p_dc_kwp
    cap0 = site.bess.e_capacity_kwh
    usable_kwh = (site.bess.soc_max_frac - site.bess.soc_min_frac) * cap0  # usable window
    bp = BessParams.from_config(site.bess)
    return {
        **{f"{k}": v for k, v in tot.items() if k.endswith("_kwh")},
        "pv_specific_yield_kwh_per_kwp": tot["pv_kwh"] / pv_kwp * (365.0 / days)
        if pv_kwp > 0 and days else 0.0,
        "pv_annualised_kwh": tot["pv_kwh"] * 365.0 / days if days else 0.0,
        "mall_annualised_kwh": tot["mall_kwh"] * 365.0 / days if days else 0.0,
        "ev_annualised_kwh": tot["ev_kwh"] * 365.0 / days if days else 0.0,
        "self_sufficiency": 1.0 - tot["grid_import_kwh"] / tot["load_kwh"] if tot["load_kwh"] else 0.0,
        "pv_self_consumption": (tot["pv_kwh"] - tot["pv_curtailed_kwh"] - tot["grid_export_kwh"])
        / tot["pv_kwh"] if tot["pv_kwh"] else 0.0,
        "ev_coverage": (tot["pv_to_ev_kwh"] + tot["bess_to_ev_kwh"]) / tot["ev_kwh"]
        if tot["ev_kwh"] else 0.0,
        "ev_coverage_bess": tot["bess_to_ev_kwh"] / tot["ev_kwh"] if tot["ev_kwh"] else 0.0,
        # cycles: over the usable SOC window (AC discharge ÷ ((soc_max − soc_min) × capacity)),
        # and the seeds' old figure under its honest name (discharge ÷ nominal capacity)
        "efc_usable_per_day": tot["bess_discharge_kwh"] / usable_kwh / days
        if usable_kwh and days else 0.0,
        "discharge_per_nominal_capacity_per_day": tot["bess_discharge_kwh"] / cap0 / days
        if cap0 and days else 0.0,
        **ev_shares(ts, bp.eta_charge, site.bess.soc_initial_frac * cap0),
    }


def _money_and_co2_keys(out: RunOutput, ts: TableLike, tot: dict[str, float], n: int,
                        bill: Bill) -> dict[str, Any]:
    """The bill [currency] (energy, demand, fixed), savings and CO2 [kg] with their
    counterfactuals (all grid; PV without the battery)."""
    site, cfg = out.scenario.site, out.scenario.config
    price = ts["tariff_soles_per_kwh"].to_numpy()
    load = ts["load_kwh"].to_numpy()
    pv = ts["pv_kwh"].to_numpy()
    cost_base = _f(kpis.cost_all_grid(load, price).sum())
    co2f = site.grid.co2_kg_per_kwh
    co2_base = _f(kpis.co2_all_grid_kg(load, co2f).sum())
    co2_no_bess = _f(kpis.co2_no_bess_kg(load, pv, co2f).sum())
    return {
        "currency": site.tariff.currency,
        "cost_baseline_soles": cost_base,
        "cost_pv_only_soles": _f(kpis.cost_no_bess(load, pv, price).sum()),
        "cost_grid_import_soles": tot["grid_cost_soles"],
        "cost_demand_soles": bill.demand,
        "cost_fixed_soles": bill.fixed,
        "cost_total_soles": tot["grid_cost_soles"] + bill.demand + bill.fixed,
        "savings_bess_soles": _f(kpis.savings_bess(load, pv, ts["grid_import_kwh"].to_numpy(),
                                                   price).sum()),
        "savings_total_soles": cost_base - tot["grid_cost_soles"],
        "cost_savings_hp_soles": tot["cost_savings_hp_soles"],
        # CO2 [kg]
        "co2_emissions_kg": tot["co2_grid_kg"],
        "co2_baseline_kg": co2_base,
        "co2_no_bess_kg": co2_no_bess,
        "co2_avoided_kg": co2_base - tot["co2_grid_kg"],
        "co2_avoided_bess_kg": tot["co2_avoided_bess_kg"],
        "co2_avoided_bess_seed_formula_kg": tot["co2_avoided_indirect_kg"],
        "co2_reduction_percent_pv_and_bess": kpis.reduction_percent(co2_base, tot["co2_grid_kg"]),
        "co2_reduction_percent_bess": kpis.reduction_percent(co2_no_bess, tot["co2_grid_kg"]),
        # grid
        "peak_grid_import_kw": _f(ts["p_grid_kw"].max()) if n else 0.0,
        **_import_limit_kpis(ts, site.grid.import_limit_kw, cfg.dt / 3600.0),
    }


def _battery_state_keys(out: RunOutput, ts: TableLike, tot: dict[str, float], n: int,
                        days: float) -> dict[str, Any]:
    """SOC [%], capacity fade (cycle and calendar parts) [%], cycles and ageing."""
    site = out.scenario.site
    cap0 = site.bess.e_capacity_kwh
    cap_end = _f(ts["capacity_kwh"].iloc[-1]) if n else cap0
    soc = ts["soc_percent"]
    bp = BessParams.from_config(site.bess)
    # DC throughput of the cells from the AC energies (nominal efficiencies; with an
    # efficiency curve this is the nominal-point estimate) [kWh]
    dc_kwh = _f(bp.eta_charge * tot["bess_charge_kwh"] + (
        tot["bess_discharge_kwh"] / bp.eta_discharge if bp.eta_discharge > 0 else 0.0))
    ageing = out.rec.bess_ageing  # BLAST-Lite figures from the plant (empty: linear model)
    if "t_cell_mean_c" in ageing:  # the in-process plant aged it (no full day yet: none)
        fade_cycle = ageing.get("fade_cycle_kwh", 0.0)
        # calendar (+ legacy CityLearn term); negative: BLAST-Lite's LTO model gains capacity
        # with time early on
        fade_other = cap0 - cap_end - fade_cycle
    else:
        fade_cycle = bp.cycle_fade_per_kwh * dc_kwh
        fade_other = max(cap0 - cap_end - fade_cycle, 0.0)
    has_bess = cap0 > 0 and getattr(out.controller, "uses_battery", True)
    usable_kwh = (site.bess.soc_max_frac - site.bess.soc_min_frac) * cap0
    return {
        "soc_min_percent": _f(soc.min()) if n else 0.0,
        "soc_max_percent": _f(soc.max()) if n else 0.0,
        "soc_mean_percent": _f(soc.mean()) if n else 0.0,
        "capacity_end_kwh": cap_end,
        "capacity_fade_kwh": cap0 - cap_end,
        "capacity_fade_percent": (cap0 - cap_end) / cap0 * 100.0 if cap0 else 0.0,
        "capacity_fade_cycle_percent": fade_cycle / cap0 * 100.0 if cap0 else 0.0,
        "capacity_fade_calendar_percent": fade_other / cap0 * 100.0 if cap0 else 0.0,
        "capacity_fade_annualised_percent": (cap0 - cap_end) / cap0 * 100.0 * 365.0 / days
        if cap0 and days else 0.0,
        "equivalent_full_cycles": dc_kwh / (2.0 * cap0) if cap0 else 0.0,
        "efc_usable": tot["bess_discharge_kwh"] / usable_kwh if usable_kwh else 0.0,
        "bess_in_use": bool(has_bess),
        "ageing_model": (("blast" if bp.blast else "linear") if site.bess.ageing else "off")
        if has_bess else "none",
        "resistance_growth_percent": (ageing["resistance_rel"] - 1.0) * 100.0
        if "resistance_rel" in ageing else None,
        "t_cell_mean_c": ageing.get("t_cell_mean_c",
                                    site.bess.t_cell_c if has_bess and not bp.blast else None),
    }


def _ev_and_control_keys(out: RunOutput, ts: TableLike, sessions: pd.DataFrame,
                         n: int) -> dict[str, Any]:
    """EV sessions and waits [min], controller phases [h], safety, inputs, tariff."""
    site = out.scenario.site
    dt_h = out.scenario.config.dt / 3600.0
    phases = ts["phase"].to_numpy()
    names = {int(k): v for k, v in out.controller.phases.items()}
    waits = (sessions["wait_min"].to_numpy(dtype=float)[sessions["plug_in"].notna().to_numpy()]
             if len(sessions) else np.zeros(0))
    return {
        **session_kpis(sessions),
        "wait_mean_min": _f(np.mean(waits)) if len(waits) else 0.0,
        "wait_p95_min": _f(np.quantile(waits, 0.95)) if len(waits) else 0.0,
        # controller and safety
        "phase_names": {str(k): v for k, v in names.items()},
        "phase_hours": {names.get(int(p), str(p)): _f((phases == p).sum() * dt_h)
                        for p in np.unique(phases)},
        "safety_clamps_total": out.clamps.total,
        "safety_clamps_by_reason": dict(sorted(out.clamps.by_reason.items())),
        "reverse_flow_cuts": out.n_reverse_flow_cuts,
        "energy_balance_residual_max_kwh": _f(ts["balance_residual_kwh"].abs().max()) if n else 0.0,
        # measured input files: values filled in their short gaps (twin.components.measured,
        # twin.components.weather)
        "input_filled_values": int(out.inputs.input_filled_values),
        # tariff (seed 003 names; the peak window of a weekday)
        "osinergmin_tariff": {
            "energia_hp_soles_kwh": max(site.tariff.period_prices[p] for p in site.tariff.peak_names),
            "energia_hfp_soles_kwh": offpeak_price_per_kwh(site.tariff),
            "horas_punta": [h for h in range(24)
                            if site.tariff.peak_window_h[0] <= h < site.tariff.peak_window_h[1]],
        },
    }


def _performance_keys(out: RunOutput, n: int) -> dict[str, Any]:
    """Wall times [s], rates and decision times [µs] (volatile: not compared across runs)."""
    dec = out.rec.decide_s[:n]
    fleet = out.sessions
    events = (fleet.events if fleet is not None else 0) + n
    return {
        "sim_wall_s": out.sim_wall_s,
        "inputs_wall_s": out.inputs_wall_s,
        "ticks_per_s": n / out.sim_wall_s if out.sim_wall_s > 0 else 0.0,
        "events": events,
        "events_per_s": events / out.sim_wall_s if out.sim_wall_s > 0 else 0.0,
        "decide_median_us": _f(np.median(dec) * 1e6) if n else 0.0,
        "decide_p99_us": _f(np.quantile(dec, 0.99) * 1e6) if n else 0.0,
    }


class SummaryColumns:
    """Columns of the per-step table over the whole run, each built when first asked for.

    ``build_summary`` reads about thirty of the table's columns; this gives them (the same
    numbers as the table's, as Series) without building the other columns, the text
    columns or the per-socket ones.
    """

    def __init__(self, out: RunOutput) -> None:
        self._rows = _Rows(out, 0, out.steps_done, _phase_name_codes(out), keep=False)

    def __getitem__(self, name: str) -> pd.Series:
        return pd.Series(self._rows[name], copy=False, name=name)

    def __len__(self) -> int:
        return self._rows.n


#: What :func:`build_summary` reads columns from: the table or :class:`SummaryColumns`.
TableLike = pd.DataFrame | SummaryColumns


#: Summary keys that change from run to run (wall time), left out of determinism checks
#: (the ``volatile`` rows of the KPI catalogue).
VOLATILE_KEYS: frozenset[str] = kpi_catalogue.volatile_keys()

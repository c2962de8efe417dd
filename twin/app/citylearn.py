"""``twin export citylearn SCENARIO --out DIR``: the site as a CityLearn 3.0 dataset (docs/spec.md §7).

The scenario is simulated once (its controller, or ``--controller``) and written as one
CityLearn building:

* ``schema.json`` — ``seconds_per_time_step`` = the scenario's ``dt``, one building with
  ``electrical_storage`` (capacity, nominal power, one-way efficiency = √round trip,
  capacity loss coefficient, power efficiency curve — flat at that efficiency unless the
  site gives one —, a flat capacity-power curve, initial SOC, depth of discharge), ``pv``
  (nominal power = DC kWp), one lossless charger per socket, one lossless EV per socket,
  and the grid limits as ``electrical_service.limits.total`` (``import_kw``,
  ``export_kw``); ``metadata`` says what CityLearn does with them
  (:data:`EXPORT_LIMIT_NOTE`: it cannot curtail PV) and holds the run's totals;
* ``building.csv`` — energy simulation per step: ``month``, ``hour``, ``minutes``,
  ``day_type`` (1 = Monday), ``non_shiftable_load`` = mall energy [kWh per step],
  ``solar_generation`` = PV AC power per kW DC [W/kW] (CityLearn multiplies by the
  nominal power and the step length), no thermal loads;
* ``weather.csv`` — ambient temperature from the PV model's diurnal model, clear-sky
  direct and diffuse irradiance at the site (pvlib Ineichen; the twin's cloudiness is in
  ``solar_generation``), a constant relative humidity, predictions 6/12/24 h ahead;
* ``pricing.csv`` — the tariff per step, predictions 6/12/24 h ahead;
* ``carbon_intensity.csv`` — the grid factor [kg/kWh];
* ``chargers/socket_NN.csv`` — per socket, from the twin's own session→socket assignment:
  state 1 (plugged) from the plug-in step to the leave step, with the session id, steps
  to departure, arrival SOC and required SOC (1.0 = the requested energy delivered);
  state 3 (away) otherwise. Every plugged session is exported (a session shorter than a
  step keeps one step; one that starts in the step another leaves starts one step later);
* ``bess_schema_params.json`` — the seed-000 parameter file.

Each EV is the socket's vehicle: its battery is its class's ``battery_kwh`` (else the
largest session energy of its type) and its power the class's ``p_max_kw``.

CityLearn 3.0.2 charges an EV at a constant power up to a full battery: it has no per-vehicle
charger power and no CC-CV taper. So each session is exported with the energy the twin's
vehicle **can take during its stay** (from plug-in to leave, at its own charger power capped
by the socket, with its taper: :func:`session_room_kwh`, at most its request), and the
arrival SOC is ``1 − that energy / capacity``: a CityLearn charger at full action delivers
what the twin's vehicle could take, in fewer steps (front-loaded, :data:`TAPER_NOTE`). The
twin's ``no_bess`` (sockets at their rating) delivers exactly that energy, so the round trip
compares like with like; the exported arrival SOC is not the vehicle's real one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.atomic import hold_output, replace_dir, temp_sibling, write_marker

#: Relative humidity written to weather.csv (the twin does not model it) [%].
RH_PERCENT = 80.0
#: Forecast leads of the ``*_predicted_1/2/3`` columns [h] (as in CityLearn's datasets).
LEADS_H = (6, 12, 24)
#: CityLearn version the dataset is written for.
CITYLEARN_VERSION = "3.0.2"
#: No SOC derating of the charge/discharge power (CityLearn otherwise draws a random curve).
FLAT_CAPACITY_POWER_CURVE = [[0.0, 1.0], [1.0, 1.0]]
#: What CityLearn 3.0.2 does with the site's grid limits, written into the schema's metadata.
EXPORT_LIMIT_NOTE = (
    "The grid limits are written as the building's electrical_service.limits.total "
    "(import_kw, export_kw). CityLearn 3.0.2 enforces them only on controllable devices: it "
    "scales back battery discharge (and charger actions) that would push the building past "
    "the limit, from its own estimate of the step's power, so only approximately (asked to "
    "discharge fully in every PV-surplus step of the week scenario's first 2 days, the "
    "battery still exports 84 kWh, against 592 kWh without the limit; the twin exports "
    "none). It cannot curtail PV: surplus PV beyond the export limit still leaves the "
    "building as negative net_electricity_consumption (flagged, as an estimate, in the "
    "charging_constraint_violation_kwh observation). The twin curtails that surplus instead "
    "(pv_curtailed_kwh, with grid_export_kwh <= export limit). With the battery idle and EVs at "
    "full power (the twin's no_bess), the grid import agrees (week scenario: within 0.03 %) "
    "and CityLearn's export above the limit, "
    "sum(max(-net_electricity_consumption - export_kw * step_h, 0)), is the energy the twin "
    "curtails (8,555 kWh vs 8,566 kWh).")

#: How the vehicles' CC-CV taper is exported, written into the schema's metadata.
TAPER_NOTE = (
    "CityLearn has no per-vehicle charger power and no CC-CV taper: each session's arrival "
    "SOC is set so that the EV's room (capacity x (1 - SOC)) is the energy the twin's vehicle "
    "can take in its stay at its own charger power with its taper (at most its request); a "
    "CityLearn charger at full action delivers that energy at constant power, earlier in the "
    "stay than the twin's tapering vehicle. The arrival SOC is not the vehicle's real one.")

_OBSERVATIONS = (
    "month", "day_type", "hour", "minutes", "outdoor_dry_bulb_temperature", "diffuse_solar_irradiance",
    "direct_solar_irradiance", "carbon_intensity", "non_shiftable_load", "solar_generation",
    "electrical_storage_soc", "net_electricity_consumption", "electricity_pricing",
    "electricity_pricing_predicted_1", "electric_vehicle_charger_connected_state",
    "connected_electric_vehicle_at_charger_battery_capacity",
    "connected_electric_vehicle_at_charger_departure_time",
    "connected_electric_vehicle_at_charger_required_soc_departure",
    "connected_electric_vehicle_at_charger_soc",
)
_SHARED = {"month", "day_type", "hour", "minutes", "outdoor_dry_bulb_temperature",
           "diffuse_solar_irradiance", "direct_solar_irradiance", "carbon_intensity",
           "electricity_pricing", "electricity_pricing_predicted_1"}


def _ahead(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` ``n`` steps ahead (a perfect forecast); the last ``n`` steps repeat the last ``n`` values."""
    if n <= 0 or len(x) == 0:
        return x.copy()
    if n >= len(x):
        return np.full_like(x, x[-1])
    return np.concatenate([x[n:], x[len(x) - n:]])


def charger_tables(sessions: pd.DataFrame, n_sockets: int, n_steps: int, dt_s: float,
                   t0: pd.Timestamp, capacity_kwh: list[float]) -> tuple[list[pd.DataFrame], int]:
    """Per-socket charger simulation tables from a run's sessions.

    Parameters
    ----------
    sessions : the run's sessions (``socket``, ``plug_in``, ``leave``, ``planned_departure``,
        ``e_req_kwh``, ``session_id``; ``e_room_kwh``, when present, is the energy the EV
        takes instead of ``e_req_kwh``: :func:`session_room_kwh`).
    n_sockets, n_steps : table sizes.
    dt_s : step length [s].
    t0 : scenario start.
    capacity_kwh : battery capacity of each socket's EV [kWh].

    Returns
    -------
    The tables and the number of sessions written.
    """
    plugged = sessions[sessions["plug_in"].notna() & (sessions["socket"] >= 0)]
    tables = []
    n_written = 0
    for j in range(n_sockets):
        state = np.full(n_steps, 3, dtype=np.int64)
        ev_id = np.full(n_steps, "", dtype=object)
        sess_id = np.full(n_steps, "", dtype=object)
        dep = np.full(n_steps, np.nan)
        req = np.full(n_steps, np.nan)
        arr_soc = np.full(n_steps, np.nan)
        cur_soc = np.full(n_steps, np.nan)
        rows = plugged[plugged["socket"] == j].sort_values("plug_in")
        free_from = 0
        cap = capacity_kwh[j]
        e_col = "e_room_kwh" if "e_room_kwh" in rows else "e_req_kwh"
        for plug, leave, sid, e_req in zip(rows["plug_in"], rows["leave"], rows["session_id"],
                                           rows[e_col], strict=True):
            a = max(math.floor((plug - t0).total_seconds() / dt_s + 1e-9), free_from)
            b = max(math.ceil((leave - t0).total_seconds() / dt_s - 1e-9), a + 1)
            if a >= n_steps:
                continue
            b = min(b, n_steps)
            sl = slice(a, b)
            state[sl] = 1
            ev_id[sl] = f"ev_{j:02d}"
            sess_id[sl] = f"s{int(sid)}"
            dep[sl] = b - np.arange(a, b)
            req[sl] = 1.0
            soc0 = min(max(1.0 - float(e_req) / cap, 0.0), 1.0)
            arr_soc[a] = soc0
            cur_soc[a] = soc0
            free_from = b
            n_written += 1
        tables.append(pd.DataFrame({
            "electric_vehicle_charger_state": state,
            "electric_vehicle_id": ev_id,
            "electric_vehicle_session_id": sess_id,
            "electric_vehicle_departure_time": dep,
            "electric_vehicle_required_soc_departure": req,
            "electric_vehicle_estimated_arrival_time": np.full(n_steps, np.nan),
            "electric_vehicle_estimated_soc_arrival": arr_soc,
            "electric_vehicle_current_soc": cur_soc,
        }))
    return tables, n_written


def session_room_kwh(sessions: pd.DataFrame, vehicles: dict[str, Any],
                     rating_kw: list[float]) -> np.ndarray:
    """Energy [kWh] each session's vehicle can take from plug-in to leave: at its charger
    power (``p_max_kw``) capped by its socket's rating, with its CC-CV taper (battery and
    arrival SOC of the session, taper SOC and floor of its class), at most its request.
    Sessions without a socket: 0."""
    from twin.components.taper import energy_kwh, taper_params

    out = np.zeros(len(sessions))
    cols = [sessions[c].to_numpy() for c in ("socket", "plug_in", "leave", "e_req_kwh",
                                            "p_max_kw", "vehicle_type")]
    nan = np.full(len(sessions), math.nan)
    cap = sessions["battery_kwh"].to_numpy(float) if "battery_kwh" in sessions else nan
    soc = sessions["soc_arrival"].to_numpy(float) if "soc_arrival" in sessions else nan
    for i, (sock, plug, leave, e_req, p_max, vt) in enumerate(zip(*cols, strict=True)):
        if sock < 0 or pd.isna(plug) or pd.isna(leave):
            continue
        vc = vehicles.get(str(vt))
        vmax = min(float(p_max), float(rating_kw[int(sock)]))
        e_t, kap = -math.inf, 0.0
        if vc is not None and math.isfinite(cap[i]) and math.isfinite(soc[i]):
            e_t, kap = taper_params(float(cap[i]), float(soc[i]), float(e_req), vc.taper_soc,
                                    vc.taper_floor_frac, vmax)
        stay_h = (leave - plug).total_seconds() / 3600.0
        out[i] = energy_kwh(float(e_req), vmax, vmax, e_t, kap, stay_h)
    return out


def _simulate(scenario: Path, out: Path, controller: str | None,
              sets: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    """Load ``scenario``, claim ``out`` and run the twin once; return (scenario, run output, results)."""
    from twin.config import load_scenario
    from twin.engine import Twin, get_controller
    from twin.engine.results import build_results

    scn = load_scenario(scenario, sets)
    hold_output(out, "citylearn")  # before the simulation: never lose the work at the end
    out_run = Twin(scn, get_controller(scn, controller)).run()
    return scn, out_run, build_results(out_run)


def _building_table(ts: pd.DataFrame, idx: pd.DatetimeIndex, p_dc_kwp: float, dt_h: float) -> pd.DataFrame:
    """``building.csv``: calendar, mall energy [kWh/step] and PV AC power per kW DC [W/kW]."""
    pv_w_per_kw = (ts["pv_kwh"].to_numpy() / dt_h) / max(p_dc_kwp, 1e-9) * 1000.0
    return pd.DataFrame({
        "month": idx.month, "hour": idx.hour, "minutes": idx.minute, "day_type": idx.day_of_week + 1,
        "daylight_savings_status": 0, "indoor_dry_bulb_temperature": 24.0,
        "average_unmet_cooling_setpoint_difference": 0.0, "indoor_relative_humidity": 50.0,
        "non_shiftable_load": ts["mall_kwh"].to_numpy(), "dhw_demand": 0.0, "cooling_demand": 0.0,
        "heating_demand": 0.0, "solar_generation": pv_w_per_kw,
    })


def _weather_table(site: Any, idx: pd.DatetimeIndex, dt_s: float, leads: list[int]) -> pd.DataFrame:
    """``weather.csv``: the PV model's ambient temperature [°C], clear-sky DNI/DHI [W/m²], RH [%]."""
    import pvlib

    from twin.components.pv import PvParams

    loc = site.location
    cs = pvlib.location.Location(loc.lat_deg, loc.lon_deg, loc.tz, loc.alt_m).get_clearsky(
        idx + pd.Timedelta(seconds=dt_s / 2))
    pp = PvParams()
    hour = idx.hour + idx.minute / 60.0
    t_mean = 0.5 * (pp.t_amb_min_c + pp.t_amb_max_c)
    t_amb = t_mean + 0.5 * (pp.t_amb_max_c - pp.t_amb_min_c) * np.cos(
        2 * np.pi * (np.asarray(hour) - pp.t_amb_peak_hour) / 24.0)
    base = {"outdoor_dry_bulb_temperature": np.asarray(t_amb, float),
            "outdoor_relative_humidity": np.full(len(idx), RH_PERCENT),
            "diffuse_solar_irradiance": cs["dhi"].to_numpy(float),
            "direct_solar_irradiance": cs["dni"].to_numpy(float)}
    weather = pd.DataFrame(base)
    for name, v in base.items():
        for i, k in enumerate(leads, start=1):
            weather[f"{name}_predicted_{i}"] = _ahead(v, k)
    return weather


def _storage_attributes(b: Any, dt_h: float) -> dict[str, Any]:
    """The stationary battery's CityLearn ``Battery`` attributes.

    CityLearn draws a random power-efficiency curve and capacity-power curve when none is
    given; the twin has a constant one-way efficiency (or the site's curve) and no SOC
    derating, so both curves are always written.
    """
    from twin.components.bess import BessParams

    eta = BessParams.from_config(b).eta_charge  # the one split of the round trip
    curve = b.efficiency_curve or [(0.0, eta), (1.0, eta)]
    return {
        "capacity": b.e_capacity_kwh, "nominal_power": max(b.p_charge_max_kw, b.p_discharge_max_kw),
        "efficiency": eta, "capacity_loss_coefficient": b.capacity_loss_coefficient,
        "loss_coefficient": b.self_discharge_frac_per_h * dt_h, "initial_soc": b.soc_initial_frac,
        "depth_of_discharge": b.soc_max_frac - b.soc_min_frac,
        "power_efficiency_curve": [[float(x), float(y)] for x, y in curve],
        "capacity_power_curve": FLAT_CAPACITY_POWER_CURVE,
    }


def _charger_and_ev_defs(sock: Any, cap: list[float],
                         p_ev_kw: list[float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One lossless charger per socket and its EV (a lossless battery of the socket's type)."""
    chargers = {
        f"socket_{j:02d}": {
            "type": "citylearn.electric_vehicle_charger.Charger",
            "charger_simulation": f"chargers/socket_{j:02d}.csv",
            "autosize": False,
            "attributes": {"nominal_power": float(p), "efficiency": 1.0,
                           "max_charging_power": float(p), "min_charging_power": 0.0,
                           "max_discharging_power": 0.0, "min_discharging_power": 0.0},
        } for j, p in enumerate(sock.p_rating_kw)
    }
    # the twin's EV energy is metered at the socket with no loss: a flat 100 % efficiency and
    # no SOC derating (CityLearn's random defaults would draw 3-4 % more from the grid)
    evs = {
        f"ev_{j:02d}": {"include": True, "battery": {
            "type": "citylearn.energy_model.Battery", "autosize": False,
            "attributes": {"capacity": cap[j], "nominal_power": p_ev_kw[j], "initial_soc": 0.5,
                           "depth_of_discharge": 1.0, "efficiency": 1.0, "capacity_loss_coefficient": 0.0,
                           "loss_coefficient": 0.0, "power_efficiency_curve": [[0.0, 1.0], [1.0, 1.0]],
                           "capacity_power_curve": FLAT_CAPACITY_POWER_CURVE}}}
        for j in range(len(cap))
    }
    return chargers, evs


def _electrical_service(grid: Any) -> dict[str, Any]:
    """The site's grid limits as CityLearn 3.0.2's ``electrical_service`` (see :data:`EXPORT_LIMIT_NOTE`)."""
    total = {"import_kw": grid.import_limit_kw, "export_kw": float(grid.export_limit_kw)}
    return {"mode": "single_phase", "limits": {"total": total}}


def _twin_totals(ts: pd.DataFrame) -> dict[str, float]:
    """The exported run's grid and PV totals [kWh], for comparing CityLearn's figures with the twin's."""
    return {k: round(float(ts[k].sum()), 3) for k in
            ("grid_import_kwh", "grid_export_kwh", "pv_kwh", "pv_curtailed_kwh", "mall_kwh", "ev_kwh")}


def _schema(scn: Any, scenario: Path, out_run: Any, res: Any, idx: pd.DatetimeIndex,
            parts: dict[str, Any], counts: tuple[int, int]) -> dict[str, Any]:
    """``schema.json``: one central-agent building with battery, PV, chargers and grid limits."""
    site = scn.site
    name = site.name.replace(" ", "_") or "site"
    return {
        "random_seed": scn.config.seed, "root_directory": None, "central_agent": True,
        "simulation_start_time_step": 0, "simulation_end_time_step": len(idx) - 1,
        "episode_time_steps": None, "rolling_episode_split": False, "random_episode_split": False,
        "seconds_per_time_step": scn.config.dt, "start_date": str(idx[0].date()),
        "observations": {o: {"active": True, "shared_in_central_agent": o in _SHARED} for o in _OBSERVATIONS},
        "actions": {"electrical_storage": {"active": True}, "electric_vehicle_storage": {"active": True}},
        "agent": {"type": "citylearn.agents.base.BaselineAgent", "attributes": {}},
        "reward_function": {"type": "citylearn.reward_function.RewardFunction", "attributes": {}},
        "electric_vehicles_def": parts["evs"],
        "buildings": {name: {
            "include": True, "energy_simulation": "building.csv", "weather": "weather.csv",
            "carbon_intensity": "carbon_intensity.csv", "pricing": "pricing.csv",
            "inactive_observations": [], "inactive_actions": [],
            "electrical_storage": {"type": "citylearn.energy_model.Battery", "autosize": False,
                                   "attributes": parts["storage"]},
            "pv": {"type": "citylearn.energy_model.PV", "autosize": False,
                   "attributes": {"nominal_power": site.pv.p_dc_kwp}},
            "chargers": parts["chargers"],
            "electrical_service": _electrical_service(site.grid),
        }},
        "metadata": {"exported_by": "pvbess-twin", "scenario": str(scenario),
                     "controller": out_run.controller.name,
                     "citylearn_version": CITYLEARN_VERSION, "sessions_plugged": counts[0],
                     "sessions_exported": counts[1],
                     "grid_limits_kw": {"import": site.grid.import_limit_kw,
                                        "export": float(site.grid.export_limit_kw)},
                     "export_limit_note": EXPORT_LIMIT_NOTE, "ev_taper_note": TAPER_NOTE,
                     "twin_totals_kwh": _twin_totals(res.timeseries)},
    }


def _write_dataset(out: Path, files: dict[str, Any], tables: list[pd.DataFrame]) -> None:
    """Write the dataset into a sibling folder, then swap it in as ``out`` (removed on failure)."""
    tmp = temp_sibling(out)
    try:
        (tmp / "chargers").mkdir()
        for fname, content in files.items():
            if isinstance(content, pd.DataFrame):
                fmt = "%.4f" if fname == "weather.csv" else None
                content.to_csv(tmp / fname, index=False, float_format=fmt)
            else:
                (tmp / fname).write_text(json.dumps(content, indent=2) + "\n")
        for j, t in enumerate(tables):
            t.to_csv(tmp / "chargers" / f"socket_{j:02d}.csv", index=False)
        write_marker(tmp, "citylearn", complete=True)
        replace_dir(tmp, out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_citylearn(scenario: Path, out: Path, controller: str | None = None,
                     sets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Simulate ``scenario`` and write it as a CityLearn dataset folder ``out`` (atomically).

    Returns a short summary (steps, sessions written, files).
    """
    from twin.inputs import SocketSpec

    scn, out_run, res = _simulate(scenario, out, controller, sets)
    ts = res.timeseries
    site = scn.site
    dt_s = scn.config.dt
    n = len(ts)
    idx = pd.DatetimeIndex(out_run.inputs.index[:n])
    leads = [round(h * 3600.0 / dt_s) for h in LEADS_H]
    price = out_run.inputs.price_per_kwh[:n].astype(float)

    sock = SocketSpec.from_config(site.ev)
    types = [sock.class_names[c] for c in sock.type_code]
    veh = site.ev.vehicles
    cap = [float(veh[t].battery_kwh if veh[t].battery_kwh is not None
                 else veh[t].e_req_kwh_max) for t in types]
    p_ev = [float(veh[t].p_max_kw) for t in types]
    sessions = res.sessions.assign(e_room_kwh=session_room_kwh(
        res.sessions, dict(veh), [float(p) for p in sock.p_rating_kw]))
    tables, n_written = charger_tables(sessions, len(sock.p_rating_kw), n, dt_s, idx[0], cap)
    n_plugged = int(res.sessions["plug_in"].notna().sum()) if len(res.sessions) else 0

    storage = _storage_attributes(site.bess, dt_s / 3600.0)
    chargers, evs = _charger_and_ev_defs(sock, cap, p_ev)
    schema = _schema(scn, scenario, out_run, res, idx,
                     {"storage": storage, "chargers": chargers, "evs": evs}, (n_plugged, n_written))
    seed_params = {"electrical_storage": {k: storage[k] for k in
                                          ("capacity", "nominal_power", "efficiency",
                                           "capacity_loss_coefficient", "initial_soc",
                                           "power_efficiency_curve")},
                   "photovoltaic": {"nominal_power": site.pv.p_dc_kwp}}
    _write_dataset(out, {
        "schema.json": schema, "bess_schema_params.json": seed_params,
        "building.csv": _building_table(ts, idx, site.pv.p_dc_kwp, dt_s / 3600.0),
        "weather.csv": _weather_table(site, idx, dt_s, leads),
        "pricing.csv": pd.DataFrame({"electricity_pricing": price,
                                     **{f"electricity_pricing_predicted_{i}": _ahead(price, k)
                                        for i, k in enumerate(leads, start=1)}}),
        "carbon_intensity.csv": pd.DataFrame({"carbon_intensity": np.full(n, site.grid.co2_kg_per_kwh)}),
    }, tables)
    return {"steps": n, "sessions_plugged": n_plugged, "sessions_exported": n_written,
            "chargers": len(tables), "dir": str(out)}


def cmd_export_citylearn(args: argparse.Namespace) -> int:
    """``twin export citylearn SCENARIO --out DIR``."""
    from twin.config import parse_set
    from twin.errors import EXIT_OK

    info = export_citylearn(Path(args.scenario), Path(args.out), args.controller, parse_set(args.set or []))
    print(f"{info['dir']}: CityLearn {CITYLEARN_VERSION} dataset, {info['steps']} steps, "
          f"{info['chargers']} chargers, {info['sessions_exported']} of {info['sessions_plugged']} "
          "plugged sessions", file=sys.stderr)
    return EXIT_OK


def register(fmt: Any) -> None:
    """Add ``twin export citylearn`` to the ``twin export`` sub-parsers."""
    cl = fmt.add_parser(
        "citylearn", help="the scenario as a CityLearn 3.0 dataset (schema.json + CSVs)",
        description="Simulate SCENARIO and write it as a CityLearn 3.0 dataset: schema.json, the "
                    "building's energy simulation (mall load, PV per kW), weather, pricing, carbon "
                    "intensity, battery and PV parameters, and one charger simulation CSV per socket "
                    "from the twin's own session-to-socket assignment.")
    cl.add_argument("scenario", help="scenario YAML file")
    cl.add_argument("--out", required=True, help="dataset folder to write (replaced atomically)")
    cl.add_argument("--controller", help="controller of the run that assigns sessions to sockets "
                                         "(default: the scenario's)")
    cl.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a value (repeatable)")
    cl.set_defaults(func=cmd_export_citylearn)

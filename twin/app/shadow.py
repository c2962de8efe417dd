"""``twin shadow``: the twin beside its site, read-only, on the wall clock.

Every tick (a little after each step boundary, at ``--speed`` simulated seconds per wall
second) the site's meters, battery, chargers and weather station are read over Modbus —
**never written**: the links are read-only and no setpoint is ever computed — and the
twin's own models predict PV power (from the measured irradiance), battery SoC and energy
(from the battery power the site applied) and grid import (:mod:`twin.shadow.model`).
Measured, predicted and residual series go to Prometheus (``--metrics-addr``,
:mod:`twin.monitoring.shadow`; alerting rules in ``config/prometheus/alerts.yml``), beside
the live metric catalogue of ``twin live`` / ``twin hil`` for the site as measured (less
the controller-only families), and to the run folder: ``shadow.csv`` / ``shadow.parquet`` (one row per tick),
``summary.json["shadow"]``, and, for ``twin calibrate RUN_DIR`` and ``twin replay RUN_DIR``,
the per-step measured table ``timeseries.parquet`` / ``.csv``
(:meth:`twin.shadow.model.ShadowModel.timeseries`: each step's values from the tick that
read them; battery steps only where the battery's heartbeat moved by exactly one update),
the chargers' session log ``sessions.csv`` (:mod:`twin.shadow.sessions`) and
``replay.yaml``. A run that loses its devices (none answers for
``--device-timeout``) or is stopped (Ctrl-C, SIGTERM) writes the ticks done, marked
partial (exit 130), like ``twin hil``; the wiring (devices, links, link options, metrics
server, signals) is ``twin hil``'s.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import AdapterError, Telemetry
from adapters.modbus.site import CLOCK_DEVICE, WEATHER_DEVICE, check_simulator
from twin.app.hil import (
    HilError,
    HilSettings,
    add_link_args,
    check_link_args,
    connect_site,
    open_devices,
    serve_metrics,
    stop_on_signals,
)
from twin.config import Scenario
from twin.errors import EXIT_INTERRUPTED, EXIT_OK, UserError

log = logging.getLogger("twin.shadow")

#: Where inside a step the tick reads [fraction of a step]: after the devices published.
READ_LAG_FRAC = 0.3


@dataclass
class ShadowRun:
    """A finished (or stopped) shadow run."""

    scn: Scenario
    model: Any
    n_steps: int
    sessions: Any = None
    socket_ratings_kw: Any = None
    fault: str | None = None
    comm: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    written_to: Path | None = None

    @property
    def steps_done(self) -> int:
        """Ticks recorded."""
        return len(self.model.rows)

    @property
    def interrupted(self) -> bool:
        """True when fewer ticks than the horizon were recorded."""
        return self.steps_done < self.n_steps


def _reading(tel: Telemetry, wx: Any, charger_fault: bool, bess_hb: int | None = None) -> Any:
    """The model's ``Reading`` from the adapters' telemetry (invalid values are NaN)."""
    from twin.shadow.model import Reading

    nan = math.nan
    m, b, s = tel.meters, tel.bess, tel.sockets
    b_ok = bool(b.valid) and "bess" not in tel.held
    s_ok = bool(s.valid) and "chargers" not in tel.held and s.p_last_kw is not None
    w_ok = wx is not None and wx.valid
    return Reading(
        pv_kw=m.p_pv_kw if m.valid else nan, mall_kw=m.p_mall_kw if m.valid else nan,
        ghi_w_m2=wx.ghi_w_m2 if w_ok else nan, t_amb_c=wx.t_amb_c if w_ok else nan,
        t_module_c=wx.t_module_c if w_ok else nan,
        soc_frac=b.soc_frac if b_ok else nan, e_capacity_kwh=b.e_capacity_kwh if b_ok else nan,
        bess_kw=b.p_kw if b_ok else nan,
        ev_kw=float(sum(s.p_last_kw)) if s_ok and s.p_last_kw is not None else nan,
        charger_fault=charger_fault,
        bess_hb=float(bess_hb) if b_ok and bess_hb is not None else nan)


def _read(io: Any) -> tuple[Telemetry, Any, bool]:
    """One read of every device (never writes): telemetry, weather, charger fault now."""
    before = io.chargers.telemetry.reasons.get("device_fault", 0)
    tel = io.read()
    wx = io.runner.run(io.weather.aread()) if io.weather is not None else None
    fault = io.chargers.telemetry.reasons.get("device_fault", 0) > before
    return tel, wx, fault


def _ages(r: Any, t_s: float, last_ok: dict[str, float]) -> dict[str, float]:
    """Site time since each device's last valid reading [s] (updated with ``r``)."""
    ok = {"pv_inverter": math.isfinite(r.pv_kw), "site_meter": math.isfinite(r.mall_kw),
          "bess": math.isfinite(r.soc_frac), "chargers": math.isfinite(r.ev_kw),
          "weather_station": math.isfinite(r.ghi_w_m2)}
    for d, good in ok.items():
        if good:
            last_ok[d] = t_s
    return {d: t_s - last_ok.get(d, 0.0) for d in ok}


def _track_sessions(run: ShadowRun, tel: Telemetry, t_s: float, wall: Any) -> None:
    """Feed a new valid charger reading to the session log (a held or invalid one is not)."""
    from twin.shadow.sessions import SessionTracker

    s = tel.sockets
    if not s.valid or "chargers" in tel.held or s.p_last_kw is None or s.e_session_kwh is None:
        if run.sessions is not None:
            run.sessions.n_skipped += 1
        return
    if run.sessions is None:
        run.sessions = SessionTracker(run.scn.config.dt, np.asarray(s.type_code),
                                      run.scn.site.ev.class_names)
        run.socket_ratings_kw = np.asarray(s.p_rating_kw, dtype=float)
    now_s = (time.monotonic() - wall.t0) * wall.speed  # the adapter's clock, just after the read
    run.sessions.update(t_s, np.asarray(s.occupied), np.asarray(s.e_session_kwh),
                        np.asarray(s.p_last_kw), np.asarray(s.p_demand_kw),
                        np.asarray(s.t_departure_s) - now_s)


def run_shadow(scn: Scenario, st: HilSettings, metrics: Any = None,
               stop: threading.Event | None = None, on_start: Any = None) -> ShadowRun:
    """Shadow the site named by ``st.devices`` (or ``st.simulator``) for the scenario's horizon.

    Raises
    ------
    ConfigError
        A bad devices file or register map.
    HilError
        The devices cannot be reached or do not match the scenario (before the first tick).
    """
    from twin.engine import WallClock
    from twin.shadow.model import ShadowModel

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    stop = stop if stop is not None else threading.Event()
    n, dt = scn.config.n_steps, scn.config.dt
    wall = WallClock(dt, st.speed, stop, lag_frac=READ_LAG_FRAC)
    run = ShadowRun(scn, ShadowModel(scn), n)
    devices = open_devices(scn, st, weather=True)
    if WEATHER_DEVICE not in devices.endpoints:
        log.warning("shadow: no '%s' in the devices: PV is not predicted", WEATHER_DEVICE)

    io = connect_site(scn, devices, st, wall)
    t_wall = time.monotonic()
    try:
        if metrics is not None:  # the site as measured: the live catalogue (read-only)
            from twin.monitoring.shadow import MeasuredSite

            metrics.follow(MeasuredSite(scn, io, wall), st.speed, lambda: wall.lag_s)
        if CLOCK_DEVICE in io.links:  # our simulator: same horizon and step, not run out
            from adapters.modbus.simclock import SimClockClient
            try:
                check_simulator(SimClockClient(io.links[CLOCK_DEVICE]), n, dt)
            except AdapterError as exc:
                raise HilError(str(exc)) from None
        if on_start is not None:
            on_start(n)
        run.fault = _loop(run, io, wall, st, metrics, stop)
    finally:
        run.comm = {"devices": {**io.summary(), **({WEATHER_DEVICE: io.weather.summary()}
                                                   if io.weather is not None else {})},
                    "max_lag_s": wall.max_lag_s}
        io.close()
    run.wall_s = time.monotonic() - t_wall
    return run


def _loop(run: ShadowRun, io: Any, wall: Any, st: HilSettings, metrics: Any,
          stop: threading.Event) -> str | None:
    """Tick until the horizon, a stop or lost devices; return the fault (None: done)."""
    dt = run.scn.config.dt
    last_ok: dict[str, float] = {}
    wall.start()
    try:
        wall.pacer.wait_until(READ_LAG_FRAC * dt)  # the first read lags as every tick's
    except KeyboardInterrupt:
        return "stopped (signal or Ctrl-C)"
    for k in range(run.n_steps):
        tel, wx, cfault = _read(io)
        r = _reading(tel, wx, cfault, getattr(io.bess, "heartbeat", None))
        _track_sessions(run, tel, k * dt, wall)
        row = run.model.step(k, r)
        silent = io.silent(st.device_timeout_s)
        if metrics is not None:
            metrics.update(row, _ages(r, k * dt, last_ok), bool(silent), tel)
        if silent:
            what = ", ".join(f"{d} for {s:.1f} s" for d, s in sorted(silent.items()))
            msg = (f"the devices stopped answering at tick {k + 1}: no answer from {what} "
                   f"(--device-timeout {st.device_timeout_s:g} s)")
            log.error("shadow: %s", msg)
            return msg
        if k + 1 < run.n_steps:
            try:
                wall.advance(k)
            except KeyboardInterrupt:
                return "stopped (signal or Ctrl-C)"
        if stop.is_set():
            return "stopped (signal or Ctrl-C)"
    return None


def write_shadow(run: ShadowRun, out_dir: Path) -> dict[str, Any]:
    """Write ``shadow.csv``, ``shadow.parquet`` and ``summary.json`` atomically (a partial
    run never replaces a complete one: ``OUT.partial``); return the summary."""
    from twin import atomic

    sc = run.scn.site
    summary: dict[str, Any] = {
        "kind": "shadow", "scenario": run.scn.config.name, "n_steps": run.n_steps,
        "scenario_file": str(Path(run.scn.path).resolve()),
        "site_file": str(Path(run.scn.site_path).resolve()),
        "steps_done": run.steps_done, "interrupted": run.interrupted, "dt_s": run.scn.config.dt,
        "start": str(run.scn.index[0]),
        "shadow": {
            "fault": run.fault, "read_only": True, "wall_s": run.wall_s,
            "twin_parameters": {"pv.p_dc_kwp": sc.pv.p_dc_kwp,
                                "bess.e_capacity_kwh": sc.bess.e_capacity_kwh,
                                "bess.eta_roundtrip": sc.bess.eta_roundtrip},
            "residuals": run.model.summary(), "bess_steps_skipped": run.model.n_bess_skipped,
            "bess_steps_misaligned": run.model.n_bess_misaligned,
            "charger_ticks_skipped": run.sessions.n_skipped if run.sessions is not None else 0,
            "comm": run.comm},
    }
    df = run.model.frame()
    complete = not run.interrupted
    target = atomic.check_output_dir(atomic.partial_target(Path(out_dir)) if not complete
                                     else Path(out_dir))
    tmp = atomic.temp_sibling(target)
    try:
        df.to_csv(tmp / "shadow.csv", index=False, float_format="%.9g")
        df.to_parquet(tmp / "shadow.parquet", index=False)
        _write_measured(run, tmp)
        text = json.dumps(summary, indent=2, default=_json_default)
        (tmp / "summary.json").write_text(text.replace("NaN", "null") + "\n", encoding="utf-8")
        atomic.write_marker(tmp, "run", complete=complete,
                            extra={"steps_done": run.steps_done, "n_steps": run.n_steps})
        atomic.replace_dir(tmp, target)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.written_to = target
    return summary


#: The replay manifest of a shadow run (``twin replay RUN_DIR``): its files, relative.
REPLAY_NOTE = ("# twin replay manifest of a shadow run: measured per-step series and the session "
               "log the chargers reported (written by 'twin shadow')\n")


def _write_measured(run: ShadowRun, folder: Path) -> None:
    """The per-step measured table ``timeseries.parquet`` / ``.csv`` (what ``twin calibrate``
    reads), the chargers' ``sessions.csv`` and ``replay.yaml`` (what ``twin replay`` reads)."""
    import yaml

    ts = run.model.timeseries()
    ts.to_parquet(folder / "timeseries.parquet", index=False)
    out = ts.copy()
    out["timestamp"] = [t.isoformat() for t in out["timestamp"]]
    out.to_csv(folder / "timeseries.csv", index=False, float_format="%.9g")
    if run.sessions is None or not len(ts):
        return
    run.sessions.frame(run.scn.index[0], run.socket_ratings_kw).to_csv(
        folder / "sessions.csv", index=False, float_format="%.9g")
    man = {"name": f"{run.scn.config.name}-shadow", "site": str(Path(run.scn.site_path).resolve()),
           "measured": "timeseries.parquet", "sessions": "sessions.csv",
           "dt": float(run.scn.config.dt)}  # start and span: the table's
    (folder / "replay.yaml").write_text(REPLAY_NOTE + yaml.safe_dump(man, sort_keys=False),
                                        encoding="utf-8")


def _json_default(o: Any) -> Any:
    return float(o) if hasattr(o, "__float__") else str(o)


def cmd_shadow(args: argparse.Namespace) -> int:
    """``twin shadow``."""
    from twin.atomic import hold_output
    from twin.config import load_scenario, parse_set

    check_link_args(args)
    if not args.devices:
        raise UserError("--devices FILE: name the site's devices (see "
                        "config/devices.example.yaml); shadow mode never starts a simulator")
    scn = load_scenario(Path(args.scenario), parse_set(args.set or []))
    out_dir = Path(args.out) if args.out else (scn.config.output.dir
                                               or Path("runs") / f"{scn.config.name}-shadow")
    hold_output(out_dir, "run")  # before any work: never lose a run at the end
    st = HilSettings(timeout_s=args.timeout, retries=args.retries, read_only=True,
                     device_timeout_s=args.device_timeout, clock="wall", speed=args.speed,
                     registers=Path(args.registers) if args.registers else None,
                     devices=Path(args.devices), sets=tuple(args.set or ()))
    metrics = server = None
    if args.metrics_addr:
        from twin.monitoring.shadow import ShadowMetrics

        metrics = ShadowMetrics()
        server = serve_metrics(args.metrics_addr, metrics.registry, args.quiet)
    stop = threading.Event()

    def on_start(n_steps: int) -> None:
        if not args.quiet:
            print(f"twin shadow: devices answer; following {n_steps} steps read-only "
                  f"(x{st.speed:g})", file=sys.stderr, flush=True)

    with stop_on_signals(stop):
        try:
            run = run_shadow(scn, st, metrics=metrics, stop=stop, on_start=on_start)
        except HilError as exc:
            raise UserError(str(exc)) from None
        finally:
            if server is not None:
                server.shutdown()
        summary = write_shadow(run, out_dir)
    if not args.quiet:
        for q, v in summary["shadow"]["residuals"].items():
            if v["rms_residual"] is not None:
                print(f"  {q}: mean residual {v['mean_residual']:+.4g}, RMS "
                      f"{v['rms_residual']:.4g} ({v['ticks']} ticks)")
        print(f"outputs: {run.written_to}")
    if run.interrupted:
        print(f"twin: shadow run partial ({run.steps_done} of {run.n_steps} ticks): "
              f"{run.fault}; outputs hold the ticks done", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``twin shadow`` to the CLI's subcommands."""
    h = sub.add_parser(
        "shadow", help="follow a site read-only: measured vs the twin's predictions",
        description="Read the site's meters, battery, chargers and weather station every tick "
                    "(Modbus, read-only: never a write) and run the twin's own models beside "
                    "it: PV from the measured irradiance, battery SoC and energy from the "
                    "battery power the site applied, grid import. Publishes measured, "
                    "predicted and residual series (--metrics-addr; alerting rules in "
                    "config/prometheus/alerts.yml) and writes shadow.csv/.parquet, "
                    "summary.json, the per-step measured table timeseries.parquet/.csv ('twin "
                    "calibrate OUT'), the chargers' sessions.csv and replay.yaml ('twin replay "
                    "OUT'). Exit 0 done, 2 user error, 130 partial (devices lost, "
                    "Ctrl-C or SIGTERM: the ticks done are written).")
    h.add_argument("scenario", help="scenario YAML (e.g. scenarios/shadow.yaml): the twin's "
                                    "site file, start, horizon and step")
    h.add_argument("--devices", metavar="FILE", required=True,
                   help="devices file with the site's devices and optionally "
                        "'weather_station' (see config/devices.example.yaml)")
    h.add_argument("--out", help="output folder (default: the scenario's output.dir, else "
                                 "runs/NAME-shadow)")
    h.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a scenario or site value (the twin's, as 'twin run --set')")
    h.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per wall second, in (0, 1e6] (default 1 = real "
                        "time; a simulator at --speed N needs the same N)")
    add_link_args(h)
    h.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    h.set_defaults(func=cmd_shadow)


__all__ = ["ShadowRun", "cmd_shadow", "register", "run_shadow", "write_shadow"]

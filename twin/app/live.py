"""``twin live``: the twin on a real-time clock, with Prometheus metrics and JSON logs.

The same ``Twin`` and controller as ``twin run``; only the clock changes: the plant's
SimPy environment is a ``PacedEnvironment`` (``speed`` simulated seconds per wall second;
a slow step is caught up, not an error).

SIGTERM or Ctrl-C stops the run cleanly: the clock stops between two events, the run is
closed (``RunOutput.interrupted``) and the outputs hold the steps settled so far.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from twin.engine.clocks import PacedEnvironment

DEFAULT_METRICS_ADDR = "127.0.0.1:9108"


#: ``twin live``'s environment: the engine's paced SimPy environment (one pacing loop,
#: ``twin.engine.clocks.Pacer``), stoppable between two events.
LiveEnvironment = PacedEnvironment


def parse_addr(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1 by default).

    Raises
    ------
    twin.errors.UserError
        When the text is not an address.
    """
    from twin.errors import UserError

    host, port_s = "127.0.0.1", text.strip()
    if port_s.startswith("["):
        end = port_s.find("]")
        if end < 0 or not port_s[end + 1:].startswith(":"):
            raise UserError(f"--metrics-addr {text!r}: expected [HOST]:PORT")
        host, port_s = port_s[1:end], port_s[end + 2:]
    elif ":" in port_s:
        h, port_s = port_s.rsplit(":", 1)
        host = h or host
    try:
        port = int(port_s)
    except ValueError:
        raise UserError(f"--metrics-addr {text!r}: port {port_s!r} is not a number "
                        "(e.g. 127.0.0.1:9108, or port 0 for any free port)") from None
    if not 0 <= port <= 65535:
        raise UserError(f"--metrics-addr {text!r}: port must be 0-65535")
    return host, port


def _serve(text: str, host: str, port: int, registry: Any, log: Any) -> Any:
    """Serve ``registry`` on ``host:port`` (``--metrics-addr text``); print and log the URL."""
    from twin.errors import UserError
    from twin.monitoring.http import start_metrics_server

    try:
        server, _thread = start_metrics_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UserError(f"--metrics-addr {text}: cannot listen on {host}:{port} "
                        f"({exc.strerror or exc}); pick another port, or 0 for any free one") \
            from None
    bound_port = int(server.server_port)
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{bound_port}/metrics"
    print(f"metrics: {url}", flush=True)
    log.info("metrics_listening", addr=host, port=bound_port, url=url)
    return server


def cmd_live(args: argparse.Namespace) -> int:
    """``twin live``."""
    from twin.config import load_scenario, parse_set
    from twin.engine import Twin, get_controller
    from twin.engine.results import stream_results, write_results
    from twin.errors import EXIT_OK, UserError
    from twin.monitoring.logs import EventLog, SimClock, make_logger, new_run_id
    from twin.monitoring.metrics import MetricsSink, TwinMetrics, chain_on_step

    speed = float(args.speed)
    if not speed > 0 or speed != speed or speed == float("inf"):
        raise UserError(f"--speed {args.speed}: must be a positive number of simulated "
                        "seconds per wall second (1 = real time, 3600 = an hour per second)")
    host, port = parse_addr(args.metrics_addr)
    scn = load_scenario(Path(args.scenario), parse_set(args.set or []))
    controller = get_controller(scn, args.controller)
    out_dir = Path(args.out) if args.out else Path("runs") / f"{scn.config.name}-live"
    from twin.atomic import hold_output

    hold_output(out_dir, "run")  # before any work: a week at --speed 1 is a week of wall time
    env = LiveEnvironment(speed)
    twin = Twin(scn, controller, env=env)
    run_id = new_run_id(scn.config.name)
    start_utc = twin.start_utc
    tz = scn.site.location.tz
    json_logs = {"auto": None, "json": True, "console": False}[args.log_format]
    log = make_logger(run_id, SimClock(env, start_utc, tz), json=json_logs)
    for w in scn.warnings:
        log.warning("scenario_warning", message=w)
    metrics = TwinMetrics()
    sink = MetricsSink(twin, metrics, run_id=run_id, mode="live", speed=speed)
    sink.lag_fn = env.lag_s
    events = EventLog(twin, log).attach()
    twin.on_step = chain_on_step(sink, events.on_step)
    server = _serve(args.metrics_addr, host, port, metrics.registry, log)

    got: dict[str, Any] = {"signal": None}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        got["signal"] = signal.Signals(signum).name
        twin.stop_requested = True
        env.stop_flag = True

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread: no handlers; Ctrl-C still works
            break
    log.info("run_started", scenario=scn.config.name, scenario_file=str(scn.path),
             site=scn.site.name, controller=controller.name, n_steps=twin.n_steps,
             dt_s=scn.config.dt, speed=speed, mode="live", out=str(out_dir))
    try:
        env.sync()
        out = twin.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if got["signal"] is not None:
        log.info("stop_requested", signal=got["signal"])
    log.info("run_stopped", steps_done=out.steps_done, n_steps=twin.n_steps,
             interrupted=out.interrupted, sim_wall_s=round(out.sim_wall_s, 3),
             events_logged=events.n_events)
    events.detach()
    try:
        res = stream_results(out)
        res.summary["run_id"] = run_id
        res.summary["mode"] = "live"
        res.summary["speed"] = speed
        written = write_results(res, out_dir, csv=args.csv or scn.config.output.csv,
                                parquet=scn.config.output.parquet)
        log.info("outputs_written", out=str(written), steps_done=out.steps_done)
        print(f"outputs: {written}", flush=True)
    finally:
        server.shutdown()
        server.server_close()
    if out.interrupted and got["signal"] == "SIGINT":
        return 130
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``twin live`` and ``twin export`` to the ``twin`` sub-command parsers."""
    from twin.app.export import register_export

    lv = sub.add_parser(
        "live", help="run a scenario on a real-time clock and serve Prometheus metrics",
        description="Run SCENARIO on a real-time clock (SPEED simulated seconds per wall "
                    "second), serve /metrics for Prometheus and log events as JSON lines "
                    "(console format on a terminal). SIGTERM or Ctrl-C stops cleanly and "
                    "writes the outputs of the steps simulated so far. Exit status: 0 (done "
                    "or stopped by SIGTERM), 130 (stopped by Ctrl-C), 2 (user error).")
    lv.add_argument("scenario", help="scenario YAML file (e.g. scenarios/week.yaml)")
    lv.add_argument("--speed", type=float, default=1.0,
                    help="simulated seconds per wall second (default 1 = real time; "
                         "3600 = an hour per second)")
    lv.add_argument("--metrics-addr", default=DEFAULT_METRICS_ADDR, metavar="HOST:PORT",
                    help=f"where /metrics listens (default {DEFAULT_METRICS_ADDR}; port 0 = "
                         "any free port, printed on stdout as 'metrics: URL')")
    lv.add_argument("--out", help="output folder (default runs/NAME-live)")
    lv.add_argument("--csv", action="store_true",
                    help="also write timeseries.csv and sessions.csv (as 'twin run --csv')")
    lv.add_argument("--controller", help="controller name (overrides the scenario)")
    lv.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a scenario or site value (repeatable), as in 'twin run'")
    lv.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                    help="log format on stderr (default auto: JSON lines unless a terminal)")
    lv.set_defaults(func=cmd_live)
    register_export(sub)

"""``twin export openmetrics``: a finished run's per-step series as OpenMetrics text.

The file is meant for Prometheus backfilling::

    twin export openmetrics runs/annual -o annual.om
    promtool tsdb create-blocks-from openmetrics annual.om /var/lib/prometheus/metrics2

The series carry the same names and units as the live twin's ``/metrics`` (see
``docs/metrics.md``), so the shipped dashboard shows a backfilled run too. Each sample is
stamped with the **end** of its step [s, Unix time] — the instant the value is known,
which is also when the live twin publishes it (``twin_sim_time_seconds``): powers are
means over the step that ends there, states (SOC, stored energy) are at that instant,
counters are cumulative up to it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from twin.engine import kpis
from twin.monitoring.metrics import FLOWS, G_PER_KG, J_PER_KWH, TOTALS, W_PER_KW

#: Columns the export needs from ``timeseries.parquet``.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "timestamp", "soc_kwh", "capacity_kwh", "pv_kwh", "ev_kwh", "mall_kwh",
    "bess_charge_kwh", "bess_discharge_kwh", "grid_import_kwh", "tariff_soles_per_kwh",
    "tariff_period", "phase", "grid_cost_soles", "co2_grid_kg", "co2_avoided_indirect_kg",
    "n_plugged", "n_waiting", "safety_clamps", "p_bess_request_kw", "p_bess_command_kw",
    *FLOWS.values(),
)


class RunDirError(Exception):
    """The run folder cannot be exported (message names the file)."""


def _fmt_values(a: np.ndarray) -> list[str]:
    """Exact, shortest text of float values (``repr`` round-trips float64)."""
    return [repr(v) if math.isfinite(v) else ("NaN" if v != v else ("+Inf" if v > 0 else "-Inf"))
            for v in np.asarray(a, dtype=np.float64).tolist()]


def _fmt_times(t_s: np.ndarray) -> list[str]:
    if np.all(t_s == np.round(t_s)):
        return [str(int(v)) for v in t_s.tolist()]
    return [f"{v:.3f}" for v in t_s.tolist()]


def _labels(base: dict[str, str], extra: dict[str, str] | None = None) -> str:
    items = {**base, **(extra or {})}
    if not items:
        return ""
    esc = {k: v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
           for k, v in items.items()}
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc.items()) + "}"


class _Family:
    """One metric family: TYPE/HELP lines, then its series one after the other."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.series: list[tuple[str, np.ndarray]] = []

    def add(self, labels: str, values: np.ndarray) -> None:
        self.series.append((labels, values))

    def lines(self, times: list[str]) -> Iterator[str]:
        yield f"# TYPE {self.name} {self.kind}\n"
        yield f"# HELP {self.name} {self.help}\n"
        sample = self.name + ("_total" if self.kind == "counter" else "")
        for labels, values in self.series:
            prefix = sample + labels + " "
            yield "".join(f"{prefix}{v} {t}\n" for v, t in zip(_fmt_values(values), times,
                                                               strict=True))


def load_run(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read ``timeseries.parquet`` (and ``summary.json`` when present) of a run folder.

    Raises
    ------
    RunDirError
        Naming the missing or broken file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a folder; give a run folder written by 'twin run' "
                          "or 'twin live'")
    p = run_dir / "timeseries.parquet"
    if not p.is_file():
        raise RunDirError(f"{p}: not found; give a run folder written by 'twin run' or "
                          "'twin live' with Parquet output")
    try:
        ts = pd.read_parquet(p)
    except Exception as exc:
        raise RunDirError(f"{p}: cannot read ({type(exc).__name__}: {exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in ts.columns]
    if missing:
        raise RunDirError(f"{p}: missing column(s) {missing}; was it written by this version "
                          "of the twin?")
    if not isinstance(ts["timestamp"].dtype, pd.DatetimeTZDtype):
        raise RunDirError(f"{p}: column 'timestamp' must be timezone-aware timestamps")
    summary: dict[str, Any] = {}
    sp = run_dir / "summary.json"
    if sp.is_file():
        try:
            summary = json.loads(sp.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{sp}: not valid JSON ({exc})") from None
    return ts, summary


def _step_s(ts: pd.DataFrame, summary: dict[str, Any], where: Path) -> float:
    dt = summary.get("dt_s")
    if isinstance(dt, int | float) and dt > 0:
        return float(dt)
    if len(ts) >= 2:
        d = np.diff(pd.DatetimeIndex(ts["timestamp"]).as_unit("ns").asi8[:2])[0] / 1e9
        if d > 0:
            return float(d)
    raise RunDirError(f"{where / 'summary.json'}: needed for the step length (field 'dt_s')")


def families(ts: pd.DataFrame, summary: dict[str, Any], *, labels: dict[str, str],
             sockets: bool = False, dt_s: float) -> list[_Family]:
    """The metric families of a run (same names and units as the live ``/metrics``).

    Parameters
    ----------
    ts : the per-step table.
    summary : the run summary (phase names, currency, controller); may be empty.
    labels : labels put on every series (e.g. job, instance).
    sockets : also export per-socket power (38 more series for the Iquitos site).
    dt_s : step length [s].
    """
    dt_h = dt_s / 3600.0
    w = W_PER_KW / dt_h  # kWh per step -> W
    fams: list[_Family] = []

    def gauge(name: str, help_text: str, values: Any, extra: dict[str, str] | None = None,
              fam: _Family | None = None) -> _Family:
        f = fam or _Family(name, "gauge", help_text)
        f.add(_labels(labels, extra), np.asarray(values, dtype=np.float64))
        if fam is None:
            fams.append(f)
        return f

    def counter(name: str, help_text: str, increments: Any,
                extra: dict[str, str] | None = None) -> None:
        f = _Family(name, "counter", help_text)
        f.add(_labels(labels, extra), np.cumsum(np.asarray(increments, dtype=np.float64)))
        fams.append(f)

    col = {c: ts[c].to_numpy(dtype=np.float64) for c in REQUIRED_COLUMNS
           if c not in ("timestamp", "tariff_period", "phase")}
    n = len(ts)
    stored, cap = col["soc_kwh"], col["capacity_kwh"]
    gauge("twin_bess_soc_ratio", "Battery state of charge [0-1] of the present capacity.",
          np.where(cap > 0, stored / np.where(cap > 0, cap, 1.0), 0.0))
    gauge("twin_bess_stored_energy_joules", "Energy stored in the battery [J].",
          stored * J_PER_KWH)
    gauge("twin_bess_capacity_joules", "Present battery capacity after fade [J].",
          cap * J_PER_KWH)
    e_ch, e_dis = col["bess_charge_kwh"], col["bess_discharge_kwh"]
    gauge("twin_pv_power_watts", "PV AC power available [W].", col["pv_kwh"] * w)
    gauge("twin_pv_curtailed_power_watts", "PV power curtailed (isolated grid) [W].",
          col["pv_curtailed_kwh"] * w)
    gauge("twin_mall_power_watts", "Mall demand [W].", col["mall_kwh"] * w)
    gauge("twin_ev_power_watts", "EV charging power delivered [W].", col["ev_kwh"] * w)
    gauge("twin_grid_import_power_watts", "Power imported from the grid [W].",
          col["grid_import_kwh"] * w)
    gauge("twin_bess_power_watts", "Battery AC power [W], + discharge / - charge.",
          (e_dis - e_ch) * w)
    gauge("twin_bess_discharge_power_watts", "Battery discharge power [W], >= 0.", e_dis * w)
    gauge("twin_bess_charge_power_watts", "Battery charge power [W], >= 0.", e_ch * w)
    sp = gauge("twin_bess_setpoint_watts", "Battery power setpoint [W] (+ discharge), by "
               "stage.", col["p_bess_request_kw"] * W_PER_KW, {"stage": "requested"})
    gauge("", "", col["p_bess_command_kw"] * W_PER_KW, {"stage": "commanded"}, fam=sp)
    for flow, c in FLOWS.items():
        counter(f"twin_energy_{flow}_joules", f"Energy {flow.replace('_', ' ')} since the run "
                "start [J].", col[c] * J_PER_KWH)
    for flow, c in TOTALS.items():
        counter(f"twin_energy_{flow}_joules", f"Energy {flow.replace('_', ' ')} since the run "
                "start [J].", col[c] * J_PER_KWH)
    currency = str(summary.get("currency", "PEN"))
    counter("twin_grid_cost", "Cost of grid imports since the run start [currency].",
            col["grid_cost_soles"], {"currency": currency})
    counter("twin_co2_grid_grams", "CO2 emitted by grid imports since the run start [g].",
            col["co2_grid_kg"] * G_PER_KG)
    counter("twin_co2_avoided_grams", "CO2 avoided by battery discharge since the run "
            "start [g].", col["co2_avoided_indirect_kg"] * G_PER_KG)
    # today (simulated local day of the step)
    day = pd.DatetimeIndex(ts["timestamp"]).tz_localize(None).normalize()
    price = col["tariff_soles_per_kwh"]
    saving = kpis.savings_bess(col["ev_kwh"] + col["mall_kwh"], col["pv_kwh"],
                               col["grid_import_kwh"], price)

    def daily(values: np.ndarray) -> np.ndarray:
        return pd.Series(values).groupby(np.asarray(day)).cumsum().to_numpy(dtype=np.float64)

    gauge("twin_today_grid_cost", "Cost of grid imports on the simulated local day "
          "[currency].", daily(col["grid_cost_soles"]), {"currency": currency})
    gauge("twin_today_bess_savings", "Saving of the battery against PV-only on the simulated "
          "local day [currency].", daily(saving), {"currency": currency})
    gauge("twin_today_co2_grid_grams", "CO2 of grid imports on the simulated local day [g].",
          daily(col["co2_grid_kg"] * G_PER_KG))
    gauge("twin_today_co2_avoided_grams", "CO2 avoided by the battery on the simulated local "
          "day [g].", daily(col["co2_avoided_indirect_kg"] * G_PER_KG))
    te: _Family | None = None
    for flow in ("pv", "ev", "mall", "grid_import"):
        te = gauge("twin_today_energy_joules", "Energy on the simulated local day, by flow [J].",
                   daily(col[f"{flow}_kwh"] * J_PER_KWH), {"flow": flow}, fam=te)
    # tariff
    gauge("twin_tariff_price_per_joule", "Price of imported energy in force [currency/J].",
          price / J_PER_KWH, {"currency": currency})
    period = ts["tariff_period"].astype(str).to_numpy()
    tp = gauge("twin_tariff_period", "Tariff period in force: 1 for the acting period.",
               (period == "HP").astype(float), {"period": "HP"})
    gauge("", "", (period == "HFP").astype(float), {"period": "HFP"}, fam=tp)
    # controller
    phase = ts["phase"].to_numpy(dtype=np.int64)
    names = {int(k): str(v) for k, v in (summary.get("phase_names") or {}).items()}
    controller = str(summary.get("controller", ""))
    ph: _Family | None = None
    for code in sorted(set(names) | set(np.unique(phase).tolist())):
        ph = gauge("twin_controller_phase", "Controller phase: 1 for the acting phase.",
                   (phase == code).astype(float),
                   {"controller": controller, "phase": names.get(code, str(code))}, fam=ph)
    gauge("twin_controller_phase_code", "Numeric code of the acting controller phase.", phase)
    counter("twin_safety_clamps", "Setpoints bent by the safety layer (all reasons).",
            col["safety_clamps"])
    # EV
    gauge("twin_ev_sessions_waiting", "Vehicles waiting for a socket (step start).",
          col["n_waiting"])
    gauge("twin_ev_sockets_occupied", "Sockets with a vehicle plugged in (step start, all "
          "types).", col["n_plugged"], {"type": "all"})
    if sockets:
        sc = [c for c in ts.columns if c.startswith("p_socket_") and c.endswith("_kw")]
        sf: _Family | None = None
        for c in sc:
            sid = c[len("p_socket_"):-len("_kw")]
            sf = gauge("twin_socket_power_watts", "Charging power per socket [W].",
                       ts[c].to_numpy(dtype=np.float64) * W_PER_KW, {"socket": sid}, fam=sf)
    # progress
    t0 = pd.DatetimeIndex(ts["timestamp"]).as_unit("ns").asi8 / 1e9 if n else np.zeros(0)
    gauge("twin_sim_time_seconds", "Simulated instant (end of the step) as a Unix timestamp "
          "[s].", t0 + dt_s)
    counter("twin_sim_steps", "Control steps settled.", np.ones(n))
    return fams


def write_openmetrics(run_dir: Path, out: TextIO, *, job: str = "twin",
                      instance: str | None = None, sockets: bool = False) -> int:
    """Write the run in ``run_dir`` as OpenMetrics text to ``out``; return the sample count.

    Parameters
    ----------
    run_dir : a run folder (``timeseries.parquet``, optionally ``summary.json``).
    out : text stream; ends with ``# EOF``.
    job, instance : labels on every series (``instance`` defaults to the folder name).
    sockets : also export per-socket power.

    Raises
    ------
    RunDirError
        When the run folder is missing or broken.
    """
    run_dir = Path(run_dir)
    ts, summary = load_run(run_dir)
    dt_s = _step_s(ts, summary, run_dir)
    labels = {"job": job, "instance": instance or run_dir.resolve().name}
    fams = families(ts, summary, labels=labels, sockets=sockets, dt_s=dt_s)
    n = len(ts)
    t_end = (pd.DatetimeIndex(ts["timestamp"]).as_unit("ns").asi8 / 1e9 + dt_s) if n else \
        np.zeros(0)
    times = _fmt_times(np.asarray(t_end))
    count = 0
    for fam in fams:
        _write_all(out, fam.lines(times))
        count += n * len(fam.series)
    out.write("# EOF\n")
    return count


def _write_all(out: TextIO, chunks: Iterable[str]) -> None:
    for c in chunks:
        out.write(c)


def cmd_export_openmetrics(args: argparse.Namespace) -> int:
    """``twin export openmetrics RUN_DIR [-o FILE]``."""
    from twin.errors import EXIT_OK, UserError

    run_dir = Path(args.run_dir)
    try:
        if args.output in (None, "-"):
            n = write_openmetrics(run_dir, sys.stdout, job=args.job, instance=args.instance,
                                  sockets=args.sockets)
        else:
            target = Path(args.output)
            tmp = target.with_name(f".{target.name}.tmp")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                    n = write_openmetrics(run_dir, fh, job=args.job, instance=args.instance,
                                          sockets=args.sockets)
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
            print(f"{target}: {n} samples; load with: promtool tsdb create-blocks-from "
                  f"openmetrics {target} DATA_DIR", file=sys.stderr)
    except RunDirError as exc:
        raise UserError(str(exc)) from None
    return EXIT_OK


def register_export(sub: Any) -> None:
    """Add ``twin export openmetrics`` to the ``twin`` sub-command parsers."""
    ex = sub.add_parser("export", help="export a finished run (openmetrics: for Prometheus "
                                       "backfilling)",
                        description="Export a finished run in another format.")
    fmt = ex.add_subparsers(dest="format", required=True)
    om = fmt.add_parser(
        "openmetrics", help="per-step series as OpenMetrics text with timestamps",
        description="Write the run's per-step series (SOC, powers, cumulative energy, cost and "
                    "CO2 counters, tariff, controller phase, ...) as OpenMetrics text with "
                    "timestamps [s], ending with '# EOF', for 'promtool tsdb "
                    "create-blocks-from openmetrics FILE DATA_DIR'. Samples are stamped with "
                    "the end of their step.")
    om.add_argument("run_dir", help="a run folder written by 'twin run' or 'twin live'")
    om.add_argument("-o", "--output", help="output file (default: stdout)")
    om.add_argument("--job", default="twin", help="job label on every series (default twin)")
    om.add_argument("--instance", help="instance label on every series (default: the run "
                                       "folder's name)")
    om.add_argument("--sockets", action="store_true",
                    help="also export per-socket power (one series per socket)")
    om.set_defaults(func=cmd_export_openmetrics)
    from twin.app.citylearn import register as _reg_citylearn

    _reg_citylearn(fmt)

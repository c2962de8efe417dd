"""Damaged and hostile run folders for ``twin show``, ``twin export`` and ``twin report``.

:func:`make_folders` copies a real run folder and damages one thing per copy:
``summary.json`` as a list, binary bytes, deeply nested, wrong-typed fields, NaN or
1e308 values; ``timeseries.parquet`` with a NaN / 1e308 / text column. Every command
must exit 2 with a message (or 0 for a harmless change), never with a traceback.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

#: Case name -> damage applied to a copy of a run folder.
Damage = Callable[[Path], None]


def _summary(d: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((d / "summary.json").read_text())
    return data


def _put(d: Path, data: Any) -> None:
    (d / "summary.json").write_text(json.dumps(data))


def _field(key: str, value: Any) -> Damage:
    def f(d: Path) -> None:
        s = _summary(d)
        s[key] = value
        (d / "summary.json").write_text(json.dumps(s))  # allow_nan: writes NaN / Infinity
    return f


def _column(col: str, value: Any) -> Damage:
    def f(d: Path) -> None:
        p = d / "timeseries.parquet"
        ts = pd.read_parquet(p)
        if isinstance(value, str):
            ts[col] = value
        else:
            v = ts[col].to_numpy(dtype=float).copy()
            v[len(v) // 2] = value
            ts[col] = v
        ts.to_parquet(p, index=False)
        c = d / "timeseries.csv"
        if c.exists():
            c.unlink()
    return f


def _write(name: str, content: bytes) -> Damage:
    def f(d: Path) -> None:
        (d / name).write_bytes(content)
    return f


CASES: dict[str, Damage] = {
    "summary_list": lambda d: _put(d, [1, 2, 3]),
    "summary_string": lambda d: _put(d, "hello"),
    "summary_null": lambda d: _put(d, None),
    "summary_binary": _write("summary.json", bytes(range(256)) * 4),
    "summary_deep": _write("summary.json", b"[" * 100_000 + b"]" * 100_000),
    "summary_deep_obj": _write("summary.json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    "summary_empty": _write("summary.json", b""),
    "summary_days_str": _field("days", "many"),
    "summary_dt_list": _field("dt_s", [900]),
    "summary_pv_str": _field("pv_kwh", "lots"),
    "summary_pv_nan": _field("pv_kwh", float("nan")),
    "summary_pv_inf": _field("pv_kwh", float("inf")),
    "summary_pv_1e308": _field("pv_kwh", 1e308),
    "summary_start_int": _field("start", 5),
    "summary_phase_names_list": _field("phase_names", [1, 2]),
    "summary_steps_neg": _field("steps_done", -5),
    "summary_dt_zero": _field("dt_s", 0),
    "summary_interrupted_str": _field("interrupted", "yes"),
    "summary_currency_dict": _field("currency", {"a": 1}),
    "summary_scenario_list": _field("scenario", ["x"]),
    "ts_nan_soc": _column("soc_kwh", float("nan")),
    "ts_nan_soc_percent": _column("soc_percent", float("nan")),
    "ts_1e308_pv": _column("pv_kwh", 1e308),
    "ts_inf_grid": _column("grid_import_kwh", float("inf")),
    "ts_text_ev": _column("ev_kwh", "abc"),
    "ts_nan_timestamp_col": _column("phase", float("nan")),
    "ts_binary": _write("timeseries.parquet", bytes(range(256)) * 16),
    "ts_empty": _write("timeseries.parquet", b""),
}


def make_folders(run_dir: Path, into: Path) -> dict[str, Path]:
    """One damaged copy of ``run_dir`` per case, under ``into``; return name -> folder."""
    out: dict[str, Path] = {}
    for name, damage in CASES.items():
        d = into / name
        shutil.copytree(run_dir, d, ignore=shutil.ignore_patterns("report"))
        damage(d)
        out[name] = d
    return out


def commands(d: Path, tmp: Path) -> dict[str, list[str]]:
    """The three commands run on folder ``d`` (outputs under ``tmp``)."""
    return {
        "show": ["show", str(d)],
        "export": ["export", "openmetrics", str(d), "-o", str(tmp / f"{d.name}.om")],
        "report": ["report", str(d), "--out", str(tmp / f"{d.name}-report"), "-q"],
    }


#: Cases each command must refuse (exit 2): the damage touches data it uses.
_SUMMARY_BAD = {n for n in CASES if n.startswith("summary_") and n not in (
    "summary_pv_1e308", "summary_start_int", "summary_steps_neg", "summary_interrupted_str",
    "summary_currency_dict", "summary_scenario_list", "summary_phase_names_list",
    "summary_days_str", "summary_dt_list", "summary_dt_zero")}
_TS_BAD = {n for n in CASES if n.startswith("ts_") and n != "ts_nan_timestamp_col"}
MUST_REFUSE: dict[str, set[str]] = {
    "show": _SUMMARY_BAD | {"summary_pv_1e308", "summary_interrupted_str"},
    "export": ({"summary_list", "summary_string", "summary_binary", "summary_deep",
               "summary_deep_obj", "summary_empty", "summary_dt_list",
               "summary_phase_names_list", "summary_currency_dict"} | _TS_BAD)
    - {"ts_nan_soc_percent"},
    "report": _SUMMARY_BAD | (_TS_BAD - {"ts_nan_soc"}) | {"summary_dt_zero",
                                                          "summary_days_str"},
}


def check_all(run_dir: Path, tmp: Path, call: Callable[[list[str], float], Any],
              verbose: bool = False) -> dict[str, int]:
    """Run every command on every damaged copy; count tracebacks, hangs, wrong exit 0."""
    counts = {f"{c}_{k}": 0 for c in ("show", "export", "report")
              for k in ("traceback", "hang", "exit0")}
    folders = make_folders(run_dir, tmp / "cases")
    for name, d in folders.items():
        for cmd, argv in commands(d, tmp).items():
            rc, out, err = call(argv, 60.0)
            if rc is None:
                kind = "hang"
            elif rc not in (0, 2):
                kind = "traceback"
            elif rc == 0 and name in MUST_REFUSE[cmd]:
                kind = "exit0"
            else:
                continue
            counts[f"{cmd}_{kind}"] += 1
            if verbose:
                last = (err.strip() or out.strip()).splitlines()[-1:] or [""]
                print(f"{name:28s} {cmd:7s} rc={rc} {kind}: {last[0][:160]}")
    return counts


__all__ = ["CASES", "MUST_REFUSE", "check_all", "commands", "make_folders"]

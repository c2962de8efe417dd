"""A seeded configuration fuzzer for ``twin validate`` and ``twin run``.

Each case mutates the default site and a one-day scenario (1 h steps) — one to three
fields set to hostile values (zero, negative, huge, NaN, wrong type, impossible dates,
unknown keys), or a hostile file (empty, comment-only, alias bomb, deep nesting, binary,
FIFO, ``/dev/zero``, huge or non-finite profile rows) — then calls ``main(["validate", …])``
and ``main(["run", …])`` in-process and classifies the outcome:

* ``traceback``: an exception escaped ``main`` or exit status 1 (internal error);
* ``hang``: a command took longer than the per-command alarm;
* ``disagree``: ``validate`` and ``run`` disagree (one exits 0, the other 2);
* ``bad_physics``: ``run`` exited 0 but the summary breaks the energy balance, holds a
  non-finite number, or the SOC left its window.

Run as a script for a report: ``python -m tests.robustness.fuzz --n 334 --seed 1``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import signal
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "config" / "site.yaml"

BASE_SCENARIO: dict[str, Any] = {
    "name": "fuzz", "site": "site.yaml", "start": "2024-03-04T00:00:00", "duration": "1d",
    "dt": "1h", "seed": 1, "controller": "six_phase",
}

#: Hostile values for any numeric or string field.
VALUES: list[Any] = [
    0, -1, 1, 0.5, 2, 1e-308, 1e6, 1e305, 1e308, -1e308, float("nan"), float("inf"),
    float("-inf"), 10**30, True, None, "abc", "", [], {}, [1, 2], {"x": 1}, "1e3", 0.999999,
]

#: Impossible or extreme dates for ``start``.
DATES: list[Any] = [
    "2024-02-30T00:00:00", "2024-01-01T25:00:00", "0001-01-01T00:00:00", "2262-04-12T00:00:00",
    "2262-01-01T00:00:00", "9999-12-31T00:00:00", "1677-09-21T00:00:00", "2024-13-01",
    "yesterday", 20240101, "2024-03-04T00:00:00+14:00", "2024-06-30T23:00:00",
    "2024-02-29T00:00:00", "99999-01-01T00:00:00", "2024-03-04 00:00:00",
]

#: Keys of the per-model parameter tables (``pv.cloudiness``, ``mall.shape``).
CLOUDINESS_KEYS = ("kt_mean", "kt_std", "afternoon_drop_frac", "afternoon_peak_hour",
                   "afternoon_width_h", "intraday_std", "intraday_tau_s", "kt_min", "kt_max",
                   "cloud_base_s", "t_amb_min_c", "t_amb_max_c", "t_amb_peak_hour", "wind_m_s",
                   "faiman_u0", "faiman_u1", "eta_inv_nom", "albedo", "linke_turbidity",
                   "solpos_method", "max_substep_s", "bogus_key")
SHAPE_KEYS = ("p_peak_kw", "weekend_factor", "noise_frac", "noise_tau_s", "day_std",
              "day_corr", "preopen_h", "postclose_h", "morning_level", "ac_peak_hour",
              "ac_width_h", "evening_level", "evening_peak_hour", "evening_width_h",
              "max_substep_s", "open_hour", "close_hour", "bogus_key")
CONTROLLER_PARAMS = ("peak_shave_kw", "soc_reserve_frac", "target_soc_frac", "bogus", "policy",
                     "horizon_h", "threshold")


@dataclass
class Outcome:
    """What happened to one case."""

    case: str
    validate_rc: int | None = None
    run_rc: int | None = None
    kind: str = "ok"  # ok | traceback | hang | disagree | bad_physics
    detail: str = ""


@dataclass
class Report:
    """Counts over all cases."""

    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, kind: str) -> int:
        """Number of cases of ``kind``."""
        return sum(o.kind == kind for o in self.outcomes)

    def failures(self) -> list[Outcome]:
        """Cases that are not ``ok``."""
        return [o for o in self.outcomes if o.kind != "ok"]

    def line(self) -> str:
        """One summary line."""
        kinds = ("traceback", "hang", "disagree", "bad_physics")
        return f"{len(self.outcomes)} cases: " + ", ".join(f"{k} {self.count(k)}" for k in kinds)


def _leaves(d: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _leaves(v, f"{prefix}{k}.")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _leaves(v, f"{prefix}{i}.")
    else:
        out.append(prefix[:-1])
    return out


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur: Any = d
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
            continue
        if not isinstance(cur.get(p), dict | list):
            cur[p] = {}
        cur = cur[p]
    if isinstance(cur, list):
        cur[int(parts[-1])] = value
    else:
        cur[parts[-1]] = value


class _AlarmError(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _AlarmError()


def call_main(argv: list[str], timeout_s: float) -> tuple[int | None, str, str]:
    """Run ``main(argv)`` in-process; return (rc or None on a hang, output, error text).

    A traceback is returned as rc 1 with the formatted exception in the error text.
    """
    from twin.app.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    rc: int | None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = int(main(argv))
    except _AlarmError:
        rc = None
    except SystemExit as exc:  # argparse
        rc = int(exc.code) if isinstance(exc.code, int) else 2
    except BaseException:
        rc = 1
        err.write(traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return rc, out.getvalue(), err.getvalue()


def check_physics(summary: dict[str, Any], site: dict[str, Any] | None = None) -> str:
    """Why a finished run's summary is physically wrong, or ``""``.

    ``site`` (the site mapping the case wrote) gives the SOC window and the import limit.
    """
    s = summary
    if s.get("non_finite_fields"):
        return f"non-finite KPIs {s['non_finite_fields']}"
    for k, v in s.items():
        if isinstance(v, float) and (not math.isfinite(v) or abs(v) > 1e15):
            return f"{k} = {v!r} (not a plausible finite value)"
    inflow = s["pv_kwh"] + s["grid_import_kwh"] + s["bess_discharge_kwh"]
    outflow = (s["ev_kwh"] + s["mall_kwh"] + s["bess_charge_kwh"] + s["pv_curtailed_kwh"]
               + s["grid_export_kwh"])
    scale = max(abs(inflow), abs(outflow), 1.0)
    if abs(inflow - outflow) > 1e-6 * scale:
        return f"energy balance broken by {inflow - outflow:.6g} kWh"
    if s.get("energy_balance_residual_max_kwh", 0.0) > 1e-6 * scale:
        return f"per-step residual {s['energy_balance_residual_max_kwh']:.3g} kWh"
    bess = (site or {}).get("bess") or {}
    lo, hi = bess.get("soc_min_frac"), bess.get("soc_max_frac")
    if s.get("capacity_kwh", 0) > 0 and s.get("steps_done", 0) > 0:
        if isinstance(lo, float | int) and s["soc_min_percent"] < lo * 100.0 - 1e-6:
            return f"SOC {s['soc_min_percent']:.6g} % under its floor {lo * 100.0:.6g} %"
        # the window is kept against the capacity the safety layer saw; the capacity then
        # fades within the step, so a battery held at its ceiling reads up to the fade above
        fade = max(float(s.get("capacity_fade_percent") or 0.0), 0.0) / 100.0
        ceiling = hi * 100.0 / (1.0 - fade) if isinstance(hi, float | int) and fade < 1 else hi
        if isinstance(hi, float | int) and s["soc_max_percent"] > ceiling + 1e-6:
            return f"SOC {s['soc_max_percent']:.6g} % over its ceiling {hi * 100.0:.6g} %"
    lim = ((site or {}).get("grid") or {}).get("import_limit_kw")
    if isinstance(lim, float | int) and s["peak_grid_import_kw"] > lim * (1 + 1e-9) + 1e-6 \
            and not s.get("import_limit_exceeded_steps"):
        return (f"peak grid import {s['peak_grid_import_kw']:.6g} kW above the import limit "
                f"{lim} kW, and no KPI says so")
    return ""


def _site() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SITE_FILE.read_text())
    return data


def _value(rng: random.Random) -> Any:
    v = rng.choice(VALUES)
    return json.loads(json.dumps(v)) if isinstance(v, list | dict) else v


def _mutation(rng: random.Random, site: dict[str, Any], scn: dict[str, Any]) -> list[str]:
    """Apply one mutation to ``site`` or ``scn``; return its description."""
    r = rng.random()
    if r < 0.45:
        path = rng.choice(_leaves(site))
        v = _value(rng)
        _set(site, path, v)
        return [f"site.{path}={v!r}"]
    if r < 0.57:
        key = rng.choice(CLOUDINESS_KEYS)
        v = _value(rng) if rng.random() < 0.7 else rng.choice([0.0, 1.0, 0.95, 30.0, 7.0, 1e5])
        site.setdefault("pv", {}).setdefault("cloudiness", {})
        if not isinstance(site["pv"]["cloudiness"], dict):
            site["pv"]["cloudiness"] = {}
        site["pv"]["cloudiness"][key] = v
        return [f"site.pv.cloudiness.{key}={v!r}"]
    if r < 0.69:
        key = rng.choice(SHAPE_KEYS)
        v = _value(rng) if rng.random() < 0.7 else rng.choice([0.0, 1.0, 0.9, 30.0, 7.0, 1e5])
        site.setdefault("mall", {}).setdefault("shape", {})
        if not isinstance(site["mall"]["shape"], dict):
            site["mall"]["shape"] = {}
        site["mall"]["shape"][key] = v
        return [f"site.mall.shape.{key}={v!r}"]
    if r < 0.77:
        v = rng.choice(DATES)
        scn["start"] = v
        return [f"start={v!r}"]
    if r < 0.85:
        key = rng.choice(CONTROLLER_PARAMS)
        v = _value(rng)
        scn["controller"] = rng.choice(["six_phase", "arbitrage", "no_bess", "six_phase"])
        scn.setdefault("controller_params", {})[key] = v
        return [f"controller={scn['controller']} controller_params.{key}={v!r}"]
    if r < 0.93:
        key = rng.choice(["name", "seed", "controller", "forecast", "output", "overrides",
                          "faults", "dt", "duration", "bogus"])
        pool = {"dt": ["7min", 0, -1, "abc", 1e308, float("nan"), "2h", None, []],
                "duration": ["0d", -1, "abc", float("inf"), "1.5h", None, "1d", {}]}
        v = rng.choice(pool[key]) if key in pool else _value(rng)
        scn[key] = v
        return [f"{key}={v!r}"]
    # special physics values
    path, v = rng.choice([
        ("grid.import_limit_kw", rng.choice([1, 100, 1e-3, 0.0, 5000])),
        ("grid.co2_kg_per_kwh", rng.choice([1e308, 1e300, 1e30, 0.0])),
        ("bess.self_discharge_frac_per_h", rng.choice([0.099, 0.05, 0.0999999])),
        ("location.alt_m", rng.choice([float("nan"), float("inf"), -1e6, 1e6, 9000.0])),
        ("bess.e_capacity_kwh", rng.choice([1e-9, 1e-3, 0.0, 1e12])),
        ("bess.soc_initial_frac", rng.choice([0.0, 1.0, 0.2])),
        ("mall.e_day_kwh", rng.choice([0.0, 1e-6, 1e12])),
        ("pv.p_dc_kwp", rng.choice([0.0, 1e-6, 1e12])),
        ("ev.vehicles.moto.sessions_per_day", rng.choice([0.0, 1e6, 1e12])),
        ("tariff.peak_price_per_kwh", rng.choice([1e308, 1e300])),
    ])
    _set(site, path, v)
    return [f"site.{path}={v!r}"]


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


FILE_CASES = ("empty_scenario", "comment_scenario", "alias_bomb", "deep_nesting", "binary",
              "dev_zero_site", "fifo_site", "dir_site", "big_file", "profile_1e305",
              "profile_1e300_ev", "profile_nan", "profile_negative", "profile_text",
              "list_top", "sessions_garbage")


def _file_case(name: str, d: Path, site: dict[str, Any], scn: dict[str, Any]) -> Path:
    """Write the hostile file case ``name`` into ``d``; return the scenario path."""
    sp = d / "scenario.yaml"
    site_p = d / "site.yaml"
    site_p.write_text(_yaml(site))
    if name == "empty_scenario":
        sp.write_text("")
    elif name == "comment_scenario":
        sp.write_text("# nothing here\n# at all\n")
    elif name == "alias_bomb":
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 10):
            lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
        text = _yaml({k: v for k, v in scn.items() if k != "name"})
        sp.write_text("\n".join(lines) + "\nname: *a9\n" + text)
    elif name == "deep_nesting":
        sp.write_text(_yaml(scn) + "overrides: " + "[" * 50_000 + "]" * 50_000 + "\n")
    elif name == "binary":
        sp.write_bytes(bytes(range(256)) * 8)
    elif name == "dev_zero_site":
        scn["site"] = "/dev/zero"
        sp.write_text(_yaml(scn))
    elif name == "fifo_site":
        fifo = d / "fifo.yaml"
        os.mkfifo(fifo)
        scn["site"] = str(fifo)
        sp.write_text(_yaml(scn))
    elif name == "dir_site":
        scn["site"] = str(d)
        sp.write_text(_yaml(scn))
    elif name == "big_file":
        sp.write_text(_yaml(scn) + "# " + "x" * (12 * 2**20) + "\n")
    elif name == "list_top":
        sp.write_text("- 1\n- 2\n")
    elif name == "sessions_garbage":
        (d / "sessions.csv").write_bytes(b"\x00\x01garbage,,,\n1,2\n")
        site.setdefault("ev", {})["source"] = "sessions_file"
        site["ev"]["sessions_file"] = "sessions.csv"
        site_p.write_text(_yaml(site))
        sp.write_text(_yaml(scn))
    else:  # profiles
        bad = {"profile_1e305": "1e305", "profile_1e300_ev": "1e300", "profile_nan": "nan",
               "profile_negative": "-50", "profile_text": "abc"}[name]
        rows = ["timestamp,p_kw"]
        for h in range(24):
            rows.append(f"2024-03-04T{h:02d}:00:00-05:00,{bad if h == 12 else '100.0'}")
        (d / "prof.csv").write_text("\n".join(rows) + "\n")
        sect, key = ("ev", "profile") if name == "profile_1e300_ev" else ("mall", "file")
        site.setdefault(sect, {})["source"] = "profile" if sect == "ev" else "file"
        site[sect][key] = {"path": "prof.csv", "column": "p_kw"}
        site_p.write_text(_yaml(site))
        sp.write_text(_yaml(scn))
    return sp


def make_case(rng: random.Random, d: Path, i: int) -> tuple[str, Path]:
    """Write case ``i`` into the empty folder ``d``; return (description, scenario path)."""
    desc, sp, _ = make_case_site(rng, d, i)
    return desc, sp


def make_case_site(rng: random.Random, d: Path,
                   i: int) -> tuple[str, Path, dict[str, Any]]:
    """Write case ``i`` into ``d``; return (description, scenario path, site mapping)."""
    site = _site()
    scn = dict(BASE_SCENARIO, seed=rng.randrange(1000))
    if i < len(FILE_CASES):
        name = FILE_CASES[i]
        return name, _file_case(name, d, site, scn), site
    desc: list[str] = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        desc += _mutation(rng, site, scn)
    (d / "site.yaml").write_text(_yaml(site))
    sp = d / "scenario.yaml"
    text = _yaml(scn)
    start = scn.get("start")
    if isinstance(start, str) and start[:1].isdigit() and rng.random() < 0.5:
        text = text.replace(f"'{start}'", start)  # unquoted: YAML reads it as a timestamp
        desc.append("(start unquoted)")
    sp.write_text(text)
    return "; ".join(desc), sp, site


def run_case(desc: str, scn_path: Path, out_dir: Path, timeout_s: float,
             site: dict[str, Any] | None = None) -> Outcome:
    """Validate and run one case; classify the outcome."""
    o = Outcome(desc)
    rc_v, out_v, err_v = call_main(["validate", str(scn_path)], timeout_s)
    o.validate_rc = rc_v
    if rc_v is None:
        o.kind, o.detail = "hang", "validate"
        return o
    if rc_v not in (0, 2):
        o.kind, o.detail = "traceback", "validate: " + err_v[-2000:]
        return o
    rc_r, _out_r, err_r = call_main(["run", str(scn_path), "--out", str(out_dir), "-q"], timeout_s)
    o.run_rc = rc_r
    if rc_r is None:
        o.kind, o.detail = "hang", "run"
    elif rc_r not in (0, 2):
        o.kind, o.detail = "traceback", "run: " + err_r[-2000:]
    elif (rc_v == 0) != (rc_r == 0):
        o.kind = "disagree"
        o.detail = f"validate {rc_v}: {(out_v + err_v)[-400:]} | run {rc_r}: {err_r[-600:]}"
    elif rc_r == 0:
        try:
            summary = json.loads((out_dir / "summary.json").read_text())
        except (OSError, ValueError) as exc:
            o.kind, o.detail = "bad_physics", f"summary unreadable: {exc}"
            return o
        why = check_physics(summary, site)
        if why:
            o.kind, o.detail = "bad_physics", why
    return o


def fuzz(n: int, seed: int, timeout_s: float = 20.0, verbose: bool = False) -> Report:
    """Run ``n`` seeded cases (the first ones are the hostile-file cases)."""
    rng = random.Random(seed)
    rep = Report()
    with tempfile.TemporaryDirectory(prefix="twin-fuzz-") as tmp:
        for i in range(n):
            d = Path(tmp) / f"c{i:04d}"
            d.mkdir()
            site: dict[str, Any] | None = None
            try:
                desc, sp, site = make_case_site(rng, d, i)
            except (OSError, ValueError, yaml.YAMLError) as exc:  # e.g. YAML cannot dump
                desc, sp = f"(unwritable case: {exc})", d / "scenario.yaml"
                sp.write_text(_yaml(BASE_SCENARIO))
            o = run_case(desc, sp, d / "out", timeout_s, site)
            rep.outcomes.append(o)
            if verbose and o.kind != "ok":
                print(f"[{i}] {o.kind}: {o.case}\n    {o.detail.strip()[-600:]}", flush=True)
    return rep


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=334)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    report = fuzz(a.n, a.seed, a.timeout, verbose=True)
    print(report.line())
    sys.exit(1 if report.failures() else 0)

"""The site bus against physics computed independently of the flow split (issue 17, point 6).

The older balance checks summed ``allocate_flows``'s own outputs (identities: any split
that defines import and curtailment as remainders passes them). Here the expected flows
come from the plant's own records and inputs, never from the split:

* PV available and mall load: the plant's inputs (``RunOutput.inputs``), per step;
* EV energy: the fleet's per-step total, and the sessions' books over the run;
* battery AC energies: from the **stored energy** the battery recorded, through the
  one-way efficiencies (no self-discharge, no ageing on the test site, so per step
  ``Δe = η_c·charge − discharge/η_d`` exactly);

and then, per step, with loads ``L = EV + mall + charge`` and supplies ``S = PV + discharge``
(PV is used on site first, the grid takes at most the export limit ``X``):
``import = max(L − S, 0)``, ``export = min(max(S − L, 0), X)``,
``curtailed = max(S − L, 0) − export``, ``PV used on site = min(PV, L)``. Over the run:
``e_end − e_0 = η_c·Σcharge − Σdischarge/η_d`` and
``Σimport + ΣPV − Σcurtailed − Σexport + Σdischarge − Σcharge = ΣEV + Σmall``.

``Twin.step_record`` (the RL reward's bus) must equal the results' row bit for bit: one split.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import SITE, write_yaml
from twin.components.bess import BessParams
from twin.config import load_scenario
from twin.engine import RunOutput, Twin, simulate
from twin.engine.results import build_results

SITE_DICT: dict[str, Any] = yaml.safe_load(SITE.read_text())


def _site(export_kw: float, cap_kwh: float = 2000.0, mall_kwh_day: float | None = None) -> dict[str, Any]:
    """The default site without ageing or self-discharge (so the stored energy tells the AC
    energies exactly); ``export_kw`` the grid's export limit [kW]."""
    site = yaml.safe_load(yaml.safe_dump(SITE_DICT))
    site["bess"].update(ageing=False, self_discharge_frac_per_h=0.0, e_capacity_kwh=cap_kwh,
                        capacity_loss_coefficient=0.0)
    site["grid"]["export_limit_kw"] = export_kw
    if mall_kwh_day is not None:
        site["mall"]["e_day_kwh"] = mall_kwh_day
    return site


def _scenario(d: Path, site: dict[str, Any], **scn: Any) -> Any:
    write_yaml(d / "site.yaml", site)
    data = {"name": "bus", "site": "site.yaml", "start": "2024-03-04T00:00:00", "duration": "2d",
            "dt": "15min", "seed": 3, "controller": "six_phase"}
    data.update(scn)
    return load_scenario(write_yaml(d / "s.yaml", data))


def physics(out: RunOutput) -> dict[str, np.ndarray]:
    """Per-step bus energies [kWh] from the plant's inputs and records (not the split)."""
    n = out.steps_done
    rec, inp = out.rec, out.inputs
    dt_h = inp.dt_s / 3600.0
    pr = BessParams.from_config(out.scenario.site.bess)
    pv = np.asarray(inp.p_pv_kw[:n], dtype=np.float64) * dt_h
    mall = np.asarray(inp.p_mall_kw[:n], dtype=np.float64) * dt_h
    ev = np.asarray(rec.e_ev_kwh[:n], dtype=np.float64)
    if inp.p_ev_profile_kw is not None:
        raise AssertionError("the physics check expects session-based EV charging")
    e = np.concatenate(([pr.soc_initial_frac * pr.e_capacity_kwh], rec.e_bess_stored_kwh[:n]))
    de = np.diff(e)
    ch = np.maximum(de, 0.0) / pr.eta_charge  # AC energy that raised the stored energy
    dis = np.maximum(-de, 0.0) * pr.eta_discharge  # AC energy the fall delivered
    load = ev + mall + ch
    supply = pv + dis
    x = out.scenario.site.grid.export_limit_kw * dt_h
    surplus = np.maximum(supply - load, 0.0)
    export = np.minimum(surplus, x)
    return {"pv": pv, "mall": mall, "ev": ev, "charge": ch, "discharge": dis,
            "import": np.maximum(load - supply, 0.0), "export": export,
            "curtailed": surplus - export, "pv_used": np.minimum(pv, load), "e": e}


def check_bus_physics(out: RunOutput, ts: pd.DataFrame, summary: dict[str, Any]) -> None:
    """The results' bus (per step and in total) against ``physics`` (AssertionError naming
    the quantity and the first step that is off)."""
    ph = physics(out)
    scale = max(float(ph["pv"].max()), float(ph["mall"].max()), 1.0)
    tol = 1e-9 * scale
    cols = {"import": "grid_import_kwh", "export": "grid_export_kwh",
            "curtailed": "pv_curtailed_kwh", "charge": "bess_charge_kwh",
            "discharge": "bess_discharge_kwh", "pv": "pv_kwh", "mall": "mall_kwh"}
    for key, col in cols.items():
        got = ts[col].to_numpy(dtype=np.float64)
        err = np.abs(got - ph[key])
        bad = np.flatnonzero(err > tol)
        assert bad.size == 0, (f"{col} at step {bad[0]}: {got[bad[0]]!r} kWh, physics "
                               f"{ph[key][bad[0]]!r} kWh")
        assert summary[col] == pytest.approx(float(ph[key].sum()), rel=1e-9, abs=1e-6), col
    used = (ts["pv_to_ev_kwh"] + ts["pv_to_bess_kwh"] + ts["pv_to_mall_kwh"]).to_numpy()
    bad = np.flatnonzero(np.abs(used - ph["pv_used"]) > tol)
    assert bad.size == 0, f"PV used on site at step {bad[0]}: {used[bad[0]]!r} ≠ {ph['pv_used'][bad[0]]!r}"
    # the battery over the run, from the recorded AC energies the results report
    pr = BessParams.from_config(out.scenario.site.bess)
    de_run = float(ph["e"][-1] - ph["e"][0])
    de_ac = pr.eta_charge * float(ts["bess_charge_kwh"].sum()) \
        - float(ts["bess_discharge_kwh"].sum()) / pr.eta_discharge
    assert de_ac == pytest.approx(de_run, rel=1e-9, abs=1e-6), "battery energy over the run"
    # energy over the run: what came in = what went out
    inflow = summary["grid_import_kwh"] + summary["pv_kwh"] - summary["pv_curtailed_kwh"] \
        - summary["grid_export_kwh"] + summary["bess_discharge_kwh"] - summary["bess_charge_kwh"]
    assert inflow == pytest.approx(float(ph["ev"].sum() + ph["mall"].sum()), rel=1e-9), "run totals"
    fleet = out.sessions
    if fleet is not None:
        assert float(fleet.e_del_kwh.sum()) == pytest.approx(summary["ev_kwh"], rel=1e-9)


def check_bus_rows(ts: pd.DataFrame, export_limit_kw: float, dt_s: float, tol: float) -> None:
    """Import, export, curtailment and PV used on site of every row against the bus physics
    of the row's own inputs (PV, EV, mall and the battery's AC energies), not against the
    split's other outputs: for runs whose battery ages or self-discharges (``physics``
    needs a loss-free battery)."""
    pv, ev, mall = (ts[c].to_numpy(dtype=np.float64) for c in ("pv_kwh", "ev_kwh", "mall_kwh"))
    ch = ts["bess_charge_kwh"].to_numpy(dtype=np.float64)
    dis = ts["bess_discharge_kwh"].to_numpy(dtype=np.float64)
    load, supply = ev + mall + ch, pv + dis
    surplus = np.maximum(supply - load, 0.0)
    export = np.minimum(surplus, export_limit_kw * dt_s / 3600.0)
    used = (ts["pv_to_ev_kwh"] + ts["pv_to_bess_kwh"] + ts["pv_to_mall_kwh"]).to_numpy()
    for name, got, want in (("grid_import_kwh", ts["grid_import_kwh"].to_numpy(),
                             np.maximum(load - supply, 0.0)),
                            ("grid_export_kwh", ts["grid_export_kwh"].to_numpy(), export),
                            ("pv_curtailed_kwh", ts["pv_curtailed_kwh"].to_numpy(), surplus - export),
                            ("PV used on site", used, np.minimum(pv, load))):
        bad = np.flatnonzero(np.abs(got - want) > tol)
        assert bad.size == 0, f"{name} at row {bad[0]}: {got[bad[0]]!r} kWh, physics {want[bad[0]]!r} kWh"


# export limit 0 (isolated grid, PV surplus curtailed) and > 0 (surplus exported up to it);
# a small battery so that it fills and PV is curtailed or exported
@pytest.mark.parametrize(("controller", "export_kw", "cap_kwh"), [
    ("six_phase", 0.0, 300.0), ("six_phase", 60.0, 300.0), ("arbitrage", 0.0, 2000.0),
    ("arbitrage", 60.0, 300.0), ("optimal", 60.0, 300.0), ("no_bess", 60.0, 2000.0),
])
def test_bus_against_physics(controller: str, export_kw: float, cap_kwh: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        scn = _scenario(Path(d), _site(export_kw, cap_kwh, mall_kwh_day=2000.0),
                        controller=controller, duration="1d" if controller == "optimal" else "2d")
        out = simulate(scn)
    res = build_results(out)
    check_bus_physics(out, res.timeseries, res.summary)
    check_bus_rows(res.timeseries, export_kw, scn.config.dt, 1e-9 * 2000.0)
    ph = physics(out)
    # the cases reach what they are for: curtailment (no export) or export, and a battery at work
    assert ph["curtailed" if export_kw == 0.0 else "export"].sum() > 1.0
    if controller != "no_bess":
        assert ph["charge"].sum() > 1.0 and ph["discharge"].sum() > 1.0


def test_step_record_is_the_results_split() -> None:
    """``Twin.step_record`` (the RL reward's bus) equals the results' row bit for bit in
    every step, and the physics of ``physics`` within rounding."""
    with tempfile.TemporaryDirectory() as d:
        scn = _scenario(Path(d), _site(60.0, 300.0, mall_kwh_day=2000.0), duration="1d")
        twin = Twin(scn)
        twin.reset()
        while not twin.done:
            twin.step()
        recs = [twin.step_record(k) for k in range(twin.k)]
        out = twin.record()
    ts = build_results(out).timeseries
    ph = physics(out)
    imp = np.array([r.e_grid_import_kwh for r in recs])
    cur = np.array([r.e_curtailed_kwh for r in recs])
    assert np.array_equal(imp, ts["grid_import_kwh"].to_numpy())
    assert np.array_equal(cur, ts["pv_curtailed_kwh"].to_numpy())
    np.testing.assert_allclose(imp, ph["import"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cur, ph["curtailed"], rtol=0, atol=1e-9)
    assert cur.sum() > 1.0 and imp.sum() > 1.0

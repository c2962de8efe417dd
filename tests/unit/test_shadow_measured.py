"""The site as ``twin shadow`` measures it (``MeasuredSite``), through the live metrics sink.

Fed tick by tick with telemetry of the twin's own plant, altered per tick: a battery
reading that is not the battery's very next update, an invalid meter reading and an
invalid charger reading each add no kWh; the controller-only families are not exported
and the sink leaves them alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters.base import Telemetry
from twin.config import load_scenario
from twin.engine import Twin, WallClock
from twin.monitoring.catalogue import BY_NAME, CATALOGUE, CONTROLLER_ONLY
from twin.monitoring.metrics import J_PER_KWH, MetricsSink, TwinMetrics, family_names, samples_by_name
from twin.monitoring.shadow import MeasuredSite

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "shadow.yaml"
DT_H = 0.25


def _tel(base: Telemetry, p_bess_kw: float, p_pv_kw: float, *, meters_ok: bool = True,
         sockets_ok: bool = True, p_socket_kw: float = 2.0) -> Telemetry:
    s = base.sockets
    return base._replace(
        bess=base.bess._replace(p_kw=p_bess_kw),
        meters=base.meters._replace(p_pv_kw=p_pv_kw, p_mall_kw=500.0, valid=meters_ok),
        sockets=s._replace(valid=sockets_ok, p_last_kw=np.full(s.n, p_socket_kw)))


def test_only_aligned_valid_readings_become_energy() -> None:
    scn = load_scenario(SCENARIO, {"start": "2024-03-04T10:00:00", "duration": "2h"})
    twin = Twin(scn)  # its in-process devices give real telemetry to alter
    twin.reset()
    base = twin.tel
    assert base is not None
    n_sock = base.sockets.n
    ms = MeasuredSite(scn, twin.site.io, WallClock(scn.config.dt))  # type: ignore[attr-defined]
    m = TwinMetrics(controller=False)
    # tick: (battery kW over the step just ended, aligned, PV kW, meters ok, sockets ok)
    ticks = [(0.0, False, 100.0, True, True),
             (-400.0, True, 200.0, True, True),     # step 0: charged 100 kWh
             (-400.0, False, 999.0, False, True),   # step 1: battery skipped an update
             (200.0, True, 300.0, True, False),     # step 2: 50 kWh out; chargers invalid
             (0.0, True, 300.0, True, True)]
    sink = None
    for k, (p_b, aligned, pv, m_ok, s_ok) in enumerate(ticks):
        ms.tick(k, _tel(base, p_b, pv, meters_ok=m_ok, sockets_ok=s_ok), aligned)
        if sink is None:
            sink = MetricsSink(ms, m, mode="shadow")
        else:
            sink(k - 1)
    rec = ms.rec
    assert rec.e_bess_charge_kwh[:4].tolist() == [100.0, 0.0, 0.0, 0.0]
    assert rec.e_bess_discharge_kwh[:4].tolist() == [0.0, 0.0, 50.0, 0.0]
    assert rec.p_pv_kw[:5].tolist() == [100.0, 200.0, 0.0, 300.0, 300.0]  # invalid: 0
    ev_step = n_sock * 2.0 * DT_H
    assert rec.e_ev_kwh[:4].tolist() == pytest.approx([ev_step, ev_step, 0.0, ev_step])
    assert ms.site.not_counted == {"bess": 1, "chargers": 1}  # skipped update: held
    got = samples_by_name(m)

    def one(name: str) -> float:
        (_, v), = got[name]
        return v

    assert one("twin_sim_steps_total") == 4
    assert one("twin_energy_bess_charge_joules_total") == 100.0 * J_PER_KWH
    assert one("twin_energy_bess_discharge_joules_total") == 50.0 * J_PER_KWH
    assert one("twin_energy_pv_joules_total") == pytest.approx((100 + 200 + 300) * DT_H
                                                              * J_PER_KWH)
    assert one("twin_energy_ev_joules_total") == pytest.approx(3 * ev_step * J_PER_KWH)
    # controller-only: not exported; every other live family is
    shown = set(family_names(m))
    assert not {BY_NAME[n].exposed for n in CONTROLLER_ONLY} & shown
    assert {s.exposed for s in CATALOGUE if s.live and s.name not in CONTROLLER_ONLY} <= shown
    # ... and the sink left them alone (collected directly: they are not registered)
    decide = {s.name: s.value for fam in m.decide.collect() for s in fam.samples}
    assert decide["twin_controller_decide_seconds_count"] == 0
    assert not [s for fam in m.phase.collect() for s in fam.samples]

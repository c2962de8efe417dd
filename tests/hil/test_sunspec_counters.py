"""SunSpec energy counters of the simulators: ``103.WH``, ``203.TotWhImp`` / ``TotWhExp`` and
the battery's ``701.TotWhInj`` / ``TotWhAbs`` equal the plant's energies (the ones the run
records) within the scale factor's resolution, never decrease, and roll over / saturate
as their register type says."""

from __future__ import annotations

import numpy as np
import pytest
import sunspec2.modbus.client as ssc

from adapters.modbus import codec
from tests.hil.conftest import SCENARIO
from tests.hil.test_sunspec_scan import _tick_from

#: (device, model, counter point, scale-factor point)
COUNTERS = [("pv_inverter", 103, "WH", "WH_SF"), ("site_meter", 203, "TotWhImp", "TotWh_SF"),
            ("site_meter", 203, "TotWhExp", "TotWh_SF"), ("bess", 701, "TotWhInj", "TotWh_SF"),
            ("bess", 701, "TotWhAbs", "TotWh_SF")]


def _expected_wh(sim, point: str) -> float:  # type: ignore[no-untyped-def]
    """The plant's energy behind ``point`` over the steps done [Wh]."""
    p, k = sim.plant, sim.k
    rec = p.rec
    if point == "WH":
        e = np.asarray(p.p_pv_kw[:k]) * p.dt_h
    elif point in ("TotWhImp", "TotWhExp"):
        e = np.asarray(p.p_mall_kw[:k]) * p.dt_h
        e = np.maximum(e, 0.0) if point == "TotWhImp" else np.maximum(-e, 0.0)
    elif point == "TotWhInj":
        e = rec.b_e_bess_discharge_kwh[:k]
    else:
        e = rec.b_e_bess_charge_kwh[:k]
    return float(np.sum(e)) * 1000.0


def _read_all(devs: dict[str, ssc.SunSpecModbusClientDeviceTCP]) -> dict[str, tuple[float, int]]:
    """Every counter as pysunspec2 reads it: (value [Wh], scale factor)."""
    out = {}
    for name, mid, pt, sfp in COUNTERS:
        m = devs[name].models[mid][0]
        m.read()
        v = getattr(m, pt).cvalue
        out[pt] = (0.0 if v is None else float(v), int(getattr(m, sfp).value))
    return out


def test_pysunspec2_reads_counters_equal_to_the_plant_energies(inproc_sim) -> None:  # type: ignore[no-untyped-def]
    sim = inproc_sim.sim
    clock = inproc_sim.ports["sim_clock"]
    devs = {d: ssc.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1",
                                                ipport=inproc_sim.ports[d], timeout=5)
            for d in ("bess", "pv_inverter", "site_meter")}
    try:
        for d in devs.values():
            d.scan()
        assert 701 in devs["bess"].models
        ctl = devs["bess"].models[704][0]
        ctl.WSetEna.value = 1
        ctl.WSet.cvalue = -250_000.0  # charge 250 kW for two steps
        ctl.write()
        _tick_from(clock, 1, 2)
        ctl.WSet.cvalue = 150_000.0  # then discharge 150 kW (maybe cut to the site's load)
        ctl.write()
        _tick_from(clock, 3, 48)  # reverts to 0 W after 1800 s; noon: PV is up
        first = _read_all(devs)
        for _, _, pt, _ in COUNTERS:
            v, sf = first[pt]
            want = _expected_wh(sim, pt)
            assert v == pytest.approx(want, abs=10.0 ** sf / 2 + 1e-6), pt
        assert first["WH"][0] > 0 and first["TotWhImp"][0] > 0
        assert first["TotWhAbs"][0] == pytest.approx(250_000.0 * 0.5, abs=1.0)  # 250 kW × 2 × 15 min
        assert first["TotWhInj"][0] > 0
        _tick_from(clock, 49, 52)
        later = _read_all(devs)
        assert later["WH"][0] > first["WH"][0] and later["TotWhImp"][0] > first["TotWhImp"][0]
        for _, _, pt, _ in COUNTERS:
            assert later[pt][0] >= first[pt][0], pt
            assert later[pt][0] == pytest.approx(_expected_wh(sim, pt),
                                                 abs=10.0 ** later[pt][1] / 2 + 1e-6), pt
    finally:
        for d in devs.values():
            d.close()


def test_counters_follow_the_plant_at_every_step_and_never_decrease() -> None:
    from simulators.app import Simulator, load_maps
    from twin.config import load_scenario

    sim = Simulator(load_scenario(SCENARIO), load_maps())
    sim.faults = []
    mems = {"pv_inverter": sim.pv.mem, "site_meter": sim.meter.mem, "bess": sim.bess.mem}
    last = dict.fromkeys((c[2] for c in COUNTERS), 0.0)
    wset = sim.bess.p_wset
    for k in range(sim.n):
        if k % 8 == 0:  # alternate charge / discharge commands
            p_w = -200_000.0 if (k // 8) % 2 == 0 else 200_000.0
            sim.bess.on_write(wset.address, codec.encode(wset.type, p_w, 0), sim.now_s())
        sim.step()
        for dev, mid, pt, _ in COUNTERS:
            mem = mems[dev]
            p = mem.map.point(f"{mid}.{pt}")
            v = mem.get(p) or 0.0
            assert v >= last[pt], (k, pt)
            assert v == pytest.approx(_expected_wh(sim, pt), abs=10.0 ** mem.sf(p) / 2 + 1e-6), \
                (k, pt)
            last[pt] = v
    assert all(last[c[2]] > 0 for c in COUNTERS if c[2] != "TotWhExp")


def test_counters_keep_counting_while_frozen() -> None:
    from simulators.app import Simulator, load_maps
    from twin.config import load_scenario
    from twin.faults import FaultSpec

    scn = load_scenario(SCENARIO)
    dt = scn.config.dt
    frozen = FaultSpec(time=44 * dt, duration=4 * dt, device="pv_inverter", kind="frozen")
    scn = scn.model_copy(update={"config": scn.config.model_copy(update={"faults": [frozen]})})
    sim = Simulator(scn, load_maps())
    p = sim.pv.mem.map.point("103.WH")
    for _ in range(43):
        sim.step()
    before = sim.pv.mem.get(p) or 0.0  # published at step 43; 44..47 are frozen
    for _ in range(4):
        sim.step()
        assert sim.pv.mem.get(p) == before  # frozen: the registers stand still
    sim.step()  # the fault is over: the counter shows every step, the frozen ones too
    after = sim.pv.mem.get(p) or 0.0
    assert after == pytest.approx(_expected_wh(sim, "WH"), abs=10.0 ** sim.pv.mem.sf(p) / 2)
    assert after - before > 5 * 1000.0  # five noon steps of PV, > 1 kWh each


@pytest.mark.parametrize(("ptype", "width"), [("acc32", 32), ("acc64", 64)])
def test_accumulators_roll_over_modulo_their_width(ptype: str, width: int) -> None:
    below, above = (1 << width) - (1 << 12), (1 << width) + (1 << 12)  # exact as floats
    assert codec.counter_raw(ptype, below * 1000.0, 3) == below
    assert codec.counter_raw(ptype, (1 << width) * 1000.0, 3) == 0
    raw = codec.counter_raw(ptype, above * 1000.0, 3)
    assert raw == 1 << 12
    assert codec.decode_raw(ptype, codec.encode_raw(ptype, raw)) == 1 << 12


@pytest.mark.parametrize("ptype", ["uint16", "uint32", "uint64"])
def test_unsigned_counters_saturate_below_not_implemented(ptype: str) -> None:
    hi = codec.RAW_RANGE[ptype][1]
    assert codec.counter_raw(ptype, float(hi) * 10.0, 0) == hi
    assert codec.decode_raw(ptype, codec.encode_raw(ptype, hi)) == hi  # not the NA marker


def test_counter_raw_is_monotone_and_refuses_signed_types() -> None:
    es = np.cumsum(np.random.default_rng(1).uniform(0.0, 800.0, 2000))
    raws = [codec.counter_raw("acc32", float(e), 2) for e in es]
    assert raws == sorted(raws)
    assert codec.counter_raw("acc32", -5.0, 0) == 0
    with pytest.raises(codec.CodecError):
        codec.counter_raw("int16", 1.0, 0)
    with pytest.raises(codec.CodecError):
        codec.counter_raw("acc32", float("inf"), 0)

"""pysunspec2's own Modbus TCP client scans the simulators and reads the plant's values."""

from __future__ import annotations

import pytest
import sunspec2.modbus.client as ssc

from adapters.modbus import codec
from adapters.modbus.regmap import load_register_map, shipped_map
from adapters.modbus.transport import LinkSettings, LoopRunner, ModbusTransport


def _tick(port: int, steps: int) -> None:
    _tick_from(port, 1, steps)


def _tick_from(port: int, first: int, last: int) -> None:
    m = load_register_map(shipped_map("sim_clock"))
    addr = m.point("clock.tick").address
    runner = LoopRunner()
    link = ModbusTransport("127.0.0.1", port, m, runner, settings=LinkSettings(timeout_s=5.0))
    try:
        for k in range(first, last + 1):
            runner.run(link.write(addr, codec.encode("uint32", k)))
    finally:
        link.close()
        runner.close()


def test_pysunspec2_scans_bess_and_reads_soc_and_w(inproc_sim) -> None:  # type: ignore[no-untyped-def]
    port = inproc_sim.ports["bess"]
    dev = ssc.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=5)
    try:
        dev.scan()
        assert {1, 802, 704} <= {k for k in dev.models if isinstance(k, int)}
        ctl = dev.models[704][0]
        ctl.WSetEna.value = 1
        ctl.WSet.cvalue = -250_000.0  # charge 250 kW, written by pysunspec2 itself
        ctl.write()
        _tick(inproc_sim.ports["sim_clock"], 2)  # within WSetRvrtTms (1800 s): no revert
        bat = dev.models[802][0]
        bat.read()
        plant_bat = inproc_sim.sim.plant.battery
        assert bat.SoC.cvalue == pytest.approx(plant_bat.soc_frac * 100.0, abs=0.01)
        assert bat.W.cvalue == pytest.approx(plant_bat.p_kw * 1000.0, abs=100.0)
        assert plant_bat.p_kw == pytest.approx(-250.0)
        assert bat.SoC.cvalue > 50.0
        assert bat.WHRtg.cvalue == pytest.approx(2_000_000.0)
        assert bat.State.value == 3
        _tick_from(inproc_sim.ports["sim_clock"], 3, 4)  # no WSet for 1800 s: reverts to 0 W
        bat.read()
        assert plant_bat.p_kw == 0.0 and bat.W.cvalue == 0.0
    finally:
        dev.close()


@pytest.mark.parametrize(("device", "model", "profile"), [
    ("pv_inverter", 103, "p_pv_kw"), ("site_meter", 203, "p_mall_kw")])
def test_pysunspec2_discovers_meters(inproc_sim, device: str, model: int,  # type: ignore[no-untyped-def]
                                     profile: str) -> None:
    _tick(inproc_sim.ports["sim_clock"], 48)  # noon: PV is up
    dev = ssc.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1",
                                           ipport=inproc_sim.ports[device], timeout=5)
    try:
        dev.scan()
        assert {1, model} <= {k for k in dev.models if isinstance(k, int)}
        m = dev.models[model][0]
        m.read()
        plant = inproc_sim.sim.plant
        want = getattr(plant, profile)[plant.k] * 1000.0
        res = 10.0 ** m.W_SF.value
        assert m.W.cvalue == pytest.approx(want, abs=res / 2 + 1e-6)
        assert want > 0
    finally:
        dev.close()

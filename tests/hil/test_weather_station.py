"""The simulator's weather station (SunSpec 308) and the PV chain on measured irradiance."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sunspec2.modbus.client as ssc

from adapters.modbus.regmap import load_register_map, shipped_map
from adapters.modbus.transport import LinkSettings, LoopRunner, ModbusTransport
from adapters.modbus.weather import ModbusWeatherAdapter
from twin.components.inputs import build_inputs
from twin.components.station import pv_ac_from_ghi_kw, pv_params, weather_series
from twin.config import load_scenario

from .test_sunspec_scan import _tick

ROOT = Path(__file__).resolve().parents[2]


def test_pysunspec2_scans_the_weather_station_and_reads_the_scenarios_weather(
        inproc_sim) -> None:  # type: ignore[no-untyped-def]
    w = weather_series(inproc_sim.sim.scn)
    dev = ssc.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1",
                                           ipport=inproc_sim.ports["weather_station"], timeout=5)
    try:
        dev.scan()
        assert {1, 308} <= {k for k in dev.models if isinstance(k, int)}
        _tick(inproc_sim.ports["sim_clock"], 48)  # to noon: the sun is up
        met = dev.models[308][0]
        met.read()
        k = inproc_sim.sim.k
        assert k == 48 and w.ghi_w_m2[k] > 300
        assert met.GHI.cvalue == pytest.approx(w.ghi_w_m2[k], abs=0.5)
        assert met.TmpAmb.cvalue == pytest.approx(w.t_amb_c[k], abs=0.05)
        assert met.TmpBOM.cvalue == pytest.approx(w.t_module_c[k], abs=0.05)
        assert met.TmpBOM.cvalue > met.TmpAmb.cvalue  # the module runs warmer in the sun
    finally:
        dev.close()


def test_adapter_reads_ghi_and_a_write_is_refused_and_counted(inproc_sim) -> None:  # type: ignore[no-untyped-def]
    port = inproc_sim.ports["weather_station"]
    m = load_register_map(shipped_map("weather_station"))
    runner = LoopRunner()
    link = ModbusTransport("127.0.0.1", port, m, runner, settings=LinkSettings(timeout_s=5.0),
                           read_only=True, name="weather_station")
    try:
        _tick(inproc_sim.ports["sim_clock"], 44)
        r = runner.run(ModbusWeatherAdapter(link).aread())
        w = weather_series(inproc_sim.sim.scn)
        assert r.valid and r.ghi_w_m2 == pytest.approx(w.ghi_w_m2[44], abs=0.5)
    finally:
        link.close()
        runner.close()
    srv = inproc_sim.sim.servers["weather_station"].stats
    assert srv.write_requests == 0
    # a raw Modbus TCP "write single register" (FC 6) to GHI: refused with an exception
    pdu = struct.pack(">BHH", 6, m.point("308.GHI").address, 9)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sk:
        sk.sendall(struct.pack(">HHHB", 7, 0, len(pdu) + 1, 1) + pdu)
        answer = sk.recv(64)
    assert answer[7] == 0x86, answer.hex()  # exception response to FC 6
    assert srv.write_requests == 1 and srv.writes_applied == 0  # ... and counted


def test_pv_chain_on_the_measured_ghi_reproduces_the_scenarios_pv() -> None:
    scn = load_scenario(ROOT / "scenarios" / "hil.yaml")
    w = weather_series(scn)
    mid = pd.DatetimeIndex(scn.index + pd.Timedelta(seconds=scn.config.dt / 2))
    p = pv_ac_from_ghi_kw(mid, np.round(w.ghi_w_m2), w.t_amb_c, pv_params(scn.site))
    p_ref = build_inputs(scn).p_pv_kw
    assert p_ref.max() > 2000
    # the register's 1 W/m2 resolution is the only difference
    assert np.abs(p - p_ref).max() < 0.002 * p_ref.max()
    p_half = pv_ac_from_ghi_kw(mid, np.round(w.ghi_w_m2) / 2, w.t_amb_c, pv_params(scn.site))
    assert p_half[p_ref > 500].max() < 0.6 * p_ref.max()

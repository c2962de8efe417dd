"""Battery over SunSpec (model 802 telemetry, model 704 ``WSet`` control)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from adapters.base import AdapterError
from adapters.modbus import codec
from adapters.modbus.telemetry import DeviceReader, decode_point
from adapters.modbus.transport import ModbusTransport
from twin.types import BessState

log = logging.getLogger("adapters.modbus")

BESS_STATE_FAULT = 99
STATION_FAULT = 2
IEC_F = 6


class ModbusBessAdapter(DeviceReader):
    """Battery over SunSpec: reads model 802, writes 704 ``WSet`` (+ ``CtrlHb`` heartbeats).

    Parameters
    ----------
    link : the device link (map: ``config/registers/bess.yaml``).
    eta_charge, eta_discharge : one-way efficiencies [0-1] (nameplate; not in model 802).
    clock : time now [s] (heartbeat period, frozen-telemetry detection).
    invalid_after_errors : consecutive read errors before the values are marked invalid.
    stale_after_s : the device heartbeat must move within this time [s].
    read_only : write nothing.
    """

    def __init__(self, link: ModbusTransport, *, eta_charge: float, eta_discharge: float,
                 clock: Callable[[], float] = time.monotonic, invalid_after_errors: int = 2,
                 stale_after_s: float = 1800.0, read_only: bool = False) -> None:
        super().__init__(link, clock, invalid_after_errors, stale_after_s)
        self.eta_charge = eta_charge
        self.eta_discharge = eta_discharge
        self.read_only = read_only or link.read_only
        m = self.map
        b = m.blocks["802"]
        self._base = b.address
        self._len = b.stride
        pts = b.points
        self._p = {k: pts[k] for k in ("WHRtg", "WChaRteMax", "WDisChaRteMax", "SoCMax", "SoCMin",
                                       "SoC", "SoH", "W", "State", "Evt1", "Hb")}
        self._sfp = {k: m.point(p.sf) for k, p in self._p.items() if isinstance(p.sf, str)}
        self.p_wset = m.point("704.WSet")
        self.p_wset_sf = m.point("704.WSet_SF")
        self.p_ena = m.point("704.WSetEna")
        self.p_mod = m.point("704.WSetMod")
        self.p_rvrt = m.point("704.WSetRvrtTms")
        self.p_ctrlhb = m.point("802.CtrlHb")
        self.revert_timeout_s = m.default("revert_timeout_s")
        self.hb_interval_s = m.default("heartbeat_timeout_s") / 2.0
        self._wset_sf: int | None = None
        self._configured = False
        self._hb_counter = 0
        self._hb_written = -math.inf
        self.last: BessState | None = None

    # ------------------------------------------------------------------ read
    async def aread(self) -> BessState:
        """Battery telemetry (see the module docstring for validity)."""
        tel = self.telemetry
        tel.reads += 1
        self.fresh = False
        try:
            regs = await self.link.read(self._base, self._len)
        except AdapterError:
            return self._on_error()
        wo = self.map.word_order
        sfs: dict[str, int | None] = {}
        for k, sp in self._sfp.items():
            raw = codec.decode_raw("sunssf", regs[sp.address - self._base:][:1], wo)
            sfs[k] = None if raw is None else int(raw)
        v = {k: decode_point(regs, self._base, p, sfs.get(k, 0), wo) for k, p in self._p.items()}
        reason = ""
        if self._frozen(v["Hb"]):
            reason = "frozen"
        elif v["State"] == BESS_STATE_FAULT or (v["Evt1"] or 0) != 0:
            reason = "device_fault"
        else:
            for k in ("WHRtg", "WChaRteMax", "WDisChaRteMax", "SoCMax", "SoCMin", "SoC", "SoH",
                      "W"):
                x = v[k]
                rng = self._p[k].valid_range
                if x is None or not math.isfinite(x) or (rng is not None and not
                                                         rng[0] <= x <= rng[1]):
                    reason = "garbage"
                    break
        if reason:
            return self._invalid(reason)
        cap = float(v["WHRtg"]) / 1000.0 * float(v["SoH"]) / 100.0  # type: ignore[arg-type]
        soc = float(v["SoC"]) / 100.0  # type: ignore[arg-type]
        st = BessState(
            soc_frac=soc, e_kwh=soc * cap, e_capacity_kwh=cap,
            p_charge_max_kw=float(v["WChaRteMax"]) / 1000.0,  # type: ignore[arg-type]
            p_discharge_max_kw=float(v["WDisChaRteMax"]) / 1000.0,  # type: ignore[arg-type]
            soc_min_frac=float(v["SoCMin"]) / 100.0,  # type: ignore[arg-type]
            soc_max_frac=float(v["SoCMax"]) / 100.0,  # type: ignore[arg-type]
            eta_charge=self.eta_charge, eta_discharge=self.eta_discharge,
            p_kw=float(v["W"]) / 1000.0, valid=True)  # type: ignore[arg-type]
        self.last = st
        self.fresh = self._moved
        self._transition(True, "")
        return st

    def _on_error(self) -> BessState:
        errs = self.link.health.consecutive_errors
        if self.last is not None and errs < self.invalid_after_errors:
            self.telemetry.stale_reads += 1
            return self.last
        return self._invalid("comm")

    def _invalid(self, reason: str) -> BessState:
        self.telemetry.invalid(reason)
        self._transition(False, reason)
        b = self.last
        if b is None:
            return BessState(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, self.eta_charge,
                             self.eta_discharge, 0.0, valid=False)
        return BessState(b.soc_frac, b.e_kwh, b.e_capacity_kwh, b.p_charge_max_kw,
                         b.p_discharge_max_kw, b.soc_min_frac, b.soc_max_frac, b.eta_charge,
                         b.eta_discharge, b.p_kw, valid=False)

    def read(self) -> BessState:
        """Battery telemetry now (never raises)."""
        return self.link.runner.run(self.aread())

    # ----------------------------------------------------------------- write
    async def _configure(self) -> None:
        wo = self.map.word_order
        regs = await self.link.read(self.p_wset_sf.address, 1)
        sf = codec.decode_raw("sunssf", regs, wo)
        if sf is None:
            raise AdapterError(f"{self.link.name}: WSet_SF is not implemented by the device")
        self._wset_sf = int(sf)
        ena_mod = codec.encode("enum16", 1) + codec.encode("enum16", 1)  # ENABLED, WATTS
        await self.link.write(self.p_ena.address, ena_mod)
        await self.link.write(self.p_rvrt.address, codec.encode("uint32", self.revert_timeout_s,
                                                                0, wo))
        self._configured = True

    async def awrite(self, p_kw: float) -> None:
        """Command battery power [kW] (+ discharge / − charge) through ``WSet``."""
        if not math.isfinite(p_kw):
            raise AdapterError(f"battery setpoint is {p_kw!r}")
        if self.read_only:
            self.link.stats.writes_skipped += 1
            return
        if not self._configured:
            await self._configure()
        try:
            regs = codec.encode(self.p_wset.type, p_kw * 1000.0, self._wset_sf or 0,
                                self.map.word_order)
        except codec.CodecError as exc:
            raise AdapterError(f"battery setpoint {p_kw:g} kW cannot be sent: {exc}") from None
        await self.link.write(self.p_wset.address, regs)
        now = self.clock()
        if now - self._hb_written >= self.hb_interval_s:
            self._hb_counter = (self._hb_counter + 1) % 0xFFFF
            await self.link.write(self.p_ctrlhb.address, [self._hb_counter])
            self._hb_written = now
            self.telemetry.heartbeats += 1

    def write(self, p_kw: float) -> None:
        """Command battery power [kW]; raises AdapterError; never clamps."""
        self.link.runner.run(self.awrite(p_kw))

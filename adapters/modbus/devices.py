"""Modbus device adapters: BESS (SunSpec 802 + 704), chargers (table map), site meters.

They implement the ``adapters.base`` protocols like the sim adapters. Reads never raise:
after a communication error the last good values are returned (still valid) until
``invalid_after_errors`` consecutive errors, then they are marked ``valid=False`` so the
safety layer commands safe setpoints. Telemetry is also invalid when it is garbage (a
value outside the map's ``valid_range`` or "not implemented"), frozen (the device
heartbeat has not moved for ``stale_after_s``) or when the device reports a fault.
Writes raise ``AdapterError`` on failure (as the protocol says) and never clamp; in
read-only mode they write nothing at all.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from adapters.base import AdapterError
from adapters.modbus import codec
from adapters.modbus.regmap import Point
from adapters.modbus.transport import ModbusTransport
from twin.types import BessState, SocketArrays, frozen_array

log = logging.getLogger("adapters.modbus")

BESS_STATE_FAULT = 99
STATION_FAULT = 2
IEC_F = 6


@dataclass
class TelemetryHealth:
    """Why telemetry was marked invalid, and how often.

    Attributes
    ----------
    reads : reads made.
    invalid_reads : reads returned with ``valid=False``.
    stale_reads : reads answered from the last good values after an error.
    reasons : invalid reads by reason (``comm``, ``garbage``, ``frozen``, ``device_fault``).
    heartbeats : controller heartbeats written.
    """

    reads: int = 0
    invalid_reads: int = 0
    stale_reads: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    heartbeats: int = 0

    def invalid(self, reason: str) -> None:
        """Count an invalid read for ``reason``."""
        self.invalid_reads += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class _Device:
    """Shared read bookkeeping: errors → stale → invalid, heartbeat watch."""

    def __init__(self, link: ModbusTransport, clock: Callable[[], float],
                 invalid_after_errors: int, stale_after_s: float) -> None:
        if invalid_after_errors < 1:
            raise ValueError("invalid_after_errors must be >= 1")
        self.link = link
        self.map = link.map
        self.clock = clock
        self.invalid_after_errors = invalid_after_errors
        self.stale_after_s = stale_after_s
        self.telemetry = TelemetryHealth()
        self._hb: int | None = None
        self._hb_t = 0.0
        self._was_valid = True

    @property
    def health(self) -> Any:
        """Communication health of the link (``adapters.base.CommHealth``)."""
        return self.link.health

    def _frozen(self, hb: float | None) -> bool:
        now = self.clock()
        if hb is None:
            return True
        h = int(hb)
        if h != self._hb:
            self._hb = h
            self._hb_t = now
            return False
        return now - self._hb_t >= self.stale_after_s

    def _transition(self, valid: bool, reason: str) -> None:
        if valid != self._was_valid:
            if valid:
                log.warning("modbus %s: telemetry valid again", self.link.name)
            else:
                log.warning("modbus %s: telemetry invalid (%s)", self.link.name, reason)
            self._was_valid = valid

    def summary(self) -> dict[str, Any]:
        """Link and telemetry counts for the run summary."""
        t = self.telemetry
        return {**self.link.summary(), "reads": t.reads, "invalid_reads": t.invalid_reads,
                "stale_reads": t.stale_reads, "invalid_by_reason": dict(sorted(t.reasons.items())),
                "heartbeats_written": t.heartbeats}


def _dec(regs: Sequence[int], base: int, p: Point, sf: int | None, wo: str) -> float | None:
    i = p.address - base
    return codec.decode(p.type, regs[i:i + p.size], sf, wo)


class ModbusBessAdapter(_Device):
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
        try:
            regs = await self.link.read(self._base, self._len)
        except AdapterError:
            return self._on_error()
        wo = self.map.word_order
        sfs: dict[str, int | None] = {}
        for k, sp in self._sfp.items():
            raw = codec.decode_raw("sunssf", regs[sp.address - self._base:][:1], wo)
            sfs[k] = None if raw is None else int(raw)
        v = {k: _dec(regs, self._base, p, sfs.get(k, 0), wo) for k, p in self._p.items()}
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


class ModbusChargerAdapter(_Device):
    """Charge-point controller over the table map ``config/registers/chargers.yaml``.

    Parameters
    ----------
    link : the device link.
    clock : time now [s] (departure times, heartbeat watch).
    rating_kw, type_code : nameplate socket ratings [kW] and types, used until the
        device's own static table has been read (and while it cannot be).
    invalid_after_errors, stale_after_s, read_only : as ``ModbusBessAdapter``.
    """

    def __init__(self, link: ModbusTransport, *, clock: Callable[[], float] = time.monotonic,
                 rating_kw: npt.ArrayLike | None = None, type_code: npt.ArrayLike | None = None,
                 invalid_after_errors: int = 2, stale_after_s: float = 1800.0,
                 read_only: bool = False) -> None:
        super().__init__(link, clock, invalid_after_errors, stale_after_s)
        m = self.map
        self.read_only = read_only or link.read_only
        self.n = m.n_sockets
        b = m.blocks
        self.st, self.ss, self.info = b["station"], b["socket_status"], b["socket_info"]
        self.ctrl, self.lim, self.fs = b["control"], b["socket_limit"], b["socket_failsafe"]
        if self.ctrl.addr("controller_heartbeat") + 1 != self.lim.address:
            raise AdapterError(f"{m.path}: socket_limit must follow controller_heartbeat")
        self._r0 = min(self.st.address, self.ss.address)
        self._r1 = max(self.st.address + self.st.span, self.ss.address + self.ss.span)
        self.rating_kw = np.asarray(rating_kw if rating_kw is not None else np.zeros(self.n), float)
        self.type_code = np.asarray(type_code if type_code is not None else np.zeros(self.n),
                                    np.int64)
        self._type_ro = frozen_array(self.type_code.copy())
        self._rating_ro = frozen_array(self.rating_kw.copy())
        self._info_read = False
        self._configured = False
        self._hb_counter = 0
        self.comm_timeout_s = m.default("comm_timeout_s")
        self.failsafe_power_w = m.default("failsafe_power_w")
        self.last: SocketArrays | None = None
        self.n_waiting = 0
        wo = m.word_order
        self._wo = wo
        # column offsets of the socket table inside one read of [_r0, _r1)
        self._col = {k: (self.ss.address - self._r0 + p.address - self.ss.address, p)
                     for k, p in self.ss.points.items()}

    def _empty(self, valid: bool) -> SocketArrays:
        n = self.n
        return SocketArrays(self._type_ro, self._rating_ro,  # type: ignore[arg-type]
                            frozen_array(np.zeros(n, dtype=bool)),  # type: ignore[arg-type]
                            frozen_array(np.zeros(n)),  # type: ignore[arg-type]
                            frozen_array(np.zeros(n)),  # type: ignore[arg-type]
                            frozen_array(np.full(n, math.inf)),  # type: ignore[arg-type]
                            valid=valid)

    async def _read_info(self) -> None:
        regs = await self.link.read(self.info.address, self.info.span)
        p_t, p_r = self.info.points["socket_type"], self.info.points["p_rating"]
        st = self.info.stride
        ot, orr = p_t.address - self.info.address, p_r.address - self.info.address
        self.type_code = np.array([regs[i * st + ot] for i in range(self.n)], dtype=np.int64)
        self.rating_kw = np.array([regs[i * st + orr] for i in range(self.n)], float) \
            * 10.0 ** (p_r.sf if isinstance(p_r.sf, int) else 0) / 1000.0
        self._type_ro = frozen_array(self.type_code.copy())
        self._rating_ro = frozen_array(self.rating_kw.copy())
        self._info_read = True

    async def aread(self) -> SocketArrays:
        """Socket states (see the module docstring for validity)."""
        tel = self.telemetry
        tel.reads += 1
        try:
            if not self._info_read:
                await self._read_info()
            regs = await self.link.read(self._r0, self._r1 - self._r0)
        except AdapterError:
            return self._on_error()
        wo = self._wo
        sp = self.st.points
        r0 = self._r0

        def sv(name: str) -> float | None:
            return _dec(regs, r0, sp[name], 0, wo)

        self.n_waiting = int(sv("n_waiting") or 0)
        reason = ""
        if self._frozen(sv("device_heartbeat")):
            reason = "frozen"
        else:
            state = sv("station_state")
            ok_rng = sp["station_state"].valid_range or (1.0, 1.0)
            if state == STATION_FAULT:
                reason = "device_fault"
            elif state is None or not ok_rng[0] <= state <= ok_rng[1]:
                reason = "garbage"
        n = self.n
        stride = self.ss.stride
        a = np.asarray(regs, dtype=np.int64)
        cols: dict[str, np.ndarray] = {}
        for name, (off, p) in self._col.items():
            idx = off + stride * np.arange(n)
            raw = a[idx]
            na = raw == codec.NA_RAW[p.type]
            vals = raw.astype(float) * (10.0 ** p.sf if isinstance(p.sf, int) and p.sf else 1.0)
            if p.valid_range is not None and not reason:
                lo, hi = p.valid_range
                if bool(((vals < lo) | (vals > hi))[~na].any()) or (name == "iec_state"
                                                                   and bool(na.any())):
                    reason = "garbage"
            cols[name] = np.where(na, np.nan, vals)
        if not reason and bool((cols["iec_state"] == IEC_F).all()):
            reason = "device_fault"
        if reason:
            return self._invalid(reason)
        occ = cols["vehicle_connected"] > 0.5
        occ &= cols["iec_state"] != IEC_F
        pd_kw = np.where(occ, np.nan_to_num(cols["ev_p_request"]) / 1000.0, 0.0)
        erem = np.where(occ, np.nan_to_num(cols["ev_e_request"]) / 1000.0, 0.0)
        dep_in = cols["departure_in"]
        tdep = np.where(occ & ~np.isnan(dep_in), self.clock() + np.nan_to_num(dep_in), math.inf)
        n_occ = int(occ.sum())
        s = SocketArrays(self._type_ro, self._rating_ro,  # type: ignore[arg-type]
                         frozen_array(occ),  # type: ignore[arg-type]
                         frozen_array(pd_kw),  # type: ignore[arg-type]
                         frozen_array(erem),  # type: ignore[arg-type]
                         frozen_array(tdep),  # type: ignore[arg-type]
                         n_occupied=n_occ, p_demand_total_kw=float(pd_kw.sum()), valid=True)
        self.last = s
        self._transition(True, "")
        return s

    def _on_error(self) -> SocketArrays:
        errs = self.link.health.consecutive_errors
        if self.last is not None and errs < self.invalid_after_errors:
            self.telemetry.stale_reads += 1
            return self.last
        return self._invalid("comm")

    def _invalid(self, reason: str) -> SocketArrays:
        self.telemetry.invalid(reason)
        self._transition(False, reason)
        return self._empty(valid=False)

    def read(self) -> SocketArrays:
        """Socket states now (never raises)."""
        return self.link.runner.run(self.aread())

    async def _configure(self) -> None:
        wo = self._wo
        await self.link.write(self.st.addr("comm_timeout_s"),
                              codec.encode("uint16", self.comm_timeout_s, 0, wo))
        fs = codec.encode("uint16", self.failsafe_power_w, 0, wo) * self.n
        await self.link.write(self.fs.address, fs)
        self._configured = True

    async def awrite(self, p_max_kw: npt.ArrayLike) -> None:
        """Per-socket power limits [kW] and the controller heartbeat, in one write."""
        arr = np.asarray(p_max_kw, dtype=float)
        if arr.shape != (self.n,):
            raise AdapterError(f"expected {self.n} socket limits, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise AdapterError("socket limits must be finite")
        raw = np.rint(arr * 1000.0).astype(np.int64)
        if (raw < 0).any() or (raw > 0xFFFE).any():
            raise AdapterError("socket limits must lie in 0..65.534 kW (the map's uint16 W)")
        if self.read_only:
            self.link.stats.writes_skipped += 1
            return
        if not self._configured:
            await self._configure()
        self._hb_counter = (self._hb_counter + 1) % 0xFFFF
        await self.link.write(self.ctrl.addr("controller_heartbeat"),
                              [self._hb_counter, *raw.tolist()])
        self.telemetry.heartbeats += 1

    def write(self, p_max_kw: npt.ArrayLike) -> None:
        """Command per-socket power limits [kW]; raises AdapterError; never clamps."""
        self.link.runner.run(self.awrite(p_max_kw))


class ModbusMeterAdapter:
    """PV inverter (SunSpec 103 ``W``) and mall meter (SunSpec 203 ``W``) [kW].

    A meter that cannot be read (or reads garbage) keeps its last good value; its link
    health and the counts say so.
    """

    def __init__(self, pv: ModbusTransport, mall: ModbusTransport, *,
                 pv_model: str = "103", mall_model: str = "203") -> None:
        self.pv = pv
        self.mall = mall
        self._pv = (pv.map.point(f"{pv_model}.W"), pv.map.point(f"{pv_model}.W_SF"))
        self._mall = (mall.map.point(f"{mall_model}.W"), mall.map.point(f"{mall_model}.W_SF"))
        self.last = [0.0, 0.0]
        self.held = [0, 0]

    @property
    def health(self) -> Any:
        """Health of the PV link (the mall link: ``self.mall.health``)."""
        return self.pv.health

    async def _one(self, i: int, link: ModbusTransport, pts: tuple[Point, Point]) -> float:
        w, sf = pts
        lo = min(w.address, sf.address)
        hi = max(w.address + w.size, sf.address + sf.size)
        try:
            regs = await link.read(lo, hi - lo)
        except AdapterError:
            self.held[i] += 1
            return self.last[i]
        s = codec.decode_raw("sunssf", regs[sf.address - lo:][:1], link.map.word_order)
        v = codec.decode(w.type, regs[w.address - lo:][:w.size], None if s is None else int(s),
                         link.map.word_order)
        if v is None or abs(v) >= 0x7FFE * 10.0 ** (int(s) if s is not None else 0):
            self.held[i] += 1
            return self.last[i]
        self.last[i] = v / 1000.0
        return self.last[i]

    async def aread(self) -> tuple[float, float]:
        """(PV AC power, mall demand) [kW]."""
        return (await self._one(0, self.pv, self._pv), await self._one(1, self.mall, self._mall))

    def read(self) -> tuple[float, float]:
        """(PV AC power, mall demand) now [kW] (never raises)."""
        return self.pv.runner.run(self.aread())

    def summary(self) -> dict[str, Any]:
        """Counts for the run summary."""
        return {"pv_inverter": {**self.pv.summary(), "values_held": self.held[0]},
                "site_meter": {**self.mall.summary(), "values_held": self.held[1]}}


class SimClockClient:
    """The simulator's clock: read the step, advance it (lockstep), stop the simulator."""

    def __init__(self, link: ModbusTransport) -> None:
        self.link = link
        c = link.map.blocks["clock"]
        self.block = c
        self.p = c.points

    async def aread(self) -> dict[str, float | None]:
        """mode (1 lockstep, 2 realtime), dt [s], n_steps, step, t [s]."""
        regs = await self.link.read(self.block.address, self.block.span)
        wo = self.link.map.word_order
        return {k: _dec(regs, self.block.address, p, 0, wo) for k, p in self.p.items()}

    def read(self) -> dict[str, float | None]:
        """Clock registers now."""
        return self.link.runner.run(self.aread())

    async def atick(self, step: int) -> None:
        """Lockstep: run the plant to step ``step`` (= the step just controlled + 1)."""
        await self.link.write(self.p["tick"].address,
                              codec.encode("uint32", step, 0, self.link.map.word_order))

    def tick(self, step: int) -> None:
        """Lockstep: advance the plant by one step; returns when the devices are updated."""
        self.link.runner.run(self.atick(step))

    def shutdown(self) -> None:
        """Ask the simulator to stop (and write its results)."""
        self.link.runner.run(self.link.write(self.p["shutdown"].address, [1]))

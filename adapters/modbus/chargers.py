"""Charge-point controller over the table map ``config/registers/chargers.yaml``."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from adapters.base import AdapterError
from adapters.modbus import codec
from adapters.modbus.telemetry import DeviceReader, decode_point
from adapters.modbus.transport import ModbusTransport
from twin.types import SocketArrays, frozen_array

log = logging.getLogger("adapters.modbus")

BESS_STATE_FAULT = 99
STATION_FAULT = 2
IEC_F = 6


class ModbusChargerAdapter(DeviceReader):
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
        self.fresh = False
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
            return decode_point(regs, r0, sp[name], 0, wo)

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
        p_last = frozen_array(np.nan_to_num(cols["p_actual"]) / 1000.0)
        e_sess = frozen_array(np.where(occ, np.nan_to_num(cols["e_session"]) / 1000.0, 0.0))
        s = SocketArrays(self._type_ro, self._rating_ro,  # type: ignore[arg-type]
                         frozen_array(occ),  # type: ignore[arg-type]
                         frozen_array(pd_kw),  # type: ignore[arg-type]
                         frozen_array(erem),  # type: ignore[arg-type]
                         frozen_array(tdep),  # type: ignore[arg-type]
                         n_occupied=n_occ, p_demand_total_kw=float(pd_kw.sum()), valid=True,
                         p_last_kw=p_last, e_session_kwh=e_sess)  # type: ignore[arg-type]
        self.last = s
        self.fresh = self._moved
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

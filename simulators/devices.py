"""Simulated devices: register memory backed by the twin's own device models.

No pymodbus here: each device keeps its register memory (built from the shared register
map), answers writes, applies its setpoints to the plant at the start of a step with
device-side safety (BESS revert timeout, charger comm timeout → failsafe power) and
publishes telemetry after the step. ``simulators.server`` puts them on Modbus TCP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from adapters.modbus import codec
from adapters.modbus.regmap import Point, RegisterMap
from twin.config import ConfigError
from twin.plant import Plant

#: Garbage written by a ``garbage`` fault (raw register values, not "not implemented").
GARBAGE_U16 = 0xFFFE  # SoC 655.34 % with SoC_SF -2, IEC state 65534 ...
GARBAGE_I16 = 0x7FFE

BESS_STATE_CONNECTED, BESS_STATE_FAULT = 3, 99
BESS_EVT1_OTHER_ALARM = 1 << 25
CHA_ST = {"OFF": 1, "EMPTY": 2, "DISCHARGING": 3, "CHARGING": 4, "FULL": 5, "HOLDING": 6}
IEC_A, IEC_B, IEC_C, IEC_F = 1, 2, 3, 6
STATION_OK, STATION_FAULT = 1, 2


@dataclass
class FaultFlags:
    """Fault kinds acting on one device now."""

    kinds: set[str] = field(default_factory=set)
    delay_s: float = 0.3
    exception_code: int = 4

    def __contains__(self, kind: str) -> bool:
        return kind in self.kinds


class Memory:
    """Register memory of one device, laid out by its register map.

    Parameters
    ----------
    regmap : the shared register map (power-on values are its image).
    """

    def __init__(self, regmap: RegisterMap) -> None:
        self.map = regmap
        self.start = regmap.start
        self.regs = list(regmap.image)
        self.wo = regmap.word_order
        self._sf: dict[str, int] = {}

    def sf(self, p: Point) -> int:
        """Scale factor of ``p`` as configured in the map (0 when none).

        Raises
        ------
        ConfigError
            When ``p`` refers to a scale-factor point the map leaves "not implemented".
        """
        if isinstance(p.sf, int):
            return p.sf
        if p.sf is None:
            return 0
        if p.sf not in self._sf:
            sf = self.map.sf_value(p)
            if sf is None:
                model, _, name = p.sf.partition(".")
                raise ConfigError(f"{self.map.path}: field 'models[id {model}].scale_factors."
                                  f"{name}': the simulator writes {model}.{p.name} but its scale "
                                  "factor is not implemented; set it (-10..10)")
            self._sf[p.sf] = sf
        return self._sf[p.sf]

    def put(self, p: Point, value: float | None, row_addr: int | None = None) -> None:
        """Write engineering ``value`` [point units] into ``p`` (saturating at the type range)."""
        addr = p.address if row_addr is None else row_addr
        if value is None or p.type == "float32":
            regs = codec.encode(p.type, value, 0, self.wo)
        else:
            raw = codec.to_raw(value, self.sf(p)) if math.isfinite(value) else 0
            lo, hi = codec.RAW_RANGE[p.type]
            regs = codec.encode_raw(p.type, min(max(raw, lo), hi), self.wo)
        i = addr - self.start
        self.regs[i:i + len(regs)] = regs

    def put_raw(self, p: Point, raw: int, row_addr: int | None = None) -> None:
        """Write raw register value(s) into ``p`` (no range check: used for garbage)."""
        addr = p.address if row_addr is None else row_addr
        size = p.size
        words = [(raw >> (16 * (size - 1 - j))) & 0xFFFF for j in range(size)]
        if self.wo == "little":
            words.reverse()
        i = addr - self.start
        self.regs[i:i + size] = words

    def get(self, p: Point, row_addr: int | None = None) -> float | None:
        """Engineering value of ``p``."""
        addr = p.address if row_addr is None else row_addr
        i = addr - self.start
        return codec.decode(p.type, self.regs[i:i + p.size], self.sf(p), self.wo)

    def store(self, address: int, values: Sequence[int]) -> None:
        """Store written register values."""
        i = address - self.start
        self.regs[i:i + len(values)] = [int(v) & 0xFFFF for v in values]

    def touches(self, address: int, count: int, p: Point, row_addr: int | None = None) -> bool:
        """True when ``[address, address + count)`` overlaps point ``p``."""
        a = p.address if row_addr is None else row_addr
        return address < a + p.size and a < address + count


class EnergyCounter:
    """A SunSpec energy counter [Wh] (``103.WH``, ``203.TotWhImp`` ...) fed with the plant's
    step energies [kWh], the ones the run records; written with the map's scale factor
    (accumulators roll over, other types saturate: ``codec.counter_raw``).

    Parameters
    ----------
    mem : the device memory.
    p : the counter point.
    """

    def __init__(self, mem: Memory, p: Point) -> None:
        self.mem = mem
        self.p = p
        self.sf = mem.sf(p)
        codec.counter_raw(p.type, 0.0, self.sf)  # a type that cannot count fails here
        #: Energy counted since the start [kWh] (never decreases).
        self.e_kwh = 0.0

    def add(self, e_kwh: float) -> None:
        """Count ``e_kwh`` [kWh] more (a negative or non-finite amount is ignored)."""
        if e_kwh > 0.0 and math.isfinite(e_kwh):
            self.e_kwh += e_kwh

    def write(self) -> None:
        """Put the count into the registers."""
        self.mem.put_raw(self.p, codec.counter_raw(self.p.type, self.e_kwh * 1000.0, self.sf))


def _counter(mem: Memory, model: str, name: str) -> EnergyCounter | None:
    """The counter ``model.name`` when the map has it, else None."""
    blk = mem.map.blocks.get(model)
    if blk is None or name not in blk.points:
        return None
    return EnergyCounter(mem, blk.points[name])


class Device:
    """Common behaviour: memory, fault flags, per-step log."""

    name = "device"

    def __init__(self, regmap: RegisterMap, plant: Plant) -> None:
        self.map = regmap
        self.mem = Memory(regmap)
        self.plant = plant
        self.faults = FaultFlags()
        self.controlled = False

    def on_write(self, address: int, values: Sequence[int], now_s: float) -> int | None:
        """Handle a controller write (already range- and access-checked).

        Returns a Modbus exception code to refuse it, or None.
        """
        self.mem.store(address, values)
        return None

    def begin_step(self, t_s: float) -> None:
        """Apply the setpoints in force to the plant for the step starting at ``t_s``."""

    def publish(self, t_s: float, k: int) -> None:
        """Update telemetry for the step ``k`` starting at ``t_s``."""


class BessDevice(Device):
    """SunSpec battery (802) with DER controls (704) over one of ``Plant.batteries``.

    ``index``: which battery (a site with several serves one device per battery); its
    setpoint is that battery's part of the plant's battery power.
    """

    name = "bess"

    def __init__(self, regmap: RegisterMap, plant: Plant, index: int = 0) -> None:
        super().__init__(regmap, plant)
        self.index = index
        self.bat = plant.batteries[index]
        pt = regmap.point
        self.p_soc, self.p_soh, self.p_w = pt("802.SoC"), pt("802.SoH"), pt("802.W")
        self.p_chast, self.p_state, self.p_evt1 = pt("802.ChaSt"), pt("802.State"), pt("802.Evt1")
        self.p_hb, self.p_ctrlhb = pt("802.Hb"), pt("802.CtrlHb")
        self.p_wset, self.p_wsetena = pt("704.WSet"), pt("704.WSetEna")
        self.p_rvrt_tms, self.p_rvrt_rem = pt("704.WSetRvrtTms"), pt("704.WSetRvrtRem")
        self.p_wsetrvrt = pt("704.WSetRvrt")
        pr = self.bat.params
        m = self.mem
        m.put(pt("802.WHRtg"), pr.e_capacity_kwh * 1000.0)
        m.put(pt("802.AHRtg"), pr.e_capacity_kwh * 1000.0 / 800.0)
        m.put(pt("802.WChaRteMax"), pr.p_charge_max_kw * 1000.0)
        m.put(pt("802.WDisChaRteMax"), pr.p_discharge_max_kw * 1000.0)
        m.put(pt("802.SoCMax"), pr.soc_max_frac * 100.0)
        m.put(pt("802.SoCMin"), pr.soc_min_frac * 100.0)
        m.put(pt("802.V"), 800.0)
        m.put(pt("802.A"), 0.0)
        m.put(self.p_rvrt_tms, regmap.default("revert_timeout_s"))
        for name, value in (("WSetRvrt", 0.0),):
            m.put(pt(f"704.{name}"), value)
        self.hb = 0
        self.t_last_wset = 0.0
        self.reverted = False
        self.applied_kw = 0.0
        self.n_ctrl_hb = 0
        #: Realtime: a WSet written inside a step takes effect at once (the plant gets the
        #: step's time-weighted mean power); lockstep: from the next step.
        self.immediate = False
        self._seg_t0 = 0.0
        self._step_end = 0.0
        self._acc_kwh = 0.0
        #: 701 energy counters: discharged (injected) and charged (absorbed), AC side.
        self.c_inj = _counter(m, "701", "TotWhInj")
        self.c_abs = _counter(m, "701", "TotWhAbs")
        self._k_counted = 0
        #: The site's own EMS (``--local-ems``): a setpoint per step [kW, + discharge] the
        #: battery follows while no controller writes WSet; None: idle without a controller.
        self.local_kw: np.ndarray | None = None
        self._check_range()

    def _local_kw(self, t_s: float) -> float:
        """The local schedule's setpoint at ``t_s`` [kW], 0 at the SoC limits."""
        assert self.local_kw is not None
        k = min(int(t_s // self.plant.dt_s), len(self.local_kw) - 1)
        p_kw = float(self.local_kw[k])
        bat = self.bat
        pr = bat.params
        if (p_kw < 0 and bat.soc_frac >= pr.soc_max_frac - 0.02) or \
                (p_kw > 0 and bat.soc_frac <= pr.soc_min_frac + 0.02):
            return 0.0
        return p_kw

    def _check_range(self) -> None:
        pr = self.bat.params
        for p, v in ((self.p_w, max(pr.p_charge_max_kw, pr.p_discharge_max_kw) * 1000.0),
                     (self.mem.map.point("802.WChaRteMax"), pr.p_charge_max_kw * 1000.0)):
            raw = codec.to_raw(v, self.mem.sf(p))
            if raw > codec.RAW_RANGE[p.type][1]:
                raise ConfigError(f"{self.map.path}: scale factor of {p.name} cannot show "
                                  f"{v:g} W in a {p.type}; raise the scale factor")

    def on_write(self, address: int, values: Sequence[int], now_s: float) -> int | None:
        """WSet restarts the revert timer; CtrlHb is counted."""
        m = self.mem
        m.store(address, values)
        if m.touches(address, len(values), self.p_wset):
            self.t_last_wset = now_s
            self.controlled = True
            if self.immediate and self._seg_t0 <= now_s < self._step_end:
                self._switch(now_s, self._setpoint_kw(now_s))
        if m.touches(address, len(values), self.p_ctrlhb):
            self.n_ctrl_hb += 1
        return None

    def _setpoint_kw(self, t_s: float) -> float:
        """WSet, or WSetRvrt (0 W) after WSetRvrtTms without a WSet, or 0 in fault [kW]."""
        m = self.mem
        rvrt = m.get(self.p_rvrt_tms) or 0.0
        self.reverted = False
        if self.local_kw is not None and not self.controlled and "device_fault" not in self.faults:
            return self._local_kw(t_s)
        if "device_fault" in self.faults or (m.get(self.p_wsetena) or 0.0) != 1.0:
            p_w = 0.0
        elif self.controlled and rvrt > 0 and t_s - self.t_last_wset >= rvrt:
            p_w = m.get(self.p_wsetrvrt) or 0.0
            self.reverted = True
        else:
            p_w = m.get(self.p_wset) or 0.0
        return p_w / 1000.0

    def _switch(self, t_s: float, p_kw: float) -> None:
        """From ``t_s`` on the battery runs at ``p_kw``: the plant gets the step's mean."""
        dt = self.plant.dt_s
        self._acc_kwh += self.applied_kw * (t_s - self._seg_t0) / 3600.0
        self._seg_t0 = t_s
        self.applied_kw = p_kw
        self._set_plant((self._acc_kwh * 3600.0 + p_kw * (self._step_end - t_s)) / dt)

    def _set_plant(self, p_kw: float) -> None:
        """This battery's setpoint in the plant [kW] (its part of the site's, with several)."""
        plant = self.plant
        if not plant.multi:
            plant.p_bess_setpoint_kw = p_kw
            return
        parts = list(plant.p_bess_split_kw)
        if len(parts) != len(plant.batteries):
            parts = [0.0] * len(plant.batteries)
        parts[self.index] = p_kw
        plant.p_bess_split_kw = tuple(parts)
        plant.p_bess_setpoint_kw = math.fsum(parts)

    def begin_step(self, t_s: float) -> None:
        """Setpoint in force for the step starting at ``t_s``."""
        self._seg_t0 = t_s
        self._step_end = t_s + self.plant.dt_s
        self._acc_kwh = 0.0
        self.applied_kw = self._setpoint_kw(t_s)
        self._set_plant(self.applied_kw)

    def _count(self, k: int) -> None:
        """Add the battery energies of steps ``_k_counted .. k - 1`` (the plant's record)."""
        rec = self.plant.rec
        units = rec.units
        i = self.index
        for j in range(self._k_counted, k):
            if units is not None:  # several batteries: this one's part
                dis, ch = float(units.e_discharge_kwh[j, i]), float(units.e_charge_kwh[j, i])
            else:
                dis, ch = float(rec.b_e_bess_discharge_kwh[j]), float(rec.b_e_bess_charge_kwh[j])
            if self.c_inj is not None:
                self.c_inj.add(dis)
            if self.c_abs is not None:
                self.c_abs.add(ch)
        self._k_counted = max(self._k_counted, k)

    def publish(self, t_s: float, k: int) -> None:
        """SoC, SoH, W, ChaSt, State, alarms, heartbeat, energy counters (unless frozen or
        garbage; the counters keep counting while frozen)."""
        self._count(k)
        if "frozen" in self.faults:
            return
        m = self.mem
        for c in (self.c_inj, self.c_abs):
            if c is not None:
                c.write()
        bat = self.bat
        self.hb = (self.hb + 1) & 0xFFFF
        m.put(self.p_hb, self.hb % 0xFFFF)
        if "garbage" in self.faults:
            m.put_raw(self.p_soc, GARBAGE_U16)
            m.put_raw(self.p_w, GARBAGE_I16)
            return
        m.put(self.p_soc, bat.soc_frac * 100.0)
        m.put(self.p_soh, bat.cap_kwh / bat.cap0_kwh * 100.0 if bat.cap0_kwh > 0 else 100.0)
        m.put(self.p_w, bat.p_kw * 1000.0)
        m.put(self.p_chast, CHA_ST["DISCHARGING"] if bat.p_kw > 0 else CHA_ST["CHARGING"]
              if bat.p_kw < 0 else CHA_ST["HOLDING"])
        fault = "device_fault" in self.faults
        m.put(self.p_state, BESS_STATE_FAULT if fault else BESS_STATE_CONNECTED)
        m.put(self.p_evt1, BESS_EVT1_OTHER_ALARM if fault else 0)
        rvrt = m.get(self.p_rvrt_tms) or 0.0
        rem = max(0.0, rvrt - (t_s - self.t_last_wset)) if self.controlled else rvrt
        m.put(self.p_rvrt_rem, rem)


class ChargerDevice(Device):
    """Charge-point controller over ``Plant.fleet``: limits, failsafe, socket telemetry."""

    name = "chargers"

    def __init__(self, regmap: RegisterMap, plant: Plant) -> None:
        super().__init__(regmap, plant)
        n = plant.n_sockets
        if regmap.n_sockets != n:
            raise ConfigError(f"{regmap.path}: field 'sockets': the map has {regmap.n_sockets} "
                              f"sockets but the site has {n}; make them agree")
        self.n = n
        b = regmap.blocks
        self.st = b["station"]
        self.ss = b["socket_status"]
        self.lim = b["socket_limit"]
        self.fs = b["socket_failsafe"]
        info = b["socket_info"]
        m = self.mem
        pt = regmap.point
        fleet = plant.fleet
        if fleet is not None:
            spec_type = fleet.spec.type_code
            rating = fleet.spec.p_rating_kw
        else:
            spec_type = np.zeros(n, dtype=np.int64)
            rating = plant.observe_sockets().p_rating_kw
        self.rating_kw = np.asarray(rating, dtype=float)
        fs_w = regmap.default("failsafe_power_w")
        for i in range(n):
            m.put(info.points["socket_type"], float(spec_type[i]), info.addr("socket_type", i))
            m.put(info.points["p_rating"], float(rating[i]) * 1000.0, info.addr("p_rating", i))
            m.put(self.lim.points["p_limit"], float(rating[i]) * 1000.0,
                  self.lim.addr("p_limit", i))
            m.put(self.fs.points["failsafe_power"], fs_w, self.fs.addr("failsafe_power", i))
        m.put(pt("station.n_sockets"), float(n))
        m.put(pt("station.comm_timeout_s"), regmap.default("comm_timeout_s"))
        self.p_state = pt("station.station_state")
        self.p_hb = pt("station.device_heartbeat")
        self.p_timeout = pt("station.comm_timeout_s")
        self.p_nfs = pt("station.n_failsafe")
        self.p_nwait = pt("station.n_waiting")
        self.p_ctrl = regmap.point("control.controller_heartbeat")
        self.hb = 0
        self.t_last_ctrl = 0.0
        self.n_failsafe = 0
        self.limits_kw = self.rating_kw.copy()
        self._ctrl_lo = self.p_ctrl.address
        self._ctrl_hi = self.lim.address + self.lim.span
        self._pt = {k: self.ss.points[k] for k in self.ss.points}
        self._lim_off = self.lim.address - self.mem.start
        self._fs_off = self.fs.address - self.mem.start

    def on_write(self, address: int, values: Sequence[int], now_s: float) -> int | None:
        """A write to the control block (heartbeat / limits) restarts the comm timeout."""
        self.mem.store(address, values)
        if address < self._ctrl_hi and self._ctrl_lo < address + len(values):
            self.t_last_ctrl = now_s
            self.controlled = True
        return None

    def begin_step(self, t_s: float) -> None:
        """Limits in force: the written ones, failsafe power after the comm timeout, 0 in fault."""
        regs = self.mem.regs
        n = self.n
        timeout = self.mem.get(self.p_timeout) or 0.0
        if "device_fault" in self.faults:
            lim = np.zeros(n)
            self.n_failsafe = 0
        elif self.controlled and timeout > 0 and t_s - self.t_last_ctrl >= timeout:
            lim = np.asarray(regs[self._fs_off:self._fs_off + n], dtype=float) / 1000.0
            self.n_failsafe = n
        else:
            lim = np.asarray(regs[self._lim_off:self._lim_off + n], dtype=float) / 1000.0
            self.n_failsafe = 0
        self.limits_kw = lim
        self.plant.begin_sockets(lim)

    def publish(self, t_s: float, k: int) -> None:
        """Station state and heartbeat, then one row per socket from the fleet model."""
        if "frozen" in self.faults:
            return
        m = self.mem
        self.hb = (self.hb + 1) % 0xFFFF
        m.put(self.p_hb, float(self.hb))
        fault = "device_fault" in self.faults
        m.put(self.p_state, float(STATION_FAULT if fault else STATION_OK))
        m.put(self.p_nfs, float(self.n_failsafe))
        m.put(self.p_nwait, float(min(self.plant.n_waiting, 0xFFFE)))
        pt = self._pt
        ss = self.ss
        garbage = "garbage" in self.faults
        fleet = self.plant.fleet
        rec = self.plant.rec
        dt_h = self.plant.dt_h
        p_last = rec.e_socket_kwh[k - 1] / dt_h if k > 0 else np.zeros(self.n)
        for i in range(self.n):
            base = ss.address + i * ss.stride
            if garbage:
                m.put_raw(pt["iec_state"], GARBAGE_U16, base + ss.offset("iec_state"))
                m.put_raw(pt["p_actual"], GARBAGE_U16, base + ss.offset("p_actual"))
                continue
            occ = fleet is not None and fleet.sock_occ[i] > 0.0
            if occ:
                assert fleet is not None
                pd_kw = float(fleet.sock_pd[i])
                erem = float(fleet.sock_erem[i])
                sess = fleet.sock_sess[i]
                e_sess = float(fleet.s.e_req_kwh[sess]) - erem if sess >= 0 else 0.0
                dep = float(fleet.sock_tdep[i]) - t_s
                state = IEC_C if self.limits_kw[i] > 0 and pd_kw > 0 else IEC_B
            else:
                pd_kw = erem = e_sess = 0.0
                dep = math.inf
                state = IEC_A
            if fault:
                state = IEC_F
            vals = (
                ("iec_state", float(state)), ("vehicle_connected", 1.0 if occ else 0.0),
                ("p_actual", float(p_last[i]) * 1000.0), ("ev_p_request", pd_kw * 1000.0),
                ("ev_e_request", erem * 1000.0), ("e_session", e_sess * 1000.0),
                ("departure_in", dep if math.isfinite(dep) else None),
                ("failsafe", 1.0 if self.n_failsafe else 0.0),
            )
            for name, v in vals:
                m.put(pt[name], v, base + ss.offset(name))


class MeterDevice(Device):
    """A SunSpec meter or inverter whose ``W`` follows a plant power profile [kW].

    ``e_pos`` and ``e_neg`` name the model's energy counters of the positive and the
    negative power (``WH`` of 103; ``TotWhImp`` and ``TotWhExp`` of 203): they add
    profile [kW] × dt [h] per step, as the run records ``pv_kwh`` and ``mall_kwh``.
    """

    def __init__(self, regmap: RegisterMap, plant: Plant, name: str, model: str,
                 profile_kw: Sequence[float], e_pos: str | None = None,
                 e_neg: str | None = None) -> None:
        super().__init__(regmap, plant)
        self.c_pos = _counter(self.mem, model, e_pos) if e_pos else None
        self.c_neg = _counter(self.mem, model, e_neg) if e_neg else None
        self._k_counted = 0
        self.name = name
        self.profile_kw = profile_kw
        pt = regmap.point
        self.p_w = pt(f"{model}.W")
        self.p_status = pt(f"{model}.St") if "St" in regmap.blocks[model].points else None
        self.p_hz = pt(f"{model}.Hz")
        self.mem.put(self.p_hz, 60.0)
        peak = max((abs(v) for v in profile_kw), default=0.0) * 1000.0
        raw = codec.to_raw(peak, self.mem.sf(self.p_w))
        if raw > codec.RAW_RANGE[self.p_w.type][1]:
            raise ConfigError(f"{regmap.path}: scale factor of {model}.W cannot show {peak:g} W "
                              f"(the site's peak); raise W_SF")

    def _count(self, k: int) -> None:
        """Add the energies of steps ``_k_counted .. k - 1`` [kWh]."""
        dt_h = self.plant.dt_h
        for j in range(self._k_counted, min(k, len(self.profile_kw))):
            e_kwh = float(self.profile_kw[j]) * dt_h
            c = self.c_pos if e_kwh >= 0.0 else self.c_neg
            if c is not None:
                c.add(abs(e_kwh))
        self._k_counted = max(self._k_counted, k)

    def publish(self, t_s: float, k: int) -> None:
        """Power over the step that starts now; energy counters up to now (they keep
        counting while frozen)."""
        self._count(k)
        if "frozen" in self.faults:
            return
        for c in (self.c_pos, self.c_neg):
            if c is not None:
                c.write()
        if "garbage" in self.faults:
            self.mem.put_raw(self.p_w, GARBAGE_I16)
            return
        if k < len(self.profile_kw):
            self.mem.put(self.p_w, float(self.profile_kw[k]) * 1000.0)
        if self.p_status is not None:
            self.mem.put(self.p_status, 7.0 if "device_fault" in self.faults else 4.0)


class ClockDevice(Device):
    """Simulator clock registers (mode, dt, steps, time) and the lockstep ``tick``."""

    name = "sim_clock"

    def __init__(self, regmap: RegisterMap, plant: Plant, mode: str, n_steps: int) -> None:
        super().__init__(regmap, plant)
        pt = regmap.point
        self.p_step, self.p_t, self.p_tick = pt("clock.step"), pt("clock.t"), pt("clock.tick")
        self.p_shutdown = pt("clock.shutdown")
        self.mem.put(pt("clock.mode"), 1.0 if mode == "lockstep" else 2.0)
        self.mem.put(pt("clock.dt"), plant.dt_s)
        self.mem.put(pt("clock.n_steps"), float(n_steps))

    def publish(self, t_s: float, k: int) -> None:
        """Step index and simulated time."""
        self.mem.put(self.p_step, float(k))
        self.mem.put(self.p_t, t_s)


class WeatherDevice(Device):
    """A weather station (SunSpec 308): GHI [W/m²], back-of-module and air temperature
    [°C] of the step that starts now, from the scenario's weather (read-only)."""

    name = "weather_station"

    def __init__(self, regmap: RegisterMap, plant: Plant, ghi_w_m2: np.ndarray,
                 t_module_c: np.ndarray, t_amb_c: np.ndarray) -> None:
        super().__init__(regmap, plant)
        pt = regmap.point
        self.p_ghi, self.p_tbom, self.p_tamb = pt("308.GHI"), pt("308.TmpBOM"), pt("308.TmpAmb")
        self.series = ((self.p_ghi, ghi_w_m2), (self.p_tbom, t_module_c),
                       (self.p_tamb, t_amb_c))

    def on_write(self, address: int, values: Sequence[int], now_s: float) -> int | None:
        """A weather station takes no writes (ILLEGAL ADDRESS)."""
        return 2

    def publish(self, t_s: float, k: int) -> None:
        """The step's irradiance and temperatures (unless frozen or garbage)."""
        if "frozen" in self.faults:
            return
        if "garbage" in self.faults:
            self.mem.put_raw(self.p_ghi, GARBAGE_U16)
            return
        for p, series in self.series:
            if k < len(series):
                self.mem.put(p, float(series[k]))

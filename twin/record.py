"""The per-step record of a run: preallocated arrays, written once per step.

The driver writes the controller's side (meters read, phase, request, command, clamps);
the plant-side columns (EV energy, battery energy, stored energy, per-socket energy) are
written by the in-process plant in a simulation, or from the devices' telemetry in a run
against devices (``twin.engine.telemetry``).
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np


def _buffer(n: int, typecode: str, dtype: type) -> tuple[array[Any], np.ndarray]:
    """A zeroed stdlib array (cheap scalar writes) and a zero-copy numpy view of it."""
    buf = array(typecode, bytes(np.dtype(dtype).itemsize * n))
    return buf, np.frombuffer(buf, dtype=dtype)


def as_array(values: np.ndarray) -> array[float]:
    """A float64 series as a stdlib array: scalar reads give the same Python floats as
    ``tolist()``, in 8 bytes an item instead of a list's 32."""
    return array('d', np.ascontiguousarray(values, dtype=np.float64).tobytes())


class BatteryColumns:
    """Per-battery columns of a site with two or more batteries: one column per battery.

    Attributes
    ----------
    names : the batteries' names.
    e_charge_kwh, e_discharge_kwh : AC energy in / out over each step [kWh], (n, n_bat).
    e_stored_kwh : stored energy at each step end [kWh].
    cap_kwh : capacity after fade at each step end [kWh].
    p_command_kw : power commanded to each battery after the safety layer [kW].
    ageing : per battery, the ageing figures the plant keeps (as ``Recorder.bess_ageing``).
    """

    def __init__(self, n: int, names: tuple[str, ...]) -> None:
        self.names = names
        shape = (n, len(names))
        self.e_charge_kwh = np.zeros(shape)
        self.e_discharge_kwh = np.zeros(shape)
        self.e_stored_kwh = np.zeros(shape)
        self.cap_kwh = np.zeros(shape)
        self.p_command_kw = np.zeros(shape)
        self.ageing: list[dict[str, float]] = [{} for _ in names]


class Recorder:
    """Per-step arrays, preallocated (no per-step dict or DataFrame building).

    Each scalar series is a stdlib array written once per step (``b_<name>``: cheap scalar
    writes) and a zero-copy numpy view of the same memory (``<name>``) for the results.
    ``battery_names``: two or more for a site with several batteries (``units``).
    """

    def __init__(self, n: int, n_sockets: int, battery_names: tuple[str, ...] = ()) -> None:
        self.n = n
        #: per-battery columns with two or more batteries (the scalar battery series are
        #: then the totals: sums of the parts); None with one battery
        self.units: BatteryColumns | None = (BatteryColumns(n, battery_names)
                                             if len(battery_names) >= 2 else None)
        # meters as read at the step start (the mean over the step in the simulation) [kW]
        self.b_p_pv_kw, self.p_pv_kw = _buffer(n, 'd', np.float64)
        self.b_p_mall_kw, self.p_mall_kw = _buffer(n, 'd', np.float64)
        self.b_e_ev_kwh, self.e_ev_kwh = _buffer(n, 'd', np.float64)  # EV energy [kWh]
        # battery AC charge [kWh]
        self.b_e_bess_charge_kwh, self.e_bess_charge_kwh = _buffer(n, 'd', np.float64)
        # battery AC discharge [kWh]
        self.b_e_bess_discharge_kwh, self.e_bess_discharge_kwh = _buffer(n, 'd', np.float64)
        # stored energy at the step end [kWh]
        self.b_e_bess_stored_kwh, self.e_bess_stored_kwh = _buffer(n, 'd', np.float64)
        self.b_cap_kwh, self.cap_kwh = _buffer(n, 'd', np.float64)  # capacity after fade [kWh]
        # controller's battery request [kW]
        self.b_p_bess_request_kw, self.p_bess_request_kw = _buffer(n, 'd', np.float64)
        # battery command after the safety layer [kW]
        self.b_p_bess_command_kw, self.p_bess_command_kw = _buffer(n, 'd', np.float64)
        self.b_phase, self.phase = _buffer(n, 'h', np.int16)  # acting phase
        self.b_n_clamps, self.n_clamps = _buffer(n, 'i', np.int32)  # safety clamps
        self.b_n_plugged, self.n_plugged = _buffer(n, 'i', np.int32)  # vehicles plugged at the step start
        self.b_n_waiting, self.n_waiting = _buffer(n, 'i', np.int32)  # vehicles waiting at the step start
        self.b_decide_s, self.decide_s = _buffer(n, 'd', np.float64)  # controller decide time [s]
        # per-socket energy, float32 to halve memory at 1-min ticks (totals use float64)
        self.e_socket_kwh = np.zeros((n, n_sockets), dtype=np.float32)
        self.k_done = 0
        #: battery ageing figures the plant keeps up to date (BLAST-Lite: fade parts [kWh],
        #: relative resistance, cell temperatures [°C]); empty otherwise
        self.bess_ageing: dict[str, float] = {}


__all__ = ["BatteryColumns", "Recorder", "as_array"]

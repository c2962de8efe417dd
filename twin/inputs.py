"""Exogenous inputs of a run as plain tables (no SimPy): what controllers and forecasters
may read.

``PlantInputs`` holds one value per step (PV, mall, calendar, tariff) and the EV
sessions; ``SessionTable`` the sessions (columnar, sorted by arrival); ``SocketSpec`` the
station's sockets. Built by ``twin.components.inputs.build_inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.config import EvConfig
from twin.types import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class SessionTable:
    """All sessions of a run, sorted by arrival (columnar).

    Attributes
    ----------
    arrival_s : arrival [s since start].
    departure_s : planned departure [s since start].
    type_code : vehicle class (index into the site's ``EvConfig.class_names``).
    e_req_kwh : energy requested [kWh].
    p_max_kw : vehicle charge power limit [kW].
    patience_s : how long the vehicle waits for a socket [s].
    latest_departure_s : None — ``departure_s`` is absolute (sessions read from a file);
        else the rider's stay counts from plug-in: a wait for a socket shifts the planned
        departure by the wait, up to this time (closing) [s since start].
    e_req_orig_kwh : None — as ``e_req_kwh``; else what the rider wanted before a late
        arrival's request was cut to what fits before closing [kWh].
    battery_kwh : None — no battery model (no taper); else battery size [kWh] (NaN: none).
    soc_arrival : SOC at arrival [-] (with ``battery_kwh``).
    taper_soc : SOC where the CC-CV taper starts [-] (>= 1: none).
    taper_floor_frac : power at 100 % SOC as a share of the vehicle's power [-].
    """

    arrival_s: FloatArray
    departure_s: FloatArray
    type_code: IntArray
    e_req_kwh: FloatArray
    p_max_kw: FloatArray
    patience_s: FloatArray
    latest_departure_s: FloatArray | None = None
    e_req_orig_kwh: FloatArray | None = None
    battery_kwh: FloatArray | None = None
    soc_arrival: FloatArray | None = None
    taper_soc: FloatArray | None = None
    taper_floor_frac: FloatArray | None = None

    @property
    def n(self) -> int:
        """Number of sessions."""
        return int(self.arrival_s.shape[0])


@dataclass(frozen=True, slots=True)
class SocketSpec:
    """The sockets of the station (one element per socket).

    ``class_names``: the site's vehicle classes (a socket's ``type_code`` indexes them);
    empty when built by hand, then the classes are the codes seen.
    """

    type_code: IntArray
    p_rating_kw: FloatArray
    class_names: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, ev: EvConfig) -> SocketSpec:
        """Sockets in config order: group by group."""
        names = ev.class_names
        codes: list[int] = []
        rating: list[float] = []
        for g in ev.sockets:
            codes += [names.index(g.type)] * g.count
            rating += [g.p_rating_kw] * g.count
        return cls(np.asarray(codes, dtype=np.int64), np.asarray(rating, dtype=float), names)

    @property
    def n_classes(self) -> int:
        """Number of vehicle classes (at least one more than the largest socket code)."""
        top = int(self.type_code.max()) + 1 if self.type_code.size else 1
        return max(len(self.class_names), top)


@dataclass(frozen=True, slots=True)
class PlantInputs:
    """Everything exogenous to the control loop, one value per step."""

    index: pd.DatetimeIndex
    dt_s: float
    p_pv_kw: FloatArray
    p_mall_kw: FloatArray
    p_ev_profile_kw: FloatArray | None
    sessions: SessionTable | None
    hour: FloatArray
    weekday: np.ndarray
    price_per_kwh: FloatArray
    is_peak: np.ndarray
    ev_open: np.ndarray
    #: values filled in short gaps of measured files (weather, measured series)
    input_filled_values: int = 0
    #: mean GHI over each step [W/m²] when the PV chain ran on a weather file, else None
    ghi_w_m2: FloatArray | None = None
    #: air temperature per step [°C]: the weather file's step mean when the PV chain ran on
    #: one, else the PV model's diurnal ambient at the step's middle (the battery container
    #: model's ambient)
    t_air_c: FloatArray | None = None


__all__ = ["PlantInputs", "SessionTable", "SocketSpec"]

"""Data exchanged between the plant, the adapters, the safety layer and the controllers.

Sign convention (written once, used everywhere)
-----------------------------------------------
* BESS power: **positive = discharge** (power out of the battery), negative = charge.
* Grid power: **positive = import**.
* Power in kW, energy in kWh, state of charge as a fraction 0-1, time in seconds since
  the scenario start (``t_s``); wall-clock times are timezone-aware.

The per-step types are immutable named tuples (cheap to build every step: a frozen
dataclass costs ~10x more to construct) holding read-only numpy arrays, so that a controller
sees one consistent snapshot (the "process image") and cannot change the plant through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

def frozen_array(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Mark ``a`` read-only and return it (no copy)."""
    a.flags.writeable = False
    return a


class BessState(NamedTuple):
    """Telemetry of the battery at one instant.

    Attributes
    ----------
    soc_frac : state of charge [0-1] of the (possibly faded) usable capacity.
    e_kwh : stored energy [kWh].
    e_capacity_kwh : present capacity after fade [kWh].
    p_charge_max_kw : charge power limit [kW], >= 0.
    p_discharge_max_kw : discharge power limit [kW], >= 0.
    soc_min_frac, soc_max_frac : allowed SOC window [0-1].
    eta_charge, eta_discharge : one-way efficiencies [0-1].
    p_kw : power measured over the last step [kW] (+ discharge / − charge).
    valid : False when the telemetry cannot be trusted (comm failure, stale, garbage).
    """

    soc_frac: float
    e_kwh: float
    e_capacity_kwh: float
    p_charge_max_kw: float
    p_discharge_max_kw: float
    soc_min_frac: float
    soc_max_frac: float
    eta_charge: float
    eta_discharge: float
    p_kw: float = 0.0
    valid: bool = True


class SocketArrays(NamedTuple):
    """State of every charging socket, one array element per socket (read-only arrays).

    Attributes
    ----------
    type_code : vehicle class accepted by the socket (index into the site's
        ``ev.vehicles``, ``EvConfig.class_names``).
    p_rating_kw : socket power rating [kW].
    occupied : a vehicle is plugged in.
    p_demand_kw : power the plugged vehicle would draw this step if allowed [kW]
        (min of vehicle limit, socket rating and remaining energy / dt); 0 when empty.
    e_remaining_kwh : energy the vehicle still asks for [kWh]; 0 when empty.
    t_departure_s : planned departure [s since start]; ``inf`` when empty.
    n_occupied : number of occupied sockets.
    p_demand_total_kw : sum of ``p_demand_kw`` [kW].
    valid : False when the charger telemetry cannot be trusted.
    p_last_kw : mean power of each socket over the step that just ended [kW], when the
        chargers report it (Modbus ``p_actual``); None otherwise.
    e_session_kwh : energy delivered in each plugged vehicle's session so far [kWh], when
        the chargers report it (Modbus ``e_session``); None otherwise.
    """

    type_code: IntArray
    p_rating_kw: FloatArray
    occupied: BoolArray
    p_demand_kw: FloatArray
    e_remaining_kwh: FloatArray
    t_departure_s: FloatArray
    n_occupied: int = 0
    p_demand_total_kw: float = 0.0
    valid: bool = True
    p_last_kw: FloatArray | None = None
    e_session_kwh: FloatArray | None = None

    @property
    def n(self) -> int:
        """Number of sockets."""
        return int(self.p_rating_kw.shape[0])


class TariffState(NamedTuple):
    """Energy price in force for the step.

    Attributes
    ----------
    price_per_kwh : price of imported energy [currency/kWh].
    is_peak : True in a peak period (HP), False off-peak (HFP).
    period : name of the tariff period in force ("" when unknown).
    """

    price_per_kwh: float
    is_peak: bool
    period: str = ""


class SiteObservation(NamedTuple):
    """One consistent snapshot of the site, given to the controller at the start of a step.

    PV and mall powers are the mean over the coming step (a "now" measurement at the
    resolution of the simulation).

    Attributes
    ----------
    k : step index (0-based).
    t_s : time since the scenario start [s].
    dt_s : step length [s].
    start_utc : scenario start (aware, UTC); ``when`` gives the local step start.
    tz : the site's time zone name.
    hour : local hour of day as a float [h], e.g. 18.25 for 18:15.
    weekday : 0 = Monday ... 6 = Sunday.
    p_pv_kw : PV AC power available [kW].
    p_mall_kw : mall demand [kW].
    p_ev_kw : EV demand if every plugged vehicle charged at full allowance, plus any
        inflexible EV profile load [kW].
    p_ev_inflexible_kw : part of ``p_ev_kw`` that is a replayed profile (not controllable) [kW].
    ev_open : the charging station is open to vehicles.
    bess : battery telemetry.
    sockets : socket arrays.
    tariff : tariff in force.
    n_waiting : vehicles waiting for a free socket.
    meters_valid : False when the PV or mall meter reading cannot be trusted (the
        safety layer then uses the last valid values with a margin).
    batteries : each battery's telemetry on a site with two or more batteries (``bess``
        is then their aggregate, ``twin.components.bess.aggregate_state``); empty for a
        one-battery site (``bess`` is the battery).
    """

    k: int
    t_s: float
    dt_s: float
    start_utc: datetime
    tz: str
    hour: float
    weekday: int
    p_pv_kw: float
    p_mall_kw: float
    p_ev_kw: float
    p_ev_inflexible_kw: float
    ev_open: bool
    bess: BessState
    sockets: SocketArrays
    tariff: TariffState
    n_waiting: int = 0
    meters_valid: bool = True
    batteries: tuple[BessState, ...] = ()

    @property
    def when(self) -> datetime:
        """Timezone-aware local time of the step start."""
        return (self.start_utc + timedelta(seconds=self.t_s)).astimezone(ZoneInfo(self.tz))


class Setpoints(NamedTuple):
    """What a controller asks of the devices for one step.

    Attributes
    ----------
    p_bess_kw : battery power of the site [kW], + discharge / − charge (the sum over the
        batteries).
    p_socket_max_kw : per-socket power limit [kW], one per socket.
    phase : the rule / mode that acted (recorded every step; meaning per controller).
    p_bess_split_kw : per-battery power [kW] on a site with several batteries, for a
        controller that decides each; None: the safety layer splits ``p_bess_kw`` by
        ``twin.components.bess.split_power_kw`` (each battery's allowed power). When given
        it wins over ``p_bess_kw`` (the total is its sum).
    """

    p_bess_kw: float
    p_socket_max_kw: FloatArray
    phase: int = 0
    p_bess_split_kw: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Clamp:
    """One bend made by the safety layer.

    Attributes
    ----------
    k : step index.
    reason : short machine-readable reason (e.g. ``bess_soc_min``).
    device : ``bess`` or ``socket[i]``.
    requested : requested value [kW].
    applied : value sent to the device [kW].
    """

    k: int
    reason: str
    device: str
    requested: float
    applied: float


@dataclass(slots=True)
class ClampLog:
    """Counts of safety-layer clamps by reason, plus the first few in full."""

    by_reason: dict[str, int] = field(default_factory=dict)
    first: list[Clamp] = field(default_factory=list)
    keep_first: int = 200
    #: Called with every clamp as it is added (e.g. to log it); None costs nothing.
    on_clamp: Callable[[Clamp], None] | None = None

    def add(self, clamp: Clamp) -> None:
        """Count ``clamp`` and keep it if it is among the first ones."""
        self.by_reason[clamp.reason] = self.by_reason.get(clamp.reason, 0) + 1
        if len(self.first) < self.keep_first:
            self.first.append(clamp)
        if self.on_clamp is not None:
            self.on_clamp(clamp)

    @property
    def total(self) -> int:
        """Total number of clamps."""
        return sum(self.by_reason.values())

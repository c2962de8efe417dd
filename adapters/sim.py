"""In-process adapters over the twin's own device models (the ``sim`` target)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from adapters.base import AdapterError, CommHealth, MeterReading, Telemetry
from twin.components.bess import aggregate_state
from twin.types import BessState, FloatArray, SocketArrays

if TYPE_CHECKING:
    from twin.plant import Plant


class SimBessAdapter:
    """Battery adapter over ``Plant.battery``."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.health = CommHealth()

    def read(self) -> BessState:
        """Battery telemetry from the device model (several batteries: their aggregate)."""
        self.health.requests += 1
        if self.plant.multi:
            return aggregate_state(self.plant.battery_states())
        return self.plant.battery.state()

    def write(self, p_kw: float, split_kw: tuple[float, ...] = ()) -> None:
        """Store the battery setpoint (and, with several batteries, each one's part; none:
        the plant splits the total); the plant applies it over the step."""
        self.health.requests += 1
        if p_kw != p_kw or any(p != p for p in split_kw):  # NaN never reaches a device
            raise AdapterError("battery setpoint is NaN")
        self.plant.p_bess_setpoint_kw = float(p_kw)
        if self.plant.multi:
            self.plant.p_bess_split_kw = tuple(float(p) for p in split_kw)


class SimChargerAdapter:
    """Charger adapter over ``Plant.fleet`` (or the inflexible EV profile)."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.health = CommHealth()

    def read(self) -> SocketArrays:
        """Socket arrays from the fleet model."""
        self.health.requests += 1
        return self.plant.observe_sockets()

    def write(self, p_max_kw: Sequence[float] | FloatArray) -> None:
        """Apply per-socket limits for the step that starts now."""
        self.health.requests += 1
        arr = np.asarray(p_max_kw, dtype=float)
        if arr.shape != (self.plant.n_sockets,):
            raise AdapterError(f"expected {self.plant.n_sockets} socket limits, got {arr.shape}")
        self.plant.begin_sockets(arr)


class SimMeterAdapter:
    """Site meters over the plant's PV and mall profiles."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.health = CommHealth()
        self._last = len(plant.p_pv_kw) - 1

    def read(self) -> MeterReading:
        """(PV, mall) mean power over the step that starts now [kW] (the last step's
        values after the horizon)."""
        self.health.requests += 1
        k = min(self.plant.k, self._last)
        return MeterReading(self.plant.p_pv_kw[k], self.plant.p_mall_kw[k], True)


class SimDeviceIO:
    """The in-process plant as the tick driver's site: read and write its devices."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.bess = SimBessAdapter(plant)
        self.chargers = SimChargerAdapter(plant)
        self.meters = SimMeterAdapter(plant)
        self.adapters: dict[str, object] = {"bess": self.bess, "chargers": self.chargers,
                                            "meters": self.meters}
        self._waiting = plant.waiting_fn()
        self._last = len(plant.p_pv_kw) - 1
        # the thin in-process path: the plant's parts bound once (they live as long as it)
        fleet = plant.fleet
        self._observe_sockets = fleet.observe if fleet is not None else plant.observe_sockets
        self._begin_sockets = fleet.begin_step if fleet is not None else plant.begin_sockets
        self._state = plant.battery.state
        self._pv, self._mall = plant.p_pv_kw, plant.p_mall_kw
        self._shape = (plant.n_sockets,)
        self._health = (self.meters.health, self.bess.health, self.chargers.health)

    def read(self) -> Telemetry:
        """Meters, battery and sockets now.

        The same readings as the three adapters' ``read`` (and the same request counts),
        taken straight from the plant: one call a step on the in-process path.
        """
        plant = self.plant
        for h in self._health:
            h.requests += 1
        k = plant.k
        if k > self._last:
            k = self._last
        if plant.multi:
            states = plant.battery_states()
            return Telemetry(MeterReading(plant.p_pv_kw[k], plant.p_mall_kw[k], True),
                             aggregate_state(states), plant.observe_sockets(), self._waiting(),
                             batteries=states)
        return Telemetry(MeterReading(self._pv[k], self._mall[k], True), self._state(),
                         self._observe_sockets(), self._waiting())

    def write(self, p_bess_kw: float, p_socket_max_kw: FloatArray,
              p_bess_split_kw: tuple[float, ...] = ()) -> None:
        """Battery setpoint (per battery too, with several) and socket limits for the step
        that starts now (what the two adapters' ``write`` do, inlined with one battery)."""
        plant = self.plant
        if plant.multi or p_bess_split_kw:
            self.bess.write(p_bess_kw, p_bess_split_kw)
        else:
            self.bess.health.requests += 1
            if p_bess_kw != p_bess_kw:  # NaN never reaches a device
                raise AdapterError("battery setpoint is NaN")
            plant.p_bess_setpoint_kw = float(p_bess_kw)
        self.chargers.health.requests += 1
        arr = np.asarray(p_socket_max_kw, dtype=float)
        if arr.shape != self._shape:
            raise AdapterError(f"expected {plant.n_sockets} socket limits, got {arr.shape}")
        self._begin_sockets(arr)

    def close(self) -> None:
        """Nothing to release."""

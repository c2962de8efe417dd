"""In-process adapters over the twin's own device models (the ``sim`` target)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from adapters.base import AdapterError, CommHealth
from twin.types import BessState, FloatArray, SocketArrays

if TYPE_CHECKING:
    from twin.plant import Plant


class SimBessAdapter:
    """Battery adapter over ``Plant.battery``."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.health = CommHealth()

    def read(self) -> BessState:
        """Battery telemetry from the device model."""
        self.health.requests += 1
        return self.plant.battery.state()

    def write(self, p_kw: float) -> None:
        """Store the battery setpoint; the plant applies it over the step."""
        self.health.requests += 1
        if p_kw != p_kw:  # NaN never reaches a device
            raise AdapterError("battery setpoint is NaN")
        self.plant.p_bess_setpoint_kw = float(p_kw)


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

    def read(self) -> tuple[float, float]:
        """(PV, mall) mean power over the step that starts now [kW]."""
        self.health.requests += 1
        k = self.plant.k
        return self.plant.p_pv_kw[k], self.plant.p_mall_kw[k]

"""Weather station (SunSpec 308 "Mini Met"): GHI and temperatures, read-only."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from adapters.base import AdapterError
from adapters.modbus import codec
from adapters.modbus.transport import ModbusTransport

#: Highest GHI a pyranometer can read on Earth's surface [W/m²] (above: not a measurement).
GHI_MAX_W_M2 = 1500.0
#: Plausible temperature range of air and module [°C].
T_RANGE_C = (-40.0, 100.0)


class WeatherReading(NamedTuple):
    """The weather station at one instant.

    Attributes
    ----------
    ghi_w_m2 : global horizontal irradiance [W/m²].
    t_module_c : back-of-module temperature [°C] (nan when not implemented).
    t_amb_c : air temperature [°C] (nan when not implemented).
    valid : False when the GHI cannot be trusted (comm failure, garbage, out of range);
        the values are then the last good ones.
    """

    ghi_w_m2: float
    t_module_c: float
    t_amb_c: float
    valid: bool


class ModbusWeatherAdapter:
    """Reads GHI, TmpBOM and TmpAmb of SunSpec 308 in one request; never writes.

    A reading that fails or is out of range gives the last good values, marked invalid,
    and is counted (``values_held``).
    """

    def __init__(self, link: ModbusTransport, model: str = "308") -> None:
        self.link = link
        pt = link.map.point
        self.pts = (pt(f"{model}.GHI"), pt(f"{model}.TmpBOM"), pt(f"{model}.TmpAmb"))
        self.last = WeatherReading(0.0, math.nan, math.nan, False)
        self.held = 0

    def _decode(self, regs: list[int], lo: int) -> tuple[float | None, ...]:
        wo = self.link.map.word_order
        return tuple(codec.decode(p.type, regs[p.address - lo:][:p.size],
                                  p.sf if isinstance(p.sf, int) else 0, wo) for p in self.pts)

    async def aread(self) -> WeatherReading:
        """(GHI [W/m²], module and air temperature [°C], valid); never raises."""
        lo = min(p.address for p in self.pts)
        hi = max(p.address + p.size for p in self.pts)
        try:
            regs = await self.link.read(lo, hi - lo)
        except AdapterError:
            return self._hold()
        ghi, t_mod, t_amb = self._decode(regs, lo)
        if ghi is None or not math.isfinite(ghi) or not 0.0 <= ghi <= GHI_MAX_W_M2:
            return self._hold()
        temps = [t if t is not None and T_RANGE_C[0] <= t <= T_RANGE_C[1] else math.nan
                 for t in (t_mod, t_amb)]
        self.last = WeatherReading(float(ghi), float(temps[0]), float(temps[1]), True)
        return self.last

    def _hold(self) -> WeatherReading:
        self.held += 1
        self.last = self.last._replace(valid=False)
        return self.last

    def summary(self) -> dict[str, Any]:
        """Link counts and readings held."""
        return {**self.link.summary(), "values_held": self.held}


__all__ = ["GHI_MAX_W_M2", "ModbusWeatherAdapter", "WeatherReading"]

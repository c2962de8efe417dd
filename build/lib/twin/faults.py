"""Fault injection declared in a scenario (``faults:``), for hardware-in-the-loop runs.

Each fault acts on one simulated device for a window of simulated time; the Modbus device
simulators (``simulators/``) play them, the in-process twin ignores them. Kinds:

* ``connection_drop`` — the device drops every TCP connection and refuses new ones;
* ``response_delay`` — the device answers ``delay_s`` late (beyond the client timeout);
* ``exception`` — the device answers every request with Modbus exception ``exception_code``;
* ``garbage`` — telemetry registers hold nonsense (e.g. SoC 655.34 %, IEC state 0xFFFE);
* ``frozen`` — telemetry and the device heartbeat stop updating (values go stale);
* ``device_fault`` — the device reports a fault state (BESS ``State`` FAULT with an
  alarm bit, charger station FAULT / sockets in IEC state F) and delivers no power.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

FaultKind = Literal["connection_drop", "response_delay", "exception", "garbage", "frozen",
                    "device_fault"]
FaultDevice = Literal["bess", "chargers", "pv_inverter", "site_meter"]
FAULT_KINDS: tuple[str, ...] = ("connection_drop", "response_delay", "exception", "garbage",
                                "frozen", "device_fault")


def _seconds(v: Any, what: str, allow_zero: bool) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{what} must be a duration such as '10h', '30min' or seconds")
    if isinstance(v, int | float):
        s = float(v)
    else:
        try:
            s = pd.Timedelta(str(v)).total_seconds()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{what} {v!r} is not a duration; write e.g. '10h', '30min' or "
                             "seconds") from exc
    if not math.isfinite(s) or s < 0 or (s == 0 and not allow_zero):
        raise ValueError(f"{what} must be {'>= 0' if allow_zero else 'positive'}, got {v!r}")
    return s


class FaultSpec(BaseModel):
    """One fault: when [s since the scenario start], for how long [s], on which device, what.

    Attributes
    ----------
    time : start of the fault [s since the scenario start] (or a duration string).
    duration : how long it lasts [s] (or a duration string).
    device : ``bess``, ``chargers``, ``pv_inverter`` or ``site_meter``.
    kind : one of ``FAULT_KINDS``.
    delay_s : ``response_delay`` only: extra answer delay [s wall clock].
    exception_code : ``exception`` only: the Modbus exception code sent (4 = device failure).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: float
    duration: float
    device: FaultDevice
    kind: FaultKind
    delay_s: Annotated[float, Field(gt=0.0, le=30.0)] = 1.0
    exception_code: Annotated[int, Field(ge=1, le=11)] = 4

    @field_validator("time", mode="before")
    @classmethod
    def _t(cls, v: Any) -> float:
        return _seconds(v, "time", allow_zero=True)

    @field_validator("duration", mode="before")
    @classmethod
    def _d(cls, v: Any) -> float:
        return _seconds(v, "duration", allow_zero=False)

    @property
    def end(self) -> float:
        """End of the fault [s since the scenario start]."""
        return self.time + self.duration

    def active(self, t_s: float) -> bool:
        """True while the fault acts at simulated time ``t_s`` [s]."""
        return self.time <= t_s < self.time + self.duration

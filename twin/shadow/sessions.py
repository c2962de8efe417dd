"""The site's charging sessions as its chargers report them, one tick at a time.

Each tick the charge-point controller says, per socket: a vehicle plugged or not, the
energy of its session so far (``e_session``), its planned departure and the socket's mean
power over the step that just ended (``p_actual``). From these a session log in the format
``twin replay`` reads (:data:`twin.components.sessions.SESSION_LOG_COLUMNS`) is kept:

* a session starts when a socket is seen occupied after being empty, or when its session
  energy drops (a new vehicle took the socket between two ticks); its arrival is the tick
  less the energy already delivered at the power the vehicle draws (a vehicle charges at
  its power from plug-in), kept inside the step just ended;
* it ends when the socket is seen empty (or taken by the next vehicle); its departure is
  the planned departure it announced, kept inside the step just ended; its energy is the
  session energy last seen plus what the socket delivered in the step it left, less the
  next vehicle's energy in that step;
* a session still plugged at the end keeps its last reading (departure: the planned one,
  at least the last tick).

Ticks whose charger telemetry is not a new valid sample are skipped (the next good tick
settles what happened in between, with the step energy of that tick only: the count of
such ticks is ``n_skipped``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: A session energy that drops by more than this between ticks is a new vehicle [kWh].
E_DROP_KWH = 1e-3


@dataclass
class _Open:
    socket: int
    arrival_s: float
    e_kwh: float
    departure_s: float
    p_max_kw: float


@dataclass
class SessionTracker:
    """Session log of the sockets (see the module docstring).

    Parameters
    ----------
    dt_s : the tick [s].
    type_code : vehicle class per socket (index into ``class_names``).
    class_names : the site's vehicle classes (``EvConfig.class_names``).
    """

    dt_s: float
    type_code: np.ndarray
    class_names: tuple[str, ...]
    open: dict[int, _Open] = field(default_factory=dict)
    done: list[_Open] = field(default_factory=list)
    n_skipped: int = 0
    _t_last: float = math.nan

    def update(self, t_s: float, occupied: np.ndarray, e_session_kwh: np.ndarray,
               p_last_kw: np.ndarray, p_demand_kw: np.ndarray,
               t_departure_rel_s: np.ndarray) -> None:
        """One valid tick at ``t_s`` [s since start]: the sockets' state now, their power over
        the step just ended [kW], the power each vehicle draws now [kW] and the planned
        departures from now [s] (inf: none)."""
        t0 = t_s - self.dt_s if math.isfinite(self._t_last) else t_s
        for i in range(len(occupied)):
            e_now = float(e_session_kwh[i]) if occupied[i] else 0.0
            e_step = max(float(p_last_kw[i]), 0.0) * self.dt_s / 3600.0
            cur = self.open.get(i)
            new = bool(occupied[i]) and (cur is None or e_now < cur.e_kwh - E_DROP_KWH)
            if cur is not None and (not occupied[i] or new):
                cur.e_kwh += max(e_step - (e_now if new else 0.0), 0.0)
                cur.departure_s = min(max(cur.departure_s, t0 + 1.0), t_s)
                self.done.append(self.open.pop(i))
                cur = None
            if occupied[i]:
                p = max(float(p_last_kw[i]), float(p_demand_kw[i]))
                if cur is None:
                    back = e_now / p * 3600.0 if p > 1e-6 else 0.0
                    cur = _Open(i, min(max(t_s - back, t0), t_s), e_now, math.inf, 0.0)
                    self.open[i] = cur
                cur.e_kwh = e_now
                cur.p_max_kw = max(cur.p_max_kw, p)
                dep = float(t_departure_rel_s[i])
                cur.departure_s = t_s + dep if math.isfinite(dep) else math.inf
        self._t_last = t_s

    def frame(self, start: pd.Timestamp, ratings_kw: np.ndarray) -> pd.DataFrame:
        """The session log (``arrival``, ``departure`` with the site's UTC offset, ``socket``,
        ``vehicle_type``, ``e_delivered_kwh``, ``p_max_kw``), by arrival."""
        rows: list[dict[str, Any]] = []
        end = self._t_last if math.isfinite(self._t_last) else 0.0
        for s in [*self.done, *self.open.values()]:
            dep = s.departure_s if math.isfinite(s.departure_s) else end
            dep = max(dep, s.arrival_s + 1.0, end if s in self.open.values() else -math.inf)
            rating = float(ratings_kw[s.socket])
            p_max = min(s.p_max_kw, rating) if s.p_max_kw > 1e-3 else rating
            # at least the mean power of the stay as logged (the log's own check)
            p_max = math.ceil(max(p_max, s.e_kwh / ((dep - s.arrival_s) / 3600.0)) * 1e6) / 1e6
            rows.append({"arrival": start + pd.Timedelta(seconds=s.arrival_s),
                         "departure": start + pd.Timedelta(seconds=dep),
                         "socket": s.socket,
                         "vehicle_type": self.class_names[int(self.type_code[s.socket])],
                         "e_delivered_kwh": math.floor(s.e_kwh * 1e6) / 1e6, "p_max_kw": p_max})
        df = pd.DataFrame(rows, columns=["arrival", "departure", "socket", "vehicle_type",
                                         "e_delivered_kwh", "p_max_kw"])
        df = df.sort_values(["arrival", "socket"], kind="stable").reset_index(drop=True)
        for c in ("arrival", "departure"):
            df[c] = [t.isoformat() for t in df[c]]
        return df


__all__ = ["SessionTracker"]

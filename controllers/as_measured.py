"""``as_measured``: the battery power a site measured, played back step by step.

The "what the site did" run of ``twin replay``: each step the battery is asked for the
measured mean power of that step (a measured-series file, ``twin.components.measured``:
``p_bess_kw`` or ``bess_action_kwh``, + discharge), and every socket is open at its rating
(the vehicles' delivered energy comes from the session log). The safety layer still keeps
the battery inside its SOC window; a bend is counted like any controller's.

It is not in the registry (it needs a measured file, which the registry's contract runs do
not have): ``twin replay`` builds it.
"""

from __future__ import annotations

import numpy as np

from twin.config import SiteConfig
from twin.forecast import ControlContext
from twin.types import FloatArray, Setpoints, SiteObservation

PHASES = {0: "as_measured"}


class AsMeasuredController:
    """Battery setpoint = the measured battery power of the step; sockets at their rating."""

    name = "as_measured"
    phases = PHASES

    def __init__(self, site: SiteConfig, file: str = "", fill_max_steps: int = 4) -> None:
        if not file:
            raise ValueError("as_measured needs controller_params.file: a measured-series file "
                             "with a p_bess_kw (or bess_action_kwh) column")
        self.file = str(file)
        self.fill_max_steps = int(fill_max_steps)
        self.p_bess_kw: FloatArray | None = None

    def reset(self, *, seed: int | None = None) -> None:
        """Keep the series (it is the run's input, not state)."""

    def prepare(self, context: ControlContext) -> None:
        """Read the measured battery power at the run's steps (raises ConfigError)."""
        from twin.components.measured import read_measured

        m = read_measured(self.file, context.index, context.dt_s,
                          fill_max_steps=self.fill_max_steps, need=("bess",))
        self.p_bess_kw = np.asarray(m.values["bess"], dtype=float)

    def decide(self, obs: SiteObservation) -> Setpoints:
        """The measured battery power of step ``obs.k``, full sockets."""
        if self.p_bess_kw is None:
            raise RuntimeError("as_measured: prepare() was not called (no measured series)")
        return Setpoints(float(self.p_bess_kw[obs.k]), obs.sockets.p_rating_kw, 0)

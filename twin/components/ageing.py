"""Battery ageing from NREL's BLAST-Lite LFP models, updated once per day of the run.

A port (same equations, same parameters) of two models of NREL's BLAST-Lite 1.1.1
(``blast-lite`` on PyPI, BSD-3 licence; https://github.com/NREL/BLAST-Lite):

* **capacity fade**: ``blast.models.Lfp_Gr_250AhPrismatic`` — large-format prismatic
  LFP/graphite cells (> 250 Ah, stationary storage), fitted to the test data of
  Gasper et al., J. Energy Storage 73 (2023) 109042
  (https://doi.org/10.1016/j.est.2023.109042)::

      q_loss = q_loss_t + q_loss_EFC
      q_loss_t   = k_cal · t_days^0.526     k_cal = p1 · exp(p2/T) · exp(p3 · Ua(SOC)/T)
      q_loss_EFC = k_cyc · EFC^0.828        k_cyc = (p4 + p5·DOD + p6·C) · (exp(p7/T) + exp(−p8/T))

  (calendar fade grows as about √t, not linearly).
* **resistance growth**: the resistance terms of ``blast.models.Lfp_Gr_SonyMurata3Ah_Battery``
  (the 250 Ah model has none; same chemistry, small cylindrical cell), linear in time and
  in EFC: ``r = 1 + k_r_cal(T, SOC) · t + k_r_cyc(C, DOD) · EFC / 100``.

The run's SOC, cell temperature and time feed the model in chunks of one day (not per
step): each chunk's stressors (mean rates over the chunk, DOD = max − min SOC, EFC =
Σ|ΔSOC| / 2 scaled by the present capacity, mean C-rate) are extracted exactly as
``BatteryDegradationModel._extract_stressors`` does, and the states advance with
BLAST-Lite's power-law state equation ``dy = k·p·(y/k)^((p−1)/p)·dx``.
``tests/unit/test_ageing_blast.py`` checks the port against the package itself.

The SOC here is the share of the *present* (faded) capacity, as BLAST-Lite takes it with
``is_conserve_energy_throughput=False``; it rescales EFC and C-rate by the state of health.

Cell temperature (``cell_temperature_c``): a container model. The container's air follows
the ambient through its walls with a first-order lag (time constant ``container_tau_h``),
and the HVAC holds the cells near the setpoint: the cells see the setpoint plus a share
``hvac_coupling_frac`` of the (lagged) ambient's deviation from it (0: an ideal HVAC, the
cells sit at the setpoint; 1: no HVAC, the cells follow the lagged ambient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.types import FloatArray

#: BLAST-Lite 1.1.1 ``Lfp_Gr_250AhPrismatic._params_life`` (capacity fade).
LFP_250AH_PARAMS = {
    "p1": 8.37e04, "p2": -5.21e03, "p3": -3.56e03, "pcal": 0.526,
    "p4": 4.38e-08, "p5": 1.55e-08, "p6": 1.68e-07, "p7": 2.19e03, "p8": 1.55e05, "pcyc": 0.828,
}
#: BLAST-Lite 1.1.1 ``Lfp_Gr_SonyMurata3Ah_Battery._params_life`` (resistance growth part).
LFP_R_PARAMS = {
    "k_ref_r_cal": 3.4194e-10, "Ea_r_cal": 71827.0, "C_r_cal": -3.3903, "D_r_cal": 1.5604,
    "A_r_cyc": -0.002, "B_r_cyc": 0.0021, "C_r_cyc": 6.8477, "D_r_cyc": 0.91882,
}
#: What the summary names as the ageing model.
BLAST_LFP_LABEL = ("BLAST-Lite 1.1.1 Lfp_Gr_250AhPrismatic (capacity) + "
                   "Lfp_Gr_SonyMurata3Ah (resistance)")
_R_GAS = 8.3144  # [J/(mol·K)], as in BLAST-Lite


def anode_potential_v(soc: FloatArray) -> FloatArray:
    """Graphite anode-to-lithium potential Ua [V] from SOC (Safari & Delacourt 2011),
    with BLAST-Lite's lithiation fraction ``Xa = 0.0085 + SOC·(0.78 − 0.0085)``."""
    xa = 8.5e-3 + soc * (0.78 - 8.5e-3)
    return np.asarray(
        0.6379 + 0.5416 * np.exp(-305.5309 * xa) + 0.044 * np.tanh(-(xa - 0.1958) / 0.1088)
        - 0.1978 * np.tanh((xa - 1.0571) / 0.0854) - 0.6875 * np.tanh((xa + 0.0117) / 0.0529)
        - 0.0175 * np.tanh((xa - 0.5692) / 0.0875), dtype=np.float64)


def power_state_step(y0: float, dx: float, k: float, p: float) -> float:
    """BLAST-Lite's update of a state on the trajectory ``y = k·x^p`` over ``dx`` [-]."""
    if dx == 0.0 or k <= 0.0:
        return 0.0
    if y0 == 0.0:
        return k * dx ** p
    return k * p * (y0 / k) ** ((p - 1.0) / p) * dx


def _time_mean(y: FloatArray, x: FloatArray) -> float:
    """Trapezoid mean of ``y`` over ``x`` (``np.trapz(y, x) / (x[-1] − x[0])``)."""
    span = float(x[-1] - x[0])
    return float(np.trapezoid(y, x=x)) / span if span > 0.0 else float("nan")


@dataclass(frozen=True, slots=True)
class Stressors:
    """One chunk's stressors, as ``BatteryDegradationModel._extract_stressors`` gives them.

    Attributes
    ----------
    delta_t_days : chunk length [d].
    delta_efc : equivalent full cycles of nominal capacity in the chunk [-].
    dod : depth of discharge, max − min SOC [0-1].
    c_rate : mean absolute C-rate of nominal capacity (steps under 0.01 C count as rest) [1/h].
    """

    delta_t_days: float
    delta_efc: float
    dod: float
    c_rate: float


def extract_stressors(t_s: FloatArray, soc: FloatArray, q: float) -> Stressors:
    """Stressors of one chunk: times ``t_s`` [s], SOC ``soc`` [0-1], state of health ``q`` [-]."""
    t_days = t_s / 86400.0
    delta_t_days = float(t_days[-1] - t_days[0])
    dsoc = np.diff(soc)
    delta_efc = float(np.abs(dsoc).sum()) / 2.0 * q
    dod = float(soc.max() - soc.min())
    crate = np.abs(dsoc / np.diff(t_s / 3600.0))
    crate[crate < 1e-2] = 0.0
    c = float(np.trapezoid(crate, t_days[1:])) / delta_t_days if delta_t_days > 0 else 0.0
    if math.isnan(c):
        c = 0.0
    return Stressors(delta_t_days, delta_efc, dod, c * q)


@dataclass(slots=True)
class BlastLfpAgeing:
    """State of the ported BLAST-Lite LFP model (fractions of the nominal capacity/resistance).

    Attributes
    ----------
    q_loss_t, q_loss_efc : calendar and cycling capacity loss [0-1].
    r_gain_t, r_gain_efc : calendar and cycling resistance growth [-] (``r = 1 + both``).
    efc : equivalent full cycles so far (BLAST-Lite's count) [-].
    t_days : time covered so far [d].
    """

    q_loss_t: float = 0.0
    q_loss_efc: float = 0.0
    r_gain_t: float = 0.0
    r_gain_efc: float = 0.0
    efc: float = 0.0
    t_days: float = 0.0

    @property
    def q(self) -> float:
        """Relative capacity [0-1]."""
        return 1.0 - self.q_loss_t - self.q_loss_efc

    @property
    def r(self) -> float:
        """Relative resistance [-] (1 at the start)."""
        return 1.0 + self.r_gain_t + self.r_gain_efc

    def update(self, t_s: FloatArray, soc: FloatArray, t_cell_c: FloatArray) -> None:
        """Advance over one chunk: times [s], SOC [0-1] and cell temperature [°C] at its points.

        The arrays have the same length (>= 2 points); ``t_s`` strictly increases.
        """
        st = extract_stressors(t_s, soc, self.q)
        if st.delta_t_days <= 0.0:
            return
        tk = t_cell_c + 273.15
        ua = anode_potential_v(soc)
        p = LFP_250AH_PARAMS
        kcal = _time_mean(abs(p["p1"]) * np.exp(p["p2"] / tk) * np.exp(p["p3"] * ua / tk), t_s)
        kcyc = _time_mean((p["p4"] + p["p5"] * st.dod + p["p6"] * st.c_rate)
                          * (np.exp(p["p7"] / tk) + np.exp(-p["p8"] / tk)), t_s)
        self.q_loss_t += power_state_step(self.q_loss_t, st.delta_t_days, kcal, p["pcal"])
        self.q_loss_efc += power_state_step(self.q_loss_efc, st.delta_efc, kcyc, p["pcyc"])
        r = LFP_R_PARAMS
        k_temp = _time_mean(r["k_ref_r_cal"] * np.exp(-r["Ea_r_cal"] / _R_GAS
                                                       * (1.0 / tk - 1.0 / 298.15)), t_s)
        k_soc = _time_mean(r["C_r_cal"] * (soc - 0.5) ** 3 + r["D_r_cal"], t_s)
        k_cyc = ((r["A_r_cyc"] * st.c_rate + r["B_r_cyc"])
                 * (r["C_r_cyc"] * (st.dod - 0.5) ** 3 + r["D_r_cyc"]))
        self.r_gain_t += k_temp * k_soc * st.delta_t_days * 86400.0
        self.r_gain_efc += k_cyc * st.delta_efc / 100.0
        self.efc += st.delta_efc
        self.t_days += st.delta_t_days


def cell_temperature_c(t_air_c: FloatArray, dt_s: float, setpoint_c: float,
                       coupling_frac: float, tau_h: float) -> FloatArray:
    """Cell temperature per step [°C] from the ambient air per step ``t_air_c`` [°C].

    ``T_cell = setpoint + coupling_frac · (T_lag − setpoint)``, with ``T_lag`` the ambient
    through a first-order lag of time constant ``tau_h`` [h] (exact discretisation at step
    ``dt_s`` [s]; it starts at the first ambient value).
    """
    t_air = np.asarray(t_air_c, dtype=np.float64)
    if t_air.size == 0:
        return t_air.copy()
    if tau_h > 0.0:
        from scipy.signal import lfilter

        a = math.exp(-dt_s / (tau_h * 3600.0))
        lag, _ = lfilter([1.0 - a], [1.0, -a], t_air, zi=[a * t_air[0]])
    else:
        lag = t_air
    return np.asarray(setpoint_c + coupling_frac * (lag - setpoint_c), dtype=np.float64)


def diurnal_ambient_c(hour: FloatArray, t_min_c: float, t_max_c: float,
                      peak_hour: float) -> FloatArray:
    """The PV model's diurnal ambient temperature [°C] at local clock hours ``hour`` [h]:
    a cosine between ``t_min_c`` and ``t_max_c`` peaking at ``peak_hour`` (the formula of
    ``twin.components.pv._ac_power_kw``)."""
    mean = 0.5 * (t_min_c + t_max_c)
    amp = 0.5 * (t_max_c - t_min_c)
    return np.asarray(mean + amp * np.cos(2.0 * np.pi * (hour - peak_hour) / 24.0), dtype=np.float64)


__all__ = ["BLAST_LFP_LABEL", "LFP_250AH_PARAMS", "LFP_R_PARAMS", "BlastLfpAgeing", "Stressors",
           "anode_potential_v", "cell_temperature_c", "diurnal_ambient_c", "extract_stressors",
           "power_state_step"]

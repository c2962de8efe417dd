"""Battery ageing from NREL's BLAST-Lite models, updated once per day of the run.

A port (same equations, same parameters) of models of NREL's BLAST-Lite 1.1.1
(``blast-lite`` on PyPI, BSD-3 licence; https://github.com/NREL/BLAST-Lite). For LFP
(the default):

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

For NMC: ``blast.models.Nmc111_Gr_Kokam75Ah_Battery`` (Kokam 75 Ah NMC/graphite pouch cell;
Smith et al., ACC 2017, https://doi.org/10.23919/ACC.2017.7963578): calendar fade
~t^0.357, cycle fade ~EFC^0.778 plus a sigmoid active-material loss, resistance growth.
For LTO: ``blast.models.Nmc_Lto_10Ah_Battery`` (NMC/LTO 10 Ah cell): calendar loss and
gain, cycle fade ~EFC^0.526, no resistance model.

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
from itertools import accumulate

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
#: BLAST-Lite 1.1.1 ``Nmc111_Gr_Kokam75Ah_Battery._params_life``.
NMC_KOKAM_PARAMS = {
    "q1_0": 2.66e7, "q1_1": -17.8, "q1_2": -5.21, "q2": 0.357, "q3_0": 3.80e3, "q3_1": -18.4,
    "q3_2": 1.04, "q4": 0.778, "q5_0": 1e4, "q5_1": 153.0, "p_LAM": 10.0, "r1": 0.0570,
    "r2": 1.25, "r3": 4.87, "r4": 0.712, "r5": -0.08, "r6": 1.09,
}
#: BLAST-Lite 1.1.1 ``Nmc_Lto_10Ah_Battery._params_life``.
LTO_PARAMS = {
    "alpha_0": 3.11e11, "alpha_1": -34.8, "alpha_2": 1.07, "alpha_p": 0.473,
    "beta_0": 7.86e10, "beta_1": -35.8, "beta_2": 3.94, "beta_p": -0.553,
    "gamma_0": 1.29, "gamma_1": 7.83e-05, "gamma_2": 4.02, "gamma_3": -8.33, "gamma_p": 0.526,
}
#: What the summary names as the ageing model, per chemistry.
BLAST_LFP_LABEL = ("BLAST-Lite 1.1.1 Lfp_Gr_250AhPrismatic (capacity) + "
                   "Lfp_Gr_SonyMurata3Ah (resistance)")
BLAST_NMC_LABEL = "BLAST-Lite 1.1.1 Nmc111_Gr_Kokam75Ah (capacity, resistance)"
BLAST_LTO_LABEL = "BLAST-Lite 1.1.1 Nmc_Lto_10Ah (capacity; no resistance model)"
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


def sigmoid_state_step(y0: float, dx: float, y_inf: float, k: float, p: float) -> float:
    """BLAST-Lite's update of a state on ``y = 2·y_inf·(1/2 − 1/(1 + exp((k·x)^p)))`` [-]."""
    if dx == 0.0:
        return 0.0
    if y0 == 0.0:
        return 2.0 * y_inf * (0.5 - 1.0 / (1.0 + math.exp((k * dx) ** p)))
    x_inv = (1.0 / k) * math.log(-(2.0 * y_inf / (y0 - y_inf)) - 1.0) ** (1.0 / p)
    z = (k * x_inv) ** p
    return (2.0 * y_inf * p * math.exp(z) * z) / (x_inv * (math.exp(z) + 1.0) ** 2) * dx


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


class BlastAgeing:
    """A ported BLAST-Lite model's state, advanced chunk by chunk (``update``).

    Attributes
    ----------
    efc : equivalent full cycles so far (BLAST-Lite's count, of nominal capacity) [-].
    t_days : time covered so far [d].
    """

    label = ""

    def __init__(self) -> None:
        self.efc = 0.0
        self.t_days = 0.0

    @property
    def q(self) -> float:
        """Relative capacity [0-1]."""
        return 1.0 - self.fade_calendar - self.fade_cycle

    @property
    def fade_calendar(self) -> float:
        """Capacity lost to time (storage) [share of nominal]."""
        raise NotImplementedError

    @property
    def fade_cycle(self) -> float:
        """Capacity lost to cycling [share of nominal]."""
        raise NotImplementedError

    @property
    def r(self) -> float | None:
        """Relative resistance [-] (1 at the start), None when the model has none."""
        return None

    def update(self, t_s: FloatArray, soc: FloatArray, t_cell_c: FloatArray) -> None:
        """Advance over one chunk: times [s], SOC [0-1] and cell temperature [°C] at its points.

        The arrays have the same length (>= 2 points); ``t_s`` strictly increases.
        """
        st = extract_stressors(t_s, soc, self.q)
        if st.delta_t_days <= 0.0:
            return
        self._advance(st, t_s, soc, t_cell_c + 273.15)
        self.efc += st.delta_efc
        self.t_days += st.delta_t_days

    def _advance(self, st: Stressors, t_s: FloatArray, soc: FloatArray, tk: FloatArray) -> None:
        raise NotImplementedError


class BlastLfpAgeing(BlastAgeing):
    """LFP/graphite: ``Lfp_Gr_250AhPrismatic`` capacity fade, ``Lfp_Gr_SonyMurata3Ah``
    resistance growth (fractions of nominal capacity / resistance)."""

    label = BLAST_LFP_LABEL

    def __init__(self) -> None:
        super().__init__()
        self.q_loss_t = 0.0
        self.q_loss_efc = 0.0
        self.r_gain_t = 0.0
        self.r_gain_efc = 0.0

    @property
    def fade_calendar(self) -> float:
        return self.q_loss_t

    @property
    def fade_cycle(self) -> float:
        return self.q_loss_efc

    @property
    def r(self) -> float:
        return 1.0 + self.r_gain_t + self.r_gain_efc

    def _advance(self, st: Stressors, t_s: FloatArray, soc: FloatArray, tk: FloatArray) -> None:
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


class BlastNmcAgeing(BlastAgeing):
    """NMC/graphite: ``Nmc111_Gr_Kokam75Ah_Battery`` (large-format pouch cell; capacity =
    min(lithium-inventory loss, active-material loss), resistance = max of the two paths)."""

    label = BLAST_NMC_LABEL

    def __init__(self) -> None:
        super().__init__()
        self.q_loss_lli_t = 0.0
        self.q_loss_lli_efc = 0.0
        self.q_loss_lam = 0.0
        self.r_gain_lli_t = 0.0
        self.r_gain_lli_efc = 0.0

    @property
    def q(self) -> float:
        return min(1.0 - self.q_loss_lli_t - self.q_loss_lli_efc, 1.01 - self.q_loss_lam)

    @property
    def fade_calendar(self) -> float:
        return self.q_loss_lli_t

    @property
    def fade_cycle(self) -> float:
        return 1.0 - self.q - self.q_loss_lli_t

    @property
    def r(self) -> float:
        p = NMC_KOKAM_PARAMS
        r_lli = 1.0 + self.r_gain_lli_t + self.r_gain_lli_efc
        return max(r_lli, p["r5"] + p["r6"] / (1.01 - self.q_loss_lam))

    def _advance(self, st: Stressors, t_s: FloatArray, soc: FloatArray, tk: FloatArray) -> None:
        p = NMC_KOKAM_PARAMS
        tkn = tk / (273.15 + 35.0)
        uan = anode_potential_v(soc) / 0.123
        q1 = _time_mean(p["q1_0"] * np.exp(p["q1_1"] / tkn) * np.exp(p["q1_2"] * uan / tkn), t_s)
        q3 = _time_mean(p["q3_0"] * np.exp(p["q3_1"] / tkn)
                        * np.exp(p["q3_2"] * np.exp(st.dod ** 2)), t_s)
        q5 = _time_mean(p["q5_0"] + p["q5_1"] * (tk - 273.15 - 55.0) * st.dod
                        * (float(np.mean(soc)) / 0.6), t_s)
        dt, de = st.delta_t_days, st.delta_efc
        self.q_loss_lli_t += power_state_step(self.q_loss_lli_t, dt, q1, p["q2"])
        self.q_loss_lli_efc += power_state_step(self.q_loss_lli_efc, de, q3, p["q4"])
        self.q_loss_lam += sigmoid_state_step(self.q_loss_lam, de, 1.0, 1.0 / q5, p["p_LAM"])
        self.r_gain_lli_t += power_state_step(self.r_gain_lli_t, dt, p["r1"] * q1, p["r2"])
        self.r_gain_lli_efc += power_state_step(self.r_gain_lli_efc, de, p["r3"] * q3, p["r4"])


class BlastLtoAgeing(BlastAgeing):
    """NMC/LTO: ``Nmc_Lto_10Ah_Battery`` (calendar loss and gain, cycle loss; no resistance)."""

    label = BLAST_LTO_LABEL

    def __init__(self) -> None:
        super().__init__()
        self.q_loss_t = 0.0
        self.q_gain_t = 0.0
        self.q_loss_efc = 0.0

    @property
    def fade_calendar(self) -> float:
        return self.q_loss_t - self.q_gain_t

    @property
    def fade_cycle(self) -> float:
        return self.q_loss_efc

    def _advance(self, st: Stressors, t_s: FloatArray, soc: FloatArray, tk: FloatArray) -> None:
        p = LTO_PARAMS
        tkn = tk / (273.15 + 45.0)
        alpha = _time_mean(p["alpha_0"] * np.exp(p["alpha_1"] / tkn)
                           * np.exp(p["alpha_2"] * soc / tkn), t_s)
        beta = _time_mean(p["beta_0"] * np.exp(p["beta_1"] / tkn)
                          * np.exp(p["beta_2"] * soc / tkn), t_s)
        gamma = _time_mean((p["gamma_0"] + p["gamma_1"] * st.c_rate + p["gamma_2"] * st.dod ** 3)
                           * np.exp(p["gamma_3"] / tkn), t_s)
        dt = st.delta_t_days
        self.q_gain_t += power_state_step(self.q_gain_t, dt, alpha, p["alpha_p"])
        self.q_loss_t += power_state_step(self.q_loss_t, dt, beta, p["beta_p"])
        self.q_loss_efc += power_state_step(self.q_loss_efc, st.delta_efc, gamma, p["gamma_p"])


#: The BLAST-Lite model per ``bess.chemistry``.
BLAST_MODELS: dict[str, type[BlastAgeing]] = {
    "lfp": BlastLfpAgeing, "nmc": BlastNmcAgeing, "lto": BlastLtoAgeing}


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
        # y[n] = a·y[n-1] + (1 − a)·x[n] from y[-1] = x[0]: the operations, in the order, of
        # ``scipy.signal.lfilter([1 - a], [1, -a], x, zi=[a·x[0]])`` (bit-identical), without
        # importing scipy.signal (~0.5-2 s of a run's start-up)
        a = math.exp(-dt_s / (tau_h * 3600.0))
        b0 = 1.0 - a
        lag = np.fromiter(accumulate(t_air.tolist(), lambda y, x: y * a + b0 * x,
                                     initial=float(t_air[0])), np.float64,
                          count=t_air.size + 1)[1:]
    else:
        lag = t_air
    return np.asarray(setpoint_c + coupling_frac * (lag - setpoint_c), dtype=np.float64)


__all__ = ["BLAST_LFP_LABEL", "BLAST_LTO_LABEL", "BLAST_MODELS", "BLAST_NMC_LABEL",
           "LFP_250AH_PARAMS", "LFP_R_PARAMS", "LTO_PARAMS", "NMC_KOKAM_PARAMS", "BlastAgeing",
           "BlastLfpAgeing", "BlastLtoAgeing", "BlastNmcAgeing", "Stressors", "anode_potential_v",
           "cell_temperature_c", "extract_stressors", "power_state_step",
           "sigmoid_state_step"]

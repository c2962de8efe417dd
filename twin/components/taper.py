"""CC-CV charging of one vehicle, in closed form (no SimPy, no state).

A vehicle draws at most ``vmax`` [kW] (its on-board charger, capped by the socket) while its
battery is below the taper SOC ``s_t`` (constant current); above it the power limit falls
**linearly in SOC** from ``vmax`` at ``s_t`` to ``floor_frac × vmax`` at 100 % (constant
voltage). Linear in SOC is the same as **exponential in time**: with ``g(s) = vmax − k (s −
s_t)`` and ``ds/dt = g / C``, ``dg/dt = −(k / C) g``, so in the CV phase the power decays as
``exp(−κ t)`` with ``κ = k / C`` [1/h] — the textbook CV current decay (the current of a
cell held at its charge voltage falls roughly exponentially), and both directions (energy
after a time, time to an energy) stay closed-form, so the fleet can settle a step or place
the "full" instant exactly whatever the tick length.

State in energy terms (what the fleet keeps per socket): ``erem`` [kWh] still asked; the
taper starts when ``erem < e_t`` with ``e_t = C (s_full − s_t)`` [kWh] (``s_full``: the SOC
at which the request is met); there ``g = vmax − κ (e_t − erem)``. Under a controller limit
``L`` the vehicle draws ``min(L, g)``: constant ``p = min(L, vmax)`` until ``g`` falls to
``p`` (after the linear budget ``lin``), then ``g``. ``κ = 0`` is a vehicle without taper.
"""

from __future__ import annotations

import math

import numpy as np

from twin.types import FloatArray


def taper_params(cap_kwh: float, soc_arrival: float, e_req_kwh: float, taper_soc: float,
                 floor_frac: float, vmax_kw: float) -> tuple[float, float]:
    """``(e_t [kWh], κ [1/h])`` of a vehicle; ``(-inf, 0)`` when it does not taper.

    Parameters
    ----------
    cap_kwh : battery size [kWh] (``<= 0`` or not finite: no taper).
    soc_arrival : SOC at arrival [-].
    e_req_kwh : energy asked [kWh].
    taper_soc : SOC where the CV phase starts [-] (``>= 1``: no taper).
    floor_frac : power at 100 % SOC as a share of ``vmax_kw`` [-] (0, 1].
    vmax_kw : the vehicle's maximum power at this socket [kW].
    """
    if not (cap_kwh > 0.0 and math.isfinite(cap_kwh)) or taper_soc >= 1.0 or vmax_kw <= 0.0:
        return -math.inf, 0.0
    k_kw = vmax_kw * (1.0 - floor_frac) / (1.0 - taper_soc)
    s_full = soc_arrival + e_req_kwh / cap_kwh
    return cap_kwh * (s_full - taper_soc), k_kw / cap_kwh


def lin_budget_kwh(erem: float, p_kw: float, vmax_kw: float, e_t: float, kappa: float) -> float:
    """Energy [kWh] drawn at the constant ``p_kw`` before the taper falls below it."""
    if kappa <= 0.0:
        return math.inf
    e_b = e_t - (vmax_kw - p_kw) / kappa  # erem at which g == p
    return erem - e_b if erem > e_b else 0.0


def energy_kwh(erem: float, p_kw: float, vmax_kw: float, e_t: float, kappa: float,
               tau_h: float) -> float:
    """Energy [kWh] drawn in ``tau_h`` [h] from ``erem`` at the constant-phase power ``p_kw``
    (``min(limit, vmax)``), at most ``erem``."""
    if p_kw <= 0.0 or tau_h <= 0.0 or erem <= 0.0:
        return 0.0
    lin = lin_budget_kwh(erem, p_kw, vmax_kw, e_t, kappa)
    e_lin = p_kw * tau_h
    if e_lin <= lin:
        return e_lin if e_lin < erem else erem
    tau2 = tau_h - lin / p_kw
    u1 = vmax_kw - kappa * (e_t - (erem - lin))  # power where the taper takes over [kW]
    if u1 > p_kw:
        u1 = p_kw
    if u1 <= 0.0:  # past the floor (not physical: s_full > 1): nothing more
        return lin if lin < erem else erem
    e = lin - u1 * math.expm1(-kappa * tau2) / kappa
    return e if e < erem else erem


def time_to_full_h(erem: float, p_kw: float, vmax_kw: float, e_t: float, kappa: float) -> float:
    """Time [h] to draw ``erem`` [kWh] at the constant-phase power ``p_kw`` (inf if never)."""
    if erem <= 0.0:
        return 0.0
    if p_kw <= 0.0:
        return math.inf
    lin = lin_budget_kwh(erem, p_kw, vmax_kw, e_t, kappa)
    if erem <= lin:
        return erem / p_kw
    u1 = vmax_kw - kappa * (e_t - (erem - lin))
    if u1 > p_kw:
        u1 = p_kw
    if u1 <= 0.0:
        return math.inf
    x = kappa * (erem - lin) / u1
    if x >= 1.0:
        return math.inf
    return lin / p_kw - math.log1p(-x) / kappa


def energy_kwh_vec(erem: FloatArray, p_kw: FloatArray, vmax_kw: FloatArray, e_t: FloatArray,
                   kappa: FloatArray, tau_h: float | FloatArray) -> FloatArray:
    """:func:`energy_kwh` element-wise (numpy) [kWh]."""
    erem = np.asarray(erem, dtype=float)
    p = np.maximum(np.asarray(p_kw, dtype=float), 0.0)
    tau = np.broadcast_to(np.asarray(tau_h, dtype=float), erem.shape)
    kap = np.asarray(kappa, dtype=float)
    tap = kap > 0.0
    safe_k = np.where(tap, kap, 1.0)
    e_b = np.where(tap, e_t - (vmax_kw - p) / safe_k, -np.inf)
    lin = np.where(erem > e_b, erem - e_b, 0.0)
    e_lin = p * tau
    safe_p = np.where(p > 0.0, p, 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        tau2 = np.maximum(tau - lin / safe_p, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        u1 = np.maximum(np.minimum(vmax_kw - kap * (e_t - (erem - lin)), p), 0.0)
        e_tap = lin - u1 * np.expm1(-kap * tau2) / safe_k
    e = np.where(e_lin <= lin, e_lin, e_tap)
    e = np.where((p > 0.0) & (tau > 0.0) & (erem > 0.0), e, 0.0)
    return np.minimum(e, np.maximum(erem, 0.0))


def time_to_full_h_vec(erem: FloatArray, p_kw: FloatArray, vmax_kw: FloatArray,
                       e_t: FloatArray, kappa: FloatArray) -> FloatArray:
    """:func:`time_to_full_h` element-wise (numpy) [h]."""
    return np.array([time_to_full_h(a, b, c, d, e) for a, b, c, d, e in zip(
        np.asarray(erem, float).tolist(), np.asarray(p_kw, float).tolist(),
        np.asarray(vmax_kw, float).tolist(), np.asarray(e_t, float).tolist(),
        np.asarray(kappa, float).tolist(), strict=True)], dtype=float)


__all__ = ["energy_kwh", "energy_kwh_vec", "lin_budget_kwh", "taper_params", "time_to_full_h",
           "time_to_full_h_vec"]

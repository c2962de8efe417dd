"""The site's linear program (one horizon of ``n`` steps), built sparse and solved by HiGHS.

Variables per step ``k`` (powers are means over the step [kW], energies [kWh]; steps may
have different lengths ``Δt_k``, as in the rolling horizon of ``mpc``):

==========  =================================================  =====================================
``pc, pd``  battery AC charge / discharge [kW]                 ``0 ≤ pc ≤ Pc``, ``0 ≤ pd ≤ Pd``
``g``       grid import [kW]                                   ``0 ≤ g ≤ import limit``
``E``       stored energy at the step end [kWh]                SOC window (ceiling lowered by fade)
``e_c``     EV energy delivered to vehicles of type c [kWh]    ``0 ≤ e_c ≤ cap_c`` (plugged × power)
``x_c``     EV energy delivered so far minus ``L_c`` [kWh]     ``0 ≤ x_c ≤ U_c − L_c``
``W_c``     EV energy written off so far [kWh]                 non-decreasing, penalised (optional)
``Gp``      peak import over the horizon [kW] (one variable)   only with a peak charge
``D_j``     billed demand of demand slot j [kW]                one per (billing month, demand charge)
==========  =================================================  =====================================

Constraints per step:

* bus: ``g + pd − pc − Σ_c e_c / Δt ≥ mall + EV profile − PV`` (the slack is curtailed PV or
  export; discharge never feeds it, see the tie-breaks);
* battery: ``E_k = a_k (E_{k−1} + η_c Δt pc_k − Δt pd_k / η_d)``, ``a = 1 − self-discharge × Δt``;
* EV: ``x_{c,k} = x_{c,k−1} + e_{c,k} − (L_{c,k} − L_{c,k−1})`` (delivered so far
  ``S = x + L`` between the envelopes ``L ≤ S ≤ U``, ``controllers.lp.ev``); with write-off
  ``L ≤ S + W ≤ U`` instead (written-off energy is never delivered), ``W_{c,k} ≥ W_{c,k−1}``;
* peak: ``Gp ≥ g_k``;
* demand charges (the tariff's, ``HorizonData.demand``): ``D_j ≥ g_k`` for the steps ``k``
  of slot ``j`` (its billing month and periods), ``D_j ≥`` the month's peak so far
  (rolling horizon).

Several batteries (``site.batteries``): one storage unit each (its own ``pc, pd, E``, SOC
window, ratings, efficiencies, self-discharge and fade), all on the one bus row; the first
unit keeps the one-battery column layout, units ``i ≥ 1`` are the blocks ``pc@i, pd@i, E@i``
after the EV blocks (a one-battery site builds exactly the LP it built before). The plan's
``p_charge_kw`` ... are then sums and ``p_*_units_kw`` the parts.

Capacity fade enters as a lower SOC ceiling per step (``HorizonData.fade_kwh``, from the
plan's own throughput: ``controllers.optimal.solve_with_fade``).

Objective [currency]:
``Σ_k (price_k + co2_price · co2_factor) g_k Δt_k + peak_charge · Gp
+ Σ_j demand_price_j · D_j + unserved_penalty · (Σ_c W_{c,n−1} + requested − deliverable)``,
plus tie-breaks that do not count in the reported objective: ``ε_b Δt (pc + pd)`` (no simultaneous charge and
discharge, no discharge into curtailment) and ``−ε_ev Σ x`` (charge vehicles early when
it costs nothing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from controllers.lp.ev import EvEnvelopes
from twin.components.bess import BessParams
from twin.errors import UserError
from twin.types import FloatArray

if TYPE_CHECKING:  # scipy is imported when a model is built (~0.1 s), not with the registry
    import scipy.sparse as sp

#: Tie-break cost of battery throughput [currency/kWh].
EPS_BESS = 1e-5
#: Tie-break reward of early EV energy [currency/kWh per step].
EPS_EV = 1e-6
#: Margin kept inside the SOC window [kWh] (rounding: the safety layer must never bend a plan).
MARGIN_KWH = 0.05


@dataclass(frozen=True, slots=True)
class Weights:
    """Objective weights (``controller_params`` of ``optimal`` and ``mpc``).

    Attributes
    ----------
    co2_price_per_kg : price of CO2 emitted by grid import [currency/kg].
    peak_charge_per_kw : charge on the highest import (mean power of one step) of the run
        [currency/kW].
    unserved_penalty_per_kwh : penalty on EV energy asked but not delivered [currency/kWh].
    """

    co2_price_per_kg: float = 0.0
    peak_charge_per_kw: float = 0.0
    unserved_penalty_per_kwh: float = 1.0


@dataclass(frozen=True, slots=True)
class BatteryData:
    """The battery for the LP (AC side): the plant's own parameters and what the LP adds.

    Attributes
    ----------
    params : the battery's parameters, the one set built from the site config
        (``twin.components.bess.BessParams.from_config``); ratings, efficiencies, SOC
        window and the linear fade coefficients are read from it.
    e_capacity_kwh : capacity at the start of the horizon [kWh].
    fade_per_kwh : capacity lost per kWh of DC throughput (cycle + legacy) [kWh/kWh].
    """

    params: BessParams
    e_capacity_kwh: float
    fade_per_kwh: float

    @classmethod
    def from_params(cls, prm: BessParams, e_capacity_kwh: float | None = None) -> BatteryData:
        """The LP's battery from the plant's parameters (round trip split evenly; cycle,
        calendar and legacy throughput fade), at capacity ``e_capacity_kwh`` [kWh]
        (default: nominal)."""
        cap0 = prm.e_capacity_kwh
        cap = cap0 if e_capacity_kwh is None else e_capacity_kwh
        legacy = prm.capacity_loss_coefficient / 2.0 * (cap0 / cap if cap > 0 else 1.0)
        return cls(prm, cap, prm.cycle_fade_per_kwh + legacy)

    @property
    def p_charge_max_kw(self) -> float:
        """Charge rating [kW]."""
        return self.params.p_charge_max_kw

    @property
    def p_discharge_max_kw(self) -> float:
        """Discharge rating [kW]."""
        return self.params.p_discharge_max_kw

    @property
    def eta_charge(self) -> float:
        """One-way charge efficiency [-]."""
        return self.params.eta_charge

    @property
    def eta_discharge(self) -> float:
        """One-way discharge efficiency [-]."""
        return self.params.eta_discharge

    @property
    def soc_min_frac(self) -> float:
        """SOC floor [0-1]."""
        return self.params.soc_min_frac

    @property
    def soc_max_frac(self) -> float:
        """SOC ceiling [0-1]."""
        return self.params.soc_max_frac

    @property
    def self_discharge_frac_per_h(self) -> float:
        """Self-discharge [1/h]."""
        return self.params.self_discharge_frac_per_h

    @property
    def calendar_fade_per_h(self) -> float:
        """Calendar fade at 50 % SOC [kWh/h]."""
        return self.params.calendar_fade_per_h

    @property
    def calendar_soc_coeff(self) -> float:
        """Relative slope of the calendar rate with SOC [-]."""
        return self.params.calendar_soc_coeff

    @property
    def fades(self) -> bool:
        """Whether the capacity fades (cycling or calendar)."""
        return self.fade_per_kwh > 0.0 or self.calendar_fade_per_h > 0.0


@dataclass(frozen=True, slots=True)
class DemandTerm:
    """One demand slot of a horizon: a billing month × demand charge.

    Attributes
    ----------
    price_per_kw : price of the slot's billed demand [currency/kW] (0: slot unused).
    steps : the LP steps the slot looks at (bool per step).
    floor_kw : demand already billed in the month (peak so far) [kW].
    """

    price_per_kw: float
    steps: np.ndarray
    floor_kw: float = 0.0


@dataclass(slots=True)
class HorizonData:
    """Everything that changes from one solve to the next (arrays of length ``n``)."""

    base_kw: FloatArray  # mall + inflexible EV − PV [kW]
    price_per_kwh: FloatArray
    co2_kg_per_kwh: float
    e0_kwh: float  # stored energy at the start [kWh]
    ev: EvEnvelopes
    import_limit_kw: float | None = None
    peak_floor_kw: float = 0.0  # peak already reached (rolling horizon) [kW]
    fade_kwh: FloatArray | None = None  # capacity lost by each step end (estimate) [kWh]
    demand: list[DemandTerm] = field(default_factory=list)  # the tariff's demand slots
    #: several batteries: stored energy of each at the start [kWh] (``e0_kwh`` is the sum);
    #: ``fade_kwh`` is then one row per battery, shape (n_batteries, n)
    e0_units_kwh: FloatArray | None = None


@dataclass(slots=True)
class Plan:
    """Solution of one LP (powers [kW] and energies [kWh] per step)."""

    status: str
    p_charge_kw: FloatArray
    p_discharge_kw: FloatArray
    p_grid_kw: FloatArray
    e_stored_kwh: FloatArray
    e_ev_kwh: FloatArray  # shape (n_types, n)
    objective: float  # weighted cost without the tie-breaks [currency]
    energy_cost: float  # Σ price × import [currency]
    unserved_kwh: float
    build_s: float
    solve_s: float
    n_variables: int
    n_constraints: int
    info: dict[str, float] = field(default_factory=dict)
    #: several batteries: per battery, shape (n_batteries, n) (the fields above are sums)
    p_charge_units_kw: FloatArray | None = None
    p_discharge_units_kw: FloatArray | None = None
    e_stored_units_kwh: FloatArray | None = None


def _tri(n: int, a: float | FloatArray) -> sp.coo_matrix:
    """``x_k − a_k x_{k−1}`` for k = 0..n−1 (n × n, lower bidiagonal)."""
    import scipy.sparse as sp

    r = np.arange(n)
    rows = np.concatenate([r, r[1:]])
    cols = np.concatenate([r, r[:-1]])
    vals = np.concatenate([np.ones(n), -np.broadcast_to(np.asarray(a, float), (n,))[1:]])
    return sp.coo_matrix((vals, (rows, cols)), shape=(n, n))


class SiteLp:
    """The LP structure for ``n`` steps of ``dt_h`` hours each (one value, or one per step);
    data are set per solve.

    The constraint matrix depends only on the battery, the step and which terms are on, so
    a rolling horizon keeps one HiGHS model and changes bounds and costs between solves
    (HiGHS restarts from the previous basis: warm start).

    Parameters
    ----------
    with_writeoff : EV energy may be left undelivered at a penalty (otherwise every
        deliverable kWh is delivered: right whenever the penalty exceeds the highest
        marginal cost of import and nothing limits the import).
    demand_steps : per demand slot, the steps that may belong to it (bool per step): one
        row ``D_j ≥ g_k`` each; a solve switches rows off by their bounds (the data's
        ``DemandTerm.steps`` must lie within). None: no demand charges.
    """

    def __init__(self, n: int, dt_h: float | FloatArray, n_types: int,
                 bat: BatteryData | tuple[BatteryData, ...], weights: Weights,
                 time_limit_s: float = 300.0, with_peak: bool | None = None,
                 with_writeoff: bool = True,
                 demand_steps: list[np.ndarray] | None = None) -> None:
        import highspy

        t0 = time.perf_counter()
        self.n, self.n_types = n, n_types
        self.dt_h = np.broadcast_to(np.asarray(dt_h, float), (n,)).copy()
        #: the storage units (one per battery): ``pc``, ``pd``, ``E`` columns each (the
        #: first unit's blocks keep the one-battery layout; units 1.. follow as ``pc@i`` ...)
        self.bats: tuple[BatteryData, ...] = (bat,) if isinstance(bat, BatteryData) else tuple(bat)
        if not self.bats:
            raise ValueError("the LP needs at least one battery")
        self.w = weights
        self.with_peak = weights.peak_charge_per_kw > 0.0 if with_peak is None else with_peak
        self.with_writeoff = with_writeoff
        # column blocks (x = EV energy ahead of the as-late-as-possible envelope: S − L)
        names = ["pc", "pd", "g", "E"]
        for c in range(n_types):
            names += [f"e{c}", f"x{c}"] + ([f"W{c}"] if with_writeoff else [])
        for u in range(1, len(self.bats)):
            names += [f"pc@{u}", f"pd@{u}", f"E@{u}"]
        self.col = {nm: i * n for i, nm in enumerate(names)}
        self.dem_steps = [np.flatnonzero(np.asarray(m, bool)) for m in (demand_steps or [])]
        self.c_peak = len(names) * n
        self.c_dem = self.c_peak + (1 if self.with_peak else 0)
        self.n_cols = self.c_dem + len(self.dem_steps)
        rnames = ["bal", "E"]
        for c in range(n_types):
            rnames += [f"S{c}"] + ([f"L{c}", f"W{c}"] if with_writeoff else [])
        if self.with_peak:
            rnames.append("peak")
        rnames += [f"E@{u}" for u in range(1, len(self.bats))]
        self.row = {nm: i * n for i, nm in enumerate(rnames)}
        self.r_dem = len(rnames) * n  # demand rows: slot by slot, its steps in order
        self.r_dem_of = np.cumsum([0] + [len(k) for k in self.dem_steps])
        self.n_rows = self.r_dem + int(self.r_dem_of[-1])
        self._build_matrix()
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.time_limit_s = float(time_limit_s)
        self.h.setOptionValue("time_limit", self.time_limit_s)
        self._passed = False
        self.n_solves = 0
        self.n_cold_retries = 0
        self.build_s = time.perf_counter() - t0

    @property
    def bat(self) -> BatteryData:
        """The first (with one battery: the) storage unit."""
        return self.bats[0]

    @bat.setter
    def bat(self, b: BatteryData) -> None:
        self.bats = (b, *self.bats[1:])

    @staticmethod
    def unit_names(u: int) -> tuple[str, str, str]:
        """Column (and ``E`` row) names of storage unit ``u``: charge, discharge, energy."""
        return ("pc", "pd", "E") if u == 0 else (f"pc@{u}", f"pd@{u}", f"E@{u}")

    # ------------------------------------------------------------------ structure
    def _build_matrix(self) -> None:
        import scipy.sparse as sp

        n, dt = self.n, self.dt_h
        eye = sp.identity(n, format="coo")

        def diag(v: FloatArray) -> sp.coo_matrix:
            return sp.diags(v, format="coo")

        blocks: list[tuple[str, str, sp.coo_matrix]] = [("bal", "g", eye)]
        for u, b in enumerate(self.bats):
            pc, pd, e = self.unit_names(u)
            a = 1.0 - b.self_discharge_frac_per_h * dt
            blocks += [("bal", pd, eye), ("bal", pc, -eye),
                       (e, e, _tri(n, a)), (e, pc, diag(-a * b.eta_charge * dt)),
                       (e, pd, diag(a * dt / b.eta_discharge))]
        for c in range(self.n_types):
            blocks += [("bal", f"e{c}", diag(-1.0 / dt)),
                       (f"S{c}", f"x{c}", _tri(n, 1.0)), (f"S{c}", f"e{c}", -eye)]
            if self.with_writeoff:
                blocks += [(f"L{c}", f"x{c}", eye), (f"L{c}", f"W{c}", eye),
                           (f"W{c}", f"W{c}", _tri(n, 1.0))]
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for rname, cname, m in blocks:
            rows.append(m.row + self.row[rname])
            cols.append(m.col + self.col[cname])
            vals.append(m.data)
        if self.with_peak:
            k = np.arange(n)
            rows += [k + self.row["peak"], k + self.row["peak"]]
            cols += [np.full(n, self.c_peak), k + self.col["g"]]
            vals += [np.ones(n), -np.ones(n)]
        for j, ks in enumerate(self.dem_steps):  # D_j − g_k ≥ 0
            r = self.r_dem + self.r_dem_of[j] + np.arange(ks.size)
            rows += [r, r]
            cols += [np.full(ks.size, self.c_dem + j), ks + self.col["g"]]
            vals += [np.ones(ks.size), -np.ones(ks.size)]
        a_mat = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(self.n_rows, self.n_cols)).tocsc()
        a_mat.sort_indices()
        self.a = a_mat

    # ------------------------------------------------------------------ data
    def _data(self, d: HorizonData) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        n, dt, w = self.n, self.dt_h, self.w
        inf = np.inf
        lo = np.zeros(self.n_cols)
        hi = np.full(self.n_cols, inf)
        cost = np.zeros(self.n_cols)
        rlo = np.full(self.n_rows, -inf)
        rhi = np.full(self.n_rows, inf)
        col = self.col
        row = self.row

        def cs(name: str) -> slice:
            return slice(col[name], col[name] + n)

        def rs(name: str) -> slice:
            return slice(row[name], row[name] + n)

        if d.import_limit_kw is not None:
            hi[cs("g")] = d.import_limit_kw
        multi = len(self.bats) > 1
        if multi and (d.e0_units_kwh is None or len(d.e0_units_kwh) != len(self.bats)):
            raise ValueError(f"the LP has {len(self.bats)} batteries: give e0_units_kwh for each")
        for u, b in enumerate(self.bats):
            pc, pd, e = self.unit_names(u)
            e0 = float(d.e0_units_kwh[u]) if multi and d.e0_units_kwh is not None else d.e0_kwh
            fade = d.fade_kwh
            if fade is not None and multi:
                fade = fade[u]
            hi[cs(pc)] = b.p_charge_max_kw
            hi[cs(pd)] = b.p_discharge_max_kw
            e_min = b.soc_min_frac * b.e_capacity_kwh + MARGIN_KWH
            cap = b.e_capacity_kwh - (fade if fade is not None else 0.0)
            e_max = np.maximum(b.soc_max_frac * cap - MARGIN_KWH, e_min)
            a = 1.0 - b.self_discharge_frac_per_h * dt
            # a battery that starts outside its window (or is pushed out by self-discharge
            # while it cannot charge) may stay on the idle trajectory: never infeasible there
            idle = e0 * np.cumprod(a)
            lo[cs(e)] = np.minimum(e_min, idle)
            hi[cs(e)] = np.maximum(e_max, idle)
            cost[cs(pc)] = EPS_BESS * dt
            cost[cs(pd)] = EPS_BESS * dt
            rlo[rs(e)] = 0.0
            rhi[rs(e)] = 0.0
            rlo[row[e]] = rhi[row[e]] = a[0] * e0
        cost[cs("g")] = (d.price_per_kwh + w.co2_price_per_kg * d.co2_kg_per_kwh) * dt
        rlo[rs("bal")] = d.base_kw
        ev = d.ev
        for c in range(self.n_types):
            u, low = ev.u_kwh[c], ev.l_kwh[c]
            dl = np.diff(low, prepend=0.0)
            hi[cs(f"e{c}")] = ev.cap_kwh[c]
            hi[cs(f"x{c}")] = u - low
            cost[cs(f"x{c}")] = -EPS_EV
            # x_k − x_{k−1} − e_k = −(L_k − L_{k−1})
            rlo[rs(f"S{c}")] = -dl
            rhi[rs(f"S{c}")] = -dl
            if self.with_writeoff:
                lo[cs(f"x{c}")] = -low
                cost[col[f"W{c}"] + n - 1] = w.unserved_penalty_per_kwh
                rlo[rs(f"L{c}")] = 0.0
                rhi[rs(f"L{c}")] = u - low  # written off = never delivered
                rlo[rs(f"W{c}")] = 0.0
        if self.with_peak:
            lo[self.c_peak] = d.peak_floor_kw
            cost[self.c_peak] = w.peak_charge_per_kw
            rlo[rs("peak")] = 0.0
        if len(d.demand) != len(self.dem_steps):
            raise ValueError(f"{len(d.demand)} demand slots given, the LP has {len(self.dem_steps)}")
        for j, (ks, term) in enumerate(zip(self.dem_steps, d.demand, strict=True)):
            on = np.asarray(term.steps, bool)
            if on[np.setdiff1d(np.arange(n), ks)].any():
                raise ValueError(f"demand slot {j}: a step outside the LP's structure")
            r0 = self.r_dem + self.r_dem_of[j]
            rlo[r0:r0 + ks.size] = np.where(on[ks], 0.0, -inf)
            lo[self.c_dem + j] = term.floor_kw
            cost[self.c_dem + j] = term.price_per_kw
        return lo, hi, cost, rlo, rhi

    def solve(self, d: HorizonData) -> Plan:
        """Set the data and solve; raise ``UserError`` naming the cause when no plan exists."""
        import highspy

        t0 = time.perf_counter()
        lo, hi, cost, rlo, rhi = self._data(d)
        h = self.h
        if not self._passed:
            lp = highspy.HighsLp()
            lp.num_col_ = self.n_cols
            lp.num_row_ = self.n_rows
            lp.col_cost_ = cost
            lp.col_lower_ = lo
            lp.col_upper_ = hi
            lp.row_lower_ = rlo
            lp.row_upper_ = rhi
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_ = self.a.indptr.astype(np.int32)
            lp.a_matrix_.index_ = self.a.indices.astype(np.int32)
            lp.a_matrix_.value_ = self.a.data
            h.passModel(lp)
            self._passed = True
        else:
            idx = np.arange(self.n_cols, dtype=np.int32)
            h.changeColsBounds(self.n_cols, idx, lo, hi)
            h.changeColsCost(self.n_cols, idx, cost)
            ridx = np.arange(self.n_rows, dtype=np.int32)
            h.changeRowsBounds(self.n_rows, ridx, rlo, rhi)  # type: ignore[attr-defined]
        t_built = time.perf_counter()
        # HiGHS's run clock is cumulative over runs of one model (ERGO-Code/HiGHS#1477): the
        # limit is set from the time used so far
        h.setOptionValue("time_limit", h.getRunTime() + self.time_limit_s)
        h.run()
        status = h.getModelStatus()
        ms = highspy.HighsModelStatus
        if status != ms.kOptimal and self.n_solves > 0:
            # a warm start can stall (degenerate cycling): retry once from scratch
            self.n_cold_retries += 1
            h.clearSolver()
            h.setOptionValue("time_limit", h.getRunTime() + self.time_limit_s)
            h.run()
            status = h.getModelStatus()
        t_solved = time.perf_counter()
        self.n_solves += 1
        if status != ms.kOptimal:
            self._raise(status, d)
        x = np.asarray(h.getSolution().col_value)
        return self._plan(x, d, t_built - t0, t_solved - t_built)

    def _raise(self, status: object, d: HorizonData) -> None:
        import highspy

        ms = highspy.HighsModelStatus
        if status == ms.kTimeLimit:
            raise UserError(
                f"optimal: HiGHS hit the time limit ({self.time_limit_s:g} s) "
                f"on {self.n} steps; raise controller_params.time_limit_s or shorten the horizon")
        if status in (ms.kInfeasible, ms.kUnboundedOrInfeasible):
            lim = d.import_limit_kw
            if lim is not None:
                short = d.base_kw - sum(b.p_discharge_max_kw for b in self.bats) - lim
                bad = np.flatnonzero(short > 1e-6)
                if bad.size:
                    raise UserError(
                        f"optimal: infeasible: the grid import limit {lim:g} kW is below the base "
                        f"load (mall − PV − battery discharge limit) at {bad.size} steps (first: "
                        f"step {int(bad[0])}, {short[bad[0]] + lim:.1f} kW); raise "
                        "grid.import_limit_kw or remove it")
                raise UserError(
                    f"optimal: infeasible: the grid import limit {lim:g} kW cannot be kept: the "
                    "battery does not hold enough energy to cover the load above it; raise "
                    "grid.import_limit_kw or the battery size")
            raise UserError("optimal: the LP is infeasible (check the battery's SOC window and "
                            "initial SOC, and the grid limits)")
        if status == ms.kUnbounded:
            raise UserError("optimal: the LP is unbounded (a negative price or weight?); check "
                            "the tariff and controller_params")
        raise UserError(f"optimal: HiGHS failed: {self.h.modelStatusToString(status)}")  # type: ignore[arg-type]

    def _plan(self, x: FloatArray, d: HorizonData, build_s: float, solve_s: float) -> Plan:
        n, dt, col = self.n, self.dt_h, self.col
        g = np.maximum(x[col["g"]:col["g"] + n], 0.0)
        pc = np.maximum(x[col["pc"]:col["pc"] + n], 0.0)
        pd = np.maximum(x[col["pd"]:col["pd"] + n], 0.0)
        e_ev = np.stack([np.maximum(x[col[f"e{c}"]:col[f"e{c}"] + n], 0.0) for c in range(self.n_types)])
        w_end = (sum(float(x[col[f"W{c}"] + n - 1]) for c in range(self.n_types))
                 if self.with_writeoff else 0.0)
        unserved = w_end + (d.ev.e_req_kwh - d.ev.e_deliverable_kwh)
        energy = float((d.price_per_kwh * g * dt).sum())
        co2 = float((g * dt).sum() * d.co2_kg_per_kwh)
        peak = float(x[self.c_peak]) if self.with_peak else float(g.max(initial=0.0))
        dem_kw = [float(v) for v in x[self.c_dem:self.c_dem + len(self.dem_steps)]]
        demand = float(sum(t.price_per_kw * v for t, v in zip(d.demand, dem_kw, strict=True)))
        obj = (energy + self.w.co2_price_per_kg * co2
               + (self.w.peak_charge_per_kw * peak if self.with_peak else 0.0)
               + demand + self.w.unserved_penalty_per_kwh * unserved)
        plan = Plan("optimal", pc, pd, g, x[col["E"]:col["E"] + n].copy(), e_ev, obj, energy,
                    unserved, build_s, solve_s, self.n_cols, self.n_rows,
                    {"co2_kg": co2, "peak_kw": peak, "demand_cost": demand})
        if len(self.bats) > 1:
            units = [self.unit_names(u) for u in range(len(self.bats))]
            plan.p_charge_units_kw = np.stack(
                [np.maximum(x[col[c]:col[c] + n], 0.0) for c, _, _ in units])
            plan.p_discharge_units_kw = np.stack(
                [np.maximum(x[col[c]:col[c] + n], 0.0) for _, c, _ in units])
            plan.e_stored_units_kwh = np.stack([x[col[c]:col[c] + n] for _, _, c in units])
            plan.p_charge_kw = plan.p_charge_units_kw.sum(axis=0)
            plan.p_discharge_kw = plan.p_discharge_units_kw.sum(axis=0)
            plan.e_stored_kwh = plan.e_stored_units_kwh.sum(axis=0)
        return plan


__all__ = ["BatteryData", "DemandTerm", "HorizonData", "Plan", "SiteLp", "Weights"]

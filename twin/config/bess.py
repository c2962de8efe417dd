"""The site's ``bess:`` section: one battery's parameters (technology and ageing presets),
the check of a list of batteries, and the aggregate battery standing for a list."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from twin.config.fields import EnergyKwh, Frac, PowerKw, _Strict
from twin.config.messages import _short_repr

#: Technology presets (seed 004): round-trip efficiency and SOC window, plus the cell
#: chemistry whose ageing parameters apply (``AGEING_PRESETS``).
BESS_PRESETS: dict[str, dict[str, Any]] = {
    "standard": {"eta_roundtrip": 0.90, "soc_min_frac": 0.20, "soc_max_frac": 0.90,
                 "chemistry": "nmc"},
    "modern_lfp": {"eta_roundtrip": 0.93, "soc_min_frac": 0.10, "soc_max_frac": 0.95,
                   "chemistry": "lfp"},
    "premium": {"eta_roundtrip": 0.95, "soc_min_frac": 0.05, "soc_max_frac": 0.95,
                "chemistry": "lfp", "cycle_life_efc": 8000.0},
}

#: Ageing parameters per cell chemistry (see ``twin.components.bess`` for the model and
#: the sources): equivalent full cycles to ``eol_capacity_frac`` [-], calendar fade at
#: 25 °C and 50 % SOC [1/yr], relative slope of the calendar rate with SOC [-], rate factor
#: per +10 °C [-].
AGEING_PRESETS: dict[str, dict[str, float]] = {
    "lfp": {"cycle_life_efc": 6000.0, "calendar_fade_frac_per_year": 0.008,
            "calendar_soc_coeff": 1.0, "calendar_q10": 2.0},
    "nmc": {"cycle_life_efc": 3500.0, "calendar_fade_frac_per_year": 0.015,
            "calendar_soc_coeff": 2.0, "calendar_q10": 2.0},
    "lto": {"cycle_life_efc": 15000.0, "calendar_fade_frac_per_year": 0.004,
            "calendar_soc_coeff": 0.5, "calendar_q10": 1.8},
}


#: Smallest battery [kWh] (0 = none): below it the stored energy is a handful of float
#: quanta and the SOC is noise (a 5e-324 kWh battery read SOC 1.0 in a 0.17-0.23 window).
BESS_MIN_CAPACITY_KWH = 1e-3


class BessConfig(_Strict):
    """Battery: energy-reservoir model parameters.

    A ``technology`` preset fills efficiency, SOC window and chemistry; the ``chemistry``
    fills the ageing parameters (``AGEING_PRESETS``); fields given explicitly win.
    ``ageing: false`` switches cycle and calendar ageing off. ``capacity_loss_coefficient``
    is the older CityLearn-style throughput fade, added on top (0 by default).

    ``ageing_model``: ``blast`` (the default: NREL BLAST-Lite's model of the chemistry,
    ``twin.components.ageing``) or ``linear`` (the linear cycle + calendar presets at the
    fixed ``t_cell_c``). The BLAST models take the cell temperature from the container
    model: ``hvac_setpoint_c`` [°C],
    ``hvac_coupling_frac`` (share of the ambient's deviation from the setpoint reaching the
    cells, 0 = ideal HVAC) and ``container_tau_h`` (thermal lag of the container [h]).
    """

    #: the battery's name in a list of batteries (``bess:`` as a list): column names
    #: (``soc_frac_<name>``), device labels; ``bess`` for the one battery of a site
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")] = "bess"
    technology: Literal["custom", "standard", "modern_lfp", "premium"] = "custom"
    chemistry: Literal["lfp", "nmc", "lto"] = "lfp"
    ageing: bool = True
    cycle_life_efc: Annotated[float, Field(gt=0.0, le=1e6)] = 6000.0
    eol_capacity_frac: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8
    calendar_fade_frac_per_year: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.008
    calendar_soc_coeff: Annotated[float, Field(ge=0.0, le=4.0)] = 1.0
    calendar_q10: Annotated[float, Field(ge=1.0, le=4.0)] = 2.0
    t_cell_c: Annotated[float, Field(ge=-20.0, le=60.0)] = 25.0
    ageing_model: Literal["blast", "linear"] = "blast"
    hvac_setpoint_c: Annotated[float, Field(ge=0.0, le=45.0)] = 25.0
    hvac_coupling_frac: Frac = 0.5
    container_tau_h: Annotated[float, Field(ge=0.0, le=168.0)] = 6.0
    e_capacity_kwh: EnergyKwh = 2000.0
    p_charge_max_kw: PowerKw = 400.0
    p_discharge_max_kw: PowerKw = 400.0
    eta_roundtrip: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    soc_min_frac: Frac = 0.20
    soc_max_frac: Frac = 1.00
    soc_initial_frac: Frac = 0.50
    capacity_loss_coefficient: Annotated[float, Field(ge=0.0, lt=0.01)] = 0.0
    self_discharge_frac_per_h: Annotated[float, Field(ge=0.0, lt=0.1)] = 0.0
    efficiency_curve: list[tuple[Frac, Annotated[float, Field(gt=0.0, le=1.0)]]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            tech = data.get("technology", "custom")
            tech = tech if isinstance(tech, str) else None
            merged = dict(BESS_PRESETS.get(tech, {})) if tech is not None else {}
            merged.update(data)
            chem = merged.get("chemistry", "lfp")
            if isinstance(chem, str) and chem in AGEING_PRESETS:
                for k, v in AGEING_PRESETS[chem].items():
                    merged.setdefault(k, v)
            return merged
        return data

    @model_validator(mode="after")
    def _window(self) -> BessConfig:
        if 0.0 < self.e_capacity_kwh < BESS_MIN_CAPACITY_KWH:
            raise ValueError(
                f"e_capacity_kwh={self.e_capacity_kwh:g} is below {BESS_MIN_CAPACITY_KWH:g} kWh "
                "(1 Wh): too small to hold a state of charge; use 0 for a site without a battery")
        if self.soc_min_frac >= self.soc_max_frac:
            raise ValueError(
                f"soc_min_frac ({self.soc_min_frac}) must be below soc_max_frac "
                f"({self.soc_max_frac})"
            )
        if not self.soc_min_frac <= self.soc_initial_frac <= self.soc_max_frac:
            raise ValueError("soc_initial_frac must lie inside [soc_min_frac, soc_max_frac]")
        if self.efficiency_curve is not None:
            xs = [p[0] for p in self.efficiency_curve]
            if len(xs) < 2 or any(b <= a for a, b in itertools.pairwise(xs)):
                raise ValueError(
                    "efficiency_curve needs >= 2 points [p/p_nominal, efficiency] "
                    "with strictly increasing p/p_nominal"
                )
        return self

    def c_rate_warnings(self) -> list[str]:
        """Warnings for a C-rate outside 0.1-2 (not an error)."""
        out = []
        if self.e_capacity_kwh > 0:
            for name, p in (("charge", self.p_charge_max_kw), ("discharge", self.p_discharge_max_kw)):
                c = p / self.e_capacity_kwh
                if p > 0 and not 0.1 <= c <= 2.0:
                    who = "bess" if self.name == "bess" else f"bess {self.name}"
                    out.append(f"{who}: {name} C-rate {c:.2f} is outside the usual 0.1-2 range")
        return out


#: Most batteries a site file may list.
MAX_BATTERIES = 32


def _check_battery_list(units: Any) -> None:
    """The shape of ``bess:`` given as a list: 1..MAX_BATTERIES mappings, each with a
    unique ``name`` (raises ValueError naming the entry)."""
    if not units:
        raise ValueError("bess: an empty list; give one battery (a mapping) or a list of "
                         "mappings, each with a name")
    if len(units) > MAX_BATTERIES:
        raise ValueError(f"bess: {len(units)} batteries; at most {MAX_BATTERIES}")
    seen: set[str] = set()
    for i, u in enumerate(units):
        if not isinstance(u, dict):
            raise ValueError(f"bess[{i}]: each entry of a list of batteries is a mapping "
                             f"(got {_short_repr(u)}); do not mix mappings and other values")
        nm = u.get("name")
        if not isinstance(nm, str) or not nm:
            raise ValueError(f"bess[{i}]: a battery in a list needs a 'name' (e.g. name: b{i + 1})")
        if nm in seen:
            raise ValueError(f"bess[{i}]: duplicate battery name {nm!r}; names must be unique")
        seen.add(nm)
        cap = u.get("e_capacity_kwh", 1.0)
        if isinstance(cap, int | float) and not cap > 0.0:
            raise ValueError(f"bess[{i}] ({nm}): e_capacity_kwh must be > 0 in a list of "
                             "batteries (drop the entry instead)")


def aggregate_bess(units: tuple[BessConfig, ...]) -> BessConfig:
    """One battery standing for a list of them (``SiteConfig.bess`` of a multi-battery site).

    Capacity and power ratings are the sums [kWh, kW]; the SOC window, the initial SOC
    and the round-trip efficiency are capacity-weighted means; chemistry and the ageing
    and container settings are the first battery's. It is what a caller that knows one
    battery sees (controllers' parameters, warnings, the sizing economics); the plant, the
    safety layer and the record use each battery.
    """
    cap = sum(u.e_capacity_kwh for u in units)

    def mean(attr: str) -> float:
        return sum(getattr(u, attr) * u.e_capacity_kwh for u in units) / cap

    first = units[0]
    data = first.model_dump()
    data.update(name="total", technology="custom", e_capacity_kwh=cap,
                p_charge_max_kw=sum(u.p_charge_max_kw for u in units),
                p_discharge_max_kw=sum(u.p_discharge_max_kw for u in units),
                eta_roundtrip=min(mean("eta_roundtrip"), 1.0),
                soc_min_frac=mean("soc_min_frac"), soc_max_frac=min(mean("soc_max_frac"), 1.0),
                efficiency_curve=None)
    data["soc_initial_frac"] = min(max(mean("soc_initial_frac"), data["soc_min_frac"]),
                                   data["soc_max_frac"])
    return BessConfig.model_validate(data)

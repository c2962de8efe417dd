"""The site's ``ev:`` section: vehicle classes, socket groups, opening hours and arrivals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from twin.config.fields import Hour, NonNeg, ProfileFile, _Strict


class VehicleClass(_Strict):
    """A vehicle type of the fleet and how its sessions are drawn.

    Stay (``ev.stay_model``): ``dwell`` (default; ``fixed`` is the same) — a gamma dwell
    time of mean ``stay_h_mean`` [h] and shape ``stay_h_shape``, clipped to [``stay_h_min``,
    ``stay_h_max``], whatever the request; ``charge_time`` — the older linger model: time to
    charge the request at the vehicle's power (with its taper) × a linger factor
    ``1 + Gamma(linger_shape, (linger_mean - 1) / linger_shape)`` + ``stay_fixed_h``.

    Vehicle: on-board charger power [kW] drawn per vehicle from ``charger_kw`` with
    ``charger_weights`` (null: every vehicle ``p_max_kw``), capped by ``p_max_kw`` and the
    socket rating; battery ``battery_kwh`` [kWh] (null: no battery model, no taper); energy
    asked uniform in [``e_req_kwh_min``, ``e_req_kwh_max``] (arrival SOC = 1 − asked /
    battery) or, when ``soc_arrival_min``/``max`` are set, arrival SOC uniform in that range
    and asked = battery × (1 − SOC); CC-CV taper: above ``taper_soc`` the power limit falls
    linearly in SOC to ``taper_floor_frac`` × the vehicle's power at 100 % (``taper_soc: 1``:
    no taper; see ``twin.components.taper``).
    """

    sessions_per_day: Annotated[float, Field(ge=0.0, le=1e5)]
    e_req_kwh_min: Annotated[float, Field(gt=0.0, le=1e4)]
    e_req_kwh_max: Annotated[float, Field(gt=0.0, le=1e4)]
    p_max_kw: Annotated[float, Field(gt=0.0, le=1e4)]
    stay_h_mean: Annotated[float, Field(gt=0.0, le=72.0)] = 1.5
    stay_h_max: Annotated[float, Field(gt=0.0, le=72.0)] = 4.0
    patience_min: Annotated[float, Field(ge=0.0, le=10_080.0)] = 20.0
    linger_mean: Annotated[float, Field(ge=1.0, le=20.0, allow_inf_nan=False)] = 1.25
    linger_shape: Annotated[float, Field(gt=0.0, le=100.0)] = 2.0
    stay_fixed_h: Annotated[float, Field(ge=0.0, le=72.0)] = 0.0
    stay_h_shape: Annotated[float, Field(ge=0.5, le=100.0, allow_inf_nan=False)] = 4.0
    stay_h_min: Annotated[float, Field(ge=0.0, le=72.0, allow_inf_nan=False)] = 0.25
    charger_kw: Annotated[list[Annotated[float, Field(gt=0.0, le=1e4, allow_inf_nan=False)]],
                          Field(min_length=1, max_length=50)] | None = None
    charger_weights: Annotated[list[Annotated[float, Field(ge=0.0, le=1e6,
                                                           allow_inf_nan=False)]],
                               Field(min_length=1, max_length=50)] | None = None
    battery_kwh: Annotated[float, Field(gt=0.0, le=1e4, allow_inf_nan=False)] | None = None
    soc_arrival_min: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None = None
    soc_arrival_max: Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)] | None = None
    taper_soc: Annotated[float, Field(ge=0.05, le=1.0, allow_inf_nan=False)] = 1.0
    taper_floor_frac: Annotated[float, Field(ge=0.01, le=1.0, allow_inf_nan=False)] = 0.1

    @model_validator(mode="after")
    def _ranges(self) -> VehicleClass:
        if self.e_req_kwh_max < self.e_req_kwh_min:
            raise ValueError("e_req_kwh_max must be >= e_req_kwh_min")
        if self.stay_h_max < self.stay_h_mean:
            raise ValueError("stay_h_max must be >= stay_h_mean")
        if self.stay_h_min > self.stay_h_mean:
            raise ValueError("stay_h_min must be <= stay_h_mean")
        if self.charger_weights is not None:
            if self.charger_kw is None or len(self.charger_weights) != len(self.charger_kw):
                raise ValueError("charger_weights needs one weight per charger_kw value")
            if sum(self.charger_weights) <= 0.0:
                raise ValueError("charger_weights are all zero")
        soc = (self.soc_arrival_min, self.soc_arrival_max)
        if (soc[0] is None) != (soc[1] is None):
            raise ValueError("soc_arrival_min and soc_arrival_max go together (both or neither)")
        if self.battery_kwh is None:
            if soc[0] is not None:
                raise ValueError("soc_arrival_min/max need battery_kwh")
            if self.taper_soc < 1.0:
                raise ValueError("taper_soc below 1 needs battery_kwh (the taper follows SOC)")
        elif soc[0] is None and self.battery_kwh < self.e_req_kwh_max:
            raise ValueError(f"battery_kwh ({self.battery_kwh:g}) must be >= e_req_kwh_max "
                             f"({self.e_req_kwh_max:g}): a vehicle cannot ask more than it holds")
        if soc[0] is not None and soc[1] is not None and soc[1] < soc[0]:
            raise ValueError("soc_arrival_max must be >= soc_arrival_min")
        return self


#: A vehicle class name: a lower-case identifier (it becomes a column category, a metric
#: label and a CityLearn name).
_CLASS_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _check_class_name(v: str) -> str:
    """``v`` if it is a vehicle class name (a lower-case identifier), else a ValueError
    that says what a name may hold and suggests one."""
    if _CLASS_NAME.fullmatch(v) is None:
        hint = re.sub(r"[^a-z0-9_]+", "_", v[:64].lower()).strip("_")[:32]
        eg = f", e.g. {hint!r}" if _CLASS_NAME.fullmatch(hint) else ""
        raise ValueError("not a valid vehicle class name: write a lower-case identifier (a "
                         f"letter a-z, then a-z, 0-9 or _; at most 32 characters){eg}")
    return v


VehicleClassName = Annotated[str, AfterValidator(_check_class_name)]

#: Most vehicle classes a site may define.
MAX_VEHICLE_CLASSES = 16


class SocketGroup(_Strict):
    """A group of identical sockets for one vehicle class (a key of ``ev.vehicles``; the
    site checks the name against its classes and lists them when it is not one)."""

    type: Annotated[str, Field(min_length=1, max_length=64)]
    count: Annotated[int, Field(ge=0, le=10_000)]
    p_rating_kw: Annotated[float, Field(gt=0.0, le=1e4)]


def _default_vehicles() -> dict[str, VehicleClass]:
    return {
        "moto": VehicleClass(
            sessions_per_day=270, e_req_kwh_min=2.0, e_req_kwh_max=4.0, p_max_kw=3.7,
            stay_h_mean=1.0, stay_h_max=4.0, patience_min=20.0,
            charger_kw=[3.0, 3.3, 3.7], charger_weights=[0.3, 0.3, 0.4], battery_kwh=5.0,
            soc_arrival_min=0.0, soc_arrival_max=0.3, taper_soc=0.85, taper_floor_frac=0.2,
        ),
        "mototaxi": VehicleClass(
            sessions_per_day=39, e_req_kwh_min=6.0, e_req_kwh_max=10.0, p_max_kw=7.4,
            stay_h_mean=1.5, stay_h_max=5.0, patience_min=30.0,
            charger_kw=[6.0, 6.6, 7.4], charger_weights=[0.3, 0.3, 0.4], battery_kwh=12.0,
            soc_arrival_min=0.0, soc_arrival_max=0.3, taper_soc=0.85, taper_floor_frac=0.2,
        ),
    }


def _default_sockets() -> list[SocketGroup]:
    return [
        SocketGroup(type="moto", count=30, p_rating_kw=3.7),
        SocketGroup(type="mototaxi", count=8, p_rating_kw=7.4),
    ]


#: Relative arrival intensity by local hour (0-23) inside opening hours; shopping-mall
#: shape with a lunch bump and an evening peak.
DEFAULT_ARRIVAL_WEIGHTS: tuple[float, ...] = (
    0, 0, 0, 0, 0, 0, 0, 0, 0,
    0.5, 0.6, 0.8, 1.0, 1.0, 0.9, 0.9, 1.0, 1.3, 1.7, 1.9, 1.6, 0.8, 0, 0,
)


class EvConfig(_Strict):
    """EV fleet and charging station.

    ``stay_model`` picks how synthetic stays are drawn (see ``VehicleClass``).
    ``late_min_kwh`` [kWh]: a rider arriving so close to ``close_hour`` that the socket's
    rating cannot give the whole request asks for what fits before closing; if that is
    below ``late_min_kwh`` the session is refused at the gate (status ``refused_closing``).
    """

    source: Literal["synthetic", "sessions_file", "profile"] = "synthetic"
    open_hour: Hour = 9.0
    close_hour: Hour = 22.0
    arrival_weights: list[Annotated[float, Field(ge=0.0, le=1e6)]] = Field(
        default_factory=lambda: list(DEFAULT_ARRIVAL_WEIGHTS))
    vehicles: Annotated[dict[VehicleClassName, VehicleClass],
                        Field(min_length=1, max_length=MAX_VEHICLE_CLASSES)] = Field(
        default_factory=_default_vehicles
    )
    sockets: list[SocketGroup] = Field(default_factory=_default_sockets)
    stay_model: Literal["dwell", "charge_time", "fixed"] = "dwell"
    late_min_kwh: NonNeg = 1.0
    sessions_file: Path | None = None
    profile: ProfileFile | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EvConfig:
        if self.close_hour <= self.open_hour:
            raise ValueError("close_hour must be later than open_hour")
        if len(self.arrival_weights) != 24:
            raise ValueError(
                f"arrival_weights needs 24 values (one per hour), got {len(self.arrival_weights)}"
            )
        if self.source == "synthetic" and sum(self.arrival_weights) <= 0:
            raise ValueError("arrival_weights are all zero: no vehicle could arrive")
        if self.source == "sessions_file" and self.sessions_file is None:
            raise ValueError("source is 'sessions_file' but 'sessions_file' is not given")
        if self.source == "profile" and self.profile is None:
            raise ValueError("source is 'profile' but no 'profile: {path, column}' is given")
        self._classes_and_sockets()
        return self

    def _classes_and_sockets(self) -> None:
        """Every socket group names a class of ``vehicles``; every class with arrivals has a
        socket group (``count: 0`` is a deliberate "no socket": its riders are turned away)."""
        names = self.class_names
        for i, g in enumerate(self.sockets):
            if g.type not in names:
                raise ValueError(f"ev.sockets[{i}].type: {g.type!r} is not a vehicle class "
                                 f"of this site; the classes (keys of ev.vehicles) are: "
                                 f"{', '.join(names)}")
        grouped = {g.type for g in self.sockets}
        if self.source == "synthetic":
            lost = [n for n, vc in self.vehicles.items()
                    if vc.sessions_per_day > 0 and n not in grouped]
            if lost:
                raise ValueError(f"ev.vehicles: class(es) {lost} have arrivals (sessions_per_day "
                                 "> 0) but no socket group in ev.sockets (add one, or one with "
                                 "count: 0 to turn them all away)")

    @property
    def class_names(self) -> tuple[str, ...]:
        """Vehicle class names in file order; a class's code is its index here."""
        return tuple(self.vehicles)

    @property
    def n_sockets(self) -> int:
        """Total number of sockets."""
        return sum(g.count for g in self.sockets)

"""Controller interface and registry.

A controller sees one frozen ``SiteObservation`` per step and returns ``Setpoints``. A
controller that plans may also define ``prepare(context)``: the driver calls it once
before the first step with a ``twin.forecast.ControlContext`` (the horizon, the tariff,
the socket specs and a ``Forecaster``); rules do without it. It
never touches a device, a clock or a network: it imports neither simpy, pymodbus nor
``adapters`` (checked by an import-linter contract). The same object runs in an annual
fast-forward run, a real-time run and a hardware-in-the-loop run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from twin.config import SiteConfig
from twin.forecast import ControlContext
from twin.types import Setpoints, SiteObservation


@runtime_checkable
class Controller(Protocol):
    """What every controller provides."""

    name: str
    #: Phase / mode codes this controller records, with a short name each.
    phases: dict[int, str]

    def reset(self, *, seed: int | None = None) -> None:
        """Forget all state before a new run."""
        ...

    def decide(self, obs: SiteObservation) -> Setpoints:
        """Setpoints for the step that starts at ``obs``."""
        ...


@runtime_checkable
class PlanningController(Controller, Protocol):
    """A controller that receives the horizon and a forecaster before the first step."""

    def prepare(self, context: ControlContext) -> None:
        """Plan with ``context`` (called once, after ``reset`` and before the first step)."""
        ...


def prepare_controller(controller: Controller, context: ControlContext) -> None:
    """Call ``controller.prepare(context)`` when the controller defines it."""
    prep = getattr(controller, "prepare", None)
    if callable(prep):
        prep(context)


ControllerFactory = Callable[..., Controller]


class ControllerSpec:
    """A registered controller: how to build it and a one-line description."""

    def __init__(self, name: str, factory: ControllerFactory, summary: str) -> None:
        self.name = name
        self.factory = factory
        self.summary = summary


REGISTRY: dict[str, ControllerSpec] = {}


def register(name: str, summary: str) -> Callable[[ControllerFactory], ControllerFactory]:
    """Class decorator: register a controller factory ``f(site, **params)`` under ``name``."""

    def deco(factory: ControllerFactory) -> ControllerFactory:
        REGISTRY[name] = ControllerSpec(name, factory, summary)
        return factory

    return deco


class UnknownControllerError(KeyError):
    """No controller of that name is registered."""


def make_controller(name: str, site: SiteConfig, params: dict[str, Any] | None = None) -> Controller:
    """Build the controller ``name`` for ``site`` with extra ``params``.

    Raises
    ------
    UnknownControllerError
        When ``name`` is not registered.
    TypeError
        When ``params`` has a key the controller does not take.
    """
    if name not in REGISTRY:
        raise UnknownControllerError(name)
    return REGISTRY[name].factory(site, **(params or {}))

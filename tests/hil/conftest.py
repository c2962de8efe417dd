"""HIL tests: make the repository root importable (``simulators`` is not an installed package)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncio  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

SCENARIO = ROOT / "scenarios" / "hil.yaml"


class InProcessSimulator:
    """``simulators.app.Simulator`` served from a background thread (test helper)."""

    def __init__(self, scenario: Path = SCENARIO, mode: str = "lockstep", speed: float = 1.0,
                 faults: list[dict[str, Any]] | None = None) -> None:
        from simulators.app import Simulator, load_maps
        from twin.config import load_scenario

        scn = load_scenario(scenario)
        if faults:
            from twin.faults import FaultSpec

            cfg = scn.config.model_copy(update={"faults": [FaultSpec(**f) for f in faults]})
            scn = scn.model_copy(update={"config": cfg})
        self.sim = Simulator(scn, load_maps(), mode, speed)
        self.ready = threading.Event()
        self.ports: dict[str, int] = {}
        self.rc: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_ready(self, msg: dict[str, Any]) -> None:
        self.ports = dict(msg["ports"])
        self.ready.set()

    def _run(self) -> None:
        from simulators.app import serve

        self.rc = asyncio.run(serve(self.sim, ready=self._on_ready))
        self.ready.set()

    def __enter__(self) -> InProcessSimulator:
        self.thread.start()
        assert self.ready.wait(60), "simulator did not get ready"
        assert self.ports, "simulator failed to start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.request_stop()
        self.thread.join(30)


@pytest.fixture
def inproc_sim() -> Iterator[InProcessSimulator]:
    with InProcessSimulator() as s:
        yield s

"""Red-team cases of issue 17 point 3: one site I/O object per mode behind ``SiteIO``, the
clock owns simulated time, one pacing loop, metrics from the record + telemetry."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import simpy

from adapters.sim import SimDeviceIO
from twin.config import load_scenario
from twin.engine import DeviceSiteIO, PlantSiteIO, SimPyClock, Twin
from twin.engine.clocks import PacedEnvironment, WallClock
from twin.inputs import SocketSpec
from twin.monitoring.catalogue import CATALOGUE
from twin.monitoring.metrics import MetricsSink, samples_by_name
from twin.plant import Plant

ROOT = Path(__file__).resolve().parents[2]
#: What a Twin may hold as None: per-run state before its first step, and an optional input
#: (the replayed EV profile) — never a mode.
RUN_STATE = {"on_step", "obs", "tel", "last_step", "_sessions", "p_ev_prof"}


def _scn():  # type: ignore[no-untyped-def]
    return load_scenario(ROOT / "scenarios" / "hil.yaml",
                         {"start": "2024-03-04T06:00:00", "duration": "6h"})


def _device_site(twin_scn, inputs):  # type: ignore[no-untyped-def]
    """Devices mode over the in-process plant's devices (no Modbus, no plant for the Twin)."""
    env = simpy.Environment()
    plant = Plant(env, inputs, twin_scn.site)
    dt = twin_scn.config.dt
    return DeviceSiteIO(SimDeviceIO(plant), SimPyClock(env, plant, dt), dt_s=dt,
                        type_code=SocketSpec.from_config(twin_scn.site.ev).type_code)


def test_twin_holds_one_site_and_no_optional_mode_fields() -> None:
    scn = _scn()
    twin = Twin(scn)
    assert isinstance(twin.site, PlantSiteIO)
    assert {k for k, v in vars(twin).items() if v is None} <= RUN_STATE
    dev = Twin(scn, site=_device_site(scn, twin.inputs), inputs=twin.inputs)
    assert isinstance(dev.site, DeviceSiteIO)
    assert {k for k, v in vars(dev).items() if v is None} <= RUN_STATE


def test_a_device_site_publishes_the_catalogue_without_a_plant() -> None:
    """The sink reads the record and the site's telemetry: a run against devices has no
    plant to read, and still every metric a running twin publishes is there."""
    scn = _scn()
    base = Twin(scn)
    twin = Twin(scn, site=_device_site(scn, base.inputs), inputs=base.inputs)
    with pytest.raises(AttributeError):
        _ = twin.plant
    sink = MetricsSink(twin, mode="hil")
    twin.on_step = sink
    out = twin.run()
    assert out.steps_done == scn.config.n_steps
    got = samples_by_name(sink.m)
    want = {s.exposed for s in CATALOGUE if s.live}
    missing = sorted(n for n in want if not any(k == n or k.startswith(n + "_") for k in got))
    assert not missing
    assert got["twin_sim_steps_total"][0][1] == scn.config.n_steps


def test_a_device_site_runs_once() -> None:
    scn = _scn()
    base = Twin(scn)
    twin = Twin(scn, site=_device_site(scn, base.inputs), inputs=base.inputs)
    twin.step()
    with pytest.raises(RuntimeError):
        twin.reset()


def test_env_belongs_to_the_in_process_site() -> None:
    scn = _scn()
    base = Twin(scn)
    with pytest.raises(ValueError):
        Twin(scn, site=_device_site(scn, base.inputs), inputs=base.inputs,
             env=simpy.Environment())


@pytest.mark.parametrize("which", ["paced_env", "wall_clock"])
def test_a_stop_cuts_a_paced_wait_short(which: str) -> None:
    """One sim second is a million wall seconds: only the stop ends the wait (the join is a
    hang guard)."""
    stop = threading.Event()
    caught: list[BaseException] = []

    def body() -> None:
        try:
            if which == "paced_env":
                env = PacedEnvironment(1e-6, stop=stop)
                env.timeout(1.0)
                env.step()
            else:
                clock = WallClock(1.0, 1e-6, stop)
                clock.start()
                clock.advance(0)
        except KeyboardInterrupt as exc:
            caught.append(exc)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    stop.set()
    t.join(30.0)
    assert not t.is_alive() and len(caught) == 1


def test_the_clock_owns_simulated_time() -> None:
    """The lockstep clock's time is its own (no shared list): 0 at the start, t_{k+1} after
    the tick of step k; the wall clock says 0 until it starts."""
    from adapters.modbus.site import LockstepClock

    lock = LockstepClock(900.0)
    assert lock.now_s() == 0.0
    with pytest.raises(RuntimeError):
        lock.advance(0)  # not connected to a simulator: nothing moves, time stays
    assert lock.now_s() == 0.0
    wall = WallClock(900.0, 3600.0)
    assert wall.now_s() == 0.0
    wall.start()
    assert wall.now_s() >= 0.0

"""Red-team cases of the thin in-process observe/write path (issue 20): ``SimDeviceIO``
binds the plant's parts once and inlines the adapters' ``write``; it must still guard the
devices exactly as the adapters do and read what they read."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adapters.base import AdapterError
from twin.config import load_scenario
from twin.engine import PlantSiteIO, Twin

ROOT = Path(__file__).resolve().parents[2]


def _twin() -> tuple[Twin, PlantSiteIO]:
    scn = load_scenario(ROOT / "scenarios" / "week.yaml", {"duration": "1d"})
    twin = Twin(scn)
    twin.reset()
    for _ in range(48):  # to midday: vehicles plugged
        twin.step()
    assert isinstance(twin.site, PlantSiteIO)
    return twin, twin.site


def test_nan_battery_setpoint_never_reaches_the_plant() -> None:
    _, site = _twin()
    io, plant = site.io, site.plant
    before = plant.p_bess_setpoint_kw
    n = io.bess.health.requests
    with pytest.raises(AdapterError, match="NaN"):
        io.write(math.nan, np.zeros(plant.n_sockets))
    assert plant.p_bess_setpoint_kw == before
    assert io.bess.health.requests == n + 1


def test_wrong_number_of_socket_limits_is_refused() -> None:
    _, site = _twin()
    io, plant = site.io, site.plant
    with pytest.raises(AdapterError, match=f"expected {plant.n_sockets} socket limits"):
        io.write(0.0, np.zeros(plant.n_sockets + 1))


@pytest.mark.parametrize("full", [False, True])
def test_write_counts_and_applies_like_the_adapters(full: bool) -> None:
    twin, site = _twin()
    io, plant = site.io, site.plant
    counts = (io.bess.health.requests, io.chargers.health.requests)
    assert twin.obs is not None
    rating = twin.obs.sockets.p_rating_kw
    k = plant.k
    io.write(np.float32(2.5),  # type: ignore[arg-type]  # a policy's float32
             rating.copy() if full else np.zeros(plant.n_sockets))
    assert type(plant.p_bess_setpoint_kw) is float and plant.p_bess_setpoint_kw == 2.5
    assert (io.bess.health.requests, io.chargers.health.requests) == (counts[0] + 1,
                                                                      counts[1] + 1)
    site.clock.advance(k)  # the socket limits written are the ones the step applies
    assert bool(twin.rec.e_ev_kwh[k] > 0.0) is full


def test_read_gives_what_the_three_adapters_read() -> None:
    _, site = _twin()
    io = site.io
    counts = [a.health.requests for a in (io.meters, io.bess, io.chargers)]
    tel = io.read()
    assert [a.health.requests for a in (io.meters, io.bess, io.chargers)] == \
        [c + 1 for c in counts]
    assert tel.meters == io.meters.read()
    assert tel.bess == io.bess.read()
    s = io.chargers.read()
    assert s.n_occupied == tel.sockets.n_occupied > 0
    for a, b in zip(s, tel.sockets, strict=True):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b  # type: ignore[arg-type]

"""The ``faults:`` field of a scenario (twin.faults.FaultSpec)."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.config import ConfigError, load_scenario
from twin.faults import FaultSpec

ROOT = Path(__file__).resolve().parents[2]


def test_fault_spec_parses_durations() -> None:
    f = FaultSpec(time="10h", duration="30min", device="bess", kind="frozen")
    assert f.time == 36000.0 and f.duration == 1800.0 and f.end == 37800.0
    assert f.active(36000.0) and f.active(37799.0) and not f.active(37800.0)


def _scn(tmp_path: Path, faults: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(f"site: {ROOT / 'config' / 'site.yaml'}\nstart: 2024-03-04T00:00:00\n"
                 f"duration: 1d\ndt: 15min\n{faults}")
    return p


def test_scenario_without_faults_has_none(tmp_path: Path) -> None:
    assert load_scenario(_scn(tmp_path, "")).config.faults == []


def test_scenario_faults_loaded(tmp_path: Path) -> None:
    scn = load_scenario(_scn(tmp_path, "faults:\n  - {time: 12h, duration: 1h, device: chargers, "
                                       "kind: connection_drop}\n"))
    (f,) = scn.config.faults
    assert f.device == "chargers" and f.kind == "connection_drop" and f.time == 43200.0


@pytest.mark.parametrize("bad", [
    "faults:\n  - {time: 1h, duration: 1h, device: bess, kind: meteor}\n",
    "faults:\n  - {time: 1h, duration: 0, device: bess, kind: frozen}\n",
    "faults:\n  - {time: 1h, duration: 1h, device: toaster, kind: frozen}\n",
    "faults:\n  - {time: 1h, duration: 1h, device: bess, kind: frozen, colour: red}\n",
])
def test_bad_faults_are_config_errors(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="faults"):
        load_scenario(_scn(tmp_path, bad))

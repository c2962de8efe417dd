"""Fixtures of the robustness suite: a one-day scenario (1 h steps) and one finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "config" / "site.yaml"


def day_scenario(folder: Path, **extra: Any) -> Path:
    """A one-day, 1-hour-step scenario on the default site, written into ``folder``."""
    data: dict[str, Any] = {"name": "day", "site": str(SITE), "start": "2024-03-04T00:00:00",
                            "duration": "1d", "dt": "1h", "seed": 1}
    data.update(extra)
    p = folder / "day.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.fixture
def day(tmp_path: Path) -> Path:
    """The one-day scenario file."""
    return day_scenario(tmp_path)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run folder of the one-day scenario (read-only: copy before damaging)."""
    d = tmp_path_factory.mktemp("finished")
    out = d / "run"
    assert main(["run", str(day_scenario(d)), "--out", str(out), "-q"]) == 0
    return out

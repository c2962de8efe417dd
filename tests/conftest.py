"""Shared fixtures: the repository paths and small scenario files written on the fly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings

# CI (CI=true) draws the same hypothesis examples every run, so that a green main stays
# green; a developer's runs keep exploring new ones (and the failures found are kept as
# @example in the tests).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")

# The PV profile cache (twin.components.pv) of a test session lives in a temporary folder,
# shared by the session's runs and subprocesses, never in the user's ~/.cache.
_CACHE = None
if "PVBESS_CACHE_DIR" not in os.environ:
    import tempfile

    _CACHE = tempfile.TemporaryDirectory(prefix="pvbess-test-cache-")
    os.environ["PVBESS_CACHE_DIR"] = _CACHE.name

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "config" / "site.yaml"
SCENARIOS = ROOT / "scenarios"


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML to ``path`` and return it."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def site_dict() -> dict[str, Any]:
    """The default site as a mutable dict."""
    return yaml.safe_load(SITE.read_text())


@pytest.fixture
def make_scenario(tmp_path: Path, site_dict: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Factory: write a site + scenario pair into tmp_path; return the scenario path."""

    def make(site: dict[str, Any] | None = None, **scn: Any) -> Path:
        write_yaml(tmp_path / "site.yaml", site if site is not None else site_dict)
        data: dict[str, Any] = {
            "name": "t", "site": "site.yaml", "start": "2024-03-04T00:00:00",
            "duration": "2d", "dt": "15min", "seed": 3, "controller": "six_phase",
        }
        data.update(scn)
        return write_yaml(tmp_path / "scenario.yaml", data)

    return make

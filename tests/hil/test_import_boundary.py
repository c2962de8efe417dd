"""pymodbus is imported only in ``adapters/modbus/`` and ``simulators/`` (docs/design.md, rule 7)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("adapters/modbus/", "simulators/")
PAT = re.compile(r"^\s*(import pymodbus|from pymodbus)", re.M)


def test_pymodbus_imported_only_in_its_two_places() -> None:
    offenders = []
    for top in ("twin", "adapters", "controllers", "simulators", "benchmarks", "tests", "scripts"):
        for p in (ROOT / top).rglob("*.py"):
            rel = p.relative_to(ROOT).as_posix()
            if PAT.search(p.read_text(encoding="utf-8")) and not rel.startswith(ALLOWED):
                offenders.append(rel)
    assert not offenders, offenders

"""Finished runs on disk: one JSON record per run under ``OUT/runs/``, keyed by
scenario hash + controller + seed, each written to a temporary file and renamed into
place (a killed trial leaves whole records or none)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from twin.config import Scenario

#: Scenario fields that do not change what a run computes, or that the key names apart.
_NOT_HASHED = {"seed", "controller", "output", "name", "faults"}


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return "missing"
    return h.hexdigest()


def _referenced_files(scn: Scenario) -> list[Path]:
    site = scn.site
    out: list[Path] = []
    for f in (
        site.pv.file if site.pv.source == "file" else None,
        site.mall.file if site.mall.source == "file" else None,
        site.ev.profile if site.ev.source == "profile" else None,
    ):
        if f is not None:
            out.append(Path(f.path))
    if site.ev.source == "sessions_file" and site.ev.sessions_file is not None:
        out.append(Path(site.ev.sessions_file))
    return out


def scenario_hash(scn: Scenario, *, sections: set[str] | None = None, length: int = 12) -> str:
    """A short digest of what a run of ``scn`` depends on, apart from seed and controller.

    The scenario fields (horizon, step, forecaster, controller parameters, ...), the whole
    site after overrides and the contents of the profile / sessions files it reads.

    Parameters
    ----------
    sections : when given, only these site sections are hashed (e.g. the inputs' key
        leaves the battery out: PV, mall and EV draws do not depend on it).
    length : hex digits kept.
    """
    cfg = scn.config.model_dump(mode="json", exclude=_NOT_HASHED)
    site = scn.site.model_dump(mode="json")
    site.pop("economics", None)  # costs change the payback, not what a run computes
    if sections is not None:
        site = {k: v for k, v in site.items() if k in sections}
    files = {str(p): _file_digest(p) for p in _referenced_files(scn)}
    blob = json.dumps({"scenario": cfg, "site": site, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def inputs_key(scn: Scenario) -> str:
    """Key of the exogenous inputs (PV, mall, EV sessions, tariff) of ``scn``: the same for
    every controller and every battery size at one seed."""
    return (
        f"{scenario_hash(scn, sections={'name', 'location', 'tariff', 'pv', 'mall', 'ev'})}"
        f"-s{scn.config.seed}"
    )


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def file_mode() -> int:
    """Ordinary permissions of a new file (``mkstemp`` makes 0600)."""
    return 0o666 & ~_umask()


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def run_key(scn_hash: str, controller: str, seed: int) -> str:
    """File-name-safe key of one run."""
    return f"{scn_hash}-{_SAFE.sub('_', controller)}-s{seed}"


class RunStore:
    """The ``runs/`` folder of a trial: one ``KEY.json`` per finished run."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = Path(out_dir) / "runs"

    def path(self, key: str) -> Path:
        """Where the record of ``key`` lives."""
        return self.dir / f"{key}.json"

    def has(self, key: str) -> bool:
        """True when run ``key`` finished before."""
        return self.path(key).is_file()

    def load(self, key: str) -> dict[str, Any]:
        """The record of run ``key``."""
        data: dict[str, Any] = json.loads(self.path(key).read_text())
        return data

    def save(self, record: dict[str, Any]) -> Path:
        """Write ``record`` (with its ``key``) atomically and return its path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        dest = self.path(str(record["key"]))
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "w") as f:  # a killed process leaves the old name or the whole file
                json.dump(record, f, sort_keys=True, allow_nan=True)
            os.chmod(tmp, file_mode())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest


__all__ = ["RunStore", "file_mode", "inputs_key", "run_key", "scenario_hash"]

"""Finished runs on disk: one JSON record per run under ``OUT/runs/``, keyed by
scenario hash + controller + seed, each written to a temporary file and renamed into
place (a killed trial leaves whole records or none).

A record is trusted only when it proves it is the run asked for: it carries its ``key``,
the full ``scenario_hash``, ``controller``, ``seed``, the ``code_version`` that computed it
and a ``checksum`` (SHA-256 of the canonical JSON of everything else). :meth:`RunStore.check`
compares each against the task; anything else (another arm's record, a hand-edited value,
another code version, ``[]``, bad or truncated JSON) is refused, and the caller runs it again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import re
import sys
from pathlib import Path
from typing import Any

from twin.atomic import write_file_atomic
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


#: Header fields a stored record must match to be reused (besides its checksum).
HEADER = ("key", "scenario_hash", "controller", "seed", "code_version", "tags")

#: A record larger than this is not a record of this program [bytes].
RECORD_MAX_BYTES = 16 << 20

#: Packages whose source decides what a run computes (the code version hashes them).
_CODE_PACKAGES = ("twin", "controllers")

#: Third-party packages whose version is part of the code version.
_CODE_DEPENDENCIES = ("numpy", "pandas", "simpy", "pvlib")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


@functools.cache
def code_version() -> str:
    """The version of the code a run is computed with, computed once per process.

    ``PACKAGE_VERSION+src.DIGEST``: the digest (12 hex) covers every ``*.py`` file of the
    ``twin`` and ``controllers`` packages (path and bytes, as imported: an edited
    checkout counts, committed or not), the Python minor version and the versions of
    numpy, pandas, simpy and pvlib. No git: an installed copy has no repository.
    """
    import controllers
    import twin

    h = hashlib.sha256()
    h.update(f"python {sys.version_info[0]}.{sys.version_info[1]}\n".encode())
    for dist in _CODE_DEPENDENCIES:
        h.update(f"{dist} {_version(dist)}\n".encode())
    for pkg in (twin, controllers):
        root = Path(pkg.__file__ or "").parent
        for f in sorted(root.rglob("*.py")):
            h.update(f"{pkg.__name__}/{f.relative_to(root).as_posix()}\n".encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return f"{_version('pvbess-twin')}+src.{h.hexdigest()[:12]}"


def record_checksum(record: dict[str, Any]) -> str:
    """SHA-256 [hex] of the canonical JSON (sorted keys, no spaces) of ``record`` without
    its ``checksum`` entry."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text (NaN equals NaN; a tuple equals the list it is stored as; 1 is
    not 1.0 nor true)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def inputs_key(scn: Scenario) -> str:
    """Key of the exogenous inputs (PV, mall, EV sessions, tariff) of ``scn``: the same for
    every controller and every battery size at one seed."""
    return (
        f"{scenario_hash(scn, sections={'name', 'location', 'tariff', 'pv', 'mall', 'ev'})}"
        f"-s{scn.config.seed}"
    )


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
        """The record of run ``key``, unchecked (see :meth:`check`)."""
        data: dict[str, Any] = json.loads(self.path(key).read_text())
        return data

    def check(self, expect: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The stored record of ``expect["key"]`` if it is that run, else why not.

        Parameters
        ----------
        expect : the :data:`HEADER` values of the task (key, full scenario hash,
            controller, seed, code version, tags).

        Returns
        -------
        ``(record, "")`` when the file is a JSON object whose checksum is right and whose
        header fields all equal ``expect``; ``(None, reason)`` otherwise.
        """
        path = self.path(str(expect["key"]))
        try:
            if path.stat().st_size > RECORD_MAX_BYTES:
                return None, f"larger than {RECORD_MAX_BYTES} bytes"
            data = json.loads(path.read_bytes())
        except OSError as exc:
            return None, f"unreadable ({exc.strerror or exc})"
        except (ValueError, RecursionError) as exc:
            return None, f"not valid JSON ({type(exc).__name__}: {str(exc)[:80]})"
        if not isinstance(data, dict):
            return None, f"not a record (a JSON {type(data).__name__})"
        if data.get("checksum") != record_checksum(data):
            return None, "checksum does not match its content"
        for k in HEADER:
            if k not in data:
                return None, f"no {k!r}"
            if not _same(data[k], expect[k]):
                return None, f"{k} {data[k]!r} is not this run's {expect[k]!r}"
        if not isinstance(data.get("kpis"), dict):
            return None, "no 'kpis' table"
        return data, ""

    def save(self, record: dict[str, Any]) -> Path:
        """Write ``record`` (with its ``key``) and its checksum atomically; return its path."""
        record = {**record, "checksum": record_checksum(record)}
        self.dir.mkdir(parents=True, exist_ok=True)
        dest = self.path(str(record["key"]))
        # a killed process leaves the old name or the whole file
        write_file_atomic(dest, json.dumps(record, sort_keys=True, allow_nan=True))
        return dest


__all__ = [
    "HEADER",
    "RECORD_MAX_BYTES",
    "RunStore",
    "code_version",
    "inputs_key",
    "record_checksum",
    "run_key",
    "scenario_hash",
]

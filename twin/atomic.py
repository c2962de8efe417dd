"""Output folders the project owns: check, write atomically, mark, clean up.

A folder written by the twin (a run of ``twin run``/``twin live``/``twin hil``, or a
report) carries a marker file, :data:`MARKER` (``.pvbess-run``), a small JSON object::

    {"format": 1, "kind": "run", "run_id": "…", "complete": true,
     "files": ["daily_profile.csv", "summary.json", …], "written_utc": "…"}

Rules (issue 10), applied by :func:`check_output_dir` *before* any work:

* an output folder may be absent, empty, or hold a folder of the same ``kind`` whose
  marker lists every entry in it (a sub-folder that is itself a marked project folder,
  such as ``RUN/report``, counts as the project's); anything else is refused with a
  :class:`~twin.errors.UserError` naming the folder and the foreign entries, so the
  project never deletes a file it did not write;
* files are written into a hidden temporary sibling ``.NAME.tmp-PID-XXXX`` which then
  replaces the folder (two renames); a temporary folder left by a killed process (its PID
  is gone) is removed by the next check of the same output folder;
* an interrupted run never replaces a complete one: :func:`partial_target` sends it to
  ``NAME.partial``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import UserError

#: Name of the marker file in every folder the project writes.
MARKER = ".pvbess-run"
#: Kinds of project folders: run folders (``twin run``/``live``/``hil``) and reports.
KINDS = ("run", "report")
#: Largest marker file read [bytes]; a bigger one is not the project's.
_MARKER_MAX_BYTES = 1 << 20
#: Suffix of the folder that takes an interrupted run when a complete one is in the way.
PARTIAL_SUFFIX = ".partial"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _temp_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(name)}\.(?:tmp|old)-(?:(\d+)-)?[A-Za-z0-9_]+$")


def clean_stale(out: Path) -> list[Path]:
    """Remove temporary siblings of ``out`` left by processes that are gone; return them.

    Matches ``.NAME.tmp-PID-XXXX`` and ``.NAME.old-PID-XXXX`` (and the PID-less names of
    older versions) in the parent folder of ``out``.
    """
    out = _absolute(out)
    parent = out.parent
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    pat = _temp_re(out.name)
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for e in entries:
        m = pat.match(e.name)
        if m is None or e.is_symlink() or not e.is_dir():
            continue
        pid = m.group(1)
        if pid is not None and _pid_alive(int(pid)):
            continue
        shutil.rmtree(e, ignore_errors=True)
        removed.append(e)
    return removed


def _absolute(p: Path) -> Path:
    """``p`` made absolute with ``.``/``..`` resolved (symlinks kept), so ``.`` has a name."""
    return Path(os.path.abspath(p))


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of ``folder`` as a dict, or None when absent or not the project's."""
    p = Path(folder) / MARKER
    try:
        if not p.is_file() or p.stat().st_size > _MARKER_MAX_BYTES:
            return None
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") not in KINDS \
            or not isinstance(data.get("files"), list) \
            or not all(isinstance(f, str) for f in data["files"]):
        return None
    return data


def foreign_entries(folder: Path, kind: str) -> list[str] | None:
    """Entries of ``folder`` the project did not write, or None when it has no marker.

    An entry is the project's when the marker lists it, or when it is a folder that is
    itself a marked project folder (any kind) with no foreign entries.
    """
    marker = read_marker(folder)
    if marker is None or marker["kind"] != kind:
        return None
    ours = set(marker["files"]) | {MARKER}
    out: list[str] = []
    for e in sorted(Path(folder).iterdir()):
        if e.name in ours and not e.is_symlink():
            continue
        sub = read_marker(e) if e.is_dir() and not e.is_symlink() else None
        if sub is not None and foreign_entries(e, sub["kind"]) == []:
            continue
        out.append(e.name)
    return out


def check_output_dir(path: Path | str, kind: str = "run", *, option: str = "--out") -> Path:
    """Refuse an output folder the project may not replace; return it made absolute.

    The one place that decides whether ``path`` may receive a run or a report; call it
    before any work. It also removes temporary folders left next to ``path`` by killed
    processes.

    Parameters
    ----------
    path : the output folder.
    kind : ``"run"`` (``twin run``/``live``/``hil``) or ``"report"``.
    option : how the user named the folder (for the message), e.g. ``--out``.

    Raises
    ------
    UserError
        When ``path`` is a file, or a non-empty folder that is not a complete or partial
        project folder of this ``kind`` holding only the project's files.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = _absolute(Path(path))
    where = f"{option} {path}" if option else str(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{where}: is a file, not a folder; name a new or empty folder for the "
                        "outputs.")
    if out.is_dir():
        try:
            empty = not any(out.iterdir())
        except OSError as exc:
            raise UserError(f"{where}: cannot list the folder ({exc.strerror or exc}).") from exc
        if not empty:
            foreign = foreign_entries(out, kind)
            what = "run" if kind == "run" else "report"
            if foreign is None:
                other = read_marker(out)
                why = (f"it holds a {other['kind']} folder, not a {what} folder" if other
                       else f"it is not a {what} folder written by the twin (no {MARKER} "
                            "marker; folders written by older versions have none)")
                raise UserError(
                    f"{where}: the folder exists and {why}. The twin replaces its output "
                    "folder whole and never deletes files it did not write: name a new or "
                    "empty folder, or move the folder away yourself.")
            if foreign:
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                                  if len(foreign) > 5 else "")
                raise UserError(
                    f"{where}: the {what} folder also holds files the twin did not write "
                    f"({shown}); they would be deleted when the folder is replaced. Move them "
                    "out, or name another folder.")
    clean_stale(out)
    return out


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds a complete project folder (marker with complete = true)."""
    m = read_marker(folder)
    return bool(m is not None and m.get("complete") is True)


def partial_target(out: Path, kind: str = "run") -> Path:
    """Where an interrupted run goes: ``out``, or ``out.partial`` if ``out`` is complete."""
    out = _absolute(out)
    if is_complete(out):
        alt = out.with_name(out.name + PARTIAL_SUFFIX)
        check_output_dir(alt, kind)
        return alt
    return out


def temp_sibling(out: Path) -> Path:
    """A new empty folder next to ``out`` (same file system), with ordinary permissions.

    Its name, ``.NAME.tmp-PID-XXXX``, lets :func:`clean_stale` find it if this process dies.
    """
    out = _absolute(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700
    return tmp


def write_marker(folder: Path, kind: str, *, complete: bool, run_id: str | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the marker into ``folder``, listing every entry there now; return it."""
    files = sorted(e.name for e in Path(folder).iterdir() if e.name != MARKER)
    marker: dict[str, Any] = {
        "format": 1, "kind": kind, "run_id": run_id or uuid.uuid4().hex,
        "complete": bool(complete), "files": files,
        "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    (Path(folder) / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    return marker


def _contains_cwd(out: Path) -> bool:
    try:
        cwd = Path.cwd()
    except OSError:
        return False
    return cwd == out or out in cwd.parents


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing an existing ``out``.

    Two renames on one file system: a reader sees the old folder or the new one, never a
    half-written one. When ``out`` is (or holds) the working directory, it is kept and its
    entries are swapped one by one instead (renaming the working directory away would
    leave the shell in a deleted folder); the marker goes last, so a reader can tell.
    """
    out = _absolute(out)
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
    try:
        if _contains_cwd(out):
            _swap_entries(tmp, out, old)
        else:
            os.replace(out, old / out.name)
            os.replace(tmp, out)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _swap_entries(tmp: Path, out: Path, old: Path) -> None:
    marker = out / MARKER
    if marker.exists():
        os.replace(marker, old / MARKER)
    for e in list(out.iterdir()):
        os.replace(e, old / e.name)
    new: Iterable[Path] = sorted(tmp.iterdir(), key=lambda e: e.name == MARKER)
    for e in new:
        os.replace(e, out / e.name)
    tmp.rmdir()


__all__ = ["KINDS", "MARKER", "PARTIAL_SUFFIX", "check_output_dir", "clean_stale",
           "foreign_entries", "is_complete", "partial_target", "read_marker", "replace_dir",
           "temp_sibling", "write_marker"]

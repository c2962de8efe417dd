"""The one output guard: every command that writes a folder or a file goes through here.

A folder written by the twin (a run of ``twin run``/``live``/``hil``, a report, a CityLearn
export, a trained policy, an A/B trial or a sweep) carries a marker file, :data:`MARKER`
(``.pvbess-run``), a small JSON object::

    {"format": 1, "kind": "run", "run_id": "…", "complete": true,
     "files": ["daily_profile.csv", "summary.json", …], "written_utc": "…"}

Rules, applied by :func:`claim_output` (lock + check) *before* any work:

* never ``/``, the home folder, a folder that holds the working directory (``--out ..``)
  or the project's own folder or one of its ancestors, nor a symbolic link;
* one writer at a time: a lock file ``.NAME.lock`` next to the output (``flock``, released
  when the process ends however it ends) makes a second writer exit 2 naming the first's
  pid;
* a file output (``twin size --out FILE``, ``twin export openmetrics -o FILE``) may be
  absent or a file the project wrote (recognised by its content, see
  :data:`FILE_KINDS`); anything else is refused;
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

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import UserError

#: Name of the marker file in every folder the project writes.
MARKER = ".pvbess-run"
#: Kinds of project folders: runs (``twin run``/``live``/``hil``), reports, CityLearn
#: exports, trained policies (``twin train``), A/B trials, sweeps and calibrations.
KINDS = ("run", "report", "citylearn", "policy", "ab", "sweep", "calibration")
#: How messages name each kind of folder.
KIND_LABELS = {"run": "run", "report": "report", "citylearn": "CityLearn dataset",
               "policy": "trained policy", "ab": "trial ('twin ab')",
               "sweep": "trial ('twin sweep')", "calibration": "calibration ('twin calibrate')"}
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
        if _is_own_scratch(e, ours):
            continue
        sub = read_marker(e) if e.is_dir() and not e.is_symlink() else None
        if sub is not None and foreign_entries(e, sub["kind"]) == []:
            continue
        out.append(e.name)
    return out


def _is_own_scratch(e: Path, ours: set[str]) -> bool:
    """A temporary file of ours next to a listed entry, or a lock file of the project."""
    if e.is_symlink() or not e.name.startswith("."):
        return False
    if _LOCK_RE.match(e.name) and e.is_file():
        return _is_lock_file(e)
    return any(e.name.startswith(f".{name}.") and (".tmp" in e.name or ".old-" in e.name)
               for name in ours)


def _is_lock_file(p: Path) -> bool:
    try:
        if p.stat().st_size > 32:
            return False
        text = p.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return text == "" or text.isdigit()


def _project_root() -> Path:
    """The folder that holds the project's packages (``twin``), symlinks resolved."""
    return Path(__file__).resolve().parents[1]


def forbidden_reason(out: Path) -> str | None:
    """Why ``out`` may never be written, or None.

    ``/``, the home folder, a folder that holds the working directory, the project's
    folder or one of its ancestors; checked on the path as given (made absolute) and with
    symbolic links resolved.
    """
    cands = {_absolute(out), Path(os.path.realpath(out))}
    try:
        cwds = {_absolute(Path.cwd()), Path.cwd().resolve()}
    except OSError:
        cwds = set()
    home = {_absolute(Path.home()), Path.home().resolve()} if "HOME" in os.environ else set()
    project = _project_root()
    for c in cands:
        if c == Path(c.anchor):
            return "it is the root folder"
        if c in home:
            return "it is your home folder"
        if any(c in w.parents for w in cwds):
            return "it holds the working directory"
        if c == project or c in project.parents:
            return "it is the project's folder or holds it"
    return None


def _refuse_unsafe(path: Path | str, out: Path, option: str) -> str:
    where = f"{option} {path}" if option else str(path)
    why = forbidden_reason(out)
    if why is not None:
        raise UserError(f"{where}: {why}; the twin never writes there. Name a new folder or "
                        "file for the outputs, e.g. runs/NAME.")
    if out.is_symlink():
        raise UserError(f"{where}: is a symbolic link; name the real folder or file.")
    return where


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
    where = _refuse_unsafe(path, out, option)
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
            what = KIND_LABELS[kind]
            if foreign is None:
                other = read_marker(out)
                why = (f"it holds a {KIND_LABELS[other['kind']]} folder, not a {what} folder"
                       if other else f"it is not a {what} folder written by the twin (no "
                       f"{MARKER} marker; folders written by older versions have none)")
                raise UserError(
                    f"{where}: the folder exists and {why}. The twin never deletes or "
                    "overwrites files it did not write: name a new or empty folder, or move "
                    "the folder away yourself.")
            if foreign:
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                                  if len(foreign) > 5 else "")
                raise UserError(
                    f"{where}: the {what} folder also holds files the twin did not write "
                    f"({shown}); the twin never deletes or overwrites them. Move them out, or "
                    "name another folder.")
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
    marker = read_marker(tmp)
    _ATTEMPTS.append((out, None if marker is None else marker.get("run_id")))
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


#: Folders :func:`replace_dir` was asked to put in place, with the run id of the marker
#: they carry (see :func:`published_since`).
_ATTEMPTS: list[tuple[Path, str | None]] = []


def published_since(mark: int) -> Path | None:
    """The last folder published since ``mark`` (a :func:`publish_mark`), or None.

    Read from the disk: the folder holds the marker (with its run id) of the folder that was
    to replace it, so a signal landing at any point of the publish is answered truthfully
    (Python runs signal handlers in the main thread whichever thread the kernel picked, so
    holding them with a signal mask alone cannot order them with the renames).
    """
    for out, run_id in reversed(_ATTEMPTS[mark:]):
        m = read_marker(out)
        if run_id is not None and m is not None and m.get("run_id") == run_id:
            return out
    return None


def publish_mark() -> int:
    """How many publishes this process has begun (see :func:`published_since`)."""
    return len(_ATTEMPTS)


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


# ------------------------------------------------------------------ one writer at a time
_LOCK_RE = re.compile(r"^\..+\.lock$")
#: Locks this process holds: output path -> [fd, depth] (a command may claim twice).
_HELD: dict[Path, list[int]] = {}


def lock_path(out: Path) -> Path:
    """The lock file of the output ``out``: ``.NAME.lock`` next to it."""
    out = _absolute(out)
    return out.parent / f".{out.name}.lock"


def _lock_owner(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


def _acquire(out: Path, where: str) -> None:
    held = _HELD.get(out)
    if held is not None:
        held[1] += 1
        return
    lp = lock_path(out)
    lp.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _lock_owner(fd)
            os.close(fd)
            raise UserError(
                f"{where}: another twin process (pid {pid}) is writing there now ({lp}). Wait "
                "for it to finish, or name another output.") from None
        try:
            same = os.stat(lp).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the lock file was removed by its last holder: take the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[out] = [fd, 1]


def _release(out: Path) -> None:
    held = _HELD.get(out)
    if held is None:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[out]
    with contextlib.suppress(OSError):
        os.unlink(lock_path(out))
    os.close(held[0])


@contextlib.contextmanager
def output_lock(out: Path | str, *, option: str = "--out") -> Iterator[Path]:
    """Hold the lock of the output ``out`` for the block; yield ``out`` made absolute.

    Raises
    ------
    UserError
        When another process holds it (the message names its pid).
    """
    o = _absolute(Path(out))
    _acquire(o, f"{option} {out}" if option else str(out))
    try:
        yield o
    finally:
        _release(o)


@contextlib.contextmanager
def claim_output(path: Path | str, kind: str = "run", *, option: str = "--out") -> Iterator[Path]:
    """Lock and check an output folder (:data:`KINDS`) or file (:data:`FILE_KINDS`).

    The check runs once the lock is held. Yields the output made absolute.
    """
    with output_lock(path, option=option) as out:
        if kind in FILE_KINDS:
            check_output_file(path, kind, option=option)
        else:
            check_output_dir(path, kind, option=option)
        yield out


#: Claims held until the running command ends (see :func:`command_scope`).
_SCOPES: list[contextlib.ExitStack] = []


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """Release every output claimed by :func:`hold_output` when the block ends.

    ``twin``'s entry point wraps each command in it; outside one, a claim is released when
    the process ends (the kernel drops the ``flock``).
    """
    stack = contextlib.ExitStack()
    _SCOPES.append(stack)
    try:
        with stack:
            yield
    finally:
        _SCOPES.remove(stack)


def hold_output(path: Path | str, kind: str = "run", *, option: str = "--out") -> Path:
    """Lock and check an output (:func:`claim_output`) until the command ends; return it.

    The one call every command that writes makes before any work.
    """
    cm = claim_output(path, kind, option=option)
    out = cm.__enter__()
    if _SCOPES:
        _SCOPES[-1].push(cm.__exit__)
    return out


# ------------------------------------------------------------------ folders written in place
def open_trial_dir(path: Path | str, kind: str, names: Sequence[str], *,
                   option: str = "--out") -> Path:
    """Check a folder that a command fills over several runs (``ab``, ``sweep``); mark it.

    Unlike a run folder it is not replaced whole: finished runs under ``runs/`` are kept
    for a resume. It may be absent, empty or a marked folder of this ``kind`` holding only
    the project's entries; the marker lists ``names`` (every entry the command may write)
    before anything is written, so an interrupted command leaves a folder the next one
    accepts.
    """
    out = check_output_dir(path, kind, option=option)
    out.mkdir(parents=True, exist_ok=True)
    old = read_marker(out)
    files = sorted(set(names) | set(old["files"] if old else ()))
    marker = {"format": 1, "kind": kind, "run_id": (old or {}).get("run_id") or uuid.uuid4().hex,
              "complete": False, "files": files,
              "written_utc": datetime.now(UTC).isoformat(timespec="seconds")}
    write_file_atomic(out / MARKER, json.dumps(marker, indent=1) + "\n")
    return out


def write_file_atomic(path: Path, data: bytes | str, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    ``mode``: permissions of the file (default: ordinary ones, 0666 less the umask).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------ single files
#: Generator tag in the JSON files the project writes (how a file is known to be ours).
GENERATOR = "pvbess-twin"


def _ours_json(head: bytes, path: Path) -> bool:
    try:
        if path.stat().st_size > _MARKER_MAX_BYTES * 16:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("generator") == GENERATOR


def _ours_openmetrics(head: bytes, path: Path) -> bool:
    return head.startswith(b"# TYPE twin_") or head.startswith(b"# HELP twin_")


#: File kinds and how an existing file is known to be the project's (from its content).
FILE_KINDS: dict[str, Callable[[bytes, Path], bool]] = {
    "json": _ours_json,
    "openmetrics": _ours_openmetrics,
}


def check_output_file(path: Path | str, kind: str, *, option: str = "--out") -> Path:
    """Refuse an output file the project may not replace; return it made absolute.

    The file may be absent or a file of this ``kind`` written by the project; a folder, a
    symbolic link, a forbidden place (:func:`forbidden_reason`) or someone else's file is
    refused.
    """
    if kind not in FILE_KINDS:
        raise ValueError(f"kind must be one of {sorted(FILE_KINDS)}, got {kind!r}")
    out = _absolute(Path(path))
    where = _refuse_unsafe(path, out, option)
    if out.is_dir():
        raise UserError(f"{where}: is a folder; name a file, e.g. {Path(path) / 'out.json'}")
    if out.exists():
        try:
            with open(out, "rb") as fh:
                head = fh.read(64)
        except OSError as exc:
            raise UserError(f"{where}: cannot read ({exc.strerror or exc})") from None
        if not FILE_KINDS[kind](head, out):
            raise UserError(f"{where}: the file exists and was not written by the twin; it is "
                            "left alone. Name a new file or move it away yourself.")
    return out


__all__ = ["FILE_KINDS", "GENERATOR", "KINDS", "MARKER", "PARTIAL_SUFFIX", "check_output_dir",
           "check_output_file", "claim_output", "clean_stale", "command_scope",
           "forbidden_reason", "foreign_entries", "hold_output", "is_complete", "lock_path",
           "open_trial_dir", "output_lock", "partial_target", "read_marker", "replace_dir",
           "temp_sibling", "write_file_atomic", "write_marker"]

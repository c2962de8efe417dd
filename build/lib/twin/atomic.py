"""Atomic output folders: write into a temporary sibling, then swap it into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def temp_sibling(out: Path) -> Path:
    """A new empty folder next to ``out`` (same file system), with ordinary permissions."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700
    return tmp


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing an existing ``out``.

    Two renames on one file system: a reader sees the old folder or the new one, never a
    half-written one.
    """
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)

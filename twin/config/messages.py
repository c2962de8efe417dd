"""Error messages of the configuration: short value reprs and pydantic errors as one line per
field (the file, the dotted field, the problem)."""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def _short_repr(v: Any, limit: int = 80) -> str:
    """``repr(v)`` cut to ``limit`` characters (without building a huge string)."""
    if isinstance(v, list | tuple) and len(v) > 10:
        return f"a list of {len(v)} items"
    r = reprlib.Repr()
    r.maxstring = r.maxother = limit
    r.maxlevel = 3
    r.maxlist = r.maxtuple = r.maxdict = 6
    return r.repr(v)


def _format_errors(path: Path, exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        if loc.startswith("bess_units."):  # the list given under ``bess:``
            loc = "bess." + loc[len("bess_units."):]
        msg = err["msg"]
        if not loc and err["type"] == "value_error" and msg.startswith("Value error, bess"):
            loc, _, msg = msg[len("Value error, "):].partition(": ")  # the battery list's
        field = prefix + loc if loc else (prefix.rstrip(".") or "(top level)")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a field of this section; check the spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        inp = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(inp, dict) \
            else f" (got {_short_repr(inp)})"
        lines.append(f"{path}: field '{field}': {msg}{shown}")
    return "\n".join(lines)

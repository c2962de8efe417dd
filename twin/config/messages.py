"""Error messages of the configuration: short value reprs and pydantic errors as one line per
field (the file, the dotted field, the problem)."""

from __future__ import annotations

import re
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


#: A dotted field path at the start of a validator's message (``ev.sockets[0].type: ...``).
_PATH = re.compile(r"[A-Za-z_][\w]*(?:\.[\w]+|\[\d+\])*")


def _format_errors(path: Path, exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("__root__", "[key]"))
        if loc.startswith("bess_units."):  # the list given under ``bess:``
            loc = "bess." + loc[len("bess_units."):]
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
            head, sep, rest = msg.partition(": ")
            if not loc and head.startswith("bess"):  # the battery list's
                loc, msg = head, rest
            elif sep and loc and _PATH.fullmatch(head) and head.startswith((loc + ".",
                                                                             loc + "[")):
                loc, msg = head, rest  # a section's check naming its own field
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

"""Functions stay short: none over 80 lines in the packages (issue 17, point 5)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("twin", "adapters", "controllers", "simulators")
MAX_LINES = 80


def long_functions(source: str, name: str = "<src>") -> list[tuple[str, int]]:
    """(``file:line function``, lines) of every function longer than :data:`MAX_LINES`
    (docstring and decorators excluded from neither: the span from ``def`` to its end)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if n > MAX_LINES:
                out.append((f"{name}:{node.lineno} {node.name}", n))
    return out


def test_no_function_over_80_lines() -> None:
    found = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            found += long_functions(path.read_text(encoding="utf-8"),
                                    str(path.relative_to(ROOT)))
    assert not found, f"functions over {MAX_LINES} lines: {found}"


def test_the_check_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def f():\n{body}\n") == [("<src>:1 f", MAX_LINES + 1)]
    assert long_functions(f"def f():\n{body[: body.rindex(chr(10))]}\n") == []

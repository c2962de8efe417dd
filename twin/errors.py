"""User errors and exit codes, shared by every layer (no imports of the project).

A ``UserError`` (or its ``ConfigError`` kind, for configuration and input files) is
something the user can fix: the command line prints its one-paragraph message without a
traceback and exits with ``EXIT_USER``.
"""

from __future__ import annotations

#: Exit codes of every command: success, internal error (a bug), user error, interrupted.
EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130


class UserError(Exception):
    """An error the user can fix; printed without a traceback, exit 2."""


class ConfigError(UserError, ValueError):
    """A user error in a configuration or input file (the CLI exits with status 2)."""


def file_error(kind: str, path: object, problem: str, row: int | None = None,
               column: str | None = None) -> ConfigError:
    """One input file's error, the one format of every file reader: ``{kind} file '{path}'
    [, data row R][, column 'C']: {problem}`` (rows count from 1 after the header)."""
    where = "".join([f", data row {row}" if row is not None else "",
                     f", column '{column}'" if column else ""])
    return ConfigError(f"{kind} file '{path}'{where}: {problem}")


__all__ = ["EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USER", "ConfigError",
           "UserError", "file_error"]

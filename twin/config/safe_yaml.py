"""The one YAML reader of the configuration: ``yaml.SafeLoader`` with size, depth, alias and
value-count limits, duplicate keys refused, errors as one line naming the file."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from twin.errors import ConfigError

#: Limits of a YAML file: size [bytes], nesting depth, nodes reachable through aliases.
YAML_MAX_BYTES = 4 * 2**20
YAML_MAX_DEPTH = 64
YAML_MAX_ALIAS_NODES = 10_000
#: Values (YAML nodes) in a small device file (devices file, register map): a long flow list
#: is refused while it is being read, not parsed for tens of seconds.
YAML_MAX_VALUES_DEVICE = 10_000


class _YamlLimitError(Exception):
    """A YAML file over one of the limits (message says which)."""


def _node_count(node: yaml.Node, cap: int) -> int:
    """Nodes under ``node`` (aliases counted again), up to ``cap``; iterative."""
    n, stack = 0, [node]
    while stack and n <= cap:
        cur = stack.pop()
        n += 1
        if isinstance(cur, yaml.MappingNode):
            for k, v in cur.value:
                stack.extend((k, v))
        elif isinstance(cur, yaml.SequenceNode):
            stack.extend(cur.value)
    return n


class _LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with a nesting-depth limit and a cap on alias expansion."""

    def __init__(self, stream: str, max_values: int | None = None) -> None:
        super().__init__(stream)
        self._depth = 0
        self._alias_nodes = 0
        self._nodes = 0
        self._max_nodes = max_values

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._max_nodes is not None and self._nodes > self._max_nodes:
                raise _YamlLimitError(f"more than {self._max_nodes} values long (a file of "
                                      "this kind holds a few hundred)")
            if self._depth > YAML_MAX_DEPTH:
                raise _YamlLimitError(f"nested deeper than {YAML_MAX_DEPTH} levels")
            if self.check_event(yaml.AliasEvent):
                anchor = self.peek_event().anchor
                target = self.anchors.get(anchor)
                if target is not None:
                    self._alias_nodes += _node_count(target, YAML_MAX_ALIAS_NODES)
                    if self._alias_nodes > YAML_MAX_ALIAS_NODES:
                        raise _YamlLimitError(
                            f"aliases (*name) expand to more than {YAML_MAX_ALIAS_NODES} values "
                            "(an alias bomb?)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping; a key written twice is an error (plain YAML keeps the last silently,
        so a second vehicle class or battery of the same name would vanish)."""
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        problem=f"duplicate key {key_node.value!r} (each key once per mapping)",
                        problem_mark=key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, max_values: int | None = None) -> dict[str, Any]:
    """Read a YAML mapping: a regular file (no FIFO or device), size, depth and alias limits
    (and at most ``max_values`` YAML values when given)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    if st is None:
        raise ConfigError(f"{path}: file not found. Check the path (relative paths are "
                          "taken from the folder of the file that names them).")
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, " \
            "FIFO or socket)"
        raise ConfigError(f"{path}: is {kind}; name a YAML file.")
    if st.st_size > YAML_MAX_BYTES:
        raise ConfigError(f"{path}: {st.st_size} bytes is too big for a configuration file "
                          f"(at most {YAML_MAX_BYTES // 2**20} MiB).")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(YAML_MAX_BYTES + 1)
        if len(raw) > YAML_MAX_BYTES:
            raise ConfigError(f"{path}: too big for a configuration file (at most "
                              f"{YAML_MAX_BYTES // 2**20} MiB).")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc}).") from exc
    try:
        loader = _LimitedLoader(text, max_values)  # a SafeLoader subclass
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except _YamlLimitError as exc:
        raise ConfigError(f"{path}: refused: the YAML is {exc}. Write plain values.") from None
    except RecursionError:
        raise ConfigError(f"{path}: refused: the YAML is nested too deeply.") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. 2024-02-30 as a timestamp
        raise ConfigError(f"{path}: a value cannot be read: {exc} (an impossible date such as "
                          "2024-02-30 or hour 25?). Fix the value.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: broken YAML{where}: {problem}. Fix the syntax.") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values, "
                          f"got {type(data).__name__}.")
    return data


def read_device_yaml(path: Path) -> dict[str, Any]:
    """Read a devices file or register map: as a configuration file (regular file, at most
    4 MiB checked before parsing, depth and alias limits) with at most
    ``YAML_MAX_VALUES_DEVICE`` values.

    Raises
    ------
    ConfigError
        Naming the file and the limit or the YAML problem.
    """
    return _read_yaml(path, YAML_MAX_VALUES_DEVICE)


#: Values in a tariff file (periods, windows, holidays ...): a few hundred at most.
YAML_MAX_VALUES_TARIFF = 50_000

"""Loading: a site or scenario file read (safe YAML), ``--set`` overrides applied, paths
resolved, the tariff file merged and everything validated, with one-line messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from twin.config.ev import VehicleClass, _default_vehicles
from twin.config.messages import _format_errors, _short_repr
from twin.config.paths import (
    _resolve,
    _resolve_input_files,
    _resolve_site_paths,
    cli_paths_absolute,
    resolve_param_paths,
)
from twin.config.safe_yaml import YAML_MAX_VALUES_TARIFF, _LimitedLoader, _read_yaml, _YamlLimitError
from twin.config.scenario import SCENARIO_KEYS, Scenario, ScenarioConfig
from twin.config.site import SiteConfig
from twin.config.tariff import _LEGACY_DEFAULTS, Tariff
from twin.errors import ConfigError


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = 'a.b.c'``, creating mappings."""
    parts = dotted.split(".")
    cur = data
    i = 0
    while i < len(parts) - 1:
        p = parts[i]
        nxt = cur.get(p)
        if nxt is None:
            nxt = {}
            cur[p] = nxt
        if isinstance(nxt, list) and all(isinstance(u, dict) for u in nxt):
            # a list of named entries (``bess:`` batteries): the next part names one
            names = [u.get("name") for u in nxt]
            i += 1
            if i >= len(parts) - 1 or parts[i] not in names:
                raise ConfigError(f"--set {dotted}: '{p}' is a list; name an entry "
                                  f"({', '.join(map(str, names))}), e.g. "
                                  f"{p}.{names[0]}.{parts[-1]}={value}")
            j = names.index(parts[i])
            nxt[j] = dict(nxt[j])
            nxt = nxt[j]
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: '{p}' is not a section")
        cur = nxt
        i += 1
    cur[parts[-1]] = value


def _read_tariff_file(site: dict[str, Any], path: Path) -> None:
    """Replace ``site['tariff']`` by the tariff of the file it names (``tariff.file``),
    validated with the file's name in the messages. Keys of the site's block override the
    file's (``currency``, ``demand_charges`` ...), except the two-period keys
    (``peak_*``, ``offpeak_*``), which a file with a table replaces."""
    tar = site.get("tariff")
    if not isinstance(tar, dict) or tar.get("file") in (None, ""):
        return
    if not isinstance(tar["file"], str | Path):
        raise ConfigError(f"{path}: field 'tariff.file': must be a path to a tariff YAML file "
                          f"(got {_short_repr(tar['file'])})")
    fpath = _resolve(path.parent, Path(str(tar["file"])))
    body = _read_yaml(fpath, YAML_MAX_VALUES_TARIFF)
    if "tariff" in body and len(body) == 1 and isinstance(body["tariff"], dict):
        body = dict(body["tariff"])  # a file may hold the block under a 'tariff:' key
    if "file" in body:
        raise ConfigError(f"{fpath}: field 'file': a tariff file cannot name another file")
    cur = tar.get("currency")
    if cur is not None and body.get("currency", cur) != cur:
        raise ConfigError(f"{path}: field 'tariff.currency': {cur!r} differs from the tariff "
                          f"file's currency {body['currency']!r} ({fpath}); drop one")
    # the file gives the tariff; the block's other keys override it (--set tariff.x=...),
    # except the two-period keys, which a file with a table replaces
    table = "periods" in body or "schedule" in body
    keep = {k: v for k, v in tar.items()
            if k != "file" and not (table and k in _LEGACY_DEFAULTS)}
    merged = {**body, **keep, "file": str(fpath)}
    try:
        Tariff.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_errors(fpath, exc)) from exc
    site["tariff"] = merged


def load_site(path: Path, overrides: dict[str, Any] | None = None) -> SiteConfig:
    """Load and validate a site file, applying dotted ``overrides``.

    Raises
    ------
    ConfigError
        With the file, the field and the problem.
    """
    path = Path(path)
    data = _read_yaml(path)
    classes = _class_names(data)
    for k, v in (overrides or {}).items():
        set_dotted(data, k, v)
    _resolve_site_paths(data, path.parent)
    _read_tariff_file(data, path)
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        msg = _unknown_class(path, classes, overrides or {}, exc) or _format_errors(path, exc)
        raise ConfigError(msg) from exc


def _class_names(data: dict[str, Any]) -> tuple[str, ...]:
    """The vehicle classes of a site mapping as read (the defaults when it gives none)."""
    ev = data.get("ev")
    vehicles = ev.get("vehicles") if isinstance(ev, dict) else None
    if isinstance(vehicles, dict):
        return tuple(map(str, vehicles))
    return tuple(_default_vehicles())


def _unknown_class(path: Path, classes: tuple[str, ...], overrides: dict[str, Any],
                   exc: ValidationError) -> str | None:
    """One line for an override that names a vehicle class the site does not define
    (``--set ev.vehicles.bus.p_max_kw=5``) and so creates a class without its required
    fields; None when no override did."""
    incomplete = {str(e["loc"][2]) for e in exc.errors()
                  if e["type"] == "missing" and tuple(e["loc"][:2]) == ("ev", "vehicles")
                  and len(e["loc"]) > 3}
    for key in overrides:
        parts = key.split(".")
        if len(parts) > 3 and parts[:2] == ["ev", "vehicles"] and parts[2] not in classes \
                and parts[2] in incomplete:
            required = [n for n, f in VehicleClass.model_fields.items() if f.is_required()]
            return (f"{path}: field 'ev.vehicles.{parts[2]}': --set {key} names a vehicle "
                    f"class the site does not define; the classes are: {', '.join(classes)} "
                    f"(a new class needs all of {', '.join(required)})")
    return None


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse ``--set dotted.key=value`` items (values are YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write dotted.key=value, e.g. bess.e_capacity_kwh=1500")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: the key is empty")
        try:
            out[key] = yaml.load(raw, Loader=_LimitedLoader)  # a SafeLoader subclass
        except (yaml.YAMLError, _YamlLimitError, RecursionError, ValueError, TypeError,
                OverflowError) as exc:
            raise ConfigError(f"--set {item!r}: the value is not a valid YAML scalar "
                              f"({str(exc)[:120]})") from None
    return out


def load_scenario(path: Path | str, sets: dict[str, Any] | None = None) -> Scenario:
    """Load a scenario file and its site, applying ``--set`` values.

    A ``--set`` key whose first part is a scenario field (``seed``, ``dt``, ``controller``,
    ``output.dir`` ...) changes the scenario; any other key (``bess.e_capacity_kwh``) is a
    site override, like the scenario's own ``overrides:`` mapping.
    """
    path = Path(path)
    return scenario_from_data(path, _read_yaml(path), sets)


def scenario_from_data(path: Path, data: dict[str, Any],
                       sets: dict[str, Any] | None = None) -> Scenario:
    """:func:`load_scenario` of a scenario's mapping ``data`` (paths in it are relative to
    ``path``'s folder; messages name ``path``)."""
    data = dict(data)
    site_over: dict[str, Any] = {}
    for k, v in cli_paths_absolute(sets or {}).items():
        if k.split(".")[0] in SCENARIO_KEYS and k.split(".")[0] not in ("overrides",):
            set_dotted(data, k, v)
        else:
            site_over[k] = v
    if "site" not in data:
        raise ConfigError(f"{path}: field 'site': required field is missing "
                          "(name the site file, e.g. site: ../config/site.yaml)")
    data_site = data.get("site")
    if not isinstance(data_site, str | Path):
        raise ConfigError(f"{path}: field 'site': must be a path to a site YAML file")
    site_path = _resolve(path.parent, Path(str(data_site)))
    data["site"] = str(site_path)
    try:
        cfg = ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from exc
    overrides = dict(cfg.overrides)
    overrides.update(site_over)
    try:
        site = load_site(site_path, overrides)
    except ConfigError as exc:
        if overrides:
            raise ConfigError(f"{exc}\n(overrides applied: {sorted(overrides)})") from exc
        raise
    if cfg.output.dir is not None and not cfg.output.dir.is_absolute():
        cfg = cfg.model_copy(update={"output": cfg.output.model_copy(
            update={"dir": Path.cwd() / cfg.output.dir})})
    cfg = _resolve_input_files(cfg, path.parent)
    if cfg.controller_params:
        cfg = cfg.model_copy(update={"controller_params": resolve_param_paths(
            dict(cfg.controller_params), path.parent)})
    warnings = tuple(w for b in site.batteries for w in b.c_rate_warnings())
    return Scenario(path=path, config=cfg, site=site, site_path=site_path, warnings=warnings)


SCENARIO_ONLY_KEYS = frozenset({"site", "start", "duration", "dt", "seed", "controller",
                                "controller_params", "forecast", "output", "overrides",
                                "faults", "weather", "measured"})


def looks_like_scenario(path: Path) -> bool:
    """True when the YAML file is a scenario (has scenario keys), False for a site file.

    Raises
    ------
    ConfigError
        When the file is empty or holds only comments: there is nothing to validate.
    """
    data = _read_yaml(path)
    if not data:
        raise ConfigError(f"{path}: the file is empty (or only comments): nothing to check. "
                          "A scenario needs at least site, start, duration and dt; a site "
                          "file at least one section (pv, mall, ev, bess ...).")
    return bool(SCENARIO_ONLY_KEYS & set(map(str, data)))

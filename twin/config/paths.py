"""File paths inside the configuration: relative to the file that names them, or (typed on
the command line) to the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.config.scenario import ScenarioConfig


#: controller_params keys (or string values with these suffixes) that name files: resolved
#: relative to the scenario file.
PATH_PARAM_KEYS = ("policy", "path", "file")
PATH_PARAM_SUFFIXES = (".onnx", ".json", ".npz", ".csv", ".parquet", ".yaml", ".yml")


def resolve_param_paths(params: dict[str, Any], base: Path) -> dict[str, Any]:
    """``controller_params`` with relative file paths made relative to ``base`` (a folder)."""
    return {k: str(_resolve(base, Path(v))) if _is_path_param(k, v) else v
            for k, v in params.items()}


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p)


def _resolve_site_paths(site: dict[str, Any], base: Path) -> None:
    for sect, key in (("pv", "file"), ("mall", "file"), ("ev", "profile")):
        s = site.get(sect)
        if isinstance(s, dict) and isinstance(s.get(key), dict) and "path" in s[key]:
            s[key]["path"] = str(_resolve(base, Path(str(s[key]["path"]))))
    ev = site.get("ev")
    if isinstance(ev, dict) and isinstance(ev.get("sessions_file"), str):
        ev["sessions_file"] = str(_resolve(base, Path(ev["sessions_file"])))


#: Dotted site keys that name files (made absolute against the working directory when
#: given on the command line; against the site file's folder when written in it).
SITE_PATH_KEYS = ("pv.file.path", "mall.file.path", "ev.profile.path", "ev.sessions_file",
                  "tariff.file")
#: Dotted scenario keys that name files (absolute against the working directory on the
#: command line).
SCENARIO_PATH_KEYS = ("weather.file", "measured.file")


def _is_path_param(key: str, value: Any) -> bool:
    return isinstance(value, str) and bool(value) and (
        key in PATH_PARAM_KEYS or key.endswith(("_path", "_file"))
        or value.lower().endswith(PATH_PARAM_SUFFIXES))


def cli_paths_absolute(sets: dict[str, Any], cwd: Path | None = None) -> dict[str, Any]:
    """``--set`` values that name files, made absolute against the working directory.

    A path typed on the command line means what the shell means (relative to the working
    directory); a path written in a scenario or site file is relative to that file.
    """
    base = Path.cwd() if cwd is None else cwd
    out: dict[str, Any] = {}
    for k, v in sets.items():
        last = k.rsplit(".", 1)[-1]
        if k == "site" or k in SITE_PATH_KEYS or k in SCENARIO_PATH_KEYS:
            v = str(_resolve(base, Path(str(v)))) if isinstance(v, str | Path) and v else v
        elif k.startswith("controller_params.") and _is_path_param(last, v):
            v = str(_resolve(base, Path(v)))
        elif k == "controller_params" and isinstance(v, dict):
            v = resolve_param_paths(v, base)
        out[k] = v
    return out


def _resolve_input_files(cfg: ScenarioConfig, base: Path) -> ScenarioConfig:
    """The scenario's weather and measured files made relative to its folder."""
    upd: dict[str, Any] = {}
    w = cfg.weather
    if w.file is not None and not w.file.is_absolute():
        upd["weather"] = w.model_copy(update={"file": base / w.file})
    m = cfg.measured
    if m is not None and not m.file.is_absolute():
        upd["measured"] = m.model_copy(update={"file": base / m.file})
    return cfg.model_copy(update=upd) if upd else cfg

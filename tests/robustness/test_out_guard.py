"""The one output guard (issue 16, point 1): every command's output refuses the same
hostile table, and nothing the project did not write is ever deleted or overwritten.

Each case builds a hostile output, snapshots what is there (names, sizes, contents) and
runs the command in-process; the command must exit 2 naming the output, with no
traceback, and the snapshot must be unchanged. A second process holding the output's lock
makes any command exit 2 naming that process's pid.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from twin.app.cli import main
from twin.atomic import MARKER, lock_path

from .conftest import ROOT

#: The commands that write, as (name, kind of output, argv builder from (scenario, run, out)).
Argv = Callable[[Path, Path, str], list[str]]
FOLDER_COMMANDS: dict[str, Argv] = {
    "run": lambda s, r, o: ["run", str(s), "--out", o, "-q"],
    "live": lambda s, r, o: ["live", str(s), "--out", o, "--speed", "1e9",
                             "--metrics-addr", "127.0.0.1:0"],
    "hil": lambda s, r, o: ["hil", str(s), "--out", o],
    "shadow": lambda s, r, o: ["shadow", str(s), "--devices",
                               str(ROOT / "config" / "devices.example.yaml"), "--out", o],
    "report": lambda s, r, o: ["report", str(r), "--out", o, "-q"],
    "export-citylearn": lambda s, r, o: ["export", "citylearn", str(s), "--out", o],
    "train": lambda s, r, o: ["train", str(s), "--out", o, "--steps", "64"],
    "ab": lambda s, r, o: ["ab", str(s), "--controllers", "six_phase,no_bess", "--seeds", "2",
                           "--workers", "1", "--out", o, "-q"],
    "sweep": lambda s, r, o: ["sweep", str(s), "--set", "bess.e_capacity_kwh=1000:2000:1000",
                              "--workers", "1", "--out", o, "-q"],
    # a replay's folder is a run folder (of its counterfactual) with the comparison added
    "replay": lambda s, r, o: ["replay", str(ROOT / "data" / "replay_example"), "--controller",
                               "no_bess", "--out", o, "-q"],
    "calibrate": lambda s, r, o: ["calibrate", str(r), "--out", o, "--bootstrap", "10", "-q"],
}
FILE_COMMANDS: dict[str, Argv] = {
    "size": lambda s, r, o: ["size", str(s), "--out", o, "-q"],
    "export-openmetrics": lambda s, r, o: ["export", "openmetrics", str(r), "-o", o],
}
ALL_COMMANDS = {**FOLDER_COMMANDS, **FILE_COMMANDS}


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (symlinks not followed) with a digest of its content."""
    snap: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                snap[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                snap[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                snap[rel] = "dir"
    return snap


def _user_folder(base: Path) -> tuple[Path, Path]:
    d = base / "mine"
    d.mkdir()
    (d / "thesis.txt").write_text("four years of work")
    return d, base


def _run_folder(base: Path, finished: Path) -> tuple[Path, Path]:
    import shutil

    d = base / "a_run"
    shutil.copytree(finished, d, symlinks=True)
    return d, base


def _file(base: Path) -> tuple[Path, Path]:
    f = base / "notes.json"
    f.write_text('{"mine": true}')
    return f, base


def _project_root_like(base: Path) -> tuple[Path, Path]:
    """A folder holding runs/ (what 'ab'/'sweep' used to accept) and a user's figures/."""
    d = base / "project"
    (d / "runs").mkdir(parents=True)
    (d / "figures").mkdir()
    (d / "figures" / "fig1.png").write_bytes(b"\x89PNG mine")
    (d / "ab.html").write_text("<p>mine</p>")
    return d, base


def _symlink(base: Path) -> tuple[Path, Path]:
    d, _ = _user_folder(base)
    link = base / "link"
    link.symlink_to(d, target_is_directory=True)
    return link, base


def _cwd_ancestor(base: Path) -> tuple[str, Path]:
    work = base / "work" / "sub"
    work.mkdir(parents=True)
    (base / "work" / "keep.txt").write_text("x")
    os.chdir(work)
    return "..", base


def _home(base: Path) -> tuple[str, Path]:
    home = base / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# mine")
    os.environ["HOME"] = str(home)
    return str(home), base


#: The hostile table: case -> builder of (output as typed, folder to snapshot).
CASES: dict[str, Callable[[Path, Path], tuple[Path | str, Path]]] = {
    "user-folder": lambda b, r: _user_folder(b),
    "file-of-someone-else": lambda b, r: _file(b),
    "runs-subfolder-and-figures": lambda b, r: _project_root_like(b),
    "symlink-to-user-folder": lambda b, r: _symlink(b),
    "cwd-ancestor": lambda b, r: _cwd_ancestor(b),
    "home": lambda b, r: _home(b),
    "root": lambda b, r: ("/", b),
    "project": lambda b, r: (ROOT, b),
}


@pytest.fixture
def restore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the chdir and HOME changes of a case."""
    monkeypatch.chdir(Path.cwd())
    monkeypatch.setenv("HOME", os.environ.get("HOME", "/root"))


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, expected 2 (refused); stderr: {err[-500:]}"
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", sorted(ALL_COMMANDS))
def test_every_output_refuses_the_hostile_table(command: str, case: str, day: Path,
                                                finished_run: Path, tmp_path: Path,
                                                restore_env: None,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "hostile"
    base.mkdir()
    out, watch = CASES[case](base, finished_run)
    watched = [watch] if case != "project" else []
    before = [_snapshot(w) for w in watched]
    if case == "project":
        before_top = sorted(p.name for p in ROOT.iterdir())
    err = _refused(ALL_COMMANDS[command](day, finished_run, str(out)), capsys)
    assert str(out) in err or os.path.basename(str(out)) in err, err
    assert [_snapshot(w) for w in watched] == before
    if case == "project":
        assert sorted(p.name for p in ROOT.iterdir()) == before_top


@pytest.mark.parametrize("command", sorted(set(FOLDER_COMMANDS)
                                           - {"run", "live", "hil", "replay", "shadow"}))
def test_a_run_folder_is_not_another_commands_output(command: str, day: Path,
                                                      finished_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A twin run folder is the project's, but not a report/dataset/policy/trial folder."""
    out, base = _run_folder(tmp_path, finished_run)
    before = _snapshot(base)
    _refused(FOLDER_COMMANDS[command](day, finished_run, str(out)), capsys)
    assert _snapshot(base) == before


_HOLDER = textwrap.dedent("""
    import sys, time
    from twin.atomic import output_lock
    with output_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


@pytest.mark.parametrize("command", sorted(ALL_COMMANDS))
def test_a_second_writer_is_refused_naming_the_first(command: str, day: Path,
                                                     finished_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("out.json" if command in FILE_COMMANDS else "out")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        err = _refused(ALL_COMMANDS[command](day, finished_run, str(out)), capsys)
        assert f"pid {holder.pid}" in err, err
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait(10)
    # the lock dies with its process: the output is free again, and no lock file is left
    if command == "run":
        assert main(FOLDER_COMMANDS["run"](day, finished_run, str(out))) == 0
        assert (out / MARKER).is_file() and not lock_path(out).exists()


def test_trial_folder_resumes_and_refuses_user_files(day: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """'twin ab' marks its folder: a rerun resumes it, a file added by hand stops it."""
    out = tmp_path / "trial"
    argv = [*FOLDER_COMMANDS["ab"](day, tmp_path, str(out)), "--no-figures"]
    assert main(argv) == 0
    records = _snapshot(out / "runs")
    assert len(records) == 4
    assert main(argv) == 0  # resume: every run reused, the records untouched
    assert _snapshot(out / "runs") == records
    (out / "figures").mkdir(exist_ok=True)
    (out / "notes.txt").write_text("mine")
    err = _refused(argv, capsys)
    assert "notes.txt" in err
    assert (out / "notes.txt").read_text() == "mine"


def test_size_replaces_its_own_file_only(day: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sizing.json"
    argv = FILE_COMMANDS["size"](day, tmp_path, str(out))
    assert main(argv) == 0
    first = out.read_text()
    assert main(argv) == 0 and out.read_text() == first  # ours: replaced (same content)
    out.write_text('{"scenario": "day", "mine": 1}')
    _refused(argv, capsys)
    assert out.read_text() == '{"scenario": "day", "mine": 1}'


def test_command_line_paths_resolve_against_the_working_directory(
        day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--set controller_params.policy=REL`` means REL from the cwd, not the scenario's."""
    from twin.config import load_scenario

    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    scn = load_scenario(day, {"controller_params.policy": "runs/ppo/policy.onnx",
                              "controller_params.gain": "2"})
    assert scn.config.controller_params["policy"] == str(here / "runs/ppo/policy.onnx")
    assert scn.config.controller_params["gain"] == "2"
    # in the scenario file, the same path is the scenario folder's
    day.write_text(day.read_text() + "controller_params:\n  policy: runs/ppo/policy.onnx\n")
    assert load_scenario(day).config.controller_params["policy"] == str(
        day.parent / "runs/ppo/policy.onnx")

"""Output folders (issue 10, cases 1, 3 and 7): never delete a user's file, never let an
interrupted run replace a complete one, never leave temporary folders behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from twin.app.cli import main
from twin.atomic import MARKER, check_output_dir, clean_stale, read_marker, temp_sibling
from twin.errors import UserError

from .conftest import day_scenario


def _junk(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_folder_with_summary_and_user_file_is_refused(day: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "summary.json").write_text("{}")
    (d / "thesis.docx").write_text("x")
    assert main(["run", str(day), "--out", str(d), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(d) in err and "never deletes or overwrites files it did not write" in err
    assert (d / "thesis.docx").read_text() == "x" and (d / "summary.json").read_text() == "{}"
    assert "Traceback" not in err


def test_run_folder_with_a_user_file_added_is_refused(day: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", str(day), "--out", str(out), "-q"]) == 0
    marker = read_marker(out)
    assert marker is not None and marker["complete"] is True and marker["kind"] == "run"
    assert "summary.json" in marker["files"]
    # a second run replaces the first one
    assert main(["run", str(day), "--out", str(out), "-q"]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["run", str(day), "--out", str(out), "-q"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_a_report_inside_the_run_folder_is_the_projects(day: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(day), "--out", str(out), "-q"]) == 0
    assert main(["report", str(out), "-q"]) == 0
    assert read_marker(out / "report") is not None
    assert main(["run", str(day), "--out", str(out), "-q"]) == 0  # replaces run and report


def test_file_as_out_and_report_out_are_refused(finished_run: Path, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["run", str(day_scenario(tmp_path)), "--out", str(f), "-q"]) == 2
    user = tmp_path / "mine"
    user.mkdir()
    (user / "report.html").write_text("<p>my own page</p>")
    (user / "thesis.docx").write_text("x")
    assert main(["report", str(finished_run), "--out", str(user), "-q"]) == 2
    assert (user / "thesis.docx").exists() and (user / "report.html").exists()


def test_out_dot_leaves_no_junk(day: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["run", str(day), "--out", ".", "-q"]) == 0
    assert (work / "summary.json").is_file() and (work / MARKER).is_file()
    assert main(["run", str(day), "--out", ".", "-q"]) == 0  # replace in place
    assert Path.cwd() == work and (work / "summary.json").is_file()
    assert _junk(tmp_path) == [] and _junk(work) == []


def test_stale_temp_folders_are_cleaned_by_the_next_run(day: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    dead = tmp_path / ".run.tmp-999999999-abcd1234"  # a PID that cannot exist
    dead.mkdir()
    (dead / "timeseries.parquet").write_bytes(b"x" * 1000)
    old = tmp_path / ".run.old-999999999-zz"
    old.mkdir()
    legacy = tmp_path / ".run.tmp-k2j3h4g5"  # older versions: no PID
    legacy.mkdir()
    live = temp_sibling(out)  # ours, alive: kept
    assert main(["run", str(day), "--out", str(out), "-q"]) == 0
    assert _junk(tmp_path) == [live.name]
    shutil.rmtree(live)
    assert clean_stale(out) == []


def test_interrupted_run_never_replaces_a_complete_one(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from twin.config import load_scenario
    from twin.engine import Twin, get_controller
    from twin.engine.results import build_results, write_results

    scn = load_scenario(day_scenario(tmp_path))
    out = tmp_path / "run"

    def run(stop_at: int | None) -> Path:
        twin = Twin(scn, get_controller(scn))
        if stop_at is not None:
            def on_step(k: int) -> None:
                if k == stop_at:
                    raise KeyboardInterrupt
            twin.on_step = on_step
        return write_results(build_results(twin.run()), out)

    # no complete run yet: the partial run goes to OUT, marked partial
    assert run(5) == out.absolute()
    assert read_marker(out)["complete"] is False  # type: ignore[index]
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr()
    assert "PARTIAL RUN" in shown.out and "PARTIAL" in shown.err
    # a complete run replaces the partial one
    assert run(None) == out.absolute()
    assert read_marker(out)["complete"] is True  # type: ignore[index]
    summary = (out / "summary.json").read_text()
    # an interrupted run now goes next to it
    partial = run(3)
    assert partial == out.absolute().with_name("run.partial")
    assert (out / "summary.json").read_text() == summary
    assert json.loads((partial / "summary.json").read_text())["steps_done"] == 4
    # the report says so loudly
    assert main(["report", str(partial), "--out", str(tmp_path / "rep"), "-q"]) == 0
    assert "PARTIAL RUN" in (tmp_path / "rep" / "report.html").read_text()


def test_check_output_dir_is_the_one_check(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "new") == (tmp_path / "new").absolute()
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")
    d = tmp_path / "user"
    d.mkdir()
    (d / "a.txt").write_text("x")
    with pytest.raises(UserError, match="user"):
        check_output_dir(d)
    (d / MARKER).write_text('{"kind": "report", "files": ["a.txt"]}')
    with pytest.raises(UserError, match="report folder"):
        check_output_dir(d, "run")
    check_output_dir(d, "report")
    (d / MARKER).write_text("[not json")
    with pytest.raises(UserError):
        check_output_dir(d, "report")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_out_is_a_user_error(day: Path, tmp_path: Path) -> None:
    d = tmp_path / "locked"
    d.mkdir()
    (d / "x").write_text("x")
    d.chmod(0)
    try:
        assert main(["run", str(day), "--out", str(d), "-q"]) == 2
    finally:
        d.chmod(0o755)


def test_export_never_overwrites_a_user_file(finished_run: Path, tmp_path: Path) -> None:
    mine = tmp_path / "thesis.docx"
    mine.write_text("x")
    assert main(["export", "openmetrics", str(finished_run), "-o", str(mine)]) == 2
    assert mine.read_text() == "x"
    om = tmp_path / "run.om"
    assert main(["export", "openmetrics", str(finished_run), "-o", str(om)]) == 0
    assert main(["export", "openmetrics", str(finished_run), "-o", str(om)]) == 0  # ours: ok

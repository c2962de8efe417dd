"""The light install (issue 20, point 5): the run time needs no training extra.

A subprocess in which the training packages cannot be imported (a finder first on
``sys.meta_path`` raises ``ModuleNotFoundError`` for them, as in a venv without them)
runs the demo path (``twin run`` with the ONNX ``rl`` controller, then ``twin report``)
and imports none of them; ``twin train`` there says how to install the extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, day_scenario

#: The ``train`` extra of pyproject.toml and what it pulls in.
TRAIN_ONLY = ("torch", "gymnasium", "stable_baselines3", "onnx")

_SHIM = """
import importlib.abc, json, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:  # `import m` fails, as without the extra
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Blocked())
from twin.app.cli import main
rc = main({argv!r})
print(json.dumps({{"rc": rc, "loaded": sorted(m for m in sys.modules if m.split('.')[0] in {watch!r}
                                           and sys.modules[m] is not None)}}))
"""


def _twin_without_train(argv: list[str], cwd: Path) -> tuple[dict[str, object], str]:
    code = _SHIM.format(blocked=TRAIN_ONLY, argv=argv, watch=(*TRAIN_ONLY, "sklearn"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


def test_the_demo_path_runs_the_rl_controller_without_the_training_extra(tmp_path: Path) -> None:
    scn = day_scenario(tmp_path, controller="rl")
    res, err = _twin_without_train(["run", str(scn), "--out", str(tmp_path / "run"), "-q"], tmp_path)
    assert res["rc"] == 0, err
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["controller"] == "rl"
    res, err = _twin_without_train(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep")],
                                   tmp_path)
    assert res["rc"] == 0, err
    assert res["loaded"] == []


def test_train_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    scn = day_scenario(tmp_path, duration="3d")
    for blocked in (TRAIN_ONLY, ("torch",)):  # nothing of the extra, or torch alone missing
        code = _SHIM.format(blocked=blocked, argv=["train", str(scn), "--steps", "64", "--out",
                                                   str(tmp_path / "pol")], watch=())
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
        assert json.loads(p.stdout.strip().splitlines()[-1])["rc"] == 2, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, p.stderr
        assert "Traceback" not in p.stderr
        assert "pip install 'pvbess-twin[train]'" in lines[0] and any(
            f"{m} is missing" in lines[0] for m in blocked), lines
        assert not (tmp_path / "pol").exists()


def test_make_demo_installs_the_run_time_only() -> None:
    make = subprocess.run(["make", "-n", "demo", "VENV=/nonexistent-venv"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert make.returncode == 0, make.stderr
    installs = [ln for ln in make.stdout.splitlines() if "pip install" in ln and "--upgrade pip" not in ln]
    assert installs and all("[" not in ln for ln in installs), installs
    test = subprocess.run(["make", "-n", "test", "VENV=/nonexistent-venv"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert any("'.[dev,train]'" in ln for ln in test.stdout.splitlines()), test.stdout

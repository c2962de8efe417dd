"""``python -m simulators`` as a child process of ``twin hil`` (ephemeral loopback ports).

The child dies with its parent (``PR_SET_PDEATHSIG`` on Linux, and a kill on every exit
path of the parent) and runs in its own session (a terminal's Ctrl-C reaches the parent
only, which stops it after writing the steps done), announces its ports on a JSON "ready"
line and, when stopped, prints a JSON report of its own diagnostics (server-side counts,
device fallbacks, faults).
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class HilError(Exception):
    """The HIL run cannot go on (simulator did not start, devices do not answer ...)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM when the parent dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class SimulatorProcess:
    """``python -m simulators`` in a subprocess on ephemeral loopback ports.

    Parameters
    ----------
    scenario : scenario file.
    registers : register-map folder, or None for the shipped one.
    clock : ``lockstep`` or ``realtime``.
    speed : realtime: simulated seconds per wall second.
    sets : ``--set KEY=VALUE`` overrides (so that both sides run the same scenario).
    """

    def __init__(self, scenario: Path, registers: Path | None = None, clock: str = "lockstep",
                 speed: float = 1.0, sets: Sequence[str] = ()) -> None:
        self.scenario = scenario
        self.sets = tuple(sets)
        self.registers = registers
        self.clock = clock
        self.speed = speed
        self.proc: subprocess.Popen[str] | None = None
        self.ports: dict[str, int] = {}
        self.host = "127.0.0.1"
        self._stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.report: dict[str, Any] | None = None

    def start(self, timeout_s: float = 120.0) -> dict[str, int]:
        """Start and wait for the READY line (an event, not a sleep); return the ports."""
        if not (ROOT / "simulators" / "__main__.py").exists():
            raise HilError(f"the simulators package is not in {ROOT}")
        cmd = [sys.executable, "-m", "simulators", "--scenario", str(self.scenario),
               "--host", self.host, "--port", "0", "--clock", self.clock,
               "--speed", repr(float(self.speed))]
        if self.registers is not None:
            cmd += ["--registers", str(self.registers)]
        for item in self.sets:
            cmd += ["--set", item]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, cwd=str(ROOT), env=env,
                                     preexec_fn=_die_with_parent if sys.platform == "linux"
                                     else None,
                                     # a terminal's Ctrl-C goes to twin hil only, which stops
                                     # between two steps and then stops the simulator itself
                                     start_new_session=True)
        proc = self.proc

        def pump_out() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self._lines.put(line)
            self._lines.put(None)

        def pump_err() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self._stderr.append(line)

        threading.Thread(target=pump_out, daemon=True).start()
        threading.Thread(target=pump_err, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise HilError(f"the simulator did not get ready within {timeout_s:g} s") from None
            if line is None:
                rc = proc.wait()
                msg = "".join(self._stderr).strip() or f"exit status {rc}"
                raise HilError(f"the simulator did not start: {msg}")
            ready = _json(line)
            if ready.get("ready"):
                self.ports = {k: int(v) for k, v in ready["ports"].items()}
                self.host = str(ready.get("host", self.host))
                return self.ports

    def wait_report(self, timeout_s: float = 60.0) -> dict[str, Any] | None:
        """Wait for the simulator to stop and return its JSON report (None if it has none)."""
        if self.proc is None:
            return None
        deadline = time.monotonic() + timeout_s
        while self.report is None:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            msg = _json(line)
            if msg.get("stopped"):
                self.report = msg
        self.wait(max(1.0, deadline - time.monotonic()))
        return self.report

    def wait(self, timeout_s: float = 60.0) -> int:
        """Wait for the simulator to exit; kill it after ``timeout_s``."""
        if self.proc is None:
            return 0
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        """Stop the simulator process (ours, by its handle)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def stderr(self) -> str:
        """What the simulator printed on stderr."""
        return "".join(self._stderr)


def _json(line: str) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return msg if isinstance(msg, dict) else {}


__all__ = ["HilError", "SimulatorProcess"]

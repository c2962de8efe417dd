"""A real-time simulator process playing a site for the shadow tests (test helper)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def start_simulator(tmp: Path, scenario: Path, speed: float, sets: dict[str, Any],
                    *extra: str, name: str = "site") -> tuple[subprocess.Popen[str], Path]:
    """``python -m simulators`` in real time at ``speed`` with its own EMS on the battery
    (``--local-ems``), ``--set`` for each of ``sets``, on ephemeral loopback ports; returns
    the process and the devices file naming its servers (``tmp/NAME-devices.yaml``)."""
    cmd = [sys.executable, "-m", "simulators", "--scenario", str(scenario), "--clock",
           "realtime", "--speed", str(speed), "--port", "0", "--local-ems", *extra]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    ports = json.loads(proc.stdout.readline())["ports"]
    dev = {"devices": {d: {"host": "127.0.0.1", "port": int(p), "map": d}
                       for d, p in ports.items()}}
    path = tmp / f"{name}-devices.yaml"
    path.write_text(yaml.safe_dump(dev))
    return proc, path


def stop_simulator(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """SIGTERM; the simulator's last JSON line on stdout is its report (server counts)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}

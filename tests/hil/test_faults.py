"""Every fault kind × device (BESS, chargers) from ``scenarios/hil_faults.yaml``: no crash,
no missing step, failsafe engaged within the device timeout, recovery, counts and logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from adapters.modbus.regmap import load_register_map, shipped_map
from twin.app.hil import run_hil, write_hil
from twin.config import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "hil_faults.yaml"
KINDS = ("connection_drop", "response_delay", "exception", "garbage", "frozen", "device_fault")
COMM_KINDS = ("connection_drop", "response_delay", "exception")  # writes stop reaching it
DT = 900.0


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rec = _Records()
    for name in ("adapters.modbus", "twin.app.hil"):
        logging.getLogger(name).addHandler(rec)
    try:
        out = tmp_path_factory.mktemp("faults")
        summary = write_hil(run_hil(load_scenario(SCENARIO)), out)
    finally:
        for name in ("adapters.modbus", "twin.app.hil"):
            logging.getLogger(name).removeHandler(rec)
    return {"summary": summary, "steps": pd.read_csv(out / "hil_steps.csv"),
            "sim_log": (out / "hil_simulator.log").read_text(),
            "ts": pd.read_parquet(out / "timeseries.parquet"), "logs": rec.messages}


def test_run_completes_every_step(faulted: dict[str, Any]) -> None:
    s = faulted["summary"]
    assert s["steps_done"] == 96 and not s["interrupted"]
    assert len(faulted["ts"]) == 96 and len(faulted["steps"]) == 96
    assert faulted["ts"]["pv_kwh"].notna().all()
    assert s["energy_balance_residual_max_kwh"] < 1e-6
    assert len(s["hil"]["faults"]) == 12


def _fault(s: dict[str, Any], device: str, kind: str) -> dict[str, Any]:
    (f,) = [f for f in s["hil"]["faults"] if f["device"] == device and f["kind"] == kind]
    return f


@pytest.mark.parametrize("device", ["bess", "chargers"])
@pytest.mark.parametrize("kind", KINDS)
def test_fault(faulted: dict[str, Any], device: str, kind: str) -> None:
    s, st, ts = faulted["summary"], faulted["steps"], faulted["ts"]
    f = _fault(s, device, kind)
    f0 = int(f["time_s"] // DT)
    assert f["steps"] == 4 and f["first_step"] == f0 and f["last_step"] == f0 + 3
    valid = st["bess_valid" if device == "bess" else "sockets_valid"].to_numpy()
    during = np.arange(f0, f0 + 4)
    # telemetry marked invalid: at once for garbage / device fault, after the second
    # error (invalid_after_errors = 2) or one silent heartbeat period otherwise
    first_invalid = f0 if kind in ("garbage", "device_fault") else f0 + 1
    assert not valid[first_invalid:f0 + 4].any(), valid[f0 - 1:f0 + 6]
    assert valid[f0 - 2:f0].all()
    # failsafe engaged within the device timeout
    bmap, cmap = load_register_map(shipped_map("bess")), load_register_map(shipped_map("chargers"))
    if kind in COMM_KINDS:
        # the controller's writes no longer arrive: the device falls back on its own once
        # its timeout has run since the last write (step f0 - 1)
        timeout = (bmap if device == "bess" else cmap).default(
            "revert_timeout_s" if device == "bess" else "comm_timeout_s")
        engaged = during[(during - (f0 - 1)) * DT >= timeout]
        assert len(engaged) >= 2
        if device == "bess":
            assert st["bess_reverted"].to_numpy()[engaged].all()
            assert (st["bess_applied_kw"].to_numpy()[engaged] == 0.0).all()
        else:
            assert (st["chargers_failsafe"].to_numpy()[engaged] == 38).all()
        assert (st["write_errors"].to_numpy()[during] & (1 if device == "bess" else 2)).all()
    else:
        # the device still listens: the safety layer commands the safe setpoints
        bad = np.arange(first_invalid, f0 + 4)
        if device == "bess":
            assert (ts["p_bess_command_kw"].to_numpy()[bad] == 0.0).all()
            assert (st["bess_applied_kw"].to_numpy()[bad] == 0.0).all()
        else:
            fs_kw = cmap.default("failsafe_power_w") / 1000.0
            p_sock = ts.filter(regex=r"^p_socket_\d+_kw$").to_numpy()[bad]
            cap = 0.0 if kind == "device_fault" else fs_kw
            assert (p_sock <= cap + 1e-4).all()
        assert not st["bess_reverted"].to_numpy()[bad].any()
        assert not (st["chargers_failsafe"].to_numpy()[bad] > 0).any()
    # recovery after the fault: valid again, no fallback, writes go through
    after = np.arange(f0 + 4, f0 + 6)
    assert valid[after].all()
    assert not st["bess_reverted"].to_numpy()[after].any()
    assert (st["chargers_failsafe"].to_numpy()[after] == 0).all()
    assert (st["write_errors"].to_numpy()[after] == 0).all()
    # counted in the summary
    d = s["hil"]["devices"][device]
    srv = d["server"]
    reasons = d["invalid_by_reason"]
    if kind == "connection_drop":
        assert srv["connections_dropped"] > 0 and d["reconnects"] > 0 and reasons["comm"] > 0
    elif kind == "response_delay":
        assert srv["delayed"] > 0 and d["timeouts"] > 0 and d["retries"] > 0
    elif kind == "exception":
        assert srv["exceptions_sent"] > 0 and d["exceptions"] > 0
    else:
        assert reasons[kind] == (3 if kind == "frozen" else 4)
    assert d["errors"] > 0 or kind in ("garbage", "frozen", "device_fault")


def test_faults_and_recoveries_are_logged(faulted: dict[str, Any]) -> None:
    logs = faulted["logs"]
    for dev in ("bess", "chargers"):
        assert any(f"modbus {dev}: communication error" in m for m in logs)
        assert any(f"modbus {dev}: communication restored" in m for m in logs)
        for reason in ("comm", "garbage", "frozen", "device_fault"):
            assert any(f"modbus {dev}: telemetry invalid ({reason})" in m for m in logs), reason
        assert any(f"modbus {dev}: telemetry valid again" in m for m in logs)
        assert any(f"modbus {dev}: write failed" in m for m in logs)
    s = faulted["summary"]["hil"]
    assert s["steps_bess_reverted"] >= 6 and s["steps_chargers_failsafe"] >= 6
    sim_log = faulted["sim_log"]
    assert "bess no WSet within WSetRvrtTms: reverted" in sim_log
    assert "chargers comm timeout: 38 sockets on failsafe power" in sim_log
    assert "failsafe ended" in sim_log and "setpoint control resumed" in sim_log
    for kind in KINDS:
        assert f"fault {kind} on bess starts" in sim_log
        assert f"fault {kind} on chargers ends" in sim_log

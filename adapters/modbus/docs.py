"""Render ``docs/registers.md`` from the register maps (the maps are the only source).

``python -m adapters.modbus.docs > docs/registers.md``; a test checks the file is current.
"""

from __future__ import annotations

from typing import Any

import yaml

from adapters.modbus.regmap import REGISTER_DIR, RegisterMap, load_register_map

HEADER = """# Register maps

Generated from `config/registers/*.yaml` by `python -m adapters.modbus.docs` (do not edit by
hand; a test checks it is current). The adapters (`adapters/modbus/`) and the simulators
(`simulators/`) both load these files: an address exists in one place only.

All devices use holding registers (function codes 3, 6, 16), unit id 1, one TCP port per
device (`python -m simulators` prints them; with `--port P` they are P..P+5 in the order
bess, chargers, pv_inverter, site_meter, sim_clock, weather_station). 32-bit values are big-endian word
order. "RW" registers are the only ones a controller may write; the simulators answer a
write anywhere else with exception 2 (illegal address), and the adapters never send one.
"""

SUNSPEC_NOTE = """Layout built from pysunspec2's model definitions: "SunS" at {base}, then the
models back to back (ID, L, points), then the end model (0xFFFF, 0). Any SunSpec client
(pysunspec2's included) discovers it by scanning. Values shown are scale factors set by the
map; points not listed are present as SunSpec "not implemented" values.
"""


def _sunspec(m: RegisterMap, raw: dict[str, Any]) -> str:
    out = [SUNSPEC_NOTE.format(base=m.start), "",
           "| model | address | length | points used by the twin (address, access) |",
           "|---|---|---|---|"]
    used = {
        "1": ("Mn", "Md", "SN"),
        "802": ("WHRtg", "WChaRteMax", "WDisChaRteMax", "SoCMax", "SoCMin", "SoC", "SoH", "ChaSt",
                "Hb", "CtrlHb", "State", "Evt1", "W", "SoC_SF", "W_SF"),
        "704": ("WSetEna", "WSetMod", "WSet", "WSetRvrt", "WSetRvrtTms", "WSetRvrtRem", "WSet_SF"),
        "701": ("TotWhInj", "TotWhAbs", "TotWh_SF"),
        "103": ("W", "W_SF", "WH", "WH_SF", "St"),
        "203": ("W", "W_SF", "TotWhExp", "TotWhImp", "TotWh_SF"),
        "308": ("GHI", "TmpBOM", "TmpAmb"),
    }
    for name, b in m.blocks.items():
        pts = ", ".join(f"{p} {b.points[p].address} {'RW' if b.points[p].writable else 'R'}"
                        for p in used.get(name, ()) if p in b.points)
        out.append(f"| {name} | {b.address} | {b.stride} | {pts} |")
    out.append(f"| end | {m.end - 2} | 2 | 0xFFFF, 0 |")
    sfs = [f"{md['id']}: " + ", ".join(f"{k} {v}" for k, v in md.get("scale_factors", {}).items())
           for md in raw.get("models", []) if md.get("scale_factors")]
    if sfs:
        out += ["", "Scale factors: " + "; ".join(sfs) + "."]
    return "\n".join(out)


def _table(m: RegisterMap, raw: dict[str, Any]) -> str:
    out = ["| block | address | rows | point | offset | type | units | access | meaning |",
           "|---|---|---|---|---|---|---|---|---|"]
    docs = {(bd["name"], p["name"]): p.get("doc", "") for bd in raw.get("blocks", [])
            for p in bd["points"]}
    for name, b in m.blocks.items():
        rows = f"{b.count} × {b.stride}" if b.count > 1 else "1"
        for pname, p in b.points.items():
            addr = f"{b.address}" if b.count == 1 else f"{b.address} + {b.stride} i"
            meaning = docs.get((name, pname), "") or ""
            if p.symbols:
                meaning += " (" + ", ".join(f"{v} {k}" for k, v in p.symbols.items()) + ")"
            out.append(f"| {name} | {addr} | {rows} | {pname} | {p.address - b.address} | "
                       f"{p.type} | {p.units or ''} | {'RW' if p.writable else 'R'} | "
                       f"{meaning.strip()} |")
    return "\n".join(out)


def render() -> str:
    """The whole ``docs/registers.md``."""
    parts = [HEADER]
    for dev in ("bess", "chargers", "pv_inverter", "site_meter", "sim_clock", "weather_station"):
        path = REGISTER_DIR / f"{dev}.yaml"
        m = load_register_map(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parts.append(f"## {dev} (`config/registers/{dev}.yaml`)\n")
        if raw.get("description"):
            parts.append(f"{raw['description']}.\n")
        parts.append(_sunspec(m, raw) if m.protocol == "sunspec" else _table(m, raw))
        if m.defaults:
            parts.append("\nDevice settings (`defaults:`): " + ", ".join(
                f"{k} = {v:g}" for k, v in m.defaults.items()) + ".")
        parts.append("")
    parts.append(BEHAVIOUR)
    return "\n".join(parts).rstrip() + "\n"


BEHAVIOUR = """## Device behaviour (simulators)

* **BESS**: applies `WSet` [W] (+ discharge / − charge) while `WSetEna` = 1. Once a
  controller has written `WSet`, no new `WSet` for `WSetRvrtTms` seconds makes it revert to
  `WSetRvrt` (0 W) until the next write (`WSetRvrtRem` counts down). `Hb` increments at
  every update; `CtrlHb` is the controller's heartbeat (the adapter writes it at least every
  `heartbeat_timeout_s / 2`). In a fault `State` = 99 (FAULT), `Evt1` bit 25 (OTHER_ALARM)
  is set and the battery delivers 0 W.
* **Chargers**: each socket delivers min(`p_limit`, vehicle request). Once a controller has
  written the control block (`controller_heartbeat` + `p_limit`, one write), no write for
  `comm_timeout_s` seconds puts every socket on its `failsafe_power` until the next write
  (`n_failsafe`, per-socket `failsafe`). Power-on limits are the socket ratings (no energy
  manager: full power). `device_heartbeat` increments at every update. In a fault
  `station_state` = 2 and every socket is in IEC state F, delivering 0 W.
* **Meters**: `W` is the mean power over the step that starts now.
* **Weather station** (SunSpec 308, read-only; a write is refused with exception 2 and
  counted): `GHI` [W/m², 1 W/m² resolution] is the scenario's cloud-model irradiance, the
  mean over the step that starts now (the same clouds as the PV power); `TmpAmb` [0.1 °C]
  the PV model's air temperature at mid-step and `TmpBOM` [0.1 °C] a back-of-module
  temperature (Faiman model on GHI). 308's scale factors are fixed by the model (no `*_SF`
  points). No weather station when the site's PV comes from a file.
* **PV trip** (`python -m simulators --fault pv_trip@TIME:FRACTION`): from TIME on the
  inverter's `W` and `WH` (and the plant) lose FRACTION of the array's power; the weather
  station is unaffected, so shadow mode sees the loss against the measured irradiance.
* **Energy counters** [Wh, × 10^scale factor]: the energy since the simulator started, the
  same energies the run records (power × step length, summed): PV inverter `103.WH` = PV
  energy (`pv_kwh`); site meter `203.TotWhImp` = energy the mall drew (`mall_kwh`),
  `203.TotWhExp` = energy it fed back (none with the shipped profiles); BESS
  `701.TotWhInj` = energy discharged, `701.TotWhAbs` = energy charged (AC side,
  `bess_discharge_kwh` / `bess_charge_kwh`; SunSpec 802 has no energy counter, so the map
  adds 701, DER AC measurement, after 704). Updated after every step, rounded to the scale
  factor's resolution; they never decrease. `acc32` counters roll over modulo 2^32 as
  SunSpec specifies (with `*_SF` 3 after 4.29 TWh), and read 0 ("not implemented") until
  energy has flowed; the `uint64` ones of 701 saturate. A `frozen` fault stops their
  update, not their counting.
* **Clock (lockstep)**: write `step + 1` to `tick` after the step's setpoints; the
  simulator answers once the plant has run the step and every device is updated. Writing
  the current `step` again is a no-op (a retried tick never runs a step twice); any other
  value is refused with exception 3.
* Device time is simulated time: timeouts are evaluated at step starts.
"""


if __name__ == "__main__":
    print(render(), end="")

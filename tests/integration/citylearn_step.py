"""Run by a separate venv with CityLearn 3.0.2: load an exported dataset and step it.

Usage: python citylearn_step.py SCHEMA_JSON N_STEPS [STORAGE_ACTION | @ACTIONS_JSON]
  -> one JSON line of figures.

Every charger acts at 1.0 (full power, as the twin's ``no_bess``); the battery at
STORAGE_ACTION every step (default 0.0: idle; -1.0: full discharge), or at the per-step
actions listed in the JSON file ACTIONS_JSON. Energies are CityLearn's own
per-step series over the steps it simulated [kWh].
"""

import json
import sys

import numpy as np
from citylearn.citylearn import CityLearnEnv


def main() -> None:
    schema, n = sys.argv[1], int(sys.argv[2])
    arg = sys.argv[3] if len(sys.argv) > 3 else "0.0"
    if arg.startswith("@"):
        with open(arg[1:]) as f:
            storage_actions = [float(a) for a in json.load(f)]
    else:
        storage_actions = [float(arg)] * n
    env = CityLearnEnv(schema, central_agent=True)
    env.reset()
    b = env.buildings[0]
    steps = 0
    connected = 0
    violation_kwh = 0.0
    for i in range(n):
        connected += sum(c.connected_electric_vehicle is not None for c in b.electric_vehicle_chargers)
        act = [[storage_actions[i] if name == "electrical_storage" else 1.0 for name in env.action_names[0]]]
        _obs, _reward, terminated, truncated, _ = env.step(act)
        violation_kwh += float(b._charging_constraint_last_penalty_kwh)
        steps += 1
        if terminated or truncated:
            break
    t = int(env.time_step)  # steps simulated (an episode of N rows simulates N - 1)
    net = np.asarray(b.net_electricity_consumption[:t], float)
    storage = np.asarray(b.electrical_storage_electricity_consumption[:t], float)
    print(json.dumps({
        "steps": steps,
        "time_step": t,
        "seconds_per_time_step": float(env.seconds_per_time_step),
        "n_chargers": len(b.electric_vehicle_chargers or []),
        "n_actions": len(env.action_names[0]),
        "non_shiftable_load_kwh": float(sum(b.energy_simulation.non_shiftable_load[:steps])),
        "solar_generation_kwh": float(-sum(b.solar_generation[:steps])),
        "connected_charger_steps": int(connected),
        "battery_capacity_kwh": float(b.electrical_storage.capacity),
        "pv_nominal_kw": float(b.pv.nominal_power),
        "export_limit_kw": b._electrical_service_limits["total"]["export_kw"],
        "net_kwh": net.tolist(),
        "ev_kwh": float(np.sum(b.chargers_electricity_consumption[:t])),
        "storage_discharge_kwh": float(-np.clip(storage, None, 0.0).sum()),
        "violation_kwh": violation_kwh,
    }))


if __name__ == "__main__":
    main()

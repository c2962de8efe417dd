"""Run by a separate venv with CityLearn 3.0.2: load an exported dataset and step it.

Usage: python citylearn_step.py SCHEMA_JSON N_STEPS  -> prints one JSON line of figures.
"""

import json
import sys

from citylearn.citylearn import CityLearnEnv


def main() -> None:
    schema, n = sys.argv[1], int(sys.argv[2])
    env = CityLearnEnv(schema, central_agent=True)
    env.reset()
    b = env.buildings[0]
    steps = 0
    connected = 0
    for _ in range(n):
        connected += sum(c.connected_electric_vehicle is not None for c in b.electric_vehicle_chargers)
        # battery idle, every charger at full power
        act = [[0.0 if name == "electrical_storage" else 1.0 for name in env.action_names[0]]]
        _obs, _reward, terminated, truncated, _ = env.step(act)
        steps += 1
        if terminated or truncated:
            break
    print(json.dumps({
        "steps": steps,
        "time_step": int(env.time_step),
        "seconds_per_time_step": float(env.seconds_per_time_step),
        "n_chargers": len(b.electric_vehicle_chargers or []),
        "n_actions": len(env.action_names[0]),
        "non_shiftable_load_kwh": float(sum(b.energy_simulation.non_shiftable_load[:steps])),
        "solar_generation_kwh": float(-sum(b.solar_generation[:steps])),
        "connected_charger_steps": int(connected),
        "battery_capacity_kwh": float(b.electrical_storage.capacity),
        "pv_nominal_kw": float(b.pv.nominal_power),
    }))


if __name__ == "__main__":
    main()

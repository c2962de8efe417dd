"""Rebuild ``data/weather/iquitos_pvgis_tmy.csv`` from the seed project's stored PVGIS TMY.

The seed project (github.com/Mac-Tapia/dise-opvbesscar) downloaded a PVGIS TMY for Iquitos
with ``pvlib.iotools.get_pvgis_tmy(-3.75, -73.25, startyear=2005, endyear=2020)`` and stored
it, relabelled, in ``data/oe2/Generacionsolar/pv_generation_hourly_citylearn_v2.csv``: its
8,760 hourly rows were rolled by -5 h (``np.roll(values, -5)``: UTC -> America/Lima) and
labelled 2024-01-01 00:00-05:00 onwards (so from February 29 the labels run one day early and
December 31 is missing). This script undoes the roll and writes the rows in the TMY's own
order, keyed by the UTC month, day and hour of a non-leap year, keeping only the weather
columns (irradiance, air temperature, wind).

Usage::

    git -C SEED show ed23ec72a945f1f9c490a1d7803f5c0a10801fb6:\
data/oe2/Generacionsolar/pv_generation_hourly_citylearn_v2.csv > /tmp/seed_pv.csv
    python scripts/import_seed_pvgis_tmy.py /tmp/seed_pv.csv data/weather/iquitos_pvgis_tmy.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

#: Seed column -> shipped column.
COLUMNS = {"ghi_wm2": "ghi_w_m2", "dni_wm2": "dni_w_m2", "dhi_wm2": "dhi_w_m2",
           "temp_air_c": "temp_air_c", "wind_speed_ms": "wind_speed_m_s"}
UTC_OFFSET_H = 5  # the seed rolled the UTC rows by -5 h to label them in Lima time


def convert(seed_csv: Path) -> pd.DataFrame:
    """The TMY in its own hour order (UTC, non-leap year), from the seed's relabelled file."""
    seed = pd.read_csv(seed_csv)
    if len(seed) != 8760:
        raise ValueError(f"{seed_csv}: expected 8760 hourly rows, got {len(seed)}")
    values = np.roll(seed[list(COLUMNS)].to_numpy(dtype=np.float64), UTC_OFFSET_H, axis=0)
    t = pd.date_range("2023-01-01 00:00", periods=8760, freq="h")  # any non-leap year
    out = pd.DataFrame(values, columns=list(COLUMNS.values()))
    out.insert(0, "hour_utc", t.hour)
    out.insert(0, "day", t.day)
    out.insert(0, "month", t.month)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = convert(Path(argv[0]))
    out.to_csv(argv[1], index=False, float_format="%.2f")
    print(f"wrote {argv[1]}: {len(out)} rows, GHI {out['ghi_w_m2'].sum() / 1000:.1f} kWh/m²/yr")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

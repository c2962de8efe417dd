"""Monthly mean daily GHI [kWh/m²/day] of the shipped Iquitos PVGIS TMY (the PV model's targets).

Reads ``data/weather/iquitos_pvgis_tmy.csv`` (see the README next to it) and prints the 12
values, January first, in the form used by ``pv.ghi_monthly_kwh_m2_day`` in
``config/site.yaml`` (and ``IQUITOS_GHI_MONTHLY_KWH_M2_DAY`` in ``twin/config/site.py``)::

    python scripts/pvgis_monthly_targets.py [path/to/tmy.csv]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

DEFAULT = Path(__file__).resolve().parents[1] / "data" / "weather" / "iquitos_pvgis_tmy.csv"


def monthly_ghi_kwh_m2_day(path: Path = DEFAULT) -> pd.Series:
    """Mean daily GHI per calendar month [kWh/m²/day] of an hourly TMY file, index 1..12.

    Months are the TMY's UTC months; at Iquitos (UTC-5) the five hours that move across a
    month boundary in local time are night hours, so local months give the same sums.
    """
    tmy = pd.read_csv(path)
    if len(tmy) != 8760:
        raise ValueError(f"{path}: expected 8760 hourly rows, got {len(tmy)}")
    by_month = tmy.groupby("month")
    kwh_m2 = by_month["ghi_w_m2"].sum() / 1000.0
    days = by_month.size() / 24.0
    return kwh_m2 / days


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    g = monthly_ghi_kwh_m2_day(path)
    days = pd.Series([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], index=range(1, 13))
    print(f"# {path.name}: annual GHI {float((g * days).sum()):.1f} kWh/m²")
    print("ghi_monthly_kwh_m2_day: [" + ", ".join(f"{v:.3f}" for v in g) + "]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

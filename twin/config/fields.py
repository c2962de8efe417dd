"""Building blocks of the configuration models: the strict base model, physical bounds and
the constrained number types (units in the names), and a measured-profile reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)


#: Physical upper bounds: far above any real site, low enough that no product, sum or
#: annual total of the model can overflow a float [kW, kWh].
MAX_KW = 1e6
MAX_KWH = 1e7

NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Frac = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Hour = Annotated[float, Field(ge=0.0, le=24.0, allow_inf_nan=False)]
PowerKw = Annotated[float, Field(ge=0.0, le=MAX_KW, allow_inf_nan=False)]
PosPowerKw = Annotated[float, Field(gt=0.0, le=MAX_KW, allow_inf_nan=False)]
EnergyKwh = Annotated[float, Field(ge=0.0, le=MAX_KWH, allow_inf_nan=False)]
Price = Annotated[float, Field(ge=0.0, le=1e3, allow_inf_nan=False)]
Width = Annotated[float, Field(gt=0.0, le=24.0, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)]


class ProfileFile(_Strict):
    """A measured profile: CSV or Parquet, column name ending in _kw or _kwh."""

    path: Path
    column: Annotated[str, Field(min_length=1, max_length=200)]

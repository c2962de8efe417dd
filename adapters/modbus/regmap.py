"""Register maps as data: ``config/registers/*.yaml``, shared by the adapters AND the simulators.

Two kinds of map file:

* ``protocol: sunspec`` — the file only chooses the SunSpec models, their scale factors,
  the points the controller may write and power-on values; addresses, types and lengths
  are built at load time from pysunspec2's own model definitions (its JSON models), so the
  layout is never typed by hand. "SunS" marker at ``base_address``, models back to back,
  closed by the 0xFFFF end model.
* ``protocol: table`` — a vendor-style map (chargers, simulator clock): blocks of points at
  fixed addresses, optionally repeated per socket with a stride.

Nothing here talks to a network; ``load_register_map`` raises ``twin.config.ConfigError``
(CLI exit 2) with the file, the field and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.modbus.codec import TYPE_SIZE, encode, encode_raw, encode_string
from twin.config import ConfigError, read_device_yaml

#: Folder of the shipped register maps.
REGISTER_DIR = Path(__file__).resolve().parents[2] / "config" / "registers"

Access = Literal["R", "RW"]
Addr = Annotated[int, Field(ge=0, le=65535)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointDef(_Strict):
    """One point of a table block."""

    name: str
    type: str
    access: Access = "R"
    units: str | None = None
    sf: int = 0
    value: float | str | None = None
    symbols: dict[str, int] = Field(default_factory=dict)
    valid_range: tuple[float, float] | None = None
    doc: str | None = None


class BlockDef(_Strict):
    """A block of a table map, repeated ``repeat`` times (``sockets``: once per socket)."""

    name: str
    address: Addr
    repeat: Literal["sockets"] | Annotated[int, Field(ge=1)] | None = None
    stride: Annotated[int, Field(ge=1)] | None = None
    doc: str | None = None
    points: list[PointDef]


class ModelDef(_Strict):
    """One SunSpec model of a ``sunspec`` map."""

    id: Annotated[int, Field(ge=1, le=65534)]
    values: dict[str, Any] = Field(default_factory=dict)
    scale_factors: dict[str, int] = Field(default_factory=dict)
    writable: list[str] = Field(default_factory=list)
    valid_range: dict[str, tuple[float, float]] = Field(default_factory=dict)


class MapFile(_Strict):
    """A register-map file."""

    device: str
    protocol: Literal["sunspec", "table"]
    description: str | None = None
    unit_id: Annotated[int, Field(ge=0, le=247)] = 1
    base_address: Addr = 40000
    word_order: Literal["big", "little"] = "big"
    sockets: Annotated[int, Field(ge=1, le=1000)] | None = None
    defaults: dict[str, float] = Field(default_factory=dict)
    models: list[ModelDef] = Field(default_factory=list)
    blocks: list[BlockDef] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Point:
    """A resolved point.

    Attributes
    ----------
    name : short name (``SoC``, ``p_limit``).
    address : absolute address of the point (of row 0 for a repeated block).
    type : codec type name.
    size : registers taken.
    sf : fixed scale-factor exponent (int), the qualified name of a SunSpec ``sunssf``
        point (str), or None.
    writable : the controller may write it.
    units : engineering units.
    symbols : enumeration names → values.
    valid_range : (min, max) of plausible values [point units], or None.
    """

    name: str
    address: int
    type: str
    size: int
    sf: int | str | None
    writable: bool
    units: str | None = None
    symbols: dict[str, int] = field(default_factory=dict)
    valid_range: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """A block of points (a SunSpec model, or a table block, maybe repeated)."""

    name: str
    address: int
    count: int
    stride: int
    points: dict[str, Point]

    @property
    def span(self) -> int:
        """Registers covered by all rows."""
        return self.count * self.stride

    def addr(self, point: str, row: int = 0) -> int:
        """Absolute address of ``point`` in row ``row``."""
        return self.points[point].address + row * self.stride

    def offset(self, point: str) -> int:
        """Offset of ``point`` inside a row."""
        return self.points[point].address - self.address


@dataclass(frozen=True)
class RegisterMap:
    """A loaded register map (see the module docstring).

    Attributes
    ----------
    path : the YAML file.
    device : device kind (``bess``, ``chargers`` ...).
    protocol : ``sunspec`` or ``table``.
    unit_id : Modbus unit (device) id.
    word_order : order of the 16-bit words of 32-bit values.
    n_sockets : rows of the ``sockets``-repeated blocks (table maps).
    defaults : device settings (timeouts [s], failsafe power [W] ...).
    blocks : blocks by name (SunSpec: the model id as text).
    start, end : first and one-past-last address of the whole image.
    image : power-on register values from ``start`` to ``end``.
    writable : per register of the image, may the controller write it.
    """

    path: Path
    device: str
    protocol: str
    unit_id: int
    word_order: str
    n_sockets: int
    defaults: dict[str, float]
    blocks: dict[str, Block]
    start: int
    end: int
    image: list[int]
    writable: list[bool]
    valid: list[bool]

    def point(self, qualified: str) -> Point:
        """Point ``block.name`` (e.g. ``802.SoC``, ``station.comm_timeout_s``)."""
        blk, _, name = qualified.partition(".")
        try:
            return self.blocks[blk].points[name]
        except KeyError:
            raise KeyError(f"{self.path.name}: no point {qualified!r}") from None

    def is_writable(self, address: int, count: int) -> bool:
        """True when every register in ``[address, address + count)`` may be written."""
        i = address - self.start
        return i >= 0 and i + count <= len(self.writable) and all(self.writable[i:i + count])

    def sf_value(self, p: Point) -> int | None:
        """Power-on value of ``p``'s scale factor (the device is authoritative at run time);
        None when ``p`` has none or it is "not implemented"."""
        if p.sf is None or isinstance(p.sf, int):
            return p.sf
        sp = self.point(p.sf)
        raw = self.image[sp.address - self.start]
        if raw == 0x8000:  # "not implemented"
            return None
        return raw - 0x10000 if raw >= 0x8000 else raw

    def default(self, key: str) -> float:
        """A device setting from ``defaults:`` (KeyError names the file)."""
        try:
            return self.defaults[key]
        except KeyError:
            raise ConfigError(f"{self.path}: field 'defaults.{key}': required setting "
                              "is missing") from None


def _err(path: Path, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: field '{where}': {msg}")


def _read(path: Path) -> MapFile:
    if not path.exists():
        raise ConfigError(f"{path}: register map not found (expected a YAML file as in "
                          "config/registers/)")
    data = read_device_yaml(path)  # size checked before parsing; bounded values
    try:
        return MapFile.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"{path}: field '{loc}': {msg}")
        raise ConfigError("\n".join(lines)) from None


#: Scale-factor exponents a map may set (SunSpec ``sunssf``: -10..10).
SF_MIN, SF_MAX = -10, 10


def _check_sf(path: Path, where: str, val: object) -> None:
    """A scale factor is an integer in -10..10 (SunSpec); else ConfigError naming the field."""
    if isinstance(val, bool) or not isinstance(val, int) or not SF_MIN <= val <= SF_MAX:
        raise _err(path, where, f"scale factors are integers in {SF_MIN}..{SF_MAX} (SunSpec "
                                f"sunssf), got {str(val)[:40]!r}")


def _sunspec(path: Path, mf: MapFile) -> tuple[dict[str, Block], int, list[int], list[bool]]:
    import sunspec2.device as ssd
    import sunspec2.mdef as ssm

    if not mf.models:
        raise _err(path, "models", "a sunspec map needs at least model 1 (common)")
    if mf.models[0].id != 1:
        raise _err(path, "models[0].id", "the first SunSpec model must be 1 (common)")
    image = encode_string("SunS", 2)
    writable = [False, False]
    blocks: dict[str, Block] = {}
    for i, md in enumerate(mf.models):
        where = f"models[{i}]"
        try:
            model = ssd.Model(model_id=md.id)
        except (ssm.ModelDefinitionError, Exception) as exc:  # pysunspec2 raises broadly
            raise _err(path, f"{where}.id", f"unknown SunSpec model {md.id} ({exc})") from None
        if model.model_def is None:
            raise _err(path, f"{where}.id", f"unknown SunSpec model {md.id} "
                                            f"({str(model.error_info).strip()})")
        if str(md.id) in blocks:
            raise _err(path, f"{where}.id", f"model {md.id} appears twice")
        start = mf.base_address + len(image)
        pts: dict[str, Point] = {}
        for name, pnt in model.points.items():
            pdef = pnt.pdef
            ptype = pdef["type"]
            size = int(pdef.get("size", TYPE_SIZE.get(ptype, 1)))
            sf = pdef.get("sf")
            sf_q: int | str | None
            if sf is None:
                sf_q = None if ptype not in ("sunssf",) else 0
            elif isinstance(sf, int):
                sf_q = sf
            else:
                sf_q = f"{md.id}.{sf}"
            syms = {s["name"]: int(s["value"]) for s in pdef.get("symbols", [])}
            pts[name] = Point(name, start + int(pnt.offset), ptype, size, sf_q,
                              False, pdef.get("units"), syms, md.valid_range.get(name))
        for key, val in md.scale_factors.items():
            if key not in pts or pts[key].type != "sunssf":
                raise _err(path, f"{where}.scale_factors.{key}",
                           f"model {md.id} has no scale-factor point {key!r}")
            _check_sf(path, f"{where}.scale_factors.{key}", val)
            model.points[key].value = val
        for key, val in md.values.items():
            if key not in pts:
                raise _err(path, f"{where}.values.{key}", f"model {md.id} has no point {key!r}")
            if pts[key].type == "sunssf":
                _check_sf(path, f"{where}.values.{key}", val)
            model.points[key].value = val
        for key in md.valid_range:
            if key not in pts:
                raise _err(path, f"{where}.valid_range.{key}",
                           f"model {md.id} has no point {key!r}")
        for key in md.writable:
            if key not in pts:
                raise _err(path, f"{where}.writable", f"model {md.id} has no point {key!r}")
            if model.points[key].pdef.get("access", "R") != "RW":
                raise _err(path, f"{where}.writable",
                           f"point {md.id}.{key} is read-only in SunSpec")
            p = pts[key]
            pts[key] = Point(p.name, p.address, p.type, p.size, p.sf, True, p.units, p.symbols,
                             p.valid_range)
        try:
            mb = model.get_mb()
        except Exception as exc:
            raise _err(path, f"{where}.values", f"cannot encode the model ({exc})") from None
        regs = [int.from_bytes(mb[j:j + 2], "big") for j in range(0, len(mb), 2)]
        wr = [False] * len(regs)
        for p in pts.values():
            if p.writable:
                for j in range(p.size):
                    wr[p.address - start + j] = True
        image += regs
        writable += wr
        blocks[str(md.id)] = Block(str(md.id), start, 1, len(regs), pts)
    image += [0xFFFF, 0]
    writable += [False, False]
    return blocks, mf.base_address, image, writable


def _table(path: Path, mf: MapFile
           ) -> tuple[dict[str, Block], int, list[int], list[bool], list[bool]]:
    if not mf.blocks:
        raise _err(path, "blocks", "a table map needs at least one block")
    blocks: dict[str, Block] = {}
    cells: dict[int, tuple[int, bool, str]] = {}  # address -> (value, writable, owner)
    for bi, bd in enumerate(mf.blocks):
        where = f"blocks[{bi}]"
        if bd.name in blocks:
            raise _err(path, f"{where}.name", f"block {bd.name!r} appears twice")
        if bd.repeat == "sockets":
            if mf.sockets is None:
                raise _err(path, f"{where}.repeat", "'repeat: sockets' needs 'sockets:' at the top")
            count = mf.sockets
        else:
            count = int(bd.repeat or 1)
        pts: dict[str, Point] = {}
        off = 0
        for pi, pd in enumerate(bd.points):
            pw = f"{where}.points[{pi}]"
            if pd.type == "string":
                raise _err(path, f"{pw}.type", "strings are not supported in table maps")
            if pd.type not in TYPE_SIZE:
                raise _err(path, f"{pw}.type",
                           f"unknown type {pd.type!r}; one of {sorted(TYPE_SIZE)}")
            if pd.name in pts:
                raise _err(path, f"{pw}.name",
                           f"point {pd.name!r} appears twice in block {bd.name!r}")
            if pd.sf != 0:
                _check_sf(path, f"{pw}.sf", pd.sf)
            size = TYPE_SIZE[pd.type]
            pts[pd.name] = Point(pd.name, bd.address + off, pd.type, size, pd.sf,
                                 pd.access == "RW", pd.units, dict(pd.symbols), pd.valid_range)
            off += size
        stride = bd.stride or off
        if stride < off:
            raise _err(path, f"{where}.stride",
                       f"stride {stride} is shorter than a row ({off} registers)")
        if bd.address + stride * count > 65536:
            raise _err(path, f"{where}.address", "the block runs past address 65535")
        for row in range(count):
            for pd in bd.points:
                p = pts[pd.name]
                regs = encode(p.type, pd.value if isinstance(pd.value, int | float) else 0, p.sf
                              if isinstance(p.sf, int) else 0, mf.word_order)
                for j, r in enumerate(regs):
                    a = p.address + row * stride + j
                    if a in cells:
                        raise _err(path, f"{where}", f"address {a} overlaps block {cells[a][2]!r}")
                    cells[a] = (r, p.writable, bd.name)
        blocks[bd.name] = Block(bd.name, bd.address, count, stride, pts)
    start = min(cells)
    end = max(cells) + 1
    image = [0] * (end - start)
    writable = [False] * (end - start)
    valid = [False] * (end - start)
    for a, (v, w, _) in cells.items():
        image[a - start] = v
        writable[a - start] = w
        valid[a - start] = True
    return blocks, start, image, writable, valid


def load_register_map(path: Path | str, n_sockets: int | None = None) -> RegisterMap:
    """Load and check a register-map file.

    ``n_sockets``: lay the ``repeat: sockets`` blocks out for this many sockets (the site's;
    the file's ``sockets:`` is the default). Only for a table map that declares ``sockets``.

    Raises
    ------
    ConfigError
        For a missing file, broken YAML, an unknown key, model or point, overlapping
        blocks, a point that cannot be written, ... naming the file and the field.
    """
    path = Path(path)
    mf = _read(path)
    if n_sockets is not None and mf.sockets is not None and n_sockets != mf.sockets:
        if not 1 <= n_sockets <= 1000:
            raise _err(path, "sockets", f"{n_sockets} sockets: a map has 1 to 1000")
        mf = mf.model_copy(update={"sockets": n_sockets})
    if mf.protocol == "sunspec":
        blocks, start, image, writable = _sunspec(path, mf)
        valid = [True] * len(image)
    else:
        blocks, start, image, writable, valid = _table(path, mf)
    return RegisterMap(path, mf.device, mf.protocol, mf.unit_id, mf.word_order, mf.sockets or 0,
                       dict(mf.defaults), blocks, start, start + len(image), image, writable, valid)


def shipped_map(device: str) -> Path:
    """Path of the shipped map for ``device`` (``bess``, ``chargers``, ``pv_inverter``,
    ``site_meter``, ``sim_clock``)."""
    return REGISTER_DIR / f"{device}.yaml"


__all__ = ["SF_MAX", "SF_MIN", "Block", "MapFile", "Point", "RegisterMap", "encode_raw", "load_register_map",
           "shipped_map"]

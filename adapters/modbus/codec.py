"""Register codec: Modbus register words <-> values (types, scale factors, word order).

Pure functions, no I/O and no pymodbus: the simulators and the adapters share them.
Type names and "not implemented" values follow SunSpec (``uint16``, ``int16``,
``uint32``, ``int32``, ``acc32``, ``uint64``, ``acc64``, ``enum16``, ``bitfield16``,
``bitfield32``, ``sunssf``, ``pad``, ``string``) plus ``float32``. A value of ``None`` is
"not implemented" (SunSpec's 0xFFFF / 0x8000 / ... markers).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

#: Registers taken by each fixed-size type.
TYPE_SIZE: dict[str, int] = {
    "uint16": 1, "int16": 1, "enum16": 1, "bitfield16": 1, "sunssf": 1, "pad": 1, "count": 1,
    "uint32": 2, "int32": 2, "acc32": 2, "bitfield32": 2, "enum32": 2, "float32": 2,
    "uint64": 4, "acc64": 4,
}
#: Raw "not implemented" markers (as unsigned integers).
NA_RAW: dict[str, int] = {
    "uint16": 0xFFFF, "enum16": 0xFFFF, "bitfield16": 0xFFFF, "count": 0xFFFF,
    "int16": 0x8000, "sunssf": 0x8000, "pad": 0x8000,
    "uint32": 0xFFFFFFFF, "enum32": 0xFFFFFFFF, "bitfield32": 0xFFFFFFFF,
    "int32": 0x80000000, "acc32": 0, "uint64": 0xFFFFFFFFFFFFFFFF, "acc64": 0,
}
_SIGNED = frozenset({"int16", "sunssf", "int32"})
#: Raw integer range of each integer type (inclusive), "not implemented" marker excluded.
RAW_RANGE: dict[str, tuple[int, int]] = {
    "uint16": (0, 0xFFFE), "enum16": (0, 0xFFFE), "bitfield16": (0, 0xFFFE), "count": (0, 0xFFFE),
    "int16": (-0x7FFF, 0x7FFF), "sunssf": (-10, 10), "pad": (0, 0xFFFF),
    "uint32": (0, 0xFFFFFFFE), "enum32": (0, 0xFFFFFFFE), "bitfield32": (0, 0xFFFFFFFE),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF), "acc32": (0, 0xFFFFFFFF),
    "uint64": (0, 0xFFFFFFFFFFFFFFFE), "acc64": (0, 0xFFFFFFFFFFFFFFFF),
}
#: Accumulators: counters that roll over modulo their width (SunSpec); 0 reads "not
#: implemented" (SunSpec's marker), i.e. nothing accumulated yet.
ACCUMULATORS = frozenset({"acc32", "acc64"})
WORD_ORDERS = ("big", "little")


class CodecError(ValueError):
    """A value cannot be encoded in its register type (overflow, NaN, wrong type)."""


def _words(raw: int, size: int, word_order: str) -> list[int]:
    words = [(raw >> (16 * (size - 1 - i))) & 0xFFFF for i in range(size)]
    return words if word_order == "big" else words[::-1]


def _join(regs: Sequence[int], word_order: str) -> int:
    seq = regs if word_order == "big" else list(regs)[::-1]
    raw = 0
    for w in seq:
        raw = (raw << 16) | (int(w) & 0xFFFF)
    return raw


def encode_raw(ptype: str, raw: int | None, word_order: str = "big") -> list[int]:
    """Registers for the raw integer ``raw`` of type ``ptype`` (``None`` = not implemented).

    Raises
    ------
    CodecError
        When ``raw`` is outside the type's range.
    """
    size = TYPE_SIZE[ptype]
    if raw is None:
        return _words(NA_RAW[ptype], size, word_order)
    if ptype == "float32":
        b = struct.pack(">f", float(raw))
        return _words(int.from_bytes(b, "big"), 2, word_order)
    lo, hi = RAW_RANGE[ptype]
    if not lo <= raw <= hi:
        raise CodecError(f"raw value {raw} out of range [{lo}, {hi}] for {ptype}")
    if raw < 0:
        raw += 1 << (16 * size)
    return _words(raw, size, word_order)


def decode_raw(ptype: str, regs: Sequence[int], word_order: str = "big") -> int | float | None:
    """Raw integer (or float) held in ``regs``; ``None`` for the "not implemented" marker."""
    size = TYPE_SIZE[ptype]
    raw = _join(regs[:size], word_order)
    if ptype == "float32":
        v = struct.unpack(">f", raw.to_bytes(4, "big"))[0]
        return None if math.isnan(v) else v
    if ptype not in ACCUMULATORS and ptype != "pad" and raw == NA_RAW[ptype]:
        return None
    if ptype in _SIGNED and raw >= 1 << (16 * size - 1):
        raw -= 1 << (16 * size)
    return raw


def to_raw(value: float, sf: int = 0) -> int:
    """Raw integer for engineering ``value`` with scale factor ``sf`` (value = raw × 10^sf).

    Raises
    ------
    CodecError
        For NaN or infinite values.
    """
    if not math.isfinite(value):
        raise CodecError(f"cannot encode non-finite value {value!r}")
    return round(value / 10.0**sf) if sf else round(value)


def encode(ptype: str, value: float | None, sf: int = 0, word_order: str = "big") -> list[int]:
    """Registers for engineering ``value`` [point units] with scale factor ``sf``."""
    if value is None:
        return encode_raw(ptype, None, word_order)
    if ptype == "float32":
        return encode_raw(ptype, value, word_order)  # type: ignore[arg-type]
    return encode_raw(ptype, to_raw(value, sf), word_order)


def decode(ptype: str, regs: Sequence[int], sf: int | None = 0,
           word_order: str = "big") -> float | None:
    """Engineering value [point units] of ``regs``; ``None`` if not implemented or no SF."""
    raw = decode_raw(ptype, regs, word_order)
    if raw is None or sf is None:
        return None
    return raw * 10.0**sf if sf else float(raw)


def counter_raw(ptype: str, e: float, sf: int = 0) -> int:
    """Raw value of an energy counter holding ``e`` [point units, e.g. Wh] with scale factor
    ``sf``: rounded; an accumulator (``acc32``, ``acc64``) rolls over modulo its width as
    SunSpec specifies, any other unsigned type saturates just below its "not implemented"
    marker. Monotone in ``e`` up to the roll-over, so a growing energy never reads less.

    Raises
    ------
    CodecError
        For a non-finite ``e`` or a type that is not an unsigned integer.
    """
    if ptype not in ACCUMULATORS and (ptype not in RAW_RANGE or RAW_RANGE[ptype][0] < 0
                                      or ptype in ("sunssf", "pad")):
        raise CodecError(f"{ptype} cannot hold an energy counter")
    raw = to_raw(max(e, 0.0), sf)
    if ptype in ACCUMULATORS:
        return raw % (1 << (16 * TYPE_SIZE[ptype]))
    return min(raw, RAW_RANGE[ptype][1])


def encode_string(text: str, size: int) -> list[int]:
    """``size`` registers holding ``text`` (UTF-8, zero padded)."""
    b = text.encode("utf-8")[: 2 * size].ljust(2 * size, b"\0")
    return [int.from_bytes(b[i:i + 2], "big") for i in range(0, 2 * size, 2)]


def decode_string(regs: Sequence[int]) -> str:
    """Text held in ``regs`` (zero padding removed)."""
    b = b"".join(int(r).to_bytes(2, "big") for r in regs)
    return b.split(b"\0", 1)[0].decode("utf-8", errors="replace")

"""Register codec and register-map files (shared by adapters and simulators)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.modbus import codec
from adapters.modbus.regmap import load_register_map, shipped_map
from twin.config import ConfigError


@pytest.mark.parametrize(("ptype", "value", "sf"), [
    ("uint16", 50.25, -2), ("int16", -400.0, 0), ("int32", -400_000.0, 0),
    ("uint32", 31_536_000.0, 0), ("acc32", 12000.0, 3), ("float32", 1.5, 0),
])
@pytest.mark.parametrize("order", ["big", "little"])
def test_codec_round_trip(ptype: str, value: float, sf: int, order: str) -> None:
    regs = codec.encode(ptype, value, sf, order)
    assert len(regs) == codec.TYPE_SIZE[ptype]
    assert codec.decode(ptype, regs, sf, order) == pytest.approx(value)


def test_codec_not_implemented_and_overflow() -> None:
    assert codec.encode("uint16", None) == [0xFFFF]
    assert codec.decode("uint16", [0xFFFF]) is None
    assert codec.decode("int32", codec.encode("int32", None)) is None
    with pytest.raises(codec.CodecError):
        codec.encode("int16", 40000.0)
    with pytest.raises(codec.CodecError):
        codec.encode("uint16", float("nan"))
    assert codec.encode("int32", 1, 0, "big") == [0, 1]
    assert codec.encode("int32", 1, 0, "little") == [1, 0]


@pytest.mark.parametrize("device", ["bess", "chargers", "pv_inverter", "site_meter", "sim_clock"])
def test_shipped_maps_load(device: str) -> None:
    m = load_register_map(shipped_map(device))
    assert m.device == device
    assert len(m.image) == m.end - m.start == len(m.writable)


def test_bess_map_is_sunspec_layout_from_pysunspec2() -> None:
    import sunspec2.device as ssd

    m = load_register_map(shipped_map("bess"))
    assert m.start == 40000 and m.image[:2] == codec.encode_string("SunS", 2)
    assert m.image[-2:] == [0xFFFF, 0]
    assert list(m.blocks) == ["1", "802", "704", "701"]  # 701 last: energy counters
    for mid, blk in m.blocks.items():
        model = ssd.Model(model_id=int(mid))
        assert m.image[blk.address - m.start] == int(mid)
        assert blk.stride == len(model.get_mb()) // 2  # header + L registers
        assert blk.points["SoC" if mid == "802" else "ID"].address == blk.address + \
            model.points["SoC" if mid == "802" else "ID"].offset
    soc = m.point("802.SoC")
    assert soc.sf == "802.SoC_SF" and m.sf_value(soc) == -2
    assert m.point("704.WSet").writable and not soc.writable
    assert m.is_writable(m.point("704.WSet").address, 2)
    assert not m.is_writable(soc.address, 1)


def test_charger_map_rows() -> None:
    m = load_register_map(shipped_map("chargers"))
    st = m.blocks["socket_status"]
    assert m.n_sockets == 38 and st.count == 38 and st.stride == 8
    assert st.addr("iec_state", 3) == 8 + 3 * 8
    lim = m.blocks["socket_limit"]
    assert lim.addr("p_limit", 0) == m.blocks["control"].addr("controller_heartbeat") + 1
    assert m.is_writable(1000, 39) and not m.is_writable(8, 1)
    assert m.default("failsafe_power_w") == 1400


BAD_MAPS = {
    "unknown model": ("device: x\nprotocol: sunspec\nmodels:\n  - {id: 1}\n  - {id: 64999}\n",
                      "unknown SunSpec model 64999"),
    "read-only written": ("device: x\nprotocol: sunspec\nmodels:\n  - {id: 1}\n"
                          "  - {id: 802, writable: [SoC]}\n", "read-only"),
    "no such point": ("device: x\nprotocol: sunspec\nmodels:\n  - {id: 1}\n"
                      "  - {id: 802, scale_factors: {Foo_SF: 1}}\n", "Foo_SF"),
    "unknown key": ("device: x\nprotocol: table\ncolour: red\nblocks: []\n", "colour"),
    "bad type": ("device: x\nprotocol: table\nblocks:\n  - name: a\n    address: 0\n"
                 "    points: [{name: p, type: uint17}]\n", "unknown type"),
    "overlap": ("device: x\nprotocol: table\nblocks:\n  - {name: a, address: 0, points: "
                "[{name: p, type: uint32}]}\n  - {name: b, address: 1, points: "
                "[{name: q, type: uint16}]}\n", "overlaps"),
    "yaml": ("device: [x\n", "broken YAML"),
    "repeat": ("device: x\nprotocol: table\nblocks:\n  - {name: a, address: 0, repeat: sockets, "
               "points: [{name: p, type: uint16}]}\n", "sockets"),
}


@pytest.mark.parametrize("case", sorted(BAD_MAPS))
def test_bad_map_files_are_config_errors(tmp_path: Path, case: str) -> None:
    text, msg = BAD_MAPS[case]
    p = tmp_path / "map.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg) as ei:
        load_register_map(p)
    assert str(p) in str(ei.value)


def test_missing_map_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_register_map(tmp_path / "nope.yaml")


def test_docs_registers_md_is_current() -> None:
    from adapters.modbus.docs import render

    doc = Path(__file__).resolve().parents[2] / "docs" / "registers.md"
    assert doc.read_text(encoding="utf-8") == render(), \
        "regenerate: python -m adapters.modbus.docs > docs/registers.md"

"""The register maps: checked against the SunSpec models' definitions and the vocabulary, and
encoded as clients decode them."""

import json
import math
import struct
from importlib import resources

import pytest
from modbus_support import HVAC, IDENTITY, MAIN, counters, reading

from emsbox.gateways.modbus import image
from emsbox.gateways.modbus.image import (
    NATIVE,
    UnitImage,
    carlo_gavazzi_blocks,
    int_scale_factors,
    native_block,
    scale_factor,
    sunspec_block,
)
from emsbox.gateways.modbus.protocol import ModbusError
from emsbox.gateways.modbus.register_map import MapError, decode, encode, parse_table, table_size
from emsbox.gateways.modbus.sunspec_models import SunSpecModels
from emsbox.samples import Wiring
from emsbox.variables import ALL, COUNTER_NAMES


def sunspec_points(model: int) -> list[tuple[int, str, int]]:
    """(offset, name, size) of a model's points, from pysunspec2's copy of the SunSpec models."""
    text = resources.files("sunspec2").joinpath("models", "json", f"model_{model}.json").read_text()
    out, offset = [], 0
    for p in json.loads(text)["group"]["points"]:
        out.append((offset, p["name"], p.get("size", 1)))
        offset += p.get("size", 1)
    return out


@pytest.mark.parametrize(
    ("table", "model"),
    [(image.COMMON, 1), (image.METER_INT, 203), (image.METER_FLOAT, 213), (image.METER_FLOAT, 211)],
)
def test_the_sunspec_tables_lay_points_out_as_the_models_define_them(table, model):
    assert [(p.address, p.name, p.size) for p in table] == sunspec_points(model)
    length = next(p for p in table if p.name == "L")
    assert int(length.value) == table_size(table) - 2  # L counts the registers after ID and L


def test_the_native_map_has_every_variable_and_every_counter_also_as_64_bit():
    floats = {p.variable for p in NATIVE if p.type == "float32"}
    assert floats == {v.name for v in ALL}
    assert {p.variable for p in NATIVE if p.type == "uint64" and p.variable} == set(COUNTER_NAMES)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["0,x,float33,p_sys,,,,"], "unknown type"),
        (["0,x,float32,p_total,,,,"], "neither a variable"),
        (["0,x,float32,p_sys,,,,", "1,y,float32,q_sys,,,,"], "overlaps"),
        (["zero,x,float32,p_sys,,,,"], "line 2"),
    ],
)
def test_an_invalid_table_is_refused_with_its_line(rows, problem):
    with pytest.raises(MapError, match=problem):
        parse_table(["address,name,type,variable,scale,sf,unit,value", *rows])


def test_values_are_encoded_as_clients_decode_them():
    table = parse_table(
        [
            "address,name,type,variable,scale,sf,unit,value",
            "0,W,int16,p_sys,,W_SF,W,",
            "1,W_SF,sunssf,,,,,",
            "2,Wh,acc32,kwh_imp,1000,,Wh,",
            "4,PF,float32,pf_sys,,,,",
            "6,Wh64,uint64,kwh_exp,1000,,Wh,",
            "10,Name,string:3,,,,,emsbox",
            "13,Missing,int16,v_l3,,W_SF,,",
            "14,MissingF,float32,v_l3,,,,",
            "16,Missing64,uint64,v_l3,,,,",
        ]
    )
    values = {"p_sys": -12345.6, "kwh_imp": 4_300_000.5, "pf_sys": 0.5, "kwh_exp": 1.2346}
    data = encode(table, values, {"W_SF": 1})
    regs = struct.unpack(">20H", data)
    assert struct.unpack(">h", data[0:2])[0] == -1235 and regs[1] == 1
    assert struct.unpack(">I", data[4:8])[0] == 4_300_000_500 % 2**32  # an accumulator wraps
    assert struct.unpack(">f", data[8:12])[0] == 0.5
    assert struct.unpack(">Q", data[12:20])[0] == 1235  # 1.2346 kWh in whole Wh
    assert data[20:26] == b"emsbox"
    assert regs[13] == 0x8000  # int16 "not implemented"
    assert math.isnan(struct.unpack(">f", data[28:32])[0])
    assert struct.unpack(">Q", data[32:40])[0] == 2**64 - 1


@pytest.mark.parametrize(("largest", "sf"), [(195.0, -2), (3276.7, -1), (3276.8, 0), (64_584.0, 1)])
def test_a_scale_factor_keeps_the_largest_value_in_an_int16(largest, sf):
    assert scale_factor(largest) == sf


def test_the_int_models_scale_factors_follow_the_rating():
    sfs = int_scale_factors(MAIN)
    assert (sfs["A_SF"], sfs["V_SF"], sfs["W_SF"], sfs["PF_SF"]) == (-2, -1, 1, -2)


def _sunspec(models: SunSpecModels, rating=MAIN, r=None) -> bytes:
    block = sunspec_block(rating, 1, r or reading(), IDENTITY, models)
    assert block.start == 40000
    return block.data


def test_the_sunspec_block_is_marker_common_model_meter_model_and_end():
    data = _sunspec(SunSpecModels.FLOAT)
    assert data[:4] == b"SunS"
    assert struct.unpack(">HH", data[4:8]) == (1, 66)
    assert data[8:14] == b"emsbox"
    assert struct.unpack(">HH", data[140:144]) == (213, 124)
    assert data[-4:] == b"\xff\xff\x00\x00"
    assert len(data) == 2 * (2 + 68 + 126 + 2)
    int_data = _sunspec(SunSpecModels.INT)
    assert struct.unpack(">HH", int_data[140:144]) == (203, 105)


@pytest.mark.parametrize(
    ("wiring", "model"),
    [
        (Wiring.SINGLE_PHASE, 211),
        (Wiring.SPLIT_PHASE, 212),
        (Wiring.THREE_PHASE_4W, 213),
        (Wiring.WILD_LEG, 213),
        (Wiring.THREE_PHASE_3W, 214),
    ],
)
def test_the_meter_model_follows_the_wiring(wiring, model):
    rating = MAIN.__class__("x", wiring, 65.0, 276.0)
    assert struct.unpack(">H", _sunspec(SunSpecModels.FLOAT, rating)[140:142])[0] == model


def test_sunspec_float_values_are_the_readings_in_sunspec_units():
    r = reading()
    data = _sunspec(SunSpecModels.FLOAT, r=r)
    model = 4 + 2 * 68  # bytes before the meter model
    point = {p.name: p.address for p in image.METER_FLOAT}

    def f(name: str) -> float:
        at = model + 2 * point[name]
        return struct.unpack(">f", data[at : at + 4])[0]

    assert f("A") == pytest.approx(r.values["i_l1"] + r.values["i_l2"] + r.values["i_l3"])
    assert f("W") == pytest.approx(r.values["p_sys"])  # import positive, as the reading
    assert f("PhVphA") == pytest.approx(r.values["v_l1"], rel=1e-6)
    assert f("TotWhImp") == pytest.approx(1000 * r.counters["kwh_imp"], rel=1e-6)
    imported = r.counters["kvah_q1"] + r.counters["kvah_q4"]
    assert f("TotVAhImp") == pytest.approx(1000 * imported, rel=1e-6)
    assert math.isnan(f("TotVAhImpPhA"))  # not measured per phase


def test_a_single_phase_load_leaves_the_other_phases_not_implemented():
    r = reading("hvac", Wiring.SINGLE_PHASE)
    data = _sunspec(SunSpecModels.INT, HVAC, r)
    model = 4 + 2 * 68
    point = {p.name: p.address for p in image.METER_INT}

    def reg(name: str) -> int:
        return struct.unpack(">H", data[model + 2 * point[name] : model + 2 * point[name] + 2])[0]

    assert reg("ID") == 201
    assert reg("AphB") == 0x8000 and reg("WphC") == 0x8000
    sf = struct.unpack(">h", data[model + 2 * point["A_SF"] : model + 2 * point["A_SF"] + 2])[0]
    assert reg("AphA") * 10.0**sf == pytest.approx(r.values["i_l1"], abs=10.0**sf / 2)


def test_the_native_map_holds_the_reading_and_its_time():
    r = reading()
    block = native_block(r)
    assert block.start == 30000
    unit = UnitImage([block])
    assert struct.unpack(">Q", unit.read(30000, 4))[0] == round(r.timestamp_s * 1000)
    point = {p.name: p.address for p in NATIVE}
    assert struct.unpack(">f", unit.read(30000 + point["p_sys"], 2))[0] == r.values["p_sys"]
    assert struct.unpack(">f", unit.read(30000 + point["tariff"], 2))[0] == 2.0
    kwh = struct.unpack(">Q", unit.read(30000 + point["kwh_imp_64"], 4))[0]
    assert kwh == round(1000 * counters()["kwh_imp"])


def test_a_read_outside_every_block_is_an_illegal_address():
    unit = UnitImage([native_block(None)])
    size = table_size(NATIVE)
    assert len(unit.read(30000 + size - 4, 4)) == 8
    for address, count in ((29999, 2), (30000 + size - 1, 2), (0, 1)):
        with pytest.raises(ModbusError):
            unit.read(address, count)


def _cg(r=None, rating=MAIN) -> UnitImage:
    return UnitImage(carlo_gavazzi_blocks(rating, 1, r, IDENTITY), singles={0x000B: 1648})


def _lw(data: bytes) -> int:
    """A Carlo Gavazzi INT32: low word first."""
    low, high = struct.unpack(">HH", data)
    return struct.unpack(">i", struct.pack(">HH", high, low))[0]


def test_the_carlo_gavazzi_map_sends_int32_low_word_first_in_its_units():
    r = reading(p_sys=-2500.04)
    unit = _cg(r)
    assert _lw(unit.read(0x0000, 2)) == round(10 * r.values["v_l1"])
    assert _lw(unit.read(0x000C, 2)) == round(1000 * r.values["i_l1"])
    assert _lw(unit.read(0x0028, 2)) == -25000  # W sys x10, exporting
    assert struct.unpack(">h", unit.read(0x0031, 1))[0] == round(1000 * r.values["pf_sys"])
    assert struct.unpack(">h", unit.read(0x0033, 1))[0] == round(10 * r.values["freq"])
    assert _lw(unit.read(0x0034, 2)) == round(10 * r.counters["kwh_imp"])
    assert _lw(unit.read(0x004E, 2)) == round(10 * r.counters["kwh_exp"])
    assert _lw(unit.read(0x0046, 2)) == round(10 * r.counters["kwh_imp_t1"])
    # One read of the whole block, as drivers do.
    assert len(unit.read(0x0000, 0x52)) == 2 * 0x52


def test_the_carlo_gavazzi_identification_registers():
    unit = _cg(reading())
    assert struct.unpack(">H", unit.read(0x000B, 1))[0] == 1648  # alone: the model
    assert _lw(unit.read(0x000A, 2)) == round(10 * reading().values["v_l31"])
    assert struct.unpack(">H", unit.read(0xA000, 1))[0] == 7  # application H
    assert struct.unpack(">H", unit.read(0x1002, 1))[0] == 0  # 3P.n
    assert unit.read(0x5000, 7).rstrip(b"\x00").decode() == "abc1201"
    version = struct.unpack(">H", unit.read(0x0304, 1))[0]
    assert (version >> 12, version >> 8 & 0xF, version & 0xFF) == (9, 8, 7)
    with pytest.raises(ModbusError):
        unit.read(0x0052, 4)  # past the measures


def test_a_single_phase_load_reads_zero_for_the_phases_it_lacks():
    unit = _cg(reading("hvac", Wiring.SINGLE_PHASE), HVAC)
    assert _lw(unit.read(0x0002, 2)) == 0
    assert struct.unpack(">h", unit.read(0x002F, 1))[0] == 0
    assert struct.unpack(">H", unit.read(0x1002, 1))[0] == 3  # 1P


def test_decoding_a_table_gives_back_what_was_encoded_and_nothing_not_implemented():
    r = reading("hvac", Wiring.SINGLE_PHASE)
    values = decode(NATIVE, native_block(r).data)
    for name, value in {**r.values, **r.counters}.items():
        assert values[name] == pytest.approx(value, rel=1e-6), name
    assert "v_l2" not in values  # sent as NaN: the load has no L2
    int_model = sunspec_block(HVAC, 1, r, IDENTITY, SunSpecModels.INT).data[140:]
    decoded = decode(image.METER_INT, int_model)
    assert decoded["v_l1"] == pytest.approx(r.values["v_l1"], abs=0.05)
    assert "i_l2" not in decoded and "i_sum" not in decoded  # 0x8000; a derived value

"""Data records: DIF/DIFE/VIF/VIFE, the VIF tables, special DIFs, limits, build and encode."""

from __future__ import annotations

import datetime as dt

import pytest

from protocol.app import DataField, Record, parse_records
from protocol.app.vif import describe
from protocol.errors import (
    EncodeError,
    RecordError,
    TooManyDifesError,
    TooManyVifesError,
    TruncatedDataError,
)


def one(hexdata: str, **kwargs: bool) -> Record:
    records, tail, more = parse_records(bytes.fromhex(hexdata), 19, **kwargs)
    assert tail is None and not more
    assert len(records) == 1
    assert records[0].encode() == bytes.fromhex(hexdata)
    return records[0]


@pytest.mark.parametrize(("hexdata", "quantity", "unit", "value"), [
    ("0413 31d40000", "Volume", "m^3", 54.321),
    ("0c06 34120000", "Energy", "Wh", 1234000),
    ("040e 01000000", "Energy", "J", 1000000),
    ("021b 0500", "Mass", "kg", 5),
    ("0122 05", "On time", "s", 18000),
    ("0127 02", "Operating time", "s", 172800),
    ("022b 6400", "Power", "W", 100),
    ("0233 0100", "Power", "J/h", 1000),
    ("023b e803", "Volume flow", "m^3/h", 1.0),
    ("0244 e803", "Volume flow", "m^3/h", 60.0),  # m^3/min -> m^3/h
    ("014e 01", "Volume flow", "m^3/h", 3.6),  # 1e-3 m^3/s -> m^3/h
    ("0253 0a00", "Mass flow", "kg/h", 10),
    ("0259 4a08", "Flow temperature", "degC", 21.22),
    ("015f 1c", "Return temperature", "degC", 28),
    ("0261 f4ff", "Temperature difference", "K", -0.12),
    ("0266 d200", "External temperature", "degC", 21.0),
    ("026a 0f00", "Pressure", "bar", 1.5),
    ("026e 0700", "H.C.A.", "", 7),
    ("0172 02", "Averaging duration", "s", 7200),
    ("0174 3c", "Actuality duration", "s", 60),
    ("0c78 78563412", "Fabrication No", "", 12345678),
    ("017a 08", "Bus Address", "", 8),
    ("027f f401", "Manufacturer specific", "", 500),
])
def test_main_vif_table_normalises_to_base_units(hexdata, quantity, unit, value):
    record = one(hexdata)
    assert (record.quantity, record.unit) == (quantity, unit)
    assert record.value == pytest.approx(value)


@pytest.mark.parametrize(("hexdata", "quantity", "unit", "value"), [
    ("02fd17 3412", "Error flags", "", 0x1234),
    ("01fd0e 02", "Firmware version", "", 2),
    ("02fd48 f208", "Voltage", "V", 229.0),
    ("02fd59 e803", "Current", "A", 1.0),
    ("01fd1c 60", "Baud rate", "Bd", 96),
    ("01fd26 02", "Storage interval", "s", 7200),
    ("01fd6d 03", "Operating time battery", "s", 259200),
    ("01fd74 0a", "Remaining battery life time", "s", 864000),
    ("02fd61 0300", "Cumulation counter", "", 3),
    ("01fd00 05", "Credit", "currency units", 0.005),
    ("01fb00 02", "Energy", "Wh", 200000),
    ("01fb09 02", "Energy", "J", 2e9),
    ("01fb11 02", "Volume", "m^3", 2000),
    ("01fb19 02", "Mass", "kg", 2e6),
    ("01fb29 02", "Power", "W", 2e6),
    ("01fb31 02", "Power", "J/h", 2e9),
    ("02fb5b 4100", "Flow temperature", "degF", 65),
    ("01fb7b 05", "Cumulative count max power", "W", 5),
    ("02fb2b 0807", "Phase U-I", "deg", 180.0),
    ("01fb36 02", "Apparent power", "VA", 200),
])
def test_extension_tables_fd_and_fb(hexdata, quantity, unit, value):
    record = one(hexdata)
    assert (record.quantity, record.unit) == (quantity, unit)
    assert record.value == pytest.approx(value)


def test_date_records_give_iso_8601():
    assert one("426c cd13").value == "2014-03-13"
    assert one("046d 0b0bcd13").value == "2014-03-13T11:11:00"
    record = one("066d 3a3b17cd1300")
    assert record.value == "2014-03-13T23:59:58"
    assert record.storage == 0 and record.function == "instantaneous"
    assert one("04fd70 0b0bcd13").quantity == "Date and time of battery change"


def test_function_storage_tariff_subunit_from_dif_and_difes():
    record = one("e479 03 05000000")  # DIF: ext, storage bit 1, minimum (10), int32
    assert record.function == "minimum"
    assert (record.storage, record.tariff, record.subunit) == (0b10011, 3, 1)
    second = one("b4 81 02 03 05000000")  # value during error; DIFEs 81, 02
    assert second.function == "error"
    assert second.storage == (1 << 1) | (2 << 5)
    assert second.subunit == 0 and second.tariff == 0


def test_plain_text_vif_is_the_unit_text_sent_last_character_first():
    record = one("027c09656d6974202e746162f210")
    assert (record.quantity, record.unit, record.value) == ("bat. time", "bat. time", 4338)
    built = Record.build(DataField.INT16, 0x7C, 4338, plain_text="bat. time")
    assert built.encode() == record.encode()


def test_plain_text_vif_then_vifes_with_a_correction_factor():
    record = one("02fc03485225741d02")  # "%RH", VIFE 74 = x1e-2
    assert (record.unit, record.value) == ("%RH", 5.41)
    assert record.notes == ("multiplicative correction factor 1e-2",)


def test_combinable_vifes_are_recorded():
    record = one("0493 3b 10270000")
    assert record.value == pytest.approx(10.0)
    assert record.notes == ("accumulation only if positive contributions",)
    corrected = one("04 93 7d 10270000")  # 7D: x 1e3
    assert corrected.value == pytest.approx(10000.0)
    assert describe(0x93, (0xFF, 0x01)).notes == ("manufacturer specific VIFEs follow",)


def test_any_vif_and_reserved_vif_keep_the_raw_number():
    assert one("017e 05").quantity == "Any VIF"
    assert (one("016f 05").quantity, one("016f 05").value) == ("Reserved", 5)


def test_lvar_bcd_record_follows_the_standard_length():
    record = one("0d13 c3563412")
    assert record.value == pytest.approx(123.456)
    assert record.raw == 123456


def test_no_data_and_readout_selection_have_no_value():
    assert one("0013").value is None
    assert one("0813").value is None


def test_invalid_bcd_and_nan_have_no_value_but_keep_raw():
    record = one("0a5a eeee")
    assert record.value is None and record.raw == "eeee"
    nan = one("055b 0000c07f")
    assert nan.value is None


def test_special_difs():
    records, tail, more = parse_records(bytes.fromhex("2f 0413 01000000 2f2f 0f 0102"), 19)
    assert len(records) == 1 and tail == b"\x01\x02" and not more
    records, tail, more = parse_records(bytes.fromhex("0413 01000000 1f"), 19)
    assert tail == b"" and more
    with pytest.raises(RecordError) as caught:
        parse_records(bytes.fromhex("0413 01000000 3f"), 19)
    assert caught.value.offset == 25


def test_ten_difes_and_vifes_are_the_limit():
    ten_difes = "84" + "80" * 8 + "00" + "13 01000000"
    assert one(ten_difes).storage == 0
    with pytest.raises(TooManyDifesError) as caught:
        parse_records(bytes.fromhex("84" + "80" * 10 + "00 13 01000000"), 19)
    assert caught.value.offset == 19 + 11
    ten_vifes = "04 93" + "bb" * 9 + "3b" + "01000000"
    assert len(one(ten_vifes).vifes) == 10
    with pytest.raises(TooManyVifesError) as caught:
        parse_records(bytes.fromhex("04 93" + "bb" * 10 + "3b 01000000"), 19)
    assert caught.value.offset == 19 + 12


@pytest.mark.parametrize(("hexdata", "offset"), [
    ("04", 20),  # no VIF
    ("84", 20),  # no DIFE
    ("0413 3412", 21),  # data field 4 needs 4 bytes
    ("0dfd", 21),  # no VIFE
    ("0d13", 21),  # no LVAR
    ("0d13 05 4142", 21),  # text of 5, 2 left
    ("027c", 21),  # no plain-text length
    ("027c 05 41", 22),  # plain text cut
])
def test_truncated_records_name_the_frame_offset(hexdata, offset):
    with pytest.raises(TruncatedDataError) as caught:
        parse_records(bytes.fromhex(hexdata), 19)
    assert caught.value.offset == offset


def test_reserved_lvar_is_a_record_error():
    with pytest.raises(RecordError) as caught:
        parse_records(bytes.fromhex("0d13 f7"), 19)
    assert caught.value.offset == 21


def test_msb_first_records_reverse_multi_byte_data():
    records, _, _ = parse_records(bytes.fromhex("0413 0000d431"), 19, msb_first=True)
    assert records[0].raw == 54321
    built = Record.build(DataField.INT32, 0x13, 54321, msb_first=True)
    assert built.data == bytes.fromhex("0000d431")


def test_build_sets_extension_bits_and_computes_raw_from_value():
    record = Record.build(DataField.INT32, 0x13, value=54.321, storage=3, tariff=2, subunit=1)
    assert record.encode() == bytes.fromhex("c4 61 13 31d40000")
    assert record.raw == 54321
    flags = Record.build(DataField.INT16, 0xFD, 0x1234, vifes=(0x17,))
    assert flags.encode() == bytes.fromhex("02 fd 17 3412")
    dated = Record.build(DataField.INT32, 0x6D, dt.datetime(2014, 3, 13, 11, 11))
    assert dated.encode() == bytes.fromhex("04 6d 0b0bcd13")
    text = Record.build(DataField.VARIABLE, 0xFD, "TEST", vifes=(0x11,))
    assert (text.quantity, text.value) == ("Customer", "TEST")
    assert Record.build(DataField.BCD4, 0x5A, -12).encode() == bytes.fromhex("0a 5a 12f0")
    assert Record.build(DataField.INT16, 0x7F, "0102").encode() == bytes.fromhex("02 7f 0102")


@pytest.mark.parametrize("kwargs", [
    {"data_field": DataField.INT8, "vif": 0x13, "raw": 300},
    {"data_field": DataField.INT32, "vif": 0x13, "raw": 1, "function": "average"},
    {"data_field": DataField.INT32, "vif": 0xFD, "raw": 1},
    {"data_field": DataField.INT32, "vif": 0x7C, "raw": 1},
    {"data_field": DataField.INT32, "vif": 0x13, "raw": 1, "plain_text": "x"},
    {"data_field": DataField.SPECIAL, "vif": 0x13, "raw": 1},
    {"data_field": DataField.INT32, "vif": 0x13, "raw": 1, "storage": 2**42},
    {"data_field": DataField.INT32, "vif": 0x13, "raw": 1, "storage": -1},
    {"data_field": DataField.INT32, "vif": 0x13, "vifes": (0x3B,) * 11, "raw": 1},
    {"data_field": DataField.INT32, "vif": 0x13, "value": float("inf")},
    {"data_field": DataField.VARIABLE, "vif": 0x6D, "raw": dt.date(2020, 1, 1)},
    {"data_field": DataField.INT16, "vif": 0x7F, "raw": "010203"},
])
def test_build_refuses_what_cannot_be_sent(kwargs):
    with pytest.raises(EncodeError):
        Record.build(**kwargs)


def test_msb_first_texts_come_first_character_first():
    record = Record.build(DataField.VARIABLE, 0x7C, "TEST", plain_text="PW", msb_first=True)
    assert record.encode() == bytes.fromhex("0d 7c 02") + b"PW" + b"\x04TEST"
    records, _, _ = parse_records(record.encode(), 7, msb_first=True)
    assert (records[0].unit, records[0].value) == ("PW", "TEST")
    bcd = Record.build(DataField.VARIABLE, 0x13, 123456, msb_first=True)
    assert bcd.data == bytes.fromhex("c3 123456")

"""Data field codings of EN 13757-3 Annex A: integers, real, BCD, LVAR, dates."""

from __future__ import annotations

import datetime as dt

import pytest

from protocol.app.datafield import (
    DataField,
    decode_bcd,
    decode_fixed,
    decode_lvar,
    encode_bcd,
    encode_fixed,
    encode_lvar,
    lvar_length,
)
from protocol.app.dates import decode_time_point, encode_time_point


@pytest.mark.parametrize(("code", "hexdata", "value"), [
    (DataField.INT8, "ff", -1),
    (DataField.INT8, "7f", 127),
    (DataField.INT16, "feff", -2),
    (DataField.INT24, "000080", -8388608),
    (DataField.INT32, "31d40000", 54321),
    (DataField.INT48, "ffffffffffff", -1),
    (DataField.INT64, "0000000000000080", -(2**63)),
    (DataField.REAL32, "0000ac41", 21.5),
    (DataField.BCD2, "99", 99),
    (DataField.BCD4, "3412", 1234),
    (DataField.BCD6, "563412", 123456),
    (DataField.BCD8, "78563412", 12345678),
    (DataField.BCD12, "123456789012", 129078563412),
])
def test_fixed_fields_decode_and_encode(code, hexdata, value):
    data = bytes.fromhex(hexdata)
    assert decode_fixed(code, data) == value
    assert encode_fixed(code, value) == data


def test_negative_bcd_has_f_in_the_top_nibble():
    assert decode_bcd(bytes.fromhex("34f2")) == -234
    assert encode_bcd(-234, 2) == bytes.fromhex("34f2")
    assert decode_bcd(bytes.fromhex("01f0")) == -1


def test_bcd_with_other_hex_nibbles_is_no_value():
    assert decode_bcd(bytes.fromhex("eeee")) is None
    assert decode_bcd(bytes.fromhex("1a")) is None


@pytest.mark.parametrize(("code", "value"), [
    (DataField.INT8, 128), (DataField.INT16, -32769), (DataField.BCD2, 100),
    (DataField.BCD4, -1000), (DataField.INT32, 1.5), (DataField.REAL32, "x"),
    (DataField.NONE, 1), (DataField.REAL32, 1e39),
])
def test_values_that_do_not_fit_are_refused(code, value):
    with pytest.raises(ValueError):
        encode_fixed(code, value)


@pytest.mark.parametrize(("lvar", "length"), [
    (0x00, 0), (0xBF, 191), (0xC0, 0), (0xC3, 3), (0xD9, 9), (0xE0, 0), (0xE5, 5),
    (0xEF, 15), (0xF0, 16), (0xF1, 20), (0xF4, 32), (0xF5, 48), (0xF6, 64),
])
def test_lvar_lengths_follow_the_standard(lvar, length):
    assert lvar_length(lvar) == length


@pytest.mark.parametrize("lvar", [0xCA, 0xCF, 0xDA, 0xF7, 0xFF])
def test_reserved_lvar_codes_are_refused(lvar):
    with pytest.raises(ValueError):
        lvar_length(lvar)


def test_lvar_bcd_has_lvar_minus_c0_bytes_not_twice_that():
    """C3 = 6 digits = 3 bytes (EN 13757-3 table 5); libmbus would read 6 bytes."""
    assert decode_lvar(0xC3, bytes.fromhex("563412")) == 123456
    assert decode_lvar(0xD3, bytes.fromhex("563412")) == -123456
    assert encode_lvar(-123456) == bytes.fromhex("d3563412")


def test_lvar_text_is_sent_last_character_first():
    assert decode_lvar(0x0A, b"ELBYC TSET") == "TEST CYBLE"
    assert encode_lvar("TEST CYBLE") == b"\x0aELBYC TSET"


def test_lvar_binary_is_hex_most_significant_byte_first():
    assert decode_lvar(0xE2, bytes.fromhex("3412")) == "1234"
    assert encode_lvar("1234", binary=True) == bytes.fromhex("e23412")
    assert encode_lvar("00" * 16, binary=True)[0] == 0xF0
    with pytest.raises(ValueError):
        encode_lvar("00" * 17, binary=True)


def test_lvar_refuses_what_it_cannot_carry():
    with pytest.raises(ValueError):
        encode_lvar("x" * 192)
    with pytest.raises(ValueError):
        encode_lvar(10**18)
    with pytest.raises(ValueError):
        encode_lvar(1.5)


@pytest.mark.parametrize(("hexdata", "text"), [
    ("cd13", "2014-03-13"),  # type G
    ("0000", "2000-00-00"),  # unset date, formatted as sent (as libmbus)
    ("0b0bcd13", "2014-03-13T11:11:00"),  # type F (ACW_Itron corpus telegram)
    ("3a3b17", "23:59:58"),  # type J
])
def test_time_points_decode_to_iso_8601(hexdata, text):
    assert decode_time_point(bytes.fromhex(hexdata)) == text


def test_type_i_carries_seconds_and_round_trips():
    moment = dt.datetime(2024, 2, 29, 23, 59, 58)
    data = encode_time_point(moment, 6)
    assert len(data) == 6
    assert decode_time_point(data) == "2024-02-29T23:59:58"
    assert data[2] >> 5 == moment.isoweekday()


def test_time_point_encoding_refuses_wrong_types_and_years():
    with pytest.raises(ValueError):
        encode_time_point(dt.date(1970, 1, 1), 2)
    with pytest.raises(ValueError):
        encode_time_point(dt.date(2020, 1, 1), 3)
    with pytest.raises(ValueError):
        encode_time_point(dt.time(1, 2, 3), 4)
    with pytest.raises(ValueError):
        decode_time_point(b"\x00")
    assert encode_time_point(dt.date(1999, 12, 31), 2) == encode_time_point(
        dt.datetime(1999, 12, 31, 5, 6), 2)

"""SelectionMask: libmbus form, wire bytes (CI 52 and MSB-first 56), matching rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.app.requests import encode_selection
from protocol.identity import SecondaryAddress, manufacturer_code
from protocol.link import ALL, SelectionMask

SEC = SecondaryAddress(12345678, manufacturer_code("KAM"), 0x01, 0x04)


def test_wire_bytes_match_the_standard_layout() -> None:
    mask = SelectionMask.of(SEC)
    assert str(mask) == "123456782D2C0104"
    assert mask.to_bytes() == SEC.to_bytes() == bytes.fromhex("785634122D2C0104")
    assert mask.to_bytes() == encode_selection(SEC.to_bytes())
    assert SelectionMask.parse("1234567F FFFF FF FF").to_bytes() == bytes.fromhex("7F563412FFFFFFFF")


def test_msb_first_reverses_id_and_manufacturer() -> None:
    mask = SelectionMask.of(SEC, 11223344)
    data = mask.to_bytes(msb_first=True)
    assert data[:8] == bytes.fromhex("123456782C2D0104")  # KAM MSB first: 2C 2D
    assert SelectionMask.from_bytes(data, msb_first=True) == mask


@settings(max_examples=100)
@given(st.text("0123456789F", min_size=8, max_size=8), st.text("0123456789ABCDEF", min_size=8, max_size=8),
       st.none() | st.text("0123456789F", min_size=8, max_size=8))
def test_bytes_round_trip(id_part: str, rest: str, fab: str | None) -> None:
    mask = SelectionMask(id_part + rest, fab)
    assert SelectionMask.from_bytes(mask.to_bytes()) == mask


@pytest.mark.parametrize("text", ["123", "1234567A FFFF FF FF", "12345678FFFFFFFG"])
def test_parse_errors_name_the_problem(text: str) -> None:
    with pytest.raises(ValueError, match="selection mask"):
        SelectionMask.parse(text)


def test_from_bytes_errors() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        SelectionMask.from_bytes(b"\x00" * 7)
    with pytest.raises(ValueError, match="0C 78"):
        SelectionMask.from_bytes(b"\xff" * 8 + b"\x0c\x79" + b"\x00" * 4)


def test_search_helpers() -> None:
    assert ALL.with_digit(7, 3).digits == "FFFFFFF3FFFFFFFF"
    assert ALL.with_field("medium", 0x07).digits == "FFFFFFFFFFFFFF07"
    assert ALL.with_field("manufacturer", 0x2C2D).digits == "FFFFFFFF2D2CFFFF"
    assert SelectionMask.of(SEC).is_exact and not ALL.is_exact
    with pytest.raises(ValueError, match="no field"):
        ALL.with_field("colour", 1)


def test_matching_standard_vs_nibble_wildcards() -> None:
    half = SelectionMask.parse("12345678FFFF0FFF")
    assert not half.matches(SEC)
    assert half.matches(SEC, nibble_wildcards=True)
    assert not SelectionMask.parse("12345678FFFF1FFF").matches(SEC, nibble_wildcards=True)
    assert ALL.matches(SEC) and not ALL.matches(SEC, manufacturer_wildcard=False)


def test_text_form_is_libmbus_wire_order() -> None:
    # mbus_frame_get_secondary_address: %08lu%02X%02X%02X%02X with manufacturer[0], [1]
    assert str(SEC) == "123456782D2C0104"
    parsed = SecondaryAddress.parse("123456782D2C0104")
    assert parsed == SEC and parsed.manufacturer == 0x2C2D and parsed.manufacturer_letters == "KAM"
    assert SelectionMask.parse("FFFFFFFF2D2CFFFF").matches(SEC)
    assert not SelectionMask.parse("FFFFFFFF2C2DFFFF").matches(SEC)
    assert SelectionMask.from_bytes(SEC.to_bytes()) == SelectionMask.of(SEC)


def test_readable_form_id_letters_version_medium() -> None:
    assert SecondaryAddress.parse_readable("12345678 KAM 1 heat") == SEC
    assert SecondaryAddress.parse_any("12345678 kam 0x01 4") == SEC
    assert SecondaryAddress.parse_any("12345678 2D2C 01 04") == SEC  # wire order, spaced
    assert SecondaryAddress.parse_any("42 ABC 2 cold_water").medium == 0x16
    assert SecondaryAddress.parse_any("42 ABC 2 Cold-Water").medium == 0x16


@pytest.mark.parametrize("text, words", [
    ("12345678 KAM heat", ["expected ID, manufacturer letters, version and medium"]),
    ("1234567X KAM 1 heat", ["ID '1234567X'", "8 decimal digits"]),
    ("12345678 K4M 1 heat", ["'K4M' is not three letters"]),
    ("12345678 KAM one heat", ["version 'one'"]),
    ("12345678 KAM 256 heat", ["version 256", "0..255"]),
    ("12345678 KAM 1 lava", ["medium 'lava'", "heat", "0..255"]),
    ("12345678 KAM 1 0x100", ["medium '0x100'", "0..255"]),
])
def test_readable_form_errors_name_the_field(text: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        SecondaryAddress.parse_readable(text)
    for word in words:
        assert word in str(info.value), (word, str(info.value))

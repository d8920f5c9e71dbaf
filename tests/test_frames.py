"""The FT1.2 frame codec (protocol/frames.py): round trips and every failed check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import (
    ChecksumError,
    LengthMismatchError,
    LengthRangeError,
    StartByteError,
    StopByteError,
    TrailingBytesError,
    TruncatedFrameError,
)
from protocol.frames import (
    ControlFrame,
    Frame,
    LongFrame,
    ShortFrame,
    SingleChar,
    checksum,
    decode,
    encode,
    frame_length,
    parse_hex,
)


def test_known_encodings() -> None:
    assert encode(SingleChar()) == b"\xe5"
    assert encode(ShortFrame(0x40, 0x05)) == bytes.fromhex("1040054516")
    assert encode(ControlFrame(0x53, 0xFE, 0xBD)) == bytes.fromhex("68030368 53FEBD 0E 16")
    assert encode(LongFrame(0x53, 0xFD, 0x52, bytes(8))) == bytes.fromhex(
        "680B0B68 53FD52 0000000000000000 A2 16")


def frame_strategy(max_data: int = 252) -> st.SearchStrategy[Frame]:
    """Any well-formed frame (also used by test_framer)."""
    byte = st.integers(0, 255)
    return st.one_of(
        st.just(SingleChar()),
        st.builds(ShortFrame, byte, byte),
        st.builds(ControlFrame, byte, byte, byte),
        st.builds(LongFrame, byte, byte, byte, st.binary(min_size=1, max_size=max_data)),
    )


@settings(max_examples=200)
@given(frame_strategy())
def test_round_trip(frame: object) -> None:
    raw = encode(frame)  # type: ignore[arg-type]
    assert decode(raw) == frame
    assert frame_length(raw[0], raw[1] if len(raw) > 1 else None) == len(raw)


@pytest.mark.parametrize(
    ("raw", "error", "offset"),
    [
        ("", TruncatedFrameError, 0),
        ("E5 E5", TrailingBytesError, 1),
        ("10 40 05", TruncatedFrameError, 3),
        ("10 40 05 46 16", ChecksumError, 3),
        ("10 40 05 45 17", StopByteError, 4),
        ("10 40 05 45 16 00", TrailingBytesError, 5),
        ("68 03 04 68 53 FE BD 0E 16", LengthMismatchError, 2),
        ("68 02 02 68 53 FE 51 16", LengthRangeError, 1),
        ("68 03 03 69 53 FE BD 0E 16", StartByteError, 3),
        ("68 03 03 68 53 FE BD 0E", TruncatedFrameError, 8),
        ("68 03 03 68 53 FE BD 0F 16", ChecksumError, 7),
        ("68 03 03 68 53 FE BD 0E 00", StopByteError, 8),
        ("42", StartByteError, 0),
    ],
)
def test_each_check(raw: str, error: type, offset: int) -> None:
    with pytest.raises(error) as info:
        decode(parse_hex(raw) if raw else b"")
    assert info.value.offset == offset  # type: ignore[attr-defined]


def test_long_frame_data_limit() -> None:
    with pytest.raises(LengthRangeError):
        LongFrame(8, 1, 0x72, bytes(253))


def test_checksum_wraps() -> None:
    assert checksum(b"\xff\x02") == 1


@pytest.mark.parametrize("text", ["68 0G", "123", "0x100"])
def test_parse_hex_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hex(text)


def test_parse_hex_forms() -> None:
    assert parse_hex("10 5B FE 59 16") == parse_hex("105BFE5916") == parse_hex("0x10,0x5B,0xFE,0x59,0x16")

"""FT1.2 frames of EN 13757-2: single character, short, control and long frames.

| frame            | bytes                                   |
|------------------|-----------------------------------------|
| single character | E5                                      |
| short            | 10 C A CS 16                            |
| control          | 68 03 03 68 C A CI CS 16                |
| long             | 68 L L 68 C A CI data... CS 16          |

CS is the 8-bit sum of C through the last data byte; L = 3 + len(data), data <= 252 bytes.
``decode`` checks one whole frame and raises the FrameError subclass naming the failed check.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import (
    ChecksumError,
    LengthMismatchError,
    LengthRangeError,
    StartByteError,
    StopByteError,
    TrailingBytesError,
    TruncatedFrameError,
)

ACK = 0xE5
SHORT_START = 0x10
LONG_START = 0x68
STOP = 0x16
MAX_DATA = 252
"""L is one byte and counts C, A, CI and the data: 3 + 252 = 255."""

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class SingleChar:
    """The single character E5 (acknowledge)."""

    value: int = ACK


@dataclass(frozen=True, slots=True)
class ShortFrame:
    """10 C A CS 16."""

    c: int
    a: int


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """68 03 03 68 C A CI CS 16: a long frame without data."""

    c: int
    a: int
    ci: int


@dataclass(frozen=True, slots=True)
class LongFrame:
    """68 L L 68 C A CI data CS 16."""

    c: int
    a: int
    ci: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.data) > MAX_DATA:
            raise LengthRangeError(f"{len(self.data)} data bytes, at most {MAX_DATA} fit", 1)


Frame = SingleChar | ShortFrame | ControlFrame | LongFrame


def checksum(data: bytes) -> int:
    """8-bit arithmetic sum without carry."""
    return sum(data) & 0xFF


def _body(frame: ShortFrame | ControlFrame | LongFrame) -> bytes:
    if isinstance(frame, ShortFrame):
        return bytes((frame.c & 0xFF, frame.a & 0xFF))
    data = frame.data if isinstance(frame, LongFrame) else b""
    return bytes((frame.c & 0xFF, frame.a & 0xFF, frame.ci & 0xFF)) + data


def encode(frame: Frame) -> bytes:
    """The bytes of a well-formed frame."""
    if isinstance(frame, SingleChar):
        return bytes((frame.value,))
    body = _body(frame)
    if isinstance(frame, ShortFrame):
        return bytes((SHORT_START,)) + body + bytes((checksum(body), STOP))
    length = len(body)
    return bytes((LONG_START, length, length, LONG_START)) + body + bytes((checksum(body), STOP))


def frame_length(first: int, second_l: int | None = None) -> int | None:
    """Total length of a frame given its start byte (and L for long frames).

    Returns None when the length cannot be known yet (long frame, L not seen).
    Raises StartByteError for a byte that starts no frame.
    """
    if first == ACK:
        return 1
    if first == SHORT_START:
        return 5
    if first == LONG_START:
        return None if second_l is None else second_l + 6
    raise StartByteError(f"byte {first:02X} starts no frame (E5, 10 or 68 expected)", 0)


def decode(data: bytes) -> Frame:
    """Decode exactly one frame; raise the FrameError subclass for the first failed check."""
    if not data:
        raise TruncatedFrameError("no bytes", 0)
    first = data[0]
    if first == ACK:
        if len(data) > 1:
            raise TrailingBytesError(f"{len(data) - 1} bytes after E5", 1)
        return SingleChar()
    if first == SHORT_START:
        if len(data) < 5:
            raise TruncatedFrameError(f"short frame has {len(data)} of 5 bytes", len(data))
        body = data[1:3]
        if data[3] != checksum(body):
            raise ChecksumError(f"CS is {data[3]:02X}, sum of C..A is {checksum(body):02X}", 3)
        if data[4] != STOP:
            raise StopByteError(f"stop byte is {data[4]:02X}, not 16", 4)
        if len(data) > 5:
            raise TrailingBytesError(f"{len(data) - 5} bytes after the stop byte", 5)
        return ShortFrame(c=body[0], a=body[1])
    if first == LONG_START:
        if len(data) < 4:
            raise TruncatedFrameError(f"long frame header has {len(data)} of 4 bytes", len(data))
        l1, l2 = data[1], data[2]
        if l1 != l2:
            raise LengthMismatchError(f"L fields differ: {l1:02X} and {l2:02X}", 2)
        if l1 < 3:
            raise LengthRangeError(f"L is {l1}, at least 3 (C, A, CI) needed", 1)
        if data[3] != LONG_START:
            raise StartByteError(f"second start byte is {data[3]:02X}, not 68", 3)
        total = l1 + 6
        if len(data) < total:
            raise TruncatedFrameError(f"long frame has {len(data)} of {total} bytes", len(data))
        body = data[4 : 4 + l1]
        cs_at = 4 + l1
        if data[cs_at] != checksum(body):
            raise ChecksumError(
                f"CS is {data[cs_at]:02X}, sum of C..data is {checksum(body):02X}", cs_at
            )
        if data[cs_at + 1] != STOP:
            raise StopByteError(f"stop byte is {data[cs_at + 1]:02X}, not 16", cs_at + 1)
        if len(data) > total:
            raise TrailingBytesError(f"{len(data) - total} bytes after the stop byte", total)
        c, a, ci = body[0], body[1], body[2]
        if l1 == 3:
            return ControlFrame(c=c, a=a, ci=ci)
        return LongFrame(c=c, a=a, ci=ci, data=bytes(body[3:]))
    raise StartByteError(f"byte {first:02X} starts no frame (E5, 10 or 68 expected)", 0)


def parse_hex(text: str) -> bytes:
    """Bytes from hexadecimal text as in the libmbus corpus ("68 AE AE 68 ..."), any spacing.

    Raises ValueError naming the first bad token.
    """
    cleaned: list[str] = []
    for token in text.replace(",", " ").split():
        if token.lower().startswith("0x"):
            token = token[2:]
        if len(token) > 2:
            if len(token) % 2:
                raise ValueError(f"odd number of hex digits in {token[:16]!r}")
            cleaned.extend(token[i : i + 2] for i in range(0, len(token), 2))
        else:
            cleaned.append(token)
    out = bytearray()
    for token in cleaned:
        if not token or len(token) > 2 or any(ch not in _HEX_DIGITS for ch in token):
            raise ValueError(f"{token!r} is not a hex byte")
        out.append(int(token, 16))
    return bytes(out)

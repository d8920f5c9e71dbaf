"""Data field codes (DIF bits 3-0) and the coding of their values (EN 13757-3 6.3, Annex A).

| code | data field            | code | data field                             |
|------|-----------------------|------|----------------------------------------|
| 0    | no data               | 8    | selection for readout (no data)        |
| 1-4  | int 8/16/24/32        | 9-C  | BCD 2/4/6/8 digits                     |
| 5    | real 32 (IEEE 754)    | D    | variable length (LVAR byte first)      |
| 6, 7 | int 48, int 64        | E    | BCD 12 digits                          |
|      |                       | F    | special functions (see records.py)     |

Integers are two's complement, least significant byte first. A BCD field whose top nibble is
F is negative (EN 13757-3 Annex A, as libmbus): F1 23 -> -123. A BCD field holding another
non-decimal nibble (meters send EE.. for "no value") decodes to no value (None) and its hex.

LVAR (EN 13757-3 6.3.3 table 5): 00-BF text of LVAR bytes, sent last character first;
C0-C9 / D0-D9 positive / negative BCD of (LVAR-C0)*2 digits, that is LVAR-C0 bytes
(the standard's reading; libmbus reads 2*(LVAR-C0) bytes, see tests/corpus_disagreements.md);
E0-EF binary of LVAR-E0 bytes; F0-F4 binary of 4*(LVAR-EC) bytes; F5 48 bytes; F6 64 bytes;
F7-FF reserved. Binary numbers are given as hex text, most significant byte first.
"""

from __future__ import annotations

import math
import struct
from enum import IntEnum


class DataField(IntEnum):
    NONE = 0x0
    INT8 = 0x1
    INT16 = 0x2
    INT24 = 0x3
    INT32 = 0x4
    REAL32 = 0x5
    INT48 = 0x6
    INT64 = 0x7
    SELECTION = 0x8
    BCD2 = 0x9
    BCD4 = 0xA
    BCD6 = 0xB
    BCD8 = 0xC
    VARIABLE = 0xD
    BCD12 = 0xE
    SPECIAL = 0xF


FIXED_LENGTH: dict[int, int] = {
    0x0: 0, 0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x5: 4, 0x6: 6, 0x7: 8,
    0x8: 0, 0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6,
}
"""Data length in bytes per data field code (D: variable, F: special)."""

INTEGER_FIELDS = frozenset({0x1, 0x2, 0x3, 0x4, 0x6, 0x7})
BCD_FIELDS = frozenset({0x9, 0xA, 0xB, 0xC, 0xE})

LVAR_TEXT_MAX = 0xBF
LVAR_BCD_POSITIVE = 0xC0
LVAR_BCD_NEGATIVE = 0xD0
LVAR_BINARY = 0xE0
LVAR_BINARY_LONG = 0xF0

Raw = int | float | str | None
"""A decoded raw value: number, text (LVAR text, hex of binary data, ISO date), or none."""


def lvar_length(lvar: int) -> int:
    """Bytes of data after an LVAR byte. Raises ValueError for the reserved F7-FF."""
    if lvar <= LVAR_TEXT_MAX:
        return lvar
    if lvar < LVAR_BINARY:
        digits = lvar & 0x0F
        if digits > 9:
            raise ValueError(f"LVAR {lvar:02X} is reserved (BCD lengths C0-C9, D0-D9)")
        return digits
    if lvar < LVAR_BINARY_LONG:
        return lvar - LVAR_BINARY
    if lvar <= 0xF4:
        return 4 * (lvar - 0xEC)
    if lvar == 0xF5:
        return 48
    if lvar == 0xF6:
        return 64
    raise ValueError(f"LVAR {lvar:02X} is reserved (F7-FF)")


def decode_bcd(data: bytes) -> int | None:
    """Packed BCD, LSB first; top nibble F = negative; None if another nibble is not 0-9."""
    digits = data[::-1].hex()
    sign = 1
    if digits.startswith("f"):
        sign, digits = -1, digits[1:]
    if not digits.isdigit():
        return None if digits else 0
    return sign * int(digits)


def encode_bcd(value: int, n_bytes: int) -> bytes:
    """int -> packed BCD of n_bytes, LSB first; negative numbers get an F top nibble.

    Raises ValueError when it does not fit.
    """
    if value < 0:
        digits = f"{-value:0{n_bytes * 2 - 1}d}"
        if len(digits) > n_bytes * 2 - 1:
            raise ValueError(f"{value} does not fit in {n_bytes * 2} BCD digits with a sign")
        digits = "f" + digits
    else:
        digits = f"{value:0{n_bytes * 2}d}"
        if len(digits) > n_bytes * 2:
            raise ValueError(f"{value} does not fit in {n_bytes * 2} BCD digits")
    return bytes.fromhex(digits)[::-1]


def decode_fixed(code: int, data: bytes) -> Raw:
    """Value of a fixed-length data field (code 0-C, E); data LSB first, len as FIXED_LENGTH."""
    if code in INTEGER_FIELDS:
        return int.from_bytes(data, "little", signed=True)
    if code == DataField.REAL32:
        return float(struct.unpack("<f", data)[0])
    if code in BCD_FIELDS:
        return decode_bcd(data)
    return None


def encode_fixed(code: int, raw: Raw) -> bytes:
    """Bytes of a fixed-length data field. Raises ValueError when raw does not fit the code."""
    length = FIXED_LENGTH[code]
    if code in (DataField.NONE, DataField.SELECTION):
        if raw is not None:
            raise ValueError(f"data field {code:X} carries no value")
        return b""
    if code == DataField.REAL32:
        if not isinstance(raw, int | float) or isinstance(raw, bool):
            raise ValueError(f"real32 needs a number, not {raw!r}")
        if math.isfinite(raw) and abs(raw) > 3.4028234663852886e38:
            raise ValueError(f"{raw} does not fit in real32")
        return struct.pack("<f", raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ValueError(f"data field {code:X} needs an integer, not {raw!r}")
    if code in BCD_FIELDS:
        return encode_bcd(raw, length)
    try:
        return raw.to_bytes(length, "little", signed=True)
    except OverflowError:
        raise ValueError(f"{raw} does not fit in int{length * 8}") from None


def decode_lvar(lvar: int, data: bytes) -> Raw:
    """Value of a variable-length field given its LVAR byte and the data after it."""
    if lvar <= LVAR_TEXT_MAX:
        return data[::-1].decode("latin-1")
    if lvar < LVAR_BINARY:
        value = decode_bcd(data)
        if value is None:
            return None
        return -value if lvar >= LVAR_BCD_NEGATIVE else value
    return data[::-1].hex()


def encode_lvar(raw: Raw, *, binary: bool = False, length: int | None = None) -> bytes:
    """LVAR byte + data: str -> text (or hex binary when ``binary``), int -> signed BCD.

    ``length`` (bytes) picks the BCD size; default the smallest that fits.
    Raises ValueError when the value cannot be sent.
    """
    if isinstance(raw, str) and binary:
        data = bytes.fromhex(raw)[::-1]
        n = len(data)
        for lvar in [*range(0xE0, 0xF0), 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6]:
            if lvar_length(lvar) == n:
                return bytes((lvar,)) + data
        raise ValueError(f"{n} binary bytes fit no LVAR (0-15, 16, 20, 24, 28, 32, 48, 64)")
    if isinstance(raw, str):
        data = raw.encode("latin-1")[::-1]
        if len(data) > LVAR_TEXT_MAX:
            raise ValueError(f"text of {len(data)} characters is longer than 191")
        return bytes((len(data),)) + data
    if isinstance(raw, int) and not isinstance(raw, bool):
        magnitude = abs(raw)
        n = length if length is not None else max(1, (len(str(magnitude)) + 1) // 2)
        if n > 9:
            raise ValueError(f"{raw} needs more than 18 BCD digits")
        lvar = (LVAR_BCD_NEGATIVE if raw < 0 else LVAR_BCD_POSITIVE) + n
        return bytes((lvar,)) + encode_bcd(magnitude, n)
    raise ValueError(f"a variable-length field holds text, hex binary or an integer, not {raw!r}")

"""Headers of RSP_UD telegrams (EN 13757-3 6.2, docs/mbus-facts.md "Application layer").

- CI 72 (76 = MSB first): 12-byte fixed header: ID 4 BCD, manufacturer 2, version, medium,
  access number, status, signature 2. In CI 76 the multi-byte fields come MSB first.
- CI 7A: 4-byte short header: access number, status, signature 2.
- CI 73 (77 = MSB first): 16-byte fixed data structure (EN 13757-3 Annex / m-bus.com 6.2):
  ID 4 BCD, access number, status, medium/unit 2 (units in bits 5-0, medium bits 7-6 of
  each: medium = (b0 >> 6) | (b1 >> 6) << 2), counter 1 and counter 2 (4 bytes each, BCD, or
  binary when status bit 7 is set; status bit 6 = stored (historic) values).
- Status byte: bits 1-0 00 ok / 01 busy / 10 application error / 11 abnormal;
  bit 2 power low; bit 3 permanent error; bit 4 temporary error; bits 7-5 manufacturer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import EncodeError, RecordError, TruncatedDataError
from ..identity import (
    SecondaryAddress,
    bcd_encode,
    manufacturer_letters,
    medium_name,
)
from .datafield import decode_bcd

HEADER_LENGTH = 12
SHORT_HEADER_LENGTH = 4
FIXED_LENGTH = 16

STATUS_APPLICATION = ("ok", "busy", "application error", "abnormal condition")
STATUS_BITS = ((0x04, "power low"), (0x08, "permanent error"), (0x10, "temporary error"))
FIXED_STATUS_BINARY = 0x80
FIXED_STATUS_STORED = 0x40


def status_names(status: int) -> list[str]:
    """Names of the set conditions in a status byte, "ok" when none."""
    names = [] if status & 0x03 == 0 else [STATUS_APPLICATION[status & 0x03]]
    names += [name for bit, name in STATUS_BITS if status & bit]
    if status & 0xE0:
        names.append(f"manufacturer specific {status >> 5:#x}")
    return names or ["ok"]


def _order(data: bytes, msb_first: bool) -> bytes:
    return data[::-1] if msb_first else data


def _check(data: bytes, length: int, offset: int, what: str) -> None:
    if len(data) < length:
        raise TruncatedDataError(f"{what} needs {length} bytes, {len(data)} present",
                                 offset + len(data))


def _bcd(data: bytes, offset: int, what: str) -> int:
    value = decode_bcd(data)
    if value is None or value < 0:
        raise RecordError(f"{what} {data[::-1].hex().upper()} is not BCD", offset)
    return value


def decode_id(data: bytes) -> int | str:
    """4 ID bytes (LSB first) -> int when BCD, else the 8 hex digits (vendors send A-F)."""
    value = decode_bcd(data)
    if value is None or value < 0:
        return data[::-1].hex().upper()
    return value


def encode_id(value: int | str) -> bytes:
    """int 0..99999999 -> 4 BCD bytes; 8 hex digits (str) -> those 4 bytes, LSB first."""
    if isinstance(value, str):
        try:
            data = bytes.fromhex(value)
        except ValueError:
            data = b""
        if len(data) != 4:
            raise EncodeError(f"identification number {value!r} is not 8 hex digits")
        return data[::-1]
    try:
        return bcd_encode(value, 4)
    except ValueError as exc:
        raise EncodeError(f"identification number: {exc}") from None


def id_text(value: int | str) -> str:
    """The 8-digit form of an ID (libmbus prints the same digits)."""
    return f"{value:08d}" if isinstance(value, int) else value


@dataclass(frozen=True, slots=True)
class Header:
    """The 12-byte fixed header of CI 72/76."""

    id: int | str  # BCD value; 8 hex digits when a nibble is not decimal (decode_id)
    manufacturer: int
    version: int
    medium: int
    access_number: int = 0
    status: int = 0
    signature: int = 0

    @property
    def manufacturer_letters(self) -> str:
        return manufacturer_letters(self.manufacturer)

    @property
    def medium_name(self) -> str:
        return medium_name(self.medium)

    @property
    def secondary_address(self) -> SecondaryAddress:
        """Raises ValueError for a non-BCD ID."""
        if isinstance(self.id, str):
            raise ValueError(f"identification number {self.id} is not BCD")
        return SecondaryAddress(self.id, self.manufacturer, self.version, self.medium)

    def encode(self, *, msb_first: bool = False) -> bytes:
        for name, value, top in (("manufacturer", self.manufacturer, 0xFFFF),
                                 ("version", self.version, 0xFF), ("medium", self.medium, 0xFF),
                                 ("access number", self.access_number, 0xFF),
                                 ("status", self.status, 0xFF),
                                 ("signature", self.signature, 0xFFFF)):
            if not 0 <= value <= top:
                raise EncodeError(f"header {name} {value} is not 0..{top:#x}")
        return (_order(encode_id(self.id), msb_first)
                + _order(self.manufacturer.to_bytes(2, "little"), msb_first)
                + bytes((self.version, self.medium, self.access_number, self.status))
                + _order(self.signature.to_bytes(2, "little"), msb_first))

    @classmethod
    def decode(cls, data: bytes, offset: int, *, msb_first: bool = False) -> Header:
        """From at least 12 bytes; ``offset`` = position of data[0] in the frame."""
        _check(data, HEADER_LENGTH, offset, "fixed header")
        return cls(
            id=decode_id(_order(data[0:4], msb_first)),
            manufacturer=int.from_bytes(_order(data[4:6], msb_first), "little"),
            version=data[6], medium=data[7], access_number=data[8], status=data[9],
            signature=int.from_bytes(_order(data[10:12], msb_first), "little"),
        )


@dataclass(frozen=True, slots=True)
class ShortHeader:
    """The 4-byte short header of CI 7A."""

    access_number: int = 0
    status: int = 0
    signature: int = 0

    def encode(self, *, msb_first: bool = False) -> bytes:
        if not (0 <= self.access_number <= 0xFF and 0 <= self.status <= 0xFF
                and 0 <= self.signature <= 0xFFFF):
            raise EncodeError(f"short header {self} has a field out of range")
        return (bytes((self.access_number, self.status))
                + _order(self.signature.to_bytes(2, "little"), msb_first))

    @classmethod
    def decode(cls, data: bytes, offset: int, *, msb_first: bool = False) -> ShortHeader:
        _check(data, SHORT_HEADER_LENGTH, offset, "short header")
        return cls(data[0], data[1], int.from_bytes(_order(data[2:4], msb_first), "little"))


@dataclass(frozen=True, slots=True)
class FixedUnit:
    """A unit code of the fixed data structure: value = counter * 10**exponent in unit."""

    quantity: str
    unit: str = ""
    exponent: int = 0


def fixed_unit(code: int) -> FixedUnit:
    """The 6-bit unit codes of the fixed data structure (m-bus.com table 6.2)."""
    ranges = ((0x02, "Energy", "Wh", 0), (0x0B, "Energy", "J", 3), (0x14, "Power", "W", 0),
              (0x1D, "Power", "J/h", 3), (0x26, "Volume", "m^3", -6),
              (0x2F, "Volume flow", "m^3/h", -6))
    for first, quantity, unit, base in ranges:
        if first <= code < first + 9:
            return FixedUnit(quantity, unit, base + code - first)
    named = {0x00: FixedUnit("Time (h,m,s)"), 0x01: FixedUnit("Date (D,M,Y)"),
             0x38: FixedUnit("Temperature", "degC", -3), 0x39: FixedUnit("H.C.A."),
             0x3E: FixedUnit("Same as counter 1, historic"), 0x3F: FixedUnit("Without units")}
    return named.get(code, FixedUnit("Reserved"))


@dataclass(frozen=True, slots=True)
class FixedData:
    """The 16-byte fixed data structure of CI 73/77; counters are the raw numbers."""

    id: int | str
    access_number: int
    status: int
    medium: int
    unit1: int
    unit2: int
    counter1: int
    counter2: int

    @property
    def binary(self) -> bool:
        return bool(self.status & FIXED_STATUS_BINARY)

    def encode(self, *, msb_first: bool = False) -> bytes:
        if not (0 <= self.medium <= 0x0F and 0 <= self.unit1 <= 0x3F and 0 <= self.unit2 <= 0x3F):
            raise EncodeError("fixed data: medium is 4 bits, units 6 bits")
        if self.binary:
            try:
                counters = [c.to_bytes(4, "little", signed=True)
                            for c in (self.counter1, self.counter2)]
            except OverflowError:
                raise EncodeError("fixed data counter does not fit 32 bits") from None
        else:
            counters = [encode_id(c) for c in (self.counter1, self.counter2)]
        units = bytes((self.unit1 | (self.medium & 0x03) << 6,
                       self.unit2 | (self.medium >> 2) << 6))
        return (_order(encode_id(self.id), msb_first)
                + bytes((self.access_number, self.status)) + units
                + b"".join(_order(c, msb_first) for c in counters))

    @classmethod
    def decode(cls, data: bytes, offset: int, *, msb_first: bool = False) -> FixedData:
        _check(data, FIXED_LENGTH, offset, "fixed data structure")
        status = data[5]
        counters: list[int] = []
        for at in (8, 12):
            raw = _order(data[at : at + 4], msb_first)
            if status & FIXED_STATUS_BINARY:
                counters.append(int.from_bytes(raw, "little", signed=True))
            else:
                counters.append(_bcd(raw, offset + at, f"counter {at // 4 - 1}"))
        return cls(
            id=decode_id(_order(data[0:4], msb_first)), access_number=data[4],
            status=status, medium=(data[6] >> 6) | ((data[7] >> 6) << 2),
            unit1=data[6] & 0x3F, unit2=data[7] & 0x3F,
            counter1=counters[0], counter2=counters[1],
        )

"""Slave identity: identification number (BCD), manufacturer code, version, medium.

EN 13757-3 5.x / docs/mbus-facts.md "Application layer": the ID is 8 BCD digits sent as 4 bytes LSB
first; the manufacturer is 3 letters packed as (c1-64)*1024 + (c2-64)*32 + (c3-64), sent as
2 bytes little-endian (KAM = 0x2C2D, on the wire 2D 2C). The 8 bytes ID, manufacturer,
version, medium are the secondary address (selection CI 52, EN 13757-2).

Text form: libmbus's 16 hex digits, ``mbus_frame_get_secondary_address`` in mbus-protocol.c
(``%08lu%02X%02X%02X%02X``: the ID's 8 decimal digits, then manufacturer[0],
manufacturer[1], version, medium): the manufacturer in WIRE order, KAM = ``2D2C``;
``mbus_frame_select_secondary_pack`` parses it the same way. So addresses pasted between
this rig, libmbus and pyMeterBus mean the same slave. The int field ``manufacturer`` keeps
the code's value (0x2C2D for KAM).
"""

from __future__ import annotations

from dataclasses import dataclass

MEDIUM_NAMES: dict[int, str] = {
    0x00: "Other", 0x01: "Oil", 0x02: "Electricity", 0x03: "Gas", 0x04: "Heat: Outlet",
    0x05: "Steam", 0x06: "Warm water (30-90 degC)", 0x07: "Water", 0x08: "Heat Cost Allocator",
    0x09: "Compressed Air", 0x0A: "Cooling load meter: Outlet", 0x0B: "Cooling load meter: Inlet",
    0x0C: "Heat: Inlet", 0x0D: "Heat / Cooling load meter", 0x0E: "Bus/System", 0x0F: "Unknown",
    0x15: "Hot water (>= 90 degC)", 0x16: "Cold water", 0x17: "Dual water", 0x18: "Pressure",
    0x19: "A/D Converter",
}


def medium_name(medium: int) -> str:
    """Name of a medium byte (EN 13757-3:2013 table 3), "Reserved" when the table has none.

    docs/mbus-facts.md calls 06 "hot water"; the standard has 06 = warm water (30-90 degC) and
    15 = hot water (>= 90 degC).
    """
    return MEDIUM_NAMES.get(medium, "Reserved")


def manufacturer_code(letters: str) -> int:
    """'KAM' -> 0x2C2D. Raises ValueError unless three letters A-Z."""
    text = letters.upper()
    if len(text) != 3 or not all("A" <= ch <= "Z" for ch in text):
        raise ValueError(f"manufacturer {letters!r} is not three letters A-Z")
    return (ord(text[0]) - 64) * 1024 + (ord(text[1]) - 64) * 32 + (ord(text[2]) - 64)


def manufacturer_letters(code: int) -> str:
    """0x2C2D -> 'KAM'. Codes outside the letter range decode to the characters they give."""
    return "".join(chr(((code >> shift) & 0x1F) + 64) for shift in (10, 5, 0))


def manufacturer_text(code: int) -> str:
    """0x2C2D -> '2D2C': the code's two bytes in wire order (little-endian) as 4 hex digits,
    the way libmbus writes the manufacturer in a secondary address."""
    return code.to_bytes(2, "little").hex().upper()


def manufacturer_of_text(text: str) -> int:
    """'2D2C' -> 0x2C2D (the inverse of manufacturer_text). Raises ValueError."""
    if len(text) != 4:
        raise ValueError(f"manufacturer {text!r} is not 4 hex digits")
    return int.from_bytes(bytes.fromhex(text), "little")


def bcd_encode(value: int, n_bytes: int) -> bytes:
    """Non-negative int -> packed BCD, least significant byte first."""
    digits = f"{value:0{n_bytes * 2}d}"
    if value < 0 or len(digits) > n_bytes * 2:
        raise ValueError(f"{value} does not fit in {n_bytes * 2} BCD digits")
    return bytes(int(digits[i - 2 : i] if i > 2 else digits[:2], 16) for i in range(len(digits), 0, -2))


def bcd_decode(data: bytes) -> int:
    """Packed BCD, least significant byte first -> int. Raises ValueError on a non-decimal nibble."""
    text = data[::-1].hex()
    if not text.isdigit():
        raise ValueError(f"{data.hex(' ')} is not BCD")
    return int(text) if text else 0


@dataclass(frozen=True, slots=True)
class SecondaryAddress:
    """The 8-byte secondary address of a slave."""

    id: int  # 0..99999999
    manufacturer: int  # 16-bit code, see manufacturer_code()
    version: int
    medium: int

    def __post_init__(self) -> None:
        if not 0 <= self.id <= 99_999_999:
            raise ValueError(f"identification number {self.id} is not 0..99999999")
        for name, value, top in (("manufacturer", self.manufacturer, 0xFFFF),
                                 ("version", self.version, 0xFF), ("medium", self.medium, 0xFF)):
            if not 0 <= value <= top:
                raise ValueError(f"{name} {value} is out of range 0..{top:#x}")

    def to_bytes(self) -> bytes:
        """ID (4 BCD, LSB first), manufacturer (LE), version, medium."""
        return (bcd_encode(self.id, 4) + self.manufacturer.to_bytes(2, "little")
                + bytes((self.version, self.medium)))

    @classmethod
    def from_bytes(cls, data: bytes) -> SecondaryAddress:
        if len(data) != 8:
            raise ValueError(f"a secondary address is 8 bytes, not {len(data)}")
        return cls(bcd_decode(data[0:4]), int.from_bytes(data[4:6], "little"), data[6], data[7])

    def __str__(self) -> str:
        """libmbus's 16-hex-digit form: ID, manufacturer in wire order (low byte first),
        version, medium; KAM 12345678 v1 heat: ``123456782D2C0104``."""
        return (f"{self.id:08d}{manufacturer_text(self.manufacturer)}"
                f"{self.version:02X}{self.medium:02X}")

    @classmethod
    def parse(cls, text: str) -> SecondaryAddress:
        """Parse the 16-hex-digit form (manufacturer in wire order, as libmbus; no
        wildcards: see protocol.link.selection for masks)."""
        t = text.strip()
        if len(t) != 16:
            raise ValueError(f"secondary address {text!r} is not 16 hex digits")
        try:
            return cls(int(t[0:8]), manufacturer_of_text(t[8:12]), int(t[12:14], 16),
                       int(t[14:16], 16))
        except ValueError:
            raise ValueError(f"secondary address {text!r}: ID must be 8 decimal digits, "
                             f"then 8 hex digits of manufacturer, version, medium") from None

    @property
    def manufacturer_letters(self) -> str:
        return manufacturer_letters(self.manufacturer)

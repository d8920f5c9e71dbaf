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


MEDIUM_BY_NAME: dict[str, int] = {
    "other": 0x00, "oil": 0x01, "electricity": 0x02, "gas": 0x03, "heat": 0x04,
    "steam": 0x05, "hot_water": 0x06, "water": 0x07, "heat_cost_allocator": 0x08,
    "compressed_air": 0x09, "cooling_outlet": 0x0A, "cooling_inlet": 0x0B,
    "heat_inlet": 0x0C, "heat_cooling": 0x0D, "bus": 0x0E, "unknown": 0x0F,
    "cold_water": 0x16, "dual_water": 0x17, "pressure": 0x18, "ad_converter": 0x19,
}
"""Medium names accepted in profiles and rig files (a number 0-255 is accepted too)."""

assert set(MEDIUM_BY_NAME.values()) <= set(MEDIUM_NAMES)


def name_key(name: str) -> str:
    """A name as a key: lower case, runs of other characters as one '_' ("Hot water" ->
    "hot_water")."""
    key = "".join(ch if ch.isalnum() else "_" for ch in name.lower())
    return "_".join(part for part in key.split("_") if part)


def medium_of_text(text: str) -> int:
    """A medium given as a name ("heat", "cold water"), a decimal number or 0x-hex.
    Raises ValueError naming what is allowed."""
    t = text.strip()
    try:
        value = int(t, 0)
    except ValueError:
        key = name_key(t)
        if key not in MEDIUM_BY_NAME:
            raise ValueError(f"medium {text!r} is not a medium name or number (allowed: "
                             f"{', '.join(MEDIUM_BY_NAME)} or 0..255)") from None
        return MEDIUM_BY_NAME[key]
    if not 0 <= value <= 0xFF:
        raise ValueError(f"medium {text!r} is out of range (allowed: 0..255)")
    return value


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

    @classmethod
    def parse_readable(cls, text: str) -> SecondaryAddress:
        """Parse the readable form ``"12345678 ABC 1 heat"``: the ID (8 decimal digits), the
        manufacturer's three letters, the version and the medium (a name such as ``heat`` or
        ``cold_water``, or a number; version and medium numbers are decimal or 0x-hex)."""
        parts = text.split()
        if len(parts) != 4:
            raise ValueError(f"secondary address {text!r}: expected ID, manufacturer letters, "
                             f"version and medium (e.g. \"12345678 ABC 1 heat\")")
        ident, letters, version, medium = parts
        if not (ident.isdigit() and len(ident) <= 8):
            raise ValueError(f"secondary address {text!r}: ID {ident!r} is not up to 8 "
                             f"decimal digits")
        try:
            ver = int(version, 0)
        except ValueError:
            raise ValueError(f"secondary address {text!r}: version {version!r} is not a "
                             f"number") from None
        if not 0 <= ver <= 0xFF:
            raise ValueError(f"secondary address {text!r}: version {ver} is out of range "
                             f"(allowed: 0..255)")
        return cls(int(ident), manufacturer_code(letters), ver, medium_of_text(medium))

    @classmethod
    def parse_any(cls, text: str) -> SecondaryAddress:
        """Either form: the readable ``"12345678 ABC 1 heat"`` (its second word three
        letters), else the 16 hex digits in wire order, spaces allowed
        (``"12345678 2D2C 01 04"``)."""
        parts = text.split()
        if len(parts) == 4 and len(parts[1]) == 3 and parts[1].isalpha():
            return cls.parse_readable(text)
        return cls.parse("".join(parts))

    @property
    def manufacturer_letters(self) -> str:
        return manufacturer_letters(self.manufacturer)

"""Secondary-address selection masks (EN 13757-3 selection, CI 52/56; docs/mbus-facts.md "Link-layer").

A mask is written in libmbus's 16-hex-digit form (``mbus_frame_select_secondary_pack``):
ID (8 digits), manufacturer (4, in wire order: KAM is ``2D2C``), version (2), medium (2),
``F`` = wildcard. On the wire (CI 52) the ID is 4 BCD bytes LSB first with F nibbles, the
manufacturer 2 bytes little-endian (the same order as in the text), then version and
medium.

Matching follows EN 13757-3 (as quoted by ABB's A43/A44 manual): every ID digit can be a
wildcard nibble, but manufacturer, version and medium are wildcarded only as a whole
(``FFFF``, ``FF``, ``FF``). Many meters also take F nibbles there, and libmbus's search sends
such masks; ``nibble_wildcards=True`` matches that way. An enhanced selection adds the
fabrication number (8 digits, F nibbles are wildcards).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..app.requests import ENHANCED_SELECTION, encode_selection
from ..identity import SecondaryAddress, bcd_encode, manufacturer_text

MASK_DIGITS = 16
ID_DIGITS = 8
WILDCARD = "F"
_HEX = "0123456789ABCDEF"
FIELDS = (("id", 0, 8), ("manufacturer", 8, 12), ("version", 12, 14), ("medium", 14, 16))
"""(name, first digit, end digit) of each field in the 16-digit form."""


@dataclass(frozen=True, slots=True)
class SelectionMask:
    """A selection mask in the 16-digit form, plus an optional fabrication-number mask."""

    digits: str = WILDCARD * MASK_DIGITS
    fabrication: str | None = None

    def __post_init__(self) -> None:
        _check_digits(self.digits, MASK_DIGITS, "selection mask")
        if self.fabrication is not None:
            _check_digits(self.fabrication, ID_DIGITS, "fabrication-number mask")

    # --- construction -------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, fabrication: str | None = None) -> SelectionMask:
        """From libmbus's form, e.g. ``"12345678FFFFFFFF"`` or ``"1234FFFF2D2C0104"`` (KAM).

        Spaces are ignored; ValueError names what is wrong.
        """
        digits = "".join(text.split()).upper()
        fab = None if fabrication is None else "".join(fabrication.split()).upper()
        return cls(digits, fab)

    @classmethod
    def of(cls, address: SecondaryAddress, fabrication: int | None = None) -> SelectionMask:
        """The mask that selects exactly ``address`` (and ``fabrication`` when given)."""
        fab = None if fabrication is None else f"{fabrication:08d}"
        return cls(str(address), fab)

    @classmethod
    def from_bytes(cls, data: bytes, *, msb_first: bool = False) -> SelectionMask:
        """From the 8 selection bytes (+ ``0C 78`` + 4 fabrication bytes) as sent.

        ``msb_first``: CI 56 in its "select, MSB-first" reading (ID and manufacturer bytes
        in reverse order). Raises ValueError for a wrong length.
        """
        if len(data) not in (8, 14):
            raise ValueError(f"a selection is 8 bytes (14 enhanced), not {len(data)}")
        if len(data) == 14 and data[8:10] != ENHANCED_SELECTION:
            raise ValueError(f"enhanced selection needs 0C 78, not {data[8:10].hex(' ')}")
        id_bytes = data[0:4] if msb_first else data[3::-1]
        man = data[5:3:-1] if msb_first else data[4:6]  # the text has the wire order
        digits = (id_bytes + man + data[6:8]).hex().upper()
        fab = None
        if len(data) == 14:
            fab_bytes = data[10:14] if msb_first else data[13:9:-1]
            fab = fab_bytes.hex().upper()
        return cls(digits, fab)

    # --- output ---------------------------------------------------------------------------

    def to_bytes(self, *, msb_first: bool = False) -> bytes:
        """The selection data: 8 bytes (+ ``0C 78`` + fabrication mask when set)."""
        raw = bytes.fromhex(self.digits)
        id_bytes, man = (raw[0:4], raw[5:3:-1]) if msb_first else (raw[3::-1], raw[4:6])
        fab = None
        if self.fabrication is not None:
            fab = bytes.fromhex(self.fabrication)
            fab = fab if msb_first else fab[::-1]
        return encode_selection(id_bytes + man + raw[6:8], fab)

    def __str__(self) -> str:
        return self.digits if self.fabrication is None else f"{self.digits}/{self.fabrication}"

    # --- matching ---------------------------------------------------------------------------

    def matches(self, address: SecondaryAddress, fabrication: int | None = None, *,
                nibble_wildcards: bool = False, manufacturer_wildcard: bool = True) -> bool:
        """Does ``address`` (and ``fabrication``) match this mask?

        ``manufacturer_wildcard=False`` makes ``FFFF`` a literal manufacturer (a defect).
        A mask with a fabrication part never matches a slave without a fabrication number.
        """
        target = str(address)
        if not _digits_match(self.digits[:ID_DIGITS], target[:ID_DIGITS]):
            return False
        for name, start, end in FIELDS[1:]:
            want, have = self.digits[start:end], target[start:end]
            whole = want == WILDCARD * (end - start)
            if name == "manufacturer" and whole and not manufacturer_wildcard:
                if have != want:
                    return False
            elif nibble_wildcards:
                if not _digits_match(want, have):
                    return False
            elif not whole and want != have:
                return False
        if self.fabrication is None:
            return True
        if fabrication is None:
            return False
        return _digits_match(self.fabrication, bcd_encode(fabrication, 4)[::-1].hex().upper())

    # --- search helpers -----------------------------------------------------------------------

    def with_digit(self, position: int, value: int | str) -> SelectionMask:
        """This mask with digit ``position`` (0 = first of the 16-digit form) set."""
        ch = _HEX[value] if isinstance(value, int) else value.upper()
        return SelectionMask(self.digits[:position] + ch + self.digits[position + 1 :],
                             self.fabrication)

    def with_fabrication_digit(self, position: int, value: int) -> SelectionMask:
        """This mask with fabrication-number digit ``position`` set (enhanced selection)."""
        fab = self.fabrication or WILDCARD * ID_DIGITS
        return SelectionMask(self.digits, fab[:position] + _HEX[value] + fab[position + 1 :])

    def with_field(self, name: str, value: int) -> SelectionMask:
        """This mask with a whole field (manufacturer, version or medium) set; the
        manufacturer as its code (0x2C2D for KAM), written in wire order."""
        for field_name, start, end in FIELDS:
            if field_name == name:
                text = (manufacturer_text(value) if name == "manufacturer"
                        else f"{value:0{end - start}X}")
                return SelectionMask(self.digits[:start] + text + self.digits[end:],
                                     self.fabrication)
        raise ValueError(f"no field {name!r} (id, manufacturer, version, medium)")

    def is_wildcard(self, position: int) -> bool:
        return self.digits[position] == WILDCARD

    @property
    def is_exact(self) -> bool:
        """No wildcard in the ID and no whole-field wildcard elsewhere."""
        if WILDCARD in self.digits[:ID_DIGITS]:
            return False
        return all(self.digits[s:e] != WILDCARD * (e - s) for _, s, e in FIELDS[1:])


def _digits_match(mask: str, value: str) -> bool:
    return all(m == WILDCARD or m == v for m, v in zip(mask, value, strict=True))


def _check_digits(text: str, length: int, what: str) -> None:
    if len(text) != length or any(ch not in _HEX for ch in text):
        raise ValueError(f"{what} {text!r} is not {length} hex digits (F = wildcard)")
    if what == "selection mask":
        bad = [ch for ch in text[:ID_DIGITS] if ch not in "0123456789F"]
        if bad:
            raise ValueError(f"selection mask {text!r}: ID digits are 0-9 or F, not {bad[0]}")


ALL = SelectionMask()
"""Matches every slave."""

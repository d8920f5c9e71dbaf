"""Data records of variable data telegrams (EN 13757-3 6.3-6.5): decode, build, encode.

Record = DIF [DIFE x 0..10] VIF [plain text] [VIFE x 0..10] data.

- DIF: bit 7 a DIFE follows, bit 6 storage number bit 0, bits 5-4 function
  (instantaneous, maximum, minimum, value during error state), bits 3-0 data field
  (datafield.py). DIFE: bit 7 extension, bit 6 subunit bit, bits 5-4 tariff bits, bits 3-0
  storage bits; the n-th DIFE adds storage bits 4n+1.., tariff bits 2n.., subunit bit n.
- Special DIFs (data field F): 0F manufacturer data follows to the end, 1F the same and
  more records follow in the next telegram, 2F idle filler (skipped); 3F-7F and extended
  xF are reserved here (7F is the global readout request, a master-side code).
- More than 10 DIFEs or 10 VIFEs raise TooManyDifesError / TooManyVifesError; data that
  ends inside a record raises TruncatedDataError; offsets count from the frame start.
- CI 76/77 (MSB first): the multi-byte data fields (also LVAR data) are reversed before
  decoding, and texts come first character first (EN 13757-3: the character order follows
  the byte order of the application layer).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import (
    ApplicationError,
    EncodeError,
    RecordError,
    TooManyDifesError,
    TooManyVifesError,
    TruncatedDataError,
)
from . import dates
from .datafield import (
    BCD_FIELDS,
    FIXED_LENGTH,
    INTEGER_FIELDS,
    DataField,
    Raw,
    decode_fixed,
    decode_lvar,
    encode_fixed,
    encode_lvar,
    lvar_length,
)
from .vif import PLAIN_TEXT, VIF_FB, VIF_FD, VifInfo, describe

MAX_DIFES = 10
MAX_VIFES = 10
EXTENSION = 0x80

DIF_MANUFACTURER = 0x0F
DIF_MORE_RECORDS = 0x1F
DIF_IDLE = 0x2F

FUNCTIONS = ("instantaneous", "maximum", "minimum", "error")
"""DIF bits 5-4: instantaneous, maximum, minimum, value during error state."""

Value = int | float | str | None
"""A normalised value: number in the base unit, ISO 8601 text, text, hex text, or none."""

BuildRaw = Raw | dt.date | dt.datetime | dt.time


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded data record; ``encode()`` gives back its bytes exactly."""

    dif: int
    difes: tuple[int, ...]
    vif: int
    vifes: tuple[int, ...]
    plain_text: str | None
    data: bytes
    function: str
    storage: int
    tariff: int
    subunit: int
    quantity: str
    unit: str
    value: Value
    raw: Raw
    scale: float
    notes: tuple[str, ...] = ()
    msb_first: bool = False  # CI 76/77: data and texts in MSB-first byte order


    @property
    def data_field(self) -> int:
        return self.dif & 0x0F

    def encode(self) -> bytes:
        text = b""
        if self.plain_text is not None:
            text = _plain_text_bytes(self.plain_text, self.msb_first)
        return (bytes((self.dif, *self.difes, self.vif)) + text + bytes(self.vifes)
                + self.data)

    @classmethod
    def build(
        cls,
        data_field: int,
        vif: int,
        raw: BuildRaw = None,
        *,
        value: float | None = None,
        vifes: Sequence[int] = (),
        function: str = "instantaneous",
        storage: int = 0,
        tariff: int = 0,
        subunit: int = 0,
        plain_text: str | None = None,
        binary: bool = False,
        msb_first: bool = False,
    ) -> Record:
        """Build a record from M-Bus terms; extension bits are set here.

        ``vif`` is the VIF code (FD/FB for the extension tables, whose code is then the first
        of ``vifes``). ``raw`` is the value as sent: int, float, text, hex text (the bytes of
        a manufacturer-specific VIF 7F, or ``binary`` LVAR data), a date/datetime/time for
        time points. Or give ``value`` in the base unit: raw is computed from the VIF's scale.
        Raises EncodeError naming what does not fit.
        """
        if function not in FUNCTIONS:
            raise EncodeError(f"function {function!r} is not one of {', '.join(FUNCTIONS)}")
        if not 0 <= data_field <= 0x0E:
            raise EncodeError(f"data field {data_field:#x} is not 0..E (F is special)")
        difes = _difes(storage, tariff, subunit)
        dif = (data_field | (FUNCTIONS.index(function) << 4) | ((storage & 1) << 6)
               | (EXTENSION if difes else 0))
        codes = [c & 0x7F for c in vifes]
        if vif in (VIF_FD, VIF_FB) and not codes:
            raise EncodeError(f"VIF {vif:02X} needs the extension code as first VIFE")
        if len(codes) > MAX_VIFES:
            raise EncodeError(f"{len(codes)} VIFEs, at most {MAX_VIFES}")
        vif_byte = (vif & 0x7F) | (EXTENSION if codes else 0)
        wire_vifes = tuple(c | EXTENSION for c in codes[:-1]) + tuple(codes[-1:])
        if (vif & 0x7F) == PLAIN_TEXT and plain_text is None:
            raise EncodeError("a plain-text VIF (7C) needs plain_text")
        if (vif & 0x7F) != PLAIN_TEXT and plain_text is not None:
            raise EncodeError(f"plain_text given but VIF {vif:02X} is not 7C")
        info = describe(vif_byte, wire_vifes, plain_text)
        if value is not None:
            raw = _raw_from_value(info, data_field, value)
        try:
            data = _encode_data(info, data_field, raw, binary)
        except ValueError as exc:
            raise EncodeError(f"{info.quantity}: {exc}") from None
        if msb_first:
            data = data[:1] + data[1:][::-1] if data_field == DataField.VARIABLE else data[::-1]
        text = b"" if plain_text is None else _plain_text_bytes(plain_text, msb_first)
        wire = bytes((dif, *difes, vif_byte)) + text + bytes(wire_vifes) + data
        records, rest, _more = parse_records(wire, 0, msb_first=msb_first)
        if len(records) != 1 or rest is not None:
            raise EncodeError(f"record bytes {wire.hex(' ')} do not decode to one record")
        return records[0]


def _plain_text_bytes(text: str, msb_first: bool) -> bytes:
    """Length byte + characters, last character first (first first in MSB-first telegrams)."""
    try:
        encoded = text.encode("latin-1")
    except UnicodeEncodeError:
        raise EncodeError(f"plain-text unit {text!r} is not latin-1") from None
    if len(encoded) > 0xFF:
        raise EncodeError("plain-text unit longer than 255 characters")
    return bytes((len(encoded),)) + (encoded if msb_first else encoded[::-1])


def _difes(storage: int, tariff: int, subunit: int) -> tuple[int, ...]:
    if storage < 0 or tariff < 0 or subunit < 0:
        raise EncodeError("storage, tariff and subunit are not negative")
    out: list[int] = []
    s, t, u = storage >> 1, tariff, subunit
    while s or t or u:
        out.append((s & 0x0F) | ((t & 0x03) << 4) | ((u & 0x01) << 6))
        s, t, u = s >> 4, t >> 2, u >> 1
    if len(out) > MAX_DIFES:
        raise EncodeError(f"storage {storage}, tariff {tariff}, subunit {subunit} need "
                          f"{len(out)} DIFEs, at most {MAX_DIFES}")
    return tuple(b | EXTENSION for b in out[:-1]) + tuple(out[-1:])


def _raw_from_value(info: VifInfo, data_field: int, value: float) -> Raw:
    if data_field == DataField.REAL32:
        return value / info.scale
    scaled = value / info.apply(1) if info.exponent >= 0 else (
        value * int(10**-info.exponent) / info.factor)
    if not math.isfinite(scaled):
        raise EncodeError(f"{info.quantity}: {value} is not a finite number")
    return round(scaled)


def _encode_data(info: VifInfo, data_field: int, raw: BuildRaw, binary: bool) -> bytes:
    if data_field == DataField.VARIABLE:
        if isinstance(raw, dt.date | dt.time):
            raise ValueError("a time point needs a fixed-length data field")
        return encode_lvar(raw, binary=binary or info.kind == "manufacturer")
    if isinstance(raw, dt.date | dt.time):
        return dates.encode_time_point(raw, FIXED_LENGTH[data_field])
    if info.kind == "manufacturer" and isinstance(raw, str):
        data = bytes.fromhex(raw)
        if len(data) != FIXED_LENGTH[data_field]:
            raise ValueError(f"{len(data)} bytes do not fit data field {data_field:X}")
        return data
    return encode_fixed(data_field, raw)


def _storage_tariff_subunit(dif: int, difes: Sequence[int]) -> tuple[int, int, int]:
    storage = (dif >> 6) & 1
    tariff = subunit = 0
    for n, dife in enumerate(difes):
        storage |= (dife & 0x0F) << (1 + 4 * n)
        tariff |= ((dife >> 4) & 0x03) << (2 * n)
        subunit |= ((dife >> 6) & 0x01) << n
    return storage, tariff, subunit


def _value(info: VifInfo, code: int, data: bytes, msb_first: bool) -> tuple[Value, Raw]:
    """(value, raw) of a record's data field."""
    if code == DataField.VARIABLE:
        lvar, body = data[0], data[1:][::-1] if msb_first else data[1:]
        raw = decode_lvar(lvar, body)
        if isinstance(raw, int) and info.kind == "number":
            return info.apply(raw), raw
        return raw, raw
    ordered = data[::-1] if msb_first else data
    if not data:
        return None, None
    if (info.kind == "time point" and code in INTEGER_FIELDS
            and len(data) in dates.DATE_LENGTHS):
        return dates.decode_time_point(ordered), int.from_bytes(ordered, "little")
    raw = decode_fixed(code, ordered)
    if raw is None:
        return None, ordered[::-1].hex() if code in BCD_FIELDS else None
    if isinstance(raw, float) and not math.isfinite(raw):
        return None, raw
    if info.kind == "number" and not isinstance(raw, str):
        return info.apply(raw), raw
    return raw, raw


def _take(data: bytes, i: int, n: int, offset: int, what: str) -> bytes:
    if i + n > len(data):
        raise TruncatedDataError(f"{what} needs {n} bytes, {len(data) - i} left", offset + i)
    return data[i : i + n]


def _extensions(data: bytes, i: int, first: int, offset: int, what: str,
                too_many: type[ApplicationError], limit: int) -> tuple[tuple[int, ...], int]:
    """The extension bytes (DIFEs or VIFEs, at most 10) from data[i]; returns them and the
    index after them. ``first`` is the DIF/VIF whose bit 7 says whether one follows."""
    out: list[int] = []
    more = first & EXTENSION
    while more:
        if len(out) == limit:
            raise too_many(f"more than {limit} {what}s", offset + i)
        byte = _take(data, i, 1, offset, f"{what} {len(out) + 1}")[0]
        out.append(byte)
        i += 1
        more = byte & EXTENSION
    return tuple(out), i


def parse_records(
    data: bytes, offset: int, *, msb_first: bool = False
) -> tuple[tuple[Record, ...], bytes | None, bool]:
    """Records of a variable data block.

    ``offset`` is the position of ``data[0]`` in the frame (for error offsets).
    Returns (records, manufacturer data after DIF 0F/1F or None when there is no such DIF,
    more records follow).
    """
    records: list[Record] = []
    i = 0
    while i < len(data):
        start = i
        dif = data[i]
        if dif == DIF_IDLE:
            i += 1
            continue
        if dif in (DIF_MANUFACTURER, DIF_MORE_RECORDS):
            return tuple(records), bytes(data[i + 1 :]), dif == DIF_MORE_RECORDS
        if dif & 0x0F == DataField.SPECIAL:
            raise RecordError(f"DIF {dif:02X} is reserved (0F, 1F, 2F expected)", offset + i)
        difes, i = _extensions(data, i + 1, dif, offset, "DIFE", TooManyDifesError,
                                  MAX_DIFES)
        vif = _take(data, i, 1, offset, "VIF")[0]
        i += 1
        plain_text = None
        if vif & 0x7F == PLAIN_TEXT:
            length = _take(data, i, 1, offset, "plain-text unit length")[0]
            text = _take(data, i + 1, length, offset, "plain-text unit")
            plain_text = (text if msb_first else text[::-1]).decode("latin-1")
            i += 1 + length
        vifes, i = _extensions(data, i, vif, offset, "VIFE", TooManyVifesError, MAX_VIFES)
        code = dif & 0x0F
        if code == DataField.VARIABLE:
            lvar = _take(data, i, 1, offset, "LVAR")[0]
            try:
                length = 1 + lvar_length(lvar)
            except ValueError as exc:
                raise RecordError(str(exc), offset + i) from None
        else:
            length = FIXED_LENGTH[code]
        field = _take(data, i, length, offset, f"data field {code:X}")
        i += length
        info = describe(vif, vifes, plain_text)
        try:
            value, raw = _value(info, code, field, msb_first)
        except ValueError as exc:
            raise RecordError(str(exc), offset + start) from None
        storage, tariff, subunit = _storage_tariff_subunit(dif, difes)
        records.append(Record(
            dif=dif, difes=difes, vif=vif, vifes=vifes, plain_text=plain_text,
            data=bytes(field), function=FUNCTIONS[(dif >> 4) & 3], storage=storage,
            tariff=tariff, subunit=subunit, quantity=info.quantity, unit=info.unit,
            value=value, raw=raw, scale=info.scale, notes=info.notes, msb_first=msb_first,
        ))
    return tuple(records), None, False


def encode_records(records: Sequence[Record], *, more_records_follow: bool = False,
                   manufacturer_data: bytes | None = None) -> bytes:
    """Records, then DIF 1F (more follow) or 0F (manufacturer data, even empty) and that data.

    ``manufacturer_data`` None: no DIF 0F; b"": DIF 0F with nothing after it.
    """
    out = b"".join(r.encode() for r in records)
    if more_records_follow:
        return out + bytes((DIF_MORE_RECORDS,)) + (manufacturer_data or b"")
    if manufacturer_data is not None:
        return out + bytes((DIF_MANUFACTURER,)) + manufacturer_data
    return out

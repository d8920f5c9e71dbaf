"""Application payloads masters send (EN 13757-3 6.x, docs/mbus-facts.md "Link-layer behaviour").

Used by the link layer (protocol/link: SlaveLink, SelectionMask) and the master
(rig/master.py) so both ends build and read these bytes the same way.

| CI    | request            | data                                                       |
|-------|--------------------|------------------------------------------------------------|
| 50    | application reset  | nothing, or one subcode byte                               |
| 51    | data send          | data records; set primary address is `01 7A <new>`         |
| 52    | selection          | ID 4 BCD (F nibbles = wildcard), manufacturer 2, version,  |
|       |                    | medium (FF / FFFF = wildcard); enhanced: + `0C 78` + fab.  |
|       |                    | number 4 BCD                                               |
| 56    | selection, MSB-first mask (libmbus) or deselect (ABB, jMBus): same bytes as 52 |
| B8-BF | baud switch        | no data; 300..38400 Bd                                     |

The wildcard matching itself belongs to protocol.link.SelectionMask; here the mask is bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import EncodeError, RecordError, TruncatedDataError, UnsupportedCIError
from ..fields import BAUD_BY_CI, CI, CI_BY_BAUD
from .records import Record, encode_records, parse_records

SELECTION_LENGTH = 8
ENHANCED_SELECTION = bytes((0x0C, 0x78))
"""DIF 0C (BCD 8) VIF 78 (fabrication number) after the 8-byte selection."""
SET_ADDRESS_PREFIX = bytes((0x01, 0x7A))
"""DIF 01 (int8) VIF 7A (bus address)."""


@dataclass(frozen=True, slots=True)
class ApplicationReset:
    """CI 50, with an optional subcode byte."""

    subcode: int | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """CI 52 (or 56): 8-byte mask, optional 4-byte fabrication number (both as sent)."""

    mask: bytes
    fabrication: bytes | None = None
    ci: int = CI.SELECTION


@dataclass(frozen=True, slots=True)
class DataSend:
    """CI 51: data records sent to the slave (``new_address`` set for `01 7A <new>`)."""

    records: tuple[Record, ...]

    @property
    def new_address(self) -> int | None:
        if len(self.records) == 1 and self.records[0].encode()[:2] == SET_ADDRESS_PREFIX:
            raw = self.records[0].raw
            return raw & 0xFF if isinstance(raw, int) else None
        return None


@dataclass(frozen=True, slots=True)
class BaudSwitch:
    """CI B8..BF: switch to ``baud``."""

    baud: int


Request = ApplicationReset | Selection | DataSend | BaudSwitch

REQUEST_CIS = frozenset({CI.APPLICATION_RESET, CI.SET_ADDRESS, CI.SELECTION, CI.SELECTION_56,
                         *BAUD_BY_CI})


def encode_application_reset(subcode: int | None = None) -> bytes:
    if subcode is None:
        return b""
    if not 0 <= subcode <= 0xFF:
        raise EncodeError(f"application reset subcode {subcode} is not one byte")
    return bytes((subcode,))


def encode_set_address(new: int) -> bytes:
    """`01 7A <new>` (DIF int8, VIF bus address)."""
    if not 0 <= new <= 0xFF:
        raise EncodeError(f"primary address {new} is not one byte")
    return SET_ADDRESS_PREFIX + bytes((new,))


def encode_selection(mask: bytes, fabrication: bytes | None = None) -> bytes:
    """8 mask bytes, then `0C 78` + 4 fabrication-number bytes for an enhanced selection."""
    if len(mask) != SELECTION_LENGTH:
        raise EncodeError(f"a selection mask is {SELECTION_LENGTH} bytes, not {len(mask)}")
    if fabrication is None:
        return bytes(mask)
    if len(fabrication) != 4:
        raise EncodeError(f"a fabrication number is 4 BCD bytes, not {len(fabrication)}")
    return bytes(mask) + ENHANCED_SELECTION + bytes(fabrication)


def encode_data_send(records: tuple[Record, ...]) -> bytes:
    return encode_records(records)


def baud_switch_ci(baud: int) -> int:
    """CI of the baud switch to ``baud``; raises EncodeError for a rate M-Bus has no CI for."""
    if baud not in CI_BY_BAUD:
        raise EncodeError(f"{baud} Bd has no baud-switch CI ({', '.join(map(str, CI_BY_BAUD))})")
    return CI_BY_BAUD[baud]


def encode_request(request: Request) -> tuple[int, bytes]:
    """(CI, data) of a request."""
    if isinstance(request, ApplicationReset):
        return CI.APPLICATION_RESET, encode_application_reset(request.subcode)
    if isinstance(request, Selection):
        return request.ci, encode_selection(request.mask, request.fabrication)
    if isinstance(request, DataSend):
        return CI.SET_ADDRESS, encode_data_send(request.records)
    return baud_switch_ci(request.baud), b""


def decode_request(ci: int, data: bytes, offset: int = 7) -> Request:
    """The request a master's CI and data carry; ``offset`` = position of data[0].

    Raises UnsupportedCIError for another CI, TruncatedDataError / RecordError for bad data.
    """
    if ci == CI.APPLICATION_RESET:
        if len(data) > 1:
            raise RecordError(f"application reset has {len(data)} data bytes, at most 1",
                              offset + 1)
        return ApplicationReset(data[0] if data else None)
    if ci in (CI.SELECTION, CI.SELECTION_56):
        if len(data) < SELECTION_LENGTH:
            raise TruncatedDataError(f"selection needs 8 bytes, {len(data)} present",
                                     offset + len(data))
        rest = data[SELECTION_LENGTH:]
        if not rest:
            return Selection(bytes(data), None, ci)
        if rest[:2] != ENHANCED_SELECTION or len(rest) != 6:
            raise RecordError(f"after the selection mask {rest.hex(' ')} is not 0C 78 + 4 bytes",
                              offset + SELECTION_LENGTH)
        return Selection(bytes(data[:SELECTION_LENGTH]), bytes(rest[2:]), ci)
    if ci == CI.SET_ADDRESS:
        records, manufacturer, more = parse_records(data, offset)
        if manufacturer is not None or more:
            raise RecordError("manufacturer data in a data send", offset)
        return DataSend(records)
    if ci in BAUD_BY_CI:
        if data:
            raise RecordError(f"baud switch carries {len(data)} data bytes, none expected",
                              offset)
        return BaudSwitch(BAUD_BY_CI[ci])
    raise UnsupportedCIError(f"CI {ci:02X} is no request this project knows", offset - 1)

"""Telegrams: the application data of a long or control frame, by CI (EN 13757-3 table 2).

| CI     | answer                                   | decoded into                          |
|--------|------------------------------------------|---------------------------------------|
| 72, 76 | variable data, 12-byte header            | header, records, manufacturer data    |
| 7A     | variable data, 4-byte short header       | ShortHeader, records                  |
| 78     | variable data, no header                 | records                               |
| 73, 77 | fixed data structure (16 bytes)          | fixed                                 |
| 70     | application error (one byte, none = 0)   | application_error                     |
| 71     | alarm (one byte)                         | alarm                                 |
| 50, 51, 52, 56, B8-BF | master requests (requests.py) | request (51: also records)          |

76 and 77 send multi-byte fields MSB first. Offsets in errors count from the frame start
(the CI is byte 6, data starts at byte 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import EncodeError, RecordError, TruncatedDataError, UnsupportedCIError
from ..fields import CI
from ..frames import ControlFrame, LongFrame
from .header import HEADER_LENGTH, SHORT_HEADER_LENGTH, FixedData, Header, ShortHeader
from .records import Record, encode_records, parse_records
from .requests import REQUEST_CIS, DataSend, Request, decode_request, encode_request

DATA_OFFSET = 7
"""Position of the first data byte in a long frame (68 L L 68 C A CI)."""
CI_OFFSET = 6
CI_NO_HEADER = 0x78

APPLICATION_ERRORS: dict[int, str] = {
    0: "unspecified error", 1: "unimplemented CI", 2: "buffer too long",
    3: "too many records", 4: "premature end of record", 5: "more than 10 DIFEs",
    6: "more than 10 VIFEs", 7: "reserved", 8: "application busy", 9: "too many readouts",
}
"""CI 70 error byte (EN 13757-3, docs/mbus-facts.md "Application layer")."""


def application_error_name(code: int) -> str:
    return APPLICATION_ERRORS.get(code, f"reserved error {code:#04x}")


@dataclass(frozen=True, slots=True)
class Telegram:
    """A decoded (or to-be-encoded) telegram; which fields are set depends on ``ci``."""

    ci: int
    header: Header | ShortHeader | None = None
    records: tuple[Record, ...] = ()
    more_records_follow: bool = False
    manufacturer_data: bytes = b""
    application_error: int | None = None
    alarm: int | None = None
    fixed: FixedData | None = None
    request: Request | None = None
    manufacturer_dif: bool = False
    """A DIF 0F or 1F was (is to be) sent, even with no manufacturer bytes after it."""

    @property
    def msb_first(self) -> bool:
        return self.ci in (CI.RSP_VARIABLE_MSB, CI.RSP_FIXED_MSB)

    @property
    def application_error_name(self) -> str | None:
        if self.application_error is None:
            return None
        return application_error_name(self.application_error)


def _one_byte(data: bytes, what: str) -> int:
    if len(data) > 1:
        raise RecordError(f"{what} has {len(data)} bytes, one expected", DATA_OFFSET + 1)
    if not data:
        raise TruncatedDataError(f"{what} byte missing", DATA_OFFSET)
    return data[0]


def decode_data(ci: int, data: bytes) -> Telegram:
    """Telegram from a CI and the data after it (as in a long frame)."""
    msb = ci in (CI.RSP_VARIABLE_MSB, CI.RSP_FIXED_MSB)
    if ci in (CI.RSP_VARIABLE, CI.RSP_VARIABLE_MSB, CI.RSP_SHORT_HEADER, CI_NO_HEADER):
        header: Header | ShortHeader | None
        if ci == CI.RSP_SHORT_HEADER:
            header, skip = ShortHeader.decode(data, DATA_OFFSET), SHORT_HEADER_LENGTH
        elif ci == CI_NO_HEADER:
            header, skip = None, 0
        else:
            header = Header.decode(data, DATA_OFFSET, msb_first=msb)
            skip = HEADER_LENGTH
        records, manufacturer, more = parse_records(data[skip:], DATA_OFFSET + skip,
                                                    msb_first=msb)
        return Telegram(ci, header, records, more, manufacturer or b"",
                        manufacturer_dif=manufacturer is not None)
    if ci in (CI.RSP_FIXED, CI.RSP_FIXED_MSB):
        fixed = FixedData.decode(data, DATA_OFFSET, msb_first=msb)
        if len(data) > 16:
            raise RecordError(f"{len(data) - 16} bytes after the fixed data structure",
                              DATA_OFFSET + 16)
        return Telegram(ci, fixed=fixed)
    if ci == CI.APPLICATION_ERROR:
        return Telegram(ci, application_error=_one_byte(data, "application error") if data
                        else 0)
    if ci == CI.ALARM:
        return Telegram(ci, alarm=_one_byte(data, "alarm"))
    if ci in REQUEST_CIS:
        request = decode_request(ci, data, DATA_OFFSET)
        records = request.records if isinstance(request, DataSend) else ()
        return Telegram(ci, records=records, request=request)
    raise UnsupportedCIError(f"CI {ci:02X} is not decoded (72, 76, 7A, 78, 73, 77, 70, 71, "
                             f"50-52, 56, B8-BF are)", CI_OFFSET)


def decode_telegram(frame: LongFrame | ControlFrame) -> Telegram:
    """Decode the application layer of a frame; raises ApplicationError subclasses."""
    data = frame.data if isinstance(frame, LongFrame) else b""
    return decode_data(frame.ci, data)


def _tail(manufacturer_data: bytes, manufacturer_dif: bool) -> bytes | None:
    return manufacturer_data if manufacturer_data or manufacturer_dif else None


def encode_variable_data(header: Header, records: Sequence[Record], *,
                         more_records_follow: bool = False, manufacturer_data: bytes = b"",
                         manufacturer_dif: bool = False, msb_first: bool = False) -> bytes:
    """Data of an RSP_UD after CI 72 (76 with ``msb_first``; records built msb_first too).

    DIF 1F ends the records when ``more_records_follow``, else DIF 0F when there is
    manufacturer data or ``manufacturer_dif`` asks for the DIF alone.
    """
    return header.encode(msb_first=msb_first) + encode_records(
        records, more_records_follow=more_records_follow,
        manufacturer_data=_tail(manufacturer_data, manufacturer_dif))


def encode_short_data(header: ShortHeader | None, records: Sequence[Record], *,
                      more_records_follow: bool = False, manufacturer_data: bytes = b"",
                      manufacturer_dif: bool = False) -> bytes:
    """Data of an RSP_UD after CI 7A (or CI 78 with ``header`` None), as encode_variable_data."""
    head = header.encode() if header is not None else b""
    return head + encode_records(records, more_records_follow=more_records_follow,
                                 manufacturer_data=_tail(manufacturer_data, manufacturer_dif))


def encode_application_error(code: int) -> bytes:
    """Data after CI 70: the error byte (APPLICATION_ERRORS)."""
    if not 0 <= code <= 0xFF:
        raise EncodeError(f"application error {code} is not one byte")
    return bytes((code,))


def encode_alarm(alarm: int) -> bytes:
    """Data after CI 71 (the REQ_UD1 answer): the alarm byte."""
    if not 0 <= alarm <= 0xFF:
        raise EncodeError(f"alarm {alarm} is not one byte")
    return bytes((alarm,))


def encode_fixed_data(fixed: FixedData, *, msb_first: bool = False) -> bytes:
    """Data after CI 73 (77 with ``msb_first``)."""
    return fixed.encode(msb_first=msb_first)


def encode_telegram(telegram: Telegram) -> bytes:
    """The data bytes after the CI for any telegram ``decode_data`` returns."""
    ci = telegram.ci
    if isinstance(telegram.header, Header):
        return encode_variable_data(telegram.header, telegram.records,
                                    more_records_follow=telegram.more_records_follow,
                                    manufacturer_data=telegram.manufacturer_data,
                                    manufacturer_dif=telegram.manufacturer_dif,
                                    msb_first=telegram.msb_first)
    if isinstance(telegram.header, ShortHeader) or ci == CI_NO_HEADER:
        return encode_short_data(telegram.header, telegram.records,
                                 more_records_follow=telegram.more_records_follow,
                                 manufacturer_data=telegram.manufacturer_data,
                                 manufacturer_dif=telegram.manufacturer_dif)
    if telegram.fixed is not None:
        return encode_fixed_data(telegram.fixed, msb_first=telegram.msb_first)
    if telegram.application_error is not None:
        return encode_application_error(telegram.application_error)
    if telegram.alarm is not None:
        return encode_alarm(telegram.alarm)
    if telegram.request is not None:
        return encode_request(telegram.request)[1]
    raise EncodeError(f"telegram with CI {ci:02X} has nothing to encode")


def telegram_frame(telegram: Telegram, *, c: int = 0x08, a: int = 0) -> LongFrame:
    """The RSP_UD (or request) long frame carrying ``telegram``."""
    return LongFrame(c=c, a=a, ci=telegram.ci, data=encode_telegram(telegram))

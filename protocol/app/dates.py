"""Date and time data types of EN 13757-3 Annex A -> ISO 8601 text, and back.

| type | bytes | fields (bit positions per byte, LSB first on the wire)                         |
|------|-------|--------------------------------------------------------------------------------|
| G    | 2     | b0: day 0-4, year 5-7; b1: month 0-3, year 4-7 (year 7 bits: b0 5-7 low)       |
| F    | 4     | b0: minute 0-5, IV 7; b1: hour 0-4, SU 7; b2, b3: as type G                    |
| I    | 6     | b0: second 0-5, LY 7; b1: minute 0-5, SU 6, IV 7; b2: hour 0-4, weekday 5-7;  |
|      |       | b3, b4: as type G; b5: week 0-5, DST deviation 6-7                             |
| J    | 3     | b0: second, b1: minute, b2: hour (time of day only)                             |

year = ((b0 & E0) >> 5) | ((b1 & F0) >> 1) as docs/mbus-facts.md says; 0-80 is 2000-2080, 81-127
1981-2027 read as 19xx (the libmbus rule). Field values are formatted as sent, even when
they make no calendar date (month 0 in an unset date gives "2000-00-00", as libmbus does).
"""

from __future__ import annotations

import datetime as dt

DATE_LENGTHS = {2: "G", 3: "J", 4: "F", 6: "I"}
"""Data length in bytes -> date/time type."""


def _year(lo: int, hi: int) -> int:
    year = ((lo & 0xE0) >> 5) | ((hi & 0xF0) >> 1)
    return 2000 + year if year <= 80 else 1900 + year


def _date_text(lo: int, hi: int) -> str:
    return f"{_year(lo, hi):04d}-{hi & 0x0F:02d}-{lo & 0x1F:02d}"


def decode_time_point(data: bytes) -> str:
    """Type G, J, F or I bytes (chosen by length) -> ISO 8601 text (local time, no zone).

    Raises ValueError for another length.
    """
    kind = DATE_LENGTHS.get(len(data))
    if kind == "G":
        return _date_text(data[0], data[1])
    if kind == "F":
        return f"{_date_text(data[2], data[3])}T{data[1] & 0x1F:02d}:{data[0] & 0x3F:02d}:00"
    if kind == "I":
        return (f"{_date_text(data[3], data[4])}T{data[2] & 0x1F:02d}:{data[1] & 0x3F:02d}"
                f":{data[0] & 0x3F:02d}")
    if kind == "J":
        return f"{data[2] & 0x1F:02d}:{data[1] & 0x3F:02d}:{data[0] & 0x3F:02d}"
    raise ValueError(f"no date/time type has {len(data)} bytes (2, 3, 4 or 6)")


def _date_bytes(day: dt.date) -> tuple[int, int]:
    if not 1981 <= day.year <= 2080:
        raise ValueError(f"year {day.year} cannot be sent (1981..2080)")
    year = day.year % 100
    return (day.day | ((year & 0x07) << 5), day.month | ((year & 0x78) << 1))


def encode_time_point(value: dt.date | dt.datetime | dt.time, length: int) -> bytes:
    """Encode a date (type G, 2 bytes), time (type J, 3), date+time (F, 4 or I, 6).

    Raises ValueError when the value does not fit the type the length selects.
    """
    kind = DATE_LENGTHS.get(length)
    if kind == "J":
        if not isinstance(value, dt.time):
            raise ValueError("type J (3 bytes) holds a time of day")
        return bytes((value.second, value.minute, value.hour))
    if isinstance(value, dt.time):
        raise ValueError(f"a time of day needs 3 bytes (type J), not {length}")
    lo, hi = _date_bytes(value)
    if kind == "G":
        return bytes((lo, hi))
    moment = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month,
                                                                      value.day)
    if kind == "F":
        return bytes((moment.minute, moment.hour, lo, hi))
    if kind == "I":
        weekday = moment.isoweekday()
        week = moment.isocalendar()[1]
        return bytes((moment.second, moment.minute, moment.hour | (weekday << 5), lo, hi, week))
    raise ValueError(f"no date/time type has {length} bytes (2, 3, 4 or 6)")

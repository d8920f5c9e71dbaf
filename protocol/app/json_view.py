"""The JSON shape of ``mbus-rig decode`` (docs/decoding.md documents every field).

{"frame": {"type", "c", "a", "ci"},
 "header": {"id", "manufacturer", "version", "medium", "medium_name", "access_number",
            "status", "signature"} or null,
 "records": [{"function", "storage", "tariff", "subunit", "quantity", "unit", "value",
              "raw"}, ...],
 "more_records_follow": bool}

Manufacturer data after DIF 0F/1F is one last record (function "manufacturer specific" or
"more records follow", value and raw its bytes as hex). The fixed data structure (CI 73/77)
gives its two counters as records; CI 70/71 give one record, "Application error" / "Alarm".
Master requests: CI 51 gives its records; CI 50 a record "Application reset" (the subcode
or null), CI 52/56 "Selection" (the 8 mask bytes as sent, hex) and, when enhanced,
"Fabrication No" (its 8 digits, F = wildcard), CI B8-BF "Baud rate" in Bd.
Non-finite floats (real32 NaN, inf) have value null and raw "nan", "inf" or "-inf".
Combinable VIFEs (EN 13757-3 table 15) appear in the quantity: "Volume (per hour)",
"Energy (accumulation only if positive contributions)", "Power (no data available)";
multiplicative correction factors are applied to the value instead.
"""

from __future__ import annotations

import math
from typing import Any

from ..frames import ControlFrame, Frame, LongFrame, ShortFrame, SingleChar
from ..identity import manufacturer_letters, medium_name
from .header import FixedData, Header, ShortHeader, fixed_unit, id_text
from .records import Record
from .requests import ApplicationReset, BaudSwitch, Request, Selection
from .telegram import Telegram, application_error_name

FRAME_TYPES = {SingleChar: "ack", ShortFrame: "short", ControlFrame: "control",
               LongFrame: "long"}


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _record(function: str, quantity: str, unit: str, value: Any, raw: Any, storage: int = 0,
            tariff: int = 0, subunit: int = 0) -> dict[str, Any]:
    return {"function": function, "storage": storage, "tariff": tariff, "subunit": subunit,
            "quantity": quantity, "unit": unit, "value": value, "raw": _number(raw)}


APPLIED = "multiplicative correction factor"
"""Notes of VIFEs already applied to the value (left out of the JSON quantity)."""


def record_json(record: Record) -> dict[str, Any]:
    """One record; the quantity carries the combinable VIFEs' notes in parentheses."""
    value = record.value if not (isinstance(record.value, float)
                                 and not math.isfinite(record.value)) else None
    notes = [n for n in record.notes if not n.startswith(APPLIED)]
    quantity = f"{record.quantity} ({'; '.join(notes)})" if notes else record.quantity
    return _record(record.function, quantity, record.unit, value, record.raw,
                   record.storage, record.tariff, record.subunit)


def _header_json(header: Header | ShortHeader | FixedData | None) -> dict[str, Any] | None:
    if header is None:
        return None
    out: dict[str, Any] = {"id": None, "manufacturer": None, "version": None, "medium": None,
                           "medium_name": None, "access_number": header.access_number,
                           "status": header.status, "signature": None}
    if isinstance(header, Header):
        out.update(id=id_text(header.id), manufacturer=manufacturer_letters(header.manufacturer),
                   version=header.version, medium=header.medium,
                   medium_name=medium_name(header.medium), signature=header.signature)
    elif isinstance(header, ShortHeader):
        out["signature"] = header.signature
    else:
        out.update(id=id_text(header.id), medium=header.medium,
                   medium_name=medium_name(header.medium))
    return out


def _fixed_records(fixed: FixedData) -> list[dict[str, Any]]:
    function = "instantaneous"
    out = []
    for n, (code, counter) in enumerate(((fixed.unit1, fixed.counter1),
                                         (fixed.unit2, fixed.counter2))):
        unit = fixed_unit(code)
        if code == 0x3E and n == 1:  # counter 2 in counter 1's unit, stored value
            unit = fixed_unit(fixed.unit1)
        exponent = unit.exponent
        value = counter * 10**exponent if exponent >= 0 else counter / 10**-exponent
        storage = 1 if (fixed.status & 0x40 or (n == 1 and code == 0x3E)) else 0
        out.append(_record(function, unit.quantity, unit.unit, value, counter, storage))
    return out


def _request_records(request: Request | None) -> list[dict[str, Any]]:
    if isinstance(request, ApplicationReset):
        return [_record("instantaneous", "Application reset", "", request.subcode,
                        request.subcode)]
    if isinstance(request, Selection):
        out = [_record("instantaneous", "Selection", "", request.mask.hex(), request.mask.hex())]
        if request.fabrication is not None:
            fab = request.fabrication[::-1].hex()
            out.append(_record("instantaneous", "Fabrication No", "", fab, fab))
        return out
    if isinstance(request, BaudSwitch):
        return [_record("instantaneous", "Baud rate", "Bd", request.baud, request.baud)]
    return []


def telegram_json(frame: Frame, telegram: Telegram | None) -> dict[str, Any]:
    """A JSON-ready dict of one decoded frame and its telegram (None for E5 / short frames)."""
    ci = frame.ci if isinstance(frame, ControlFrame | LongFrame) else None
    c = None if isinstance(frame, SingleChar) else frame.c
    a = None if isinstance(frame, SingleChar) else frame.a
    out: dict[str, Any] = {
        "frame": {"type": FRAME_TYPES[type(frame)], "c": c, "a": a, "ci": ci},
        "header": None, "records": [], "more_records_follow": False,
    }
    if telegram is None:
        return out
    records = [record_json(r) for r in telegram.records]
    if telegram.fixed is not None:
        out["header"] = _header_json(telegram.fixed)
        records = _fixed_records(telegram.fixed)
    else:
        out["header"] = _header_json(telegram.header)
    if telegram.manufacturer_dif or telegram.manufacturer_data or telegram.more_records_follow:
        function = ("more records follow" if telegram.more_records_follow
                    else "manufacturer specific")
        hexdata = telegram.manufacturer_data.hex()
        records.append(_record(function, "Manufacturer specific", "", hexdata, hexdata))
    if telegram.application_error is not None:
        code = telegram.application_error
        records.append(_record("instantaneous", "Application error", "",
                               application_error_name(code), code))
    if telegram.alarm is not None:
        records.append(_record("instantaneous", "Alarm", "", telegram.alarm, telegram.alarm))
    records += _request_records(telegram.request)
    out["records"] = records
    out["more_records_follow"] = telegram.more_records_follow
    return out

"""A decoded telegram as a readable table: a title line with the fixed header, one row per
record, then the application error, alarm and manufacturer data where present.
``mbus-rig read`` and ``mbus-rig decode --table`` print telegrams with it."""

from __future__ import annotations

from typing import Any, TextIO

from protocol.identity import manufacturer_letters, medium_name

from .output import print_line, print_table

COLUMNS = ("#", "function", "storage", "tariff", "subunit", "quantity", "value", "unit")


def telegram_title(frame: Any, telegram: Any) -> str:
    """The fixed header (ID, manufacturer, version, medium, access number, status), CI and
    A field in one line."""
    header = telegram.header
    title = ""
    if header is not None and hasattr(header, "manufacturer"):
        title += (f"{header.id:08d} {manufacturer_letters(header.manufacturer)} "
                  f"v{header.version} {medium_name(header.medium)}, access "
                  f"{header.access_number}, status {header.status:02X}, ")
    return title + f"CI {telegram.ci:02X}, A {frame.a}"


def print_telegram(frame: Any, telegram: Any, *, title: str,
                   stream: TextIO | None = None) -> None:
    """``title``: the header line, the records table, and the telegram's other parts."""
    rows = [(number, _function_name(r.function), r.storage, r.tariff, r.subunit, r.quantity,
             value_text(r.value), r.unit or "") for number, r in enumerate(telegram.records)]
    heading = f"{title}: {telegram_title(frame, telegram)}"
    if rows:
        print_table(COLUMNS, rows, title=heading, stream=stream)
    else:
        print_line(f"{heading}, no records", stream=stream)
    if telegram.application_error is not None:
        print_line(f"application error {telegram.application_error}", stream=stream)
    if telegram.alarm is not None:
        print_line(f"alarm {telegram.alarm:02X}", stream=stream)
    if telegram.manufacturer_data:
        print_line(f"manufacturer data: {telegram.manufacturer_data.hex(' ').upper()}",
                   stream=stream)


def _function_name(function: object) -> str:
    name = getattr(function, "name", None)
    return str(name if name is not None else function).lower().replace("_", " ")


def value_text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return value.hex(" ").upper()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)

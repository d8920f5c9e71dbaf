"""``mbus-rig read``: read a slave's data (REQ_UD2) and print its records.

``--all-telegrams`` follows a multi-telegram readout (DIF 1F: more records follow) with the
FCB toggled for each next telegram and kept on a retry (EN 13757-2, docs/mbus-facts.md "Link-layer
behaviour"); the link layer sends SND_NKE first so the first telegram is the first page.
``--json`` prints the decode JSON: one object per telegram, one per line, as ``mbus-rig
decode`` does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from protocol.identity import manufacturer_letters, medium_name
from rig.tools.bus import BusSession, add_command, target_name
from rig.tools.output import print_line, print_table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "read", read, help="read a slave's records (REQ_UD2), all telegrams with --all-telegrams",
        description=__doc__, raw_description=True)
    parser.add_argument("--all-telegrams", action="store_true",
                        help="follow 'more records follow' (DIF 1F) to the last telegram")


def read(bus: BusSession, args: argparse.Namespace) -> int:
    target = target_name(args)
    address = bus.resolve(args)
    if args.all_telegrams:
        replies = bus.call(target, lambda m: m.read_all(address))
    else:
        replies = [bus.call(target, lambda m: m.req_ud2(address))]
    if args.json:
        for reply in replies:
            print_line(json.dumps(telegram_object(reply), allow_nan=False))
        return 0
    for index, reply in enumerate(replies):
        print_telegram(reply, index=index, count=len(replies), target=target)
    return 0


def telegram_object(reply: Any) -> dict[str, Any]:
    from protocol.app import telegram_json

    frame = getattr(reply, "frame", None) or reply.exchange.frame
    return dict(telegram_json(frame, reply.telegram))


def print_telegram(reply: Any, *, index: int, count: int, target: str) -> None:
    telegram = reply.telegram
    header = telegram.header
    frame = getattr(reply, "frame", None) or reply.exchange.frame
    title = f"{target}, telegram {index + 1}" + (f" of {count}" if count > 1 else "")
    if header is not None and hasattr(header, "manufacturer"):
        title += (f": {header.id:08d} {manufacturer_letters(header.manufacturer)} "
                  f"v{header.version} {medium_name(header.medium)}, access {header.access_number}, "
                  f"status {header.status:02X}")
    title += f", CI {telegram.ci:02X}, A {frame.a}"
    rows = []
    for number, record in enumerate(telegram.records):
        rows.append((number, _function_name(record.function), record.storage, record.tariff,
                     record.subunit, record.quantity, _value_text(record.value), record.unit or ""))
    print_table(("#", "function", "storage", "tariff", "subunit", "quantity", "value", "unit"),
                rows, title=title)
    if telegram.more_records_follow and count == 1:
        print_line("more records follow (use --all-telegrams to read them)")
    if telegram.application_error is not None:
        print_line(f"application error {telegram.application_error}")
    if telegram.alarm is not None:
        print_line(f"alarm {telegram.alarm:02X}")
    if telegram.manufacturer_data:
        print_line(f"manufacturer data: {telegram.manufacturer_data.hex(' ').upper()}")


def _function_name(function: object) -> str:
    name = getattr(function, "name", None)
    return str(name if name is not None else function).lower().replace("_", " ")


def _value_text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return value.hex(" ").upper()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)

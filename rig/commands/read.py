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

from rig.tools import telegram_table
from rig.tools.bus import BusSession, add_command, target_name
from rig.tools.output import print_line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "read", read, help="read a slave's records (REQ_UD2), all telegrams with --all-telegrams",
        description=__doc__, raw_description=True,
        examples=("mbus-rig read -d /dev/ttyUSB0 --address 5",
                  "mbus-rig read -d sim --profile multi-telegram --address 1 --all-telegrams",
                  "mbus-rig read -d /dev/ttyUSB0 --secondary 123456782D2C0104 --json"))
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
    frame = getattr(reply, "frame", None) or reply.exchange.frame
    title = f"{target}, telegram {index + 1}" + (f" of {count}" if count > 1 else "")
    telegram_table.print_telegram(frame, reply.telegram, title=title)
    if reply.telegram.more_records_follow and count == 1:
        print_line("more records follow (use --all-telegrams to read them)")

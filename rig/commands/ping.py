"""``mbus-rig ping``: is a slave there? SND_NKE to a primary address, or a selection by
secondary address; prints who answered and how fast. With ``--json`` the answer is a JSON
object also when nothing (or something garbled) answered: ``answer`` is then null and
``error`` says what happened."""

from __future__ import annotations

import argparse
from typing import Any

from protocol.errors import MBusRigError
from rig.master import exchange_of
from rig.tools.bus import BusSession, add_command, target_name
from rig.tools.output import print_json, print_line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_command(
        subparsers, "ping", ping, help="send SND_NKE (or a secondary selection) and report the E5",
        description="Ping one slave: SND_NKE to --address (254 pings every slave at once), "
        "or select it by --secondary. Exit 0 when it acknowledged, 1 otherwise (with --json, "
        "a JSON object either way).",
        examples=("mbus-rig ping -d /dev/ttyUSB0 --address 5",
                  "mbus-rig ping -d socket://192.168.1.20:10001 --address 254 --json"))


def ping(bus: BusSession, args: argparse.Namespace) -> int:
    target = target_name(args)
    result: dict[str, Any] = {"device": bus.device, "baud": bus.baud, "target": target}
    try:
        if args.secondary is not None:
            exchange = bus.call(target, lambda m: m.select(bus.mask_of(str(args.secondary))))
        else:
            exchange = bus.call(target, lambda m: m.snd_nke(args.address))
    except MBusRigError as exc:
        if args.json:
            tried = exchange_of(exc.__cause__) if exc.__cause__ is not None else None
            print_json({**result, "answer": None, "response_delay_ms": None,
                        "attempts": tried.attempts if tried is not None else bus.retries + 1,
                        "error": str(exc)})
        raise
    delay_ms = bus.delay_ms(exchange)
    attempts = getattr(exchange, "attempts", 1)
    if args.json:
        print_json({**result, "answer": "E5", "response_delay_ms": delay_ms,
                    "attempts": attempts, "error": None})
    else:
        delay = f" after {delay_ms:.1f} ms" if delay_ms is not None else ""
        retry = f" (attempt {attempts})" if attempts and attempts > 1 else ""
        print_line(f"{target}: E5{delay}{retry}")
    return 0

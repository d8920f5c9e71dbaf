"""``mbus-rig ping``: is a slave there? SND_NKE to a primary address, or a selection by
secondary address; prints who answered and how fast."""

from __future__ import annotations

import argparse

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
    if args.secondary is not None:
        exchange = bus.call(target, lambda m: m.select(bus.mask_of(str(args.secondary))))
    else:
        exchange = bus.call(target, lambda m: m.snd_nke(args.address))
    delay_ms = bus.delay_ms(exchange)
    attempts = getattr(exchange, "attempts", 1)
    if args.json:
        print_json({"device": bus.device, "baud": bus.baud, "target": target, "answer": "E5",
                    "response_delay_ms": delay_ms, "attempts": attempts})
    else:
        delay = f" after {delay_ms:.1f} ms" if delay_ms is not None else ""
        retry = f" (attempt {attempts})" if attempts and attempts > 1 else ""
        print_line(f"{target}: E5{delay}{retry}")
    return 0

"""``mbus-rig reset``: application reset (SND_UD, CI 50, optional subcode byte; EN 13757-3),
acknowledged with E5."""

from __future__ import annotations

import argparse

from rig.tools.bus import BusSession, add_command, target_name
from rig.tools.output import print_json, print_line


def _subcode(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a hex byte (allowed: 00-FF)") from None
    if not 0 <= value <= 0xFF:
        raise argparse.ArgumentTypeError(f"{text!r} is not a hex byte (allowed: 00-FF)")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "reset", reset, help="application reset (SND_UD, CI 50)",
        description="Send an application reset (CI 50) to --address or the slave selected by "
        "--secondary, optionally with a subcode byte.",
        examples=("mbus-rig reset -d /dev/ttyUSB0 --address 5",
                  "mbus-rig reset -d sim --address 1 --subcode 00"))
    parser.add_argument("--subcode", type=_subcode, default=None, metavar="HEX",
                        help="subcode byte, hex 00-FF (default: none)")


def reset(bus: BusSession, args: argparse.Namespace) -> int:
    target = target_name(args)
    address = bus.resolve(args)
    bus.call(target, lambda m: m.application_reset(address, args.subcode))
    sub = "" if args.subcode is None else f" (subcode {args.subcode:02X})"
    if args.json:
        print_json({"device": bus.device, "baud": bus.baud, "target": target, "reset": True,
                    "subcode": args.subcode})
    else:
        print_line(f"{target}: application reset{sub} acknowledged")
    return 0

"""``mbus-rig select``: select a slave by secondary address or wildcard mask (SND_UD to 253,
CI 52, EN 13757-2); it then answers at address 253. By default the selection is checked with
REQ_UD2 to 253, which names the slave and catches a mask matching several slaves (their E5s
can merge cleanly into one)."""

from __future__ import annotations

import argparse

from rig.tools import options
from rig.tools.bus import BusSession, add_command, identity_row
from rig.tools.output import print_json, print_line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "select", select, help="select a slave by secondary address / mask (it answers at 253)",
        description="Select a slave by secondary address (SND_UD to 253, CI 52).", target=False,
        examples=("mbus-rig select -d /dev/ttyUSB0 --secondary 123456782D2C0104",
                  "mbus-rig select -d sim --mask 1FFFFFFFFFFFFFFF"))
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-m", "--mask", type=options.mask, metavar="MASK",
                       help=f"selection mask ({options.MASK_HELP})")
    group.add_argument("-s", "--secondary", type=options.secondary, metavar="ID",
                       help="full secondary address (16 digits)")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not read the selected slave at 253 afterwards")


def select(bus: BusSession, args: argparse.Namespace) -> int:
    text = args.mask if args.mask is not None else str(args.secondary)
    target = f"mask {text}"
    bus.call(target, lambda m: m.select(bus.mask_of(text)))
    result: dict[str, object] = {"device": bus.device, "baud": bus.baud, "mask": text,
                                 "selected": True}
    if not args.no_verify:
        reply = bus.call(f"address 253 after selecting {text}", lambda m: m.req_ud2(253))
        row = identity_row(reply)
        result["slave"] = row
    if args.json:
        print_json(result)
    elif "slave" in result:
        slave = result["slave"]
        assert isinstance(slave, dict)
        print_line(f"selected {slave['secondary']} ({slave['manufacturer']}, {slave['medium']}, "
                   f"primary address {slave['address']}): it answers at address 253")
    else:
        print_line(f"selected {text}: E5 (not verified); the slave answers at address 253")
    return 0

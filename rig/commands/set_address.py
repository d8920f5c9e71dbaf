"""``mbus-rig set-address``: give a slave a new primary address (SND_UD, CI 51, data 01 7A
<new>; EN 13757-3) and check that it answers there. Refuses when the new address is taken."""

from __future__ import annotations

import argparse

from protocol.errors import NoAnswerError
from rig.tools import options
from rig.tools.bus import BusSession, add_command, identity_row, target_name
from rig.tools.errors import AddressInUseError, VerifyError
from rig.tools.output import print_json, print_line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "set-address", set_address, help="change a slave's primary address and verify it",
        description="Change the primary address of the slave at --address (or selected by "
        "--secondary) to --new, after checking nobody answers at --new; then verify it "
        "answers at --new.",
        examples=("mbus-rig set-address -d /dev/ttyUSB0 --address 0 --new 42",
                  "mbus-rig set-address -d sim --secondary 123456782D2C0104 --new 7"))
    parser.add_argument("-n", "--new", type=options.slave_address, required=True, metavar="N",
                        help=f"the new primary address ({options.SLAVE_ADDRESS_HELP})")
    parser.add_argument("--force", action="store_true",
                        help="do not check first that nobody answers at the new address")


def set_address(bus: BusSession, args: argparse.Namespace) -> int:
    new = args.new
    if not args.force and args.address != new and bus.answers(new):
        raise AddressInUseError(
            f"address {new} is already in use (something answered SND_NKE there); "
            f"use --force to set it anyway")
    address = bus.resolve(args)
    target = target_name(args)
    bus.call(target, lambda m: m.set_address(address, new))
    try:
        reply = bus.master.req_ud2(new)
    except NoAnswerError:
        raise VerifyError(
            f"{target} acknowledged the new address {new} but does not answer there "
            f"({bus.baud} baud)") from None
    row = identity_row(reply)
    if args.json:
        print_json({"device": bus.device, "baud": bus.baud, "target": target, "new_address": new,
                    "verified": True, "slave": row})
    else:
        print_line(f"{target} -> address {new}: verified, {row['secondary']} answers at {new}")
    return 0

"""``mbus-rig set-address``: give a slave a new primary address (SND_UD, CI 51, data 01 7A
<new>; EN 13757-3) and check that it answers there. Refuses when the new address is taken."""

from __future__ import annotations

import argparse

from protocol.errors import LinkError, NoAnswerError, WrongAddressError
from protocol.fields import ADDRESS_SELECTED
from rig.master import Reply
from rig.tools import options
from rig.tools.bus import BusSession, add_command, identity_row, target_name
from rig.tools.errors import AddressInUseError, VerifyError, link_error
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
    reply = _verify(bus, target, address, new)
    row = identity_row(reply)
    if args.json:
        print_json({"device": bus.device, "baud": bus.baud, "target": target, "new_address": new,
                    "verified": True, "slave": row})
    else:
        print_line(f"{target} -> address {new}: verified, {row['secondary']} answers at {new}")
    return 0


def _verify(bus: BusSession, target: str, old: int, new: int) -> Reply:
    """REQ_UD2 at ``new``; a failure is named by its cause, found by asking again: a slave
    that answers at ``new`` with another A field moved but names the wrong address (EN
    13757-3 CI 51: it answers at the new address, as the new address); one that answers only
    at ``old`` did not move."""
    was = "" if old == ADDRESS_SELECTED else f" (it was at {old})"
    try:
        reply: Reply = bus.master.req_ud2(new)
        return reply
    except WrongAddressError as exc:
        named = "its old address" if exc.received == old else f"address {exc.received}"
        raise VerifyError(
            f"{target} took the new address {new}{was} and answers there, but its RSP_UD names "
            f"{named} in the A field, not {new} (a slave answers with its own, new, address; "
            f"{bus.baud} baud)") from None
    except NoAnswerError:
        still = old != ADDRESS_SELECTED and old != new and bus.answers(old)
        where = (f"; it still answers at {old}: it did not change its address" if still
                 else "" if old == ADDRESS_SELECTED else f", nor at {old}")
        raise VerifyError(
            f"{target} acknowledged the new address {new} but does not answer there "
            f"({bus.baud} baud){where}") from None
    except LinkError as exc:
        raise link_error(exc, target=f"address {new} after moving {target} there",
                         baud=bus.baud) from exc

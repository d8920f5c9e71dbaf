"""``mbus-rig switch-baud``: switch a slave to another baud rate (control frame, CI B8..BF;
EN 13757-2, docs/mbus-facts.md "Baud switch"), then check that it answers at the new rate.

The slave acknowledges at the old rate and then switches; what it does when nothing valid
follows at the new rate is vendor specific (some fall back after ~30 s). The command says
plainly whether the slave answered at the new rate.
"""

from __future__ import annotations

import argparse
from typing import Any

from protocol.errors import LinkError
from rig.tools import options
from rig.tools.bus import BusSession, add_command, target_name
from rig.tools.errors import VerifyError
from rig.tools.output import print_json, print_line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "switch-baud", switch_baud, help="switch a slave's baud rate and verify it at the new rate",
        description="Switch the slave at --address (or selected by --secondary) from --baud to "
        "--to, then ping it at the new rate.",
        examples=("mbus-rig switch-baud -d /dev/ttyUSB0 --address 5 --baud 2400 --to 9600",))
    parser.add_argument("--to", type=options.baud, required=True, metavar="BAUD",
                        help=f"the new baud rate ({options.BAUD_HELP})")


def switch_baud(bus: BusSession, args: argparse.Namespace) -> int:
    new = args.to
    old = bus.baud
    target = target_name(args)
    address = bus.resolve(args)
    bus.call(target, lambda m: m.switch_baud(address, new))
    bus.set_baud(new)
    try:
        exchange = _ping(bus, args, address)
    except LinkError as exc:
        raise VerifyError(_not_at_new_rate(bus, args, address, old, new, exc)) from None
    delay_ms = bus.delay_ms(exchange)
    if args.json:
        print_json({"device": bus.device, "target": target, "old_baud": old, "new_baud": new,
                    "verified": True, "response_delay_ms": delay_ms})
    else:
        print_line(f"{target}: switched from {old} to {new} baud; verified, it answers at {new} baud")
    return 0


def _ping(bus: BusSession, args: argparse.Namespace, address: int) -> Any:
    """SND_NKE to the slave (selecting it again first when it is reached by secondary)."""
    if args.secondary is not None:
        bus.master.select(bus.mask_of(str(args.secondary)))
    return bus.master.snd_nke(address)


def _not_at_new_rate(bus: BusSession, args: argparse.Namespace, address: int, old: int,
                     new: int, exc: LinkError) -> str:
    """Why the check at the new rate failed: look for the slave at the old rate too."""
    target = target_name(args)
    said = (f"{target} acknowledged the switch from {old} to {new} baud at {old} baud, but does "
            f"not answer at {new} baud ({type(exc).__name__})")
    bus.set_baud(old)
    try:
        _ping(bus, args, address)
    except LinkError:
        return f"{said}; it may fall back to {old} baud after a vendor-specific time"
    return f"{said}; it still answers at {old} baud: it did not switch"

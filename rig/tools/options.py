"""The argument layer of the master tools: common bus options and validated argument types.

A bad argument makes argparse exit with status 2 and one line naming the argument and the
allowed values, e.g. ``argument --address: 300 is not an address (allowed: 0-250 ...)``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from protocol.fields import ADDRESS_SELECTED, BROADCAST_ANSWER, PRIMARY_MAX
from protocol.identity import SecondaryAddress
from protocol.link.master import (
    DEFAULT_RETRIES,
    MAX_READ_LATENCY,
    MAX_RESPONSE_TIMEOUT,
    MAX_RETRIES,
)
from protocol.timing import BAUD_RATES, DEFAULT_BAUD

DEVICE_ENV = "MBUS_RIG_DEVICE"
MAX_TIMEOUT_S = MAX_RESPONSE_TIMEOUT

ADDRESS_HELP = "0-250 (primary), 253 (the slave selected by secondary address), 254 (broadcast)"
SLAVE_ADDRESS_HELP = "0-250"
BAUD_HELP = ", ".join(str(b) for b in BAUD_RATES)
MASK_HELP = (
    "16 hex digits: 8 ID digits (0-9 or F), manufacturer (4, wire order as libmbus: KAM is "
    "2D2C), version (2), medium (2); F is a wildcard, e.g. 1234FFFFFFFFFFFF"
)


def _int(text: str, what: str, allowed: str) -> int:
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} (allowed: {allowed})") from None


def address(text: str) -> int:
    """A link address a request may go to: 0-250, 253 or 254."""
    value = _int(text, "an address", ADDRESS_HELP)
    if not (0 <= value <= PRIMARY_MAX or value in (ADDRESS_SELECTED, BROADCAST_ANSWER)):
        raise argparse.ArgumentTypeError(f"{value} is not an address (allowed: {ADDRESS_HELP})")
    return value


def slave_address(text: str) -> int:
    """A primary address a slave can own: 0 (unconfigured) or 1-250."""
    value = _int(text, "a primary address", SLAVE_ADDRESS_HELP)
    if not 0 <= value <= PRIMARY_MAX:
        raise argparse.ArgumentTypeError(
            f"{value} is not a primary address (allowed: {SLAVE_ADDRESS_HELP})")
    return value


def baud(text: str) -> int:
    value = _int(text, "a baud rate", BAUD_HELP)
    if value not in BAUD_RATES:
        raise argparse.ArgumentTypeError(f"{value} is not an M-Bus baud rate (allowed: {BAUD_HELP})")
    return value


def retries(text: str) -> int:
    value = _int(text, "a retry count", f"0-{MAX_RETRIES}")
    if not 0 <= value <= MAX_RETRIES:
        raise argparse.ArgumentTypeError(f"{value} retries (allowed: 0-{MAX_RETRIES})")
    return value


def timeout(text: str) -> float:
    """Seconds to wait for the start of an answer."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (allowed: more than 0, at most {MAX_TIMEOUT_S:g})"
        ) from None
    if not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(
            f"{value:g} s is out of range (allowed: more than 0, at most {MAX_TIMEOUT_S:g})")
    return value


def read_latency(text: str) -> float:
    """Seconds the port may deliver a character late (protocol.link.master)."""
    allowed = f"0 to {MAX_READ_LATENCY:g}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (allowed: {allowed})") from None
    if not 0 <= value <= MAX_READ_LATENCY:
        raise argparse.ArgumentTypeError(f"{value:g} s is out of range (allowed: {allowed})")
    return value


def check_mask_text(text: str) -> str:
    """Check the 16-hex-digit form of a selection mask; return it upper-cased.

    ID digits are BCD (0-9) or the wildcard F; manufacturer, version and medium are hex,
    with FFFF / FF as their wildcards (EN 13757-2, docs/mbus-facts.md "Secondary selection").
    """
    t = "".join(text.split()).upper()
    if len(t) != 16:
        raise argparse.ArgumentTypeError(
            f"{text!r} has {len(t)} digits, not 16 (allowed: {MASK_HELP})")
    bad = [i for i, ch in enumerate(t) if ch not in "0123456789ABCDEF"]
    if bad:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {t[bad[0]]!r} at position {bad[0] + 1} is not a hex digit (allowed: {MASK_HELP})")
    bad_id = [i for i, ch in enumerate(t[:8]) if ch in "ABCDE"]
    if bad_id:
        raise argparse.ArgumentTypeError(
            f"{text!r}: ID digit {t[bad_id[0]]!r} at position {bad_id[0] + 1} is neither 0-9 "
            f"nor the wildcard F (allowed: {MASK_HELP})")
    return t


def mask(text: str) -> str:
    return check_mask_text(text)


def secondary(text: str) -> SecondaryAddress:
    """A full secondary address (no wildcards), in libmbus's 16-digit form."""
    t = check_mask_text(text)
    if "F" in t[:8]:
        raise argparse.ArgumentTypeError(
            f"{text!r} has a wildcard in the ID (a secondary address names one slave; "
            f"use select --mask for wildcards)")
    try:
        return SecondaryAddress.parse(t)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_bus_options(parser: argparse.ArgumentParser) -> None:
    """--device, --baud, --retries, --timeout, --read-latency, --echo, --verbose, --seed,
    --profile."""
    group = parser.add_argument_group("bus")
    default_device = os.environ.get(DEVICE_ENV)
    group.add_argument(
        "-d", "--device", default=default_device, required=default_device is None,
        metavar="DEVICE",
        help="serial device (/dev/ttyUSB0), pyserial URL (socket://HOST:PORT, rfc2217://...), "
        "or the simulated bus: sim (one emulated meter) or sim:N (N meters at addresses 1..N); "
        f"default: ${DEVICE_ENV}")
    group.add_argument("-b", "--baud", type=baud, default=DEFAULT_BAUD,
                       help=f"baud rate ({BAUD_HELP}; default: %(default)s)")
    group.add_argument("-r", "--retries", type=retries, default=DEFAULT_RETRIES,
                       help=f"retries after no or a garbled answer (0-{MAX_RETRIES}; default: %(default)s)")
    group.add_argument("-t", "--timeout", type=timeout, default=None, metavar="SECONDS",
                       help="wait this long for the start of an answer (default: the standard's "
                       "response window, 330 bit times + 50 ms)")
    group.add_argument("--read-latency", type=read_latency, default=None, metavar="SECONDS",
                       help="how late the port may deliver characters (a USB adapter: ~0.02; "
                       "default: 0.2 for socket:// and rfc2217://, else 0): listening and the "
                       "tolerated gap inside an answer are that much longer")
    group.add_argument("--echo", action="store_true",
                       help="the level converter echoes what the master sends: drop the echo")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="print the decoded bus trace with timestamps to stderr")
    group.add_argument("--seed", type=int, default=1,
                       help="simulated bus only: seed of its randomness (default: %(default)s)")
    group.add_argument("--profile", default=None, metavar="FILE|NAME",
                       help="simulated bus only: meter profile of the emulated meters, a TOML "
                       "file or a shipped profile name (heat-meter, multi-telegram)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_target_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """--address A | --secondary ID: which slave a command talks to."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("-a", "--address", type=address, metavar="A",
                       help=f"primary address ({ADDRESS_HELP})")
    group.add_argument("-s", "--secondary", type=secondary, metavar="ID",
                       help="secondary address, 16 digits: ID, manufacturer, version, medium "
                       "(e.g. 12345678 2D2C 01 04 written as 123456782D2C0104)")


CommandFn = Callable[[argparse.Namespace], int]

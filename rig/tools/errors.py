"""Failures of the master tools as one line a user understands (no traceback).

The CLI dispatcher prints any MBusRigError as ``mbus-rig COMMAND: message`` with exit 1
(exit 2 for ConfigError). This module builds those messages: what failed, where (device,
address, baud rate) and, for a bad frame, the bytes that came.
"""

from __future__ import annotations

from protocol.errors import (
    CollisionError,
    FrameError,
    GarbledAnswerError,
    LinkError,
    MBusRigError,
    NoAnswerError,
    UnexpectedAnswerError,
    WrongAddressError,
)
from protocol.link.master import LateAnswer
from rig.master import exchange_of


def hex_bytes(data: bytes | None) -> str:
    return data.hex(" ").upper() if data else "(none)"


def link_error(exc: LinkError | FrameError, *, target: str, baud: int,
               attempts: int | None = None, raw: bytes | None = None,
               late: LateAnswer | None = None) -> MBusRigError:
    """A failed exchange with ``target`` ("address 5", "secondary 12345678...") as one line.

    Bytes, attempts and the failed check come from the ``Exchange`` the master attached to
    the error (``rig.master.exchange_of``), never from its message text. ``late``: a late
    answer to the last attempt, heard after it (``Master.late_answer``).
    """
    exchange = exchange_of(exc)
    if exchange is not None:
        attempts = exchange.attempts
    tries = f", {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    got = raw if raw is not None else (exchange.raw if exchange is not None else None)
    if isinstance(exc, NoAnswerError):
        detail = f"; last reply: {hex_bytes(got)}" if got else ""
        lates = [*(exchange.late_answers if exchange is not None else ()),
                 *([late] if late is not None else [])]
        if lates:
            return NoAnswerError(
                f"no answer inside the response window at {target} ({baud} baud{tries}), but "
                f"a late one: {lates[-1].describe('the')}; the slave answers too late "
                f"(--timeout S listens longer)")
        return NoAnswerError(
            f"nothing answered at {target} ({baud} baud{tries}){detail}; check the address, "
            f"the baud rate and the wiring")
    if isinstance(exc, CollisionError):
        detail = f": {hex_bytes(got)}" if got else ""
        return CollisionError(
            f"collision at {target} ({baud} baud): more than one slave answered{detail}")
    if isinstance(exc, GarbledAnswerError):
        failed = exchange.error if exchange is not None else None
        why = str(failed) if failed is not None else str(exc)
        hint = ""
        if exchange is not None and exchange.several_answered:
            hint = (" (parity/framing errors: several slaves answering at once, or noise)"
                    if exchange.character_errors
                    else " (the same bytes on every attempt: several slaves answering at once)")
        return GarbledAnswerError(
            f"garbled answer from {target} ({baud} baud{tries}): {why}{hint}; "
            f"bytes: {hex_bytes(got)}")
    if isinstance(exc, FrameError):
        what = exc.check
        return type(exc)(
            f"{what} error in the answer from {target} ({baud} baud): {hex_bytes(got)} "
            f"({exc.args[0] if exc.args else exc})", exc.offset)
    if isinstance(exc, WrongAddressError):
        return WrongAddressError(
            f"wrong address in the answer from {target} ({baud} baud{tries}): it names address "
            f"{exc.received}, not {exc.expected} (another slave answered, or the slave's A field "
            f"is wrong): {hex_bytes(got)}", expected=exc.expected, received=exc.received)
    if isinstance(exc, UnexpectedAnswerError):
        detail = f": {hex_bytes(got)}" if got else ""
        return UnexpectedAnswerError(f"unexpected answer from {target} ({baud} baud){detail} ({exc})")
    return type(exc)(f"{target} ({baud} baud): {exc}")


class AddressInUseError(LinkError):
    """set-address: something already answers at the new address."""


class VerifyError(LinkError):
    """A slave acknowledged a change (address, baud rate) but is not found where it should be."""

"""Failures of the master tools as one line a user understands (no traceback).

The CLI dispatcher prints any MBusRigError as ``mbus-rig COMMAND: message`` with exit 1
(exit 2 for ConfigError). This module builds those messages: what failed, where (device,
address, baud rate) and, for a bad frame, the bytes that came.
"""

from __future__ import annotations

import re

from protocol.errors import (
    CharacterError,
    CollisionError,
    FrameError,
    GarbledAnswerError,
    LinkError,
    MBusRigError,
    NoAnswerError,
    UnexpectedAnswerError,
)

CHARACTER_ERROR = CharacterError.check
_TRAILING_HEX = re.compile(r":\s*((?:[0-9A-Fa-f]{2}\s?)+)$")
_GARBLED = re.compile(r"after (\d+) attempts? \((.*)\):\s*[0-9A-Fa-f ]*$")


def hex_bytes(data: bytes | None) -> str:
    return data.hex(" ").upper() if data else "(none)"


def link_error(exc: LinkError | FrameError, *, target: str, baud: int,
               attempts: int | None = None, raw: bytes | None = None) -> MBusRigError:
    """A failed exchange with ``target`` ("address 5", "secondary 12345678...") as one line."""
    tries = f", {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    got = raw if raw is not None else _raw_of(exc)
    if isinstance(exc, NoAnswerError):
        detail = f"; last reply: {hex_bytes(got)}" if got else ""
        return NoAnswerError(
            f"nothing answered at {target} ({baud} baud{tries}){detail}; check the address, "
            f"the baud rate and the wiring")
    if isinstance(exc, CollisionError):
        detail = f": {hex_bytes(got)}" if got else ""
        return CollisionError(
            f"collision at {target} ({baud} baud): more than one slave answered{detail}")
    if isinstance(exc, GarbledAnswerError):
        match = _GARBLED.search(str(exc))
        why = match.group(2) if match else str(exc)
        count = f", {match.group(1)} attempts" if match else tries
        hint = (" (parity/framing errors: several slaves answering at once, or noise)"
                if why.startswith(CHARACTER_ERROR) else "")
        return GarbledAnswerError(
            f"garbled answer from {target} ({baud} baud{count}): {why}{hint}; "
            f"bytes: {hex_bytes(got)}")
    if isinstance(exc, FrameError):
        what = exc.check
        return type(exc)(
            f"{what} error in the answer from {target} ({baud} baud): {hex_bytes(got)} "
            f"({exc.args[0] if exc.args else exc})", exc.offset)
    if isinstance(exc, UnexpectedAnswerError):
        detail = f": {hex_bytes(got)}" if got else ""
        return UnexpectedAnswerError(f"unexpected answer from {target} ({baud} baud){detail} ({exc})")
    return type(exc)(f"{target} ({baud} baud): {exc}")


def _raw_of(exc: BaseException) -> bytes | None:
    """The bytes behind a failed exchange, where the raising code attached them."""
    match = _TRAILING_HEX.search(str(exc))
    if match:
        return bytes.fromhex(match.group(1))
    for name in ("raw", "data", "received"):
        value = getattr(exc, name, None)
        if isinstance(value, bytes | bytearray) and value:
            return bytes(value)
    exchange = getattr(exc, "exchange", None)
    if exchange is not None:
        for name in ("raw", "received_bytes", "response"):
            value = getattr(exchange, name, None)
            if isinstance(value, bytes | bytearray) and value:
                return bytes(value)
        chars = getattr(exchange, "received", None)
        if chars:
            try:
                return bytes(getattr(ch, "value", ch) for ch in chars)
            except (TypeError, ValueError):
                return None
    return None


class AddressInUseError(LinkError):
    """set-address: something already answers at the new address."""


class VerifyError(LinkError):
    """A slave acknowledged a change (address, baud rate) but is not found where it should be."""

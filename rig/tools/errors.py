"""Failures of the master tools as one line a user understands (no traceback).

The CLI dispatcher prints any MBusRigError as ``mbus-rig COMMAND: message`` with exit 1
(exit 2 for ConfigError). This module builds those messages: what failed, where (device,
address, baud rate) and, for a bad frame, the bytes that came.
"""

from __future__ import annotations

import errno

from protocol.errors import (
    CollisionError,
    ConfigError,
    FrameError,
    HardwareError,
    LinkError,
    MBusRigError,
    NoAnswerError,
    UnexpectedAnswerError,
)


class PortOpenError(HardwareError):
    """The port named by --device could not be opened."""


_OPEN_HINTS: dict[int, str] = {
    errno.ENOENT: "no such port",
    errno.ENODEV: "no such port",
    errno.ENXIO: "no such port",
    errno.EACCES: "permission denied (add your user to the dialout group, or run as root)",
    errno.EPERM: "permission denied (add your user to the dialout group, or run as root)",
    errno.EBUSY: "port busy (another program has it open)",
    errno.EAGAIN: "port busy (another program holds its lock)",
    errno.ECONNREFUSED: "connection refused (is the gateway listening on that port?)",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "connection timed out",
}


def _errno_of(exc: BaseException) -> int | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        number = getattr(current, "errno", None)
        if isinstance(number, int):
            return number
        current = current.__cause__ or current.__context__
    return None


def open_error(device: str, exc: BaseException) -> MBusRigError:
    """An error opening ``device`` as one line: no such port, permission denied, port busy..."""
    if isinstance(exc, ConfigError):
        return exc
    number = _errno_of(exc)
    text = str(exc)
    if number in _OPEN_HINTS:
        reason = _OPEN_HINTS[number]
    elif "lock" in text.lower() or "busy" in text.lower():
        reason = "port busy (another program has it open)"
    elif "no such file" in text.lower() or "could not open port" in text.lower() and number is None:
        reason = "no such port"
    else:
        reason = text.splitlines()[0] if text else type(exc).__name__
    return PortOpenError(f"cannot open {device}: {reason}")


def hex_bytes(data: bytes) -> str:
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

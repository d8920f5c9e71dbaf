"""The project's exception hierarchy, rooted in :class:`MBusRigError`.

Every layer raises subclasses of MBusRigError only, so callers (the CLI, the agent, the
plugin) can turn any expected failure into a one-line message instead of a traceback.
"""

from __future__ import annotations


class MBusRigError(Exception):
    """Root of every error this project raises on purpose."""


class ProtocolError(MBusRigError):
    """Something on the wire or in a telegram is not valid M-Bus."""


# --- frame level (EN 13757-2 / IEC 60870-5-1 FT1.2) -------------------------------------


class FrameError(ProtocolError):
    """A frame failed one of the FT1.2 checks; ``offset`` is the byte where it failed."""

    check = "frame"

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.check}: {super().__str__()} (at byte {self.offset})"


class StartByteError(FrameError):
    check = "start byte"


class LengthMismatchError(FrameError):
    check = "L mismatch"


class LengthRangeError(FrameError):
    check = "L out of range"


class ChecksumError(FrameError):
    check = "checksum"


class StopByteError(FrameError):
    check = "stop byte"


class TruncatedFrameError(FrameError):
    check = "truncated"


class TrailingBytesError(FrameError):
    check = "trailing bytes"


class CharacterError(FrameError):
    """A character inside a frame arrived with a parity or framing error."""

    check = "character error"


class GapError(FrameError):
    """The line was idle too long inside a frame (the receiver discards the partial frame)."""

    check = "inter-character gap"


# --- application level (EN 13757-3) -----------------------------------------------------


class ApplicationError(ProtocolError):
    """A telegram's application data could not be decoded; ``offset`` as in FrameError."""

    check = "application"

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.check}: {super().__str__()} (at byte {self.offset})"


class TruncatedDataError(ApplicationError):
    """The application data ended inside a header or record (EN 13757-3, error 4)."""

    check = "premature end"


class TooManyDifesError(ApplicationError):
    """More than 10 DIFEs in one record (EN 13757-3 6.3.3, error 5)."""

    check = "too many DIFEs"


class TooManyVifesError(ApplicationError):
    """More than 10 VIFEs in one record (EN 13757-3 6.3.3, error 6)."""

    check = "too many VIFEs"


class RecordError(ApplicationError):
    """A record uses a reserved or invalid code (DIF, VIF, LVAR, date)."""

    check = "record"


class UnsupportedCIError(ApplicationError):
    """The CI field names no application payload this project decodes."""

    check = "unsupported CI"


# --- link level --------------------------------------------------------------------------


class LinkError(ProtocolError):
    """A request/answer exchange failed.

    ``exchange`` is the failed exchange (``rig.master.Exchange``) when the master instrument
    raised it: the bytes, attempts and timings behind the message.
    """

    exchange: object | None = None


class NoAnswerError(LinkError):
    """Nothing valid came back within the response window after all retries."""


class CollisionError(LinkError):
    """Several slaves answered at once (garbled characters, or bytes after the answer)."""


class UnexpectedAnswerError(LinkError):
    """A valid frame came back, but not the kind the request calls for."""


# --- everything that is not the wire -----------------------------------------------------


class ConfigError(MBusRigError):
    """A configuration file, profile or argument is wrong; the message names what and where."""


class HardwareError(MBusRigError):
    """A port, GPIO line or other piece of hardware could not be used."""


class RigTimeoutError(MBusRigError):
    """Something the rig waited for did not happen in time."""


class EncodeError(ApplicationError, ValueError):
    """Values that cannot be put into a header or record (a builder's argument is wrong)."""

    check = "encode"


class EchoMismatchError(CollisionError):
    """The master's own echo came back different from what it sent (another sender on the
    bus, or a broken level converter). Carries ``sent`` bytes, ``echoed`` RxChars, ``end``."""

    def __init__(self, message: str, *, sent: bytes = b"", echoed: tuple[object, ...] = (),
                 end: float = 0.0) -> None:
        super().__init__(message)
        self.sent = sent
        self.echoed = echoed
        self.end = end


class GarbledAnswerError(LinkError):
    """Only bytes that form no valid frame came back (noise, a corrupted or cut-off answer),
    after all retries."""


class LineIdleError(FrameError):
    """A character came too soon after a detected error: FT1.2 (IEC 60870-5-1) wants at least
    33 bit times of idle line before the next frame."""

    check = "line idle"


class WrongAddressError(UnexpectedAnswerError):
    """A request to primary address ``expected`` (0-250) was answered by a frame whose A field
    names ``received``: another slave's answer, or a slave that gets its own address wrong."""

    def __init__(self, message: str, *, expected: int, received: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received

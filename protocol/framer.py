"""Incremental FT1.2 frame receiver (EN 13757-2; docs/mbus-facts.md "Frames", "Timing").

A ``Framer`` takes received characters one at a time and yields ``FrameReceived`` for every
well-formed frame and ``FrameRejected`` for everything else. It is what both the master and
the slave engines listen with.

Resynchronisation rules:

* Hunting (no frame in progress): ``E5`` is an acknowledge at once; ``10`` and ``68`` start
  a frame; any other byte, and any flagged character, is rejected alone
  (``StartByteError`` / ``CharacterError``), one event per byte.
* A flagged character (parity or framing error) inside a frame rejects the frame with
  ``CharacterError`` at once. When the frame's length is known by then, the rest of its
  bytes are skipped silently (so data bytes of a garbled answer are not taken for frames);
  hunting resumes after them, after a gap, or straight after the flagged character when
  the length is not known (the L bytes themselves were hit).
* A long-frame header that fails (``L1 != L2``, ``L < 3``, second start byte not ``68``) is
  rejected and the bytes after its first byte are searched again: a stray ``68`` in front of
  a frame costs only itself. A frame that fails later (checksum, stop byte) is discarded as a
  whole, so data bytes of a corrupted answer (an ``E5`` among them) are never taken for frames.
* An idle line longer than ``gap_limit`` between two characters of a frame drops the partial
  frame (``GapError``) and the new character is handled as if hunting; ``expire(now)`` does the
  same when no character arrives at all (docs/mbus-facts.md: a slave discards a partial frame after a
  gap longer than the inter-frame idle).

With ``idle_after_error`` set (the slave engine sets 33 bit times), the FT1.2 receiving
rule of IEC 60870-5-1 applies on top: after a detected error (any rejected byte or frame) a
start character counts only after at least that much idle line; bytes arriving sooner are
rejected (``LineIdleError``) and restart the wait. A master leaves it off (it must tolerate
slow slaves; docs/mbus-facts.md "Timing").

Gaps are measured between character end times (``RxChar.time``) minus ``char_time``, i.e. the
idle line between the stop bit of one character and the start bit of the next; with
``char_time=0`` (the default) ``gap_limit`` bounds the end-to-end spacing instead.

Speed: every slave on a bus hears every master byte, so ``feed`` takes the common clean
bytes (a start byte while hunting, a long frame's header, a byte inside a frame, its last
byte) without the general re-search loop, and a byte inside a frame whose header has passed
costs one comparison for the gap and an append. The events are exactly those of the
general way.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chars import RxChar
from .errors import (
    CharacterError,
    FrameError,
    GapError,
    LengthMismatchError,
    LengthRangeError,
    LineIdleError,
    StartByteError,
    TruncatedFrameError,
)
from .frames import ACK, LONG_START, SHORT_START, Frame, decode, frame_length

MIN_L = 3
"""A long frame's L counts C, A and CI at least."""
LONG_HEADER = 4
"""68 L L 68: checked byte by byte as it arrives."""
SHORT_ROOM = 3
"""Bytes of a short frame (10 C A CS 16) between its start byte and its last."""


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A frame that passed every check; ``start``/``end`` are its first/last character times."""

    frame: Frame
    raw: bytes
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """Bytes that form no valid frame, with the check that failed."""

    error: FrameError
    raw: bytes
    start: float
    end: float


FramerEvent = FrameReceived | FrameRejected


class Framer:
    """Incremental receiver: ``feed`` each character, ``expire`` on idle time (sans-I/O)."""

    def __init__(self, gap_limit: float | None, *, char_time: float = 0.0,
                 idle_after_error: float | None = None) -> None:
        if gap_limit is not None and gap_limit < 0:
            raise ValueError(f"gap_limit {gap_limit} must not be negative")
        self.gap_limit = gap_limit
        self.char_time = char_time
        self.idle_after_error = idle_after_error
        self._error_at: float | None = None  # end of the last rejected byte
        self._buf: list[RxChar] = []
        self._skip = 0  # bytes left of a frame rejected for a flagged character
        self._skip_last = 0.0
        self._room = 0  # the frame in progress takes this many more bytes with no check

    # --- state --------------------------------------------------------------------------

    @property
    def pending(self) -> bytes:
        """Bytes of the frame in progress (empty while hunting)."""
        return bytes(ch.value for ch in self._buf)

    @property
    def last_time(self) -> float | None:
        """Receive time of the last character of the frame in progress."""
        return self._buf[-1].time if self._buf else None

    def reset(self) -> None:
        """Forget the frame in progress without an event."""
        self._buf.clear()
        self._skip = 0
        self._room = 0

    # --- input --------------------------------------------------------------------------

    def feed(self, ch: RxChar) -> list[FramerEvent]:
        """Take one received character; return the events it completes."""
        room = self._room
        if room and not (ch.parity_error or ch.framing_error):
            # most bytes a slave hears: a clean byte inside a frame whose header has passed,
            # not its last, no gap before it: it is only kept
            buf = self._buf
            gap_limit = self.gap_limit
            if gap_limit is None or not ch.time - buf[-1].time - self.char_time > gap_limit:
                buf.append(ch)
                self._room = room - 1
                return []
        if not (ch.parity_error or ch.framing_error):
            events = self._feed_clean(ch)
            if events is not None:
                return events
        events = []
        if self._buf and self._gap_exceeded(ch.time):
            events.append(self._reject_partial(GapError, idle=self._idle_before(ch.time)))
        self._push(ch, events)
        self._note_errors(events)
        self._measure_room()
        return events

    def _feed_clean(self, ch: RxChar) -> list[FramerEvent] | None:
        """The common cases of a clean byte, as ``_push`` would handle them but without its
        per-byte checks (most bytes a slave hears); None: take the general way."""
        buf = self._buf
        if not buf:
            value = ch.value
            if self._skip or (value != SHORT_START and value != LONG_START):
                return None
            if self.idle_after_error is not None and self._error_at is not None:
                if ch.time - self._error_at - self.char_time < self.idle_after_error:
                    return None
                self._error_at = None
            self._buf = [ch]
            self._room = SHORT_ROOM if value == SHORT_START else 0
            return []
        gap_limit = self.gap_limit
        if gap_limit is not None and ch.time - buf[-1].time - self.char_time > gap_limit:
            return None
        n = len(buf)  # no room left (feed took that case): the last byte or a header byte
        if n >= LONG_HEADER or buf[0].value == SHORT_START:  # the last byte
            buf.append(ch)
            self._buf = []
            return self._note_errors([_finished(buf)])
        # a long frame's header, checked as _header_error does
        value = ch.value
        if (value < MIN_L if n == 1 else
                value != buf[1].value if n == 2 else value != LONG_START):
            return None
        buf.append(ch)
        if n == LONG_HEADER - 1:
            self._room = buf[1].value + 1  # L + 6 bytes, less the 4 header bytes and the last
        return []

    def expire(self, now: float) -> list[FramerEvent]:
        """Drop a partial frame whose line has been idle longer than ``gap_limit`` by ``now``."""
        if self._buf and self._gap_exceeded(now + self.char_time):
            self._room = 0
            idle = self._idle_before(now + self.char_time)
            return self._note_errors([self._reject_partial(GapError, idle=idle)])
        return []

    def flush(self) -> list[FramerEvent]:
        """Reject a partial frame now (``TruncatedFrameError``): the caller stops listening."""
        if not self._buf:
            return []
        self._room = 0
        return self._note_errors([self._reject_partial(TruncatedFrameError)])

    def _measure_room(self) -> None:
        """Bytes the frame in progress takes before its last one, once its header has passed
        every check (a short frame at once, a long one after its second start byte)."""
        buf = self._buf
        n = len(buf)
        if not n or (buf[0].value == LONG_START and n < LONG_HEADER):
            self._room = 0
            return
        need = _expected_length(bytes(c.value for c in buf[:2]))
        self._room = 0 if need is None else need - 1 - n

    def _note_errors(self, events: list[FramerEvent]) -> list[FramerEvent]:
        for event in events:
            if isinstance(event, FrameRejected):
                self._error_at = max(self._error_at or event.end, event.end)
        return events

    # --- internals ----------------------------------------------------------------------

    def _gap_exceeded(self, t: float) -> bool:
        return bool(self._buf) and self._idle_exceeded(self._buf[-1].time, t)

    def _idle_exceeded(self, last: float, t: float) -> bool:
        if self.gap_limit is None:
            return False
        return t - last - self.char_time > self.gap_limit

    def _idle_before(self, t: float) -> float:
        """Idle line between the partial frame's last character and one received at ``t``."""
        return t - self._buf[-1].time - self.char_time

    def _reject_partial(self, kind: type[FrameError], idle: float | None = None) -> FrameRejected:
        chars = self._buf
        self._buf = []
        need = _expected_length(bytes(c.value for c in chars))
        what = f"of {need}" if need is not None else "of a long frame"
        text = f"partial frame dropped after {len(chars)} byte{'s' * (len(chars) != 1)} {what}"
        if idle is not None and self.gap_limit is not None:
            text += (f": the line was idle {idle * 1000:.1f} ms, more than the "
                     f"{self.gap_limit * 1000:.1f} ms allowed")
        return _rejected(kind(text, len(chars)), chars)

    def _push(self, ch: RxChar, events: list[FramerEvent]) -> None:
        """Add ``ch``; on a header failure re-search the bytes after the failed start byte."""
        queue = [ch]
        while queue:
            c = queue.pop(0)
            self._note_errors(events)
            if self._skip:
                if not self._idle_exceeded(self._skip_last, c.time):
                    self._skip -= 1
                    self._skip_last = c.time
                    self._error_at = c.time
                    continue
                self._skip = 0
            if not self._buf:
                self._hunt(c, events)
                continue
            if not c.ok:
                self._buf.append(c)
                offset = len(self._buf) - 1
                events.append(_rejected(CharacterError(_flag_text(c), offset), self._buf))
                need = _expected_length(bytes(x.value for x in self._buf[:2])) if offset > 1 else None
                self._skip = max(0, need - len(self._buf)) if need is not None else 0
                self._skip_last = c.time
                self._buf = []
                continue
            self._buf.append(c)
            header_error = _header_error(bytes(x.value for x in self._buf))
            if header_error is not None:
                events.append(_rejected(header_error, self._buf))
                queue = self._buf[1:] + queue
                self._buf = []
                continue
            self._complete_if_done(events)

    def _hunt(self, c: RxChar, events: list[FramerEvent]) -> None:
        if self.idle_after_error is not None and self._error_at is not None:
            if c.time - self._error_at - self.char_time < self.idle_after_error:
                idle = LineIdleError(f"byte {c.value:02X} came without "
                                     f"{self.idle_after_error * 1e3:.2f} ms of idle line "
                                     f"after an error", 0)
                events.append(_rejected(idle, [c]))
                self._error_at = c.time
                return
            self._error_at = None
        if not c.ok:
            events.append(_rejected(CharacterError(_flag_text(c), 0), [c]))
        elif c.value == ACK:
            events.append(FrameReceived(decode(bytes((ACK,))), bytes((ACK,)), c.time, c.time))
        elif c.value in (SHORT_START, LONG_START):
            self._buf = [c]
        else:
            error = StartByteError(f"byte {c.value:02X} starts no frame (E5, 10 or 68 expected)", 0)
            events.append(_rejected(error, [c]))

    def _complete_if_done(self, events: list[FramerEvent]) -> None:
        need = _expected_length(bytes(x.value for x in self._buf[:2]))
        if need is None or len(self._buf) < need:
            return
        chars = self._buf
        self._buf = []
        events.append(_finished(chars))


def _finished(chars: list[RxChar]) -> FramerEvent:
    """The event for the bytes of a complete frame."""
    raw = bytes([x.value for x in chars])
    try:
        frame = decode(raw)
    except FrameError as error:
        return _rejected(error, chars)
    return FrameReceived(frame, raw, chars[0].time, chars[-1].time)


def _expected_length(raw: bytes) -> int | None:
    """Total length of the frame ``raw`` begins, None while a long frame's L is unseen."""
    return frame_length(raw[0], raw[1] if len(raw) > 1 else None)


def _header_error(raw: bytes) -> FrameError | None:
    """The long-frame header check the bytes so far fail, if any (checked as they arrive)."""
    if raw[0] != LONG_START:
        return None
    if len(raw) >= 2 and raw[1] < MIN_L:
        return LengthRangeError(f"L is {raw[1]}, at least {MIN_L} (C, A, CI) needed", 1)
    if len(raw) >= 3 and raw[1] != raw[2]:
        return LengthMismatchError(f"L fields differ: {raw[1]:02X} and {raw[2]:02X}", 2)
    if len(raw) >= 4 and raw[3] != LONG_START:
        return StartByteError(f"second start byte is {raw[3]:02X}, not 68", 3)
    return None


def _flag_text(c: RxChar) -> str:
    flags = [name for name, on in (("parity", c.parity_error), ("framing", c.framing_error)) if on]
    return f"byte {c.value:02X} received with a {' and '.join(flags)} error"


def _rejected(error: FrameError, chars: list[RxChar]) -> FrameRejected:
    return FrameRejected(error, bytes(c.value for c in chars), chars[0].time, chars[-1].time)

"""The master link engine (EN 13757-2; docs/mbus-facts.md "Timing", "Link-layer behaviour").

Sans-I/O in the style of h11: the driver (``rig.master.Master``) asks ``start(request, now)``
for the bytes to send and when, reports with ``sent(end)`` when the last stop bit left, then
feeds received characters to ``receive`` and the time to ``poll`` whenever ``next_deadline``
passes without one. Every attempt ends in exactly one outcome event (``Ack``, ``Answer``,
``NoAnswer``, ``Garbled``, ``Collision``); a ``Retrying`` event follows when the request is
sent again (same bytes, so the same FCB).

Listening: an attempt lasts until the response window has closed (latest answer start =
``timing.response_window(baud)[1]`` after the request) plus one character time, so that the
first character of an answer starting at the window's last moment is received (a character
is only seen at its stop bit), and, once characters came, until the line has been idle for
``gap_limit`` after the last one (the answer's transmission time is thereby included).
Listening to the whole window is what lets a second, later answer show up as a collision,
and the next frame waits for the inter-frame idle after whatever was heard, so the master
never talks over a late answer.

Classification of one attempt:

| outcome | what came back |
|---|---|
| NONE | nothing |
| ACK / FRAME | exactly one valid E5 / frame, nothing else |
| GARBLED | only bytes that form no valid frame (flagged characters, failed checks, partial) |
| COLLISION | a valid frame plus anything else (a second E5 offset in time, an E5 followed by more bytes, a frame followed by garbage) |
| WRONG_ADDRESS | exactly one valid frame with an A field, but a request to primary address 0-250 got an A field naming another address (not that slave's answer; requests to 253/254 are answered with the slave's own primary address, so any A is right there) |

Late answers: characters that arrive while no attempt listens (between exchanges, while the
driver waits to send) or that started before the current request had ended cannot answer the
current request. They are kept apart as a :class:`LateAnswer` to the attempt before
(``Attempt.late`` of the next attempt, or ``take_late()``), with their delay after that
request's window: never counted as an answer with a negative delay. The driver reads them
while it waits for the idle line before sending, so it never talks over them.

FCB (per address): the first FCV frame after SND_NKE (and the first ever) carries FCB=1; the
FCB toggles after each REQ_UD2 / REQ_UD1 that got its answer; retries reuse it. SND_UD is
sent with FCB=0 as libmbus does (see protocol.link.slave on why slaves keep FCB repetition to
requests). Echo handling belongs to the port.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from ..chars import RxChar, WireBytes, as_wire
from ..errors import FrameError, GapError
from ..fields import (
    BROADCAST_ANSWER,
    BROADCAST_NO_ANSWER,
    PRIMARY_MAX,
    Function,
    c_field,
)
from ..framer import Framer, FrameReceived, FrameRejected
from ..frames import ControlFrame, Frame, LongFrame, ShortFrame, SingleChar, encode
from ..names import describe_bytes
from ..timing import (
    BITS_PER_CHAR,
    char_time,
    check_baud,
    frame_time,
    inter_frame_idle,
    response_window,
)

Expect = Literal["ack", "frame", "any", "none"]
EXPECTS: tuple[str, ...] = ("ack", "frame", "any", "none")
STOP_SAMPLE_BITS = BITS_PER_CHAR - 0.5
"""A received character is time-stamped at its stop-bit sample, half a bit before its end."""
MAX_FRAME_BYTES = 6 + 255
"""68 L L 68 + L bytes (C, A, CI, data) + CS 16."""
MAX_RESPONSE_TIMEOUT = 60.0
MAX_READ_LATENCY = 1.0
"""The largest read latency a master setting may declare (seconds)."""
MAX_RETRIES = 9
"""libmbus lets users set 0-9 retries; more only hides a broken bus."""
DEFAULT_RETRIES = 2
"""EN 13757-2 / docs/mbus-facts.md "Timing": at most two retries after no or a garbled answer."""


class Outcome(Enum):
    ACK = "ack"
    FRAME = "frame"
    NONE = "none"
    GARBLED = "garbled"
    COLLISION = "collision"
    WRONG_ADDRESS = "wrong address"


RETRY_ON = frozenset({Outcome.NONE, Outcome.GARBLED, Outcome.COLLISION, Outcome.WRONG_ADDRESS})


# --- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One thing to ask. Build with snd_nke / req_ud2 / req_ud1 / snd_ud / raw_request."""

    kind: Literal["snd_nke", "req_ud2", "req_ud1", "snd_ud", "raw"]
    address: int | None
    ci: int = 0
    data: bytes = b""
    wire: WireBytes | None = None
    expect: Expect = "ack"
    fcv: bool = True
    retries: int | None = None  # None: the link's setting
    probe: bool = False  # a search or scan probe: no answer is as good an outcome as any

    def __post_init__(self) -> None:
        if self.expect not in EXPECTS:
            raise ValueError(f"expect {self.expect!r} is not one of {', '.join(EXPECTS)}")
        if self.address is not None and not 0 <= self.address <= 0xFF:
            raise ValueError(f"address {self.address} is not 0..255")
        if self.retries is not None:
            check_retries(self.retries)


def _broadcast_expect(address: int, normal: Expect) -> Expect:
    return "none" if address == BROADCAST_NO_ANSWER else normal


def snd_nke(address: int) -> Request:
    return Request("snd_nke", address, expect=_broadcast_expect(address, "ack"))


def req_ud2(address: int, *, fcv: bool = True) -> Request:
    return Request("req_ud2", address, expect=_broadcast_expect(address, "frame"), fcv=fcv)


def req_ud1(address: int) -> Request:
    return Request("req_ud1", address, expect=_broadcast_expect(address, "any"))


def snd_ud(address: int, ci: int, data: bytes = b"", *, fcv: bool = True,
           expect: Expect | None = None, retries: int | None = None) -> Request:
    return Request("snd_ud", address, ci=ci, data=bytes(data), fcv=fcv,
                   expect=expect or _broadcast_expect(address, "ack"), retries=retries)


def raw_request(data: bytes | WireBytes | Frame, expect: Expect = "any",
                retries: int = 0) -> Request:
    """Send ``data`` exactly as given (fault scenarios); no FCB handling."""
    wire = as_wire(encode(data) if not isinstance(data, bytes | WireBytes) else data)
    return Request("raw", None, wire=wire, expect=expect, retries=retries)


def check_retries(retries: int) -> int:
    if not 0 <= retries <= MAX_RETRIES:
        raise ValueError(f"retries {retries} is not 0..{MAX_RETRIES}")
    return retries


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LateAnswer:
    """Characters that came after an attempt stopped listening: a late answer to
    ``request`` (None: nothing had been sent yet), sent at ``request_end``, whose answer
    window closed at ``window_end``."""

    request: WireBytes | None
    request_end: float
    window_end: float
    chars: tuple[RxChar, ...]
    baud: int

    @property
    def start(self) -> float:
        """Start bit of the first character (its time is its stop-bit sample)."""
        return self.chars[0].time - STOP_SAMPLE_BITS / self.baud

    @property
    def delay(self) -> float:
        """From the end of ``request`` to the start of the late answer."""
        return self.start - self.request_end

    @property
    def after_window(self) -> float:
        """How long after the close of ``request``'s answer window the answer started."""
        return self.start - self.window_end

    @property
    def raw(self) -> bytes:
        return bytes(ch.value for ch in self.chars)

    def describe(self, which: str = "the previous") -> str:
        """'late answer to the previous REQ_UD2 A=5 FCB=1, 22.9 ms after its window (210.4 ms
        after the request): E5' (``which``: how to name the request, "the previous" or "the")."""
        got = self.raw.hex(" ").upper()
        if self.request is None:
            return f"{len(self.chars)} characters before any request: {got}"
        what = describe_bytes(self.request.data)
        if self.after_window >= 0:
            when = f"{self.after_window * 1000:.1f} ms after its window"
        else:
            when = "after the master had stopped listening"
        return (f"late answer to {which} {what}, {when} ({self.delay * 1000:.1f} ms after "
                f"the request): {got}")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send-and-listen: what was sent, when, and everything that came back."""

    number: int  # 1 = first send
    request: WireBytes
    request_end: float
    chars: tuple[RxChar, ...]
    outcome: Outcome
    frame: Frame | None  # the valid answer (ACK / FRAME / first frame of a COLLISION)
    error: FrameError | None  # the first check that failed, if any
    first_char_time: float | None  # end of the first received character
    baud: int
    late: LateAnswer | None = None
    """A late answer to the attempt before, heard before this attempt's answer could start."""

    @property
    def response_delay(self) -> float | None:
        """Start bit of the first answer character minus the end of the request.

        A character's time is its stop-bit sample (``protocol.chars.RxChar``), 10.5 bit
        times after its start bit."""
        if self.first_char_time is None:
            return None
        return self.first_char_time - STOP_SAMPLE_BITS / self.baud - self.request_end

    @property
    def raw(self) -> bytes:
        return bytes(ch.value for ch in self.chars)


@dataclass(frozen=True, slots=True)
class _Outcome:
    attempt: Attempt
    final: bool  # False: a Retrying event follows


@dataclass(frozen=True, slots=True)
class Ack(_Outcome):
    pass


@dataclass(frozen=True, slots=True)
class Answer(_Outcome):
    @property
    def frame(self) -> Frame | None:
        return self.attempt.frame


@dataclass(frozen=True, slots=True)
class NoAnswer(_Outcome):
    pass


@dataclass(frozen=True, slots=True)
class Garbled(_Outcome):
    pass


@dataclass(frozen=True, slots=True)
class Collision(_Outcome):
    pass


@dataclass(frozen=True, slots=True)
class WrongAddress(_Outcome):
    """A valid frame whose A field names another primary address than the request's."""

    @property
    def received(self) -> int | None:
        return answer_address(self.attempt.frame)


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes to write, no sooner than ``not_before`` (inter-frame idle respected)."""

    data: WireBytes
    not_before: float


@dataclass(frozen=True, slots=True)
class Retrying:
    number: int  # the attempt about to be made (2 = first retry)
    send: Send


OutcomeEvent = Ack | Answer | NoAnswer | Garbled | Collision | WrongAddress
MasterEvent = OutcomeEvent | Retrying
_EVENT_BY_OUTCOME: dict[Outcome, type[OutcomeEvent]] = {
    Outcome.ACK: Ack, Outcome.FRAME: Answer, Outcome.NONE: NoAnswer,
    Outcome.GARBLED: Garbled, Outcome.COLLISION: Collision, Outcome.WRONG_ADDRESS: WrongAddress,
}


def answer_address(frame: Frame | None) -> int | None:
    """The A field of an answer frame (None for an E5 or no frame)."""
    return frame.a if isinstance(frame, LongFrame | ControlFrame | ShortFrame) else None


# --- the engine ----------------------------------------------------------------------------------


class MasterLink:
    """Sans-I/O master: one exchange at a time, FCB per address, retries, classification."""

    def __init__(self, baud: int = 2400, *, retries: int = DEFAULT_RETRIES,
                 gap_limit: float | None = None, read_latency: float = 0.0) -> None:
        self.retries = check_retries(retries)
        self._gap_setting = gap_limit
        if not 0.0 <= read_latency <= MAX_READ_LATENCY:
            raise ValueError(f"read latency {read_latency} s is not 0..{MAX_READ_LATENCY} s")
        self.read_latency = read_latency
        """How late the host may see a character after its stop bit (0 for a PL011 UART; a
        USB-serial master delivers in chunks, e.g. every 16 ms with an FTDI chip): listening
        and the tolerated gap inside an answer are that much longer."""
        self._response_timeout: float | None = None
        self._fcb: dict[int, bool] = {}
        self._last_activity = float("-inf")
        self._request: Request | None = None
        self._wire = WireBytes(b"")
        self._attempt = 0
        self._request_end: float | None = None
        self._chars: list[RxChar] = []
        self._events: list[FrameReceived | FrameRejected] = []
        self._late: list[RxChar] = []
        self._previous: tuple[WireBytes, float, float] | None = None
        """The last attempt that listened: (request, request end, answer window end)."""
        self.baud = check_baud(baud)
        self._framer = self._new_framer()

    # --- settings -------------------------------------------------------------------------

    def set_baud(self, baud: int) -> None:
        if self._request is not None:
            raise RuntimeError("cannot change the baud rate during an exchange")
        self.baud = check_baud(baud)
        self._framer = self._new_framer()

    @property
    def gap_limit(self) -> float:
        """Idle line tolerated inside an answer (default: twice the inter-frame idle), plus
        the read latency (characters read in chunks look like gaps)."""
        if self._gap_setting is not None:
            return self._gap_setting + self.read_latency
        return 2 * inter_frame_idle(self.baud) + self.read_latency

    @property
    def answer_window(self) -> float:
        """Latest start of an answer after the request: ``response_timeout`` when set, else
        the standard's 330 bit times + 50 ms (listening lasts one character time longer)."""
        if self.response_timeout is not None:
            return self.response_timeout
        return response_window(self.baud)[1]

    @property
    def response_timeout(self) -> float | None:
        return self._response_timeout

    @response_timeout.setter
    def response_timeout(self, value: float | None) -> None:
        if value is not None and not 0 < value <= MAX_RESPONSE_TIMEOUT:
            raise ValueError(f"response timeout {value} s is not > 0 and <= "
                             f"{MAX_RESPONSE_TIMEOUT} s")
        self._response_timeout = value

    def next_fcb(self, address: int) -> bool:
        """The FCB the next FCV request to ``address`` carries."""
        return self._fcb.get(address, True)

    def reset_fcb(self, address: int | None = None) -> None:
        """As after SND_NKE: the next FCV frame carries FCB=1 (None: every address)."""
        if address is None:
            self._fcb.clear()
        else:
            self._fcb.pop(address, None)

    @property
    def busy(self) -> bool:
        return self._request is not None

    # --- driving ----------------------------------------------------------------------------

    def start(self, request: Request, now: float) -> Send:
        """Begin an exchange: the bytes to send and the earliest time to send them."""
        if self._request is not None:
            raise RuntimeError("an exchange is already in progress")
        self._request = request
        self._wire = self._encode(request)
        self._attempt = 1
        self._begin_attempt()
        return Send(self._wire, self._earliest(now))

    def sent(self, end: float) -> None:
        """The driver's report: the request's last stop bit left at ``end``."""
        if self._request is None:
            raise RuntimeError("sent() without an exchange")
        self._request_end = end
        self._last_activity = max(self._last_activity, end)

    @property
    def next_deadline(self) -> float | None:
        """When to call ``poll`` if no character arrives (None: nothing to wait for)."""
        if self._request is None or self._request_end is None:
            return None
        window = self.answer_window
        # an answer may start as late as the window's end: its first character is only
        # received (stop-bit sample) most of a character time later
        close = self._request_end + window + char_time(self.baud) + self.read_latency
        heard = [chars[-1].time for chars in (self._chars, self._late) if chars]
        if heard:  # an answer, or a late one still going on, keeps the master listening
            close = max(close, max(heard) + self.gap_limit + char_time(self.baud))
        # a babbling bus must not keep the master listening: the longest frame with gaps
        hard = (self._request_end + window + frame_time(MAX_FRAME_BYTES, self.baud)
                + 4 * self.gap_limit + self.read_latency)
        return min(close, hard)

    def receive(self, ch: RxChar) -> list[MasterEvent]:
        """A received character (the port has dropped the master's own echo)."""
        self._last_activity = max(self._last_activity, ch.time)
        if self._request_end is None or self._is_late(ch, self._request_end):
            self._late.append(ch)
            return []
        self._chars.append(ch)
        self._events += self._framer.feed(ch)
        return []

    def _is_late(self, ch: RxChar, request_end: float) -> bool:
        """``ch`` cannot answer the request that ended at ``request_end``: it started before
        that, or it continues a late answer with less idle line before it than the shortest
        response delay (11 bit times) and nothing of an answer has come yet."""
        if ch.time - STOP_SAMPLE_BITS / self.baud < request_end:
            return True
        return (not self._chars and bool(self._late) and ch.time - self._late[-1].time
                - char_time(self.baud) < response_window(self.baud)[0])

    def send_time(self, send: Send, now: float) -> float:
        """When ``send`` may go out at the earliest, given everything heard until ``now``
        (late answers push it back: the master does not talk over them), bounded by the
        longest frame so that a babbling bus cannot hold the master off."""
        return min(self._earliest(max(now, send.not_before)), self.send_bound(send))

    def send_bound(self, send: Send) -> float:
        """The latest ``send`` waits for the line to go idle: the longest frame after its
        ``not_before``."""
        return send.not_before + frame_time(MAX_FRAME_BYTES, self.baud) + self.gap_limit

    def take_late(self) -> LateAnswer | None:
        """The characters heard since the last attempt stopped listening, as a late answer
        to it (and forgotten here); None if there were none."""
        if not self._late:
            return None
        chars, self._late = tuple(self._late), []
        if self._previous is None:
            start = chars[0].time - STOP_SAMPLE_BITS / self.baud
            return LateAnswer(None, start, start, chars, self.baud)
        request, end, window_end = self._previous
        return LateAnswer(request, end, window_end, chars, self.baud)

    def poll(self, now: float) -> list[MasterEvent]:
        """Let time pass; ends the attempt once ``next_deadline`` is reached."""
        deadline = self.next_deadline
        if deadline is None or now < deadline:
            return []
        self._events += self._framer.flush()
        late = self.take_late()
        attempt = self._classify(late)
        assert self._request_end is not None
        self._previous = (self._wire, self._request_end, self._request_end + self.answer_window)
        request = self._request
        assert request is not None
        retries = self.retries if request.retries is None else request.retries
        retry = (attempt.outcome in RETRY_ON and request.expect != "none"
                 and self._attempt <= retries)
        events: list[MasterEvent] = [_EVENT_BY_OUTCOME[attempt.outcome](attempt, not retry)]
        if retry:
            self._attempt += 1
            self._begin_attempt()
            events.append(Retrying(self._attempt, Send(self._wire, self._earliest(now))))
        else:
            self._finish(request, attempt)
        return events

    def abort(self) -> None:
        """Give up the exchange in progress (the driver could not send)."""
        self._request = None
        self._request_end = None
        self._framer.reset()

    # --- internals --------------------------------------------------------------------------

    def _new_framer(self) -> Framer:
        return Framer(self.gap_limit, char_time=char_time(self.baud))

    def _earliest(self, now: float) -> float:
        """33 bit times of idle line plus one character time at the current rate after the
        last traffic: a slave listening at a slower rate (after a baud switch) may still be
        inside a character it made of our last frame's bits, and FT1.2 slaves want the
        idle line after such an error (protocol.framer ``idle_after_error``)."""
        return max(now, self._last_activity + inter_frame_idle(self.baud) + char_time(self.baud))

    def _begin_attempt(self) -> None:
        self._request_end = None
        self._chars = []
        self._events = []
        self._framer = self._new_framer()

    def _encode(self, request: Request) -> WireBytes:
        if request.kind == "raw":
            assert request.wire is not None
            return request.wire
        a = request.address
        assert a is not None
        frame: Frame
        if request.kind == "snd_nke":
            frame = ShortFrame(Function.SND_NKE, a)
        elif request.kind in ("req_ud2", "req_ud1"):
            function = Function.REQ_UD2 if request.kind == "req_ud2" else Function.REQ_UD1
            c = c_field(function, fcb=self.next_fcb(a)) if request.fcv else (function & ~0x10)
            frame = ShortFrame(c, a)
        else:
            function = Function.SND_UD if request.fcv else Function.SND_UD_NOFCV
            c = c_field(function)
            frame = (LongFrame(c, a, request.ci, request.data) if request.data
                     else ControlFrame(c, a, request.ci))
        return WireBytes(encode(frame))

    def _classify(self, late: LateAnswer | None) -> Attempt:
        frames = [e for e in self._events if isinstance(e, FrameReceived)]
        rejected = [e for e in self._events if isinstance(e, FrameRejected)]
        if not self._chars:
            outcome = Outcome.NONE
        elif frames and (rejected or len(frames) > 1):
            outcome = Outcome.COLLISION
        elif frames:
            outcome = Outcome.ACK if isinstance(frames[0].frame, SingleChar) else Outcome.FRAME
            received = answer_address(frames[0].frame)
            a = self._request.address if self._request is not None else None
            if (a is not None and a <= PRIMARY_MAX and received is not None
                    and received != a):
                outcome = Outcome.WRONG_ADDRESS
        else:
            outcome = Outcome.GARBLED
        assert self._request_end is not None
        return Attempt(
            number=self._attempt, request=self._wire, request_end=self._request_end,
            chars=tuple(self._chars), outcome=outcome,
            frame=frames[0].frame if frames else None,
            error=self._explained(rejected[0].error) if rejected else None,
            first_char_time=self._chars[0].time if self._chars else None, baud=self.baud,
            late=late)

    def _explained(self, error: FrameError) -> FrameError:
        """A gap inside an answer says how to tell the master that its port delivers
        characters late (then the gap is the port's, not the slave's)."""
        if not isinstance(error, GapError):
            return error
        return GapError(f"{error.args[0]}; a port that delivers characters late (a TCP "
                        f"gateway, a USB adapter) needs master.read_latency (tools: "
                        f"--read-latency), now {self.read_latency * 1000:g} ms", error.offset)

    def _finish(self, request: Request, attempt: Attempt) -> None:
        a = request.address
        if request.kind == "snd_nke" and a is not None:
            if a in (BROADCAST_ANSWER, BROADCAST_NO_ANSWER):
                self.reset_fcb()
            else:
                self.reset_fcb(a)
        elif (request.kind in ("req_ud2", "req_ud1") and request.fcv and a is not None
              and attempt.outcome in (Outcome.ACK, Outcome.FRAME)):
            self._fcb[a] = not self.next_fcb(a)
        self._request = None
        self._request_end = None

"""Judging a master from the wire and from what it reports: the master suite's vocabulary.

The wire is the bus trace (every character with its stop-bit time, baud rate and error
flags); a character occupies 11 bit times, from its start bit 10.5 bit times before its
time to the end of its stop bit half a bit after it. Frames are grouped per direction, so an
answer overlapping a request does not split it (tests_hil/_wire.py ``master_requests``).
What a master reports is compared with what the meters sent, never with the meters'
profiles alone (a real meter's values move; the wire says what was sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hardware.trace import Trace, TraceEntry
from protocol.app import decode_telegram, telegram_json
from protocol.errors import MBusRigError
from protocol.fields import (
    ADDRESS_SELECTED,
    BROADCAST_ANSWER,
    BROADCAST_NO_ANSWER,
    CI,
    FCB,
    FCV,
    PRIMARY_MAX,
    PRM,
    Function,
)
from protocol.frames import ControlFrame, Frame, LongFrame, ShortFrame, SingleChar
from protocol.timing import BITS_PER_CHAR, bit_time
from rig.master_output import (
    MasterReport,
    ReportedTelegram,
    json_telegram,
    telegram_differences,
)

STOP_SAMPLE_BITS = BITS_PER_CHAR - 0.5
"""A character's time is its stop-bit sample: 10.5 bit times after its start bit."""

MASTER_C_FIELDS: dict[int, str] = {
    0x40: "SND_NKE", 0x53: "SND_UD", 0x73: "SND_UD", 0x5B: "REQ_UD2", 0x7B: "REQ_UD2",
    0x5A: "REQ_UD1", 0x7A: "REQ_UD1",
}
"""The C fields a master sends (EN 13757-2; docs/mbus-facts.md "Frames"): SND_NKE without FCB
or FCV, SND_UD and the REQ_UDs with FCV set and either FCB."""
SHORT_FUNCTIONS = ("SND_NKE", "REQ_UD2", "REQ_UD1")


@dataclass(frozen=True, slots=True)
class WireFrame:
    """Consecutive characters of one direction taken as a frame, with their bus times."""

    direction: str
    entries: tuple[TraceEntry, ...]
    frame: Frame | None
    error: str | None

    @property
    def baud(self) -> int:
        return self.entries[0].baud

    @property
    def start(self) -> float:
        """The first character's start bit."""
        first = self.entries[0]
        return first.time - STOP_SAMPLE_BITS * bit_time(first.baud)

    @property
    def end(self) -> float:
        """The end of the last character's stop bit."""
        last = self.entries[-1]
        return last.time + 0.5 * bit_time(last.baud)

    @property
    def raw(self) -> bytes:
        return bytes(e.value for e in self.entries)

    @property
    def address(self) -> int | None:
        return getattr(self.frame, "a", None)

    @property
    def c(self) -> int | None:
        return getattr(self.frame, "c", None)

    @property
    def ok(self) -> bool:
        return self.frame is not None

    def hex(self) -> str:
        return self.raw.hex(" ").upper()

    def describe(self) -> str:
        what = MASTER_C_FIELDS.get(self.c or -1, "frame") if self.direction == "M>S" else "answer"
        return f"{what} {self.hex()} at {self.start:.4f} s ({self.baud} Bd)"


def _frames(entries: Sequence[TraceEntry], direction: str) -> list[WireFrame]:
    own = Trace(e for e in entries if e.direction == direction)
    return [WireFrame(f.direction, f.entries, f.frame, f.error) for f in own.frames()]


def requests(trace: Any) -> list[WireFrame]:
    """The master's frames, in time order."""
    return _frames(trace.entries, "M>S")


def answers(trace: Any) -> list[WireFrame]:
    """The slaves' frames (and whatever else the master heard), in time order."""
    return _frames(trace.entries, "S>M")


def window(trace: Any, result: Any) -> Trace:
    """The part of the trace an operation ``result`` caused (its start to its end)."""
    return Trace(e for e in trace.since(result.start).entries if e.time <= result.end)


# --- requests -----------------------------------------------------------------------------------


def request_problems(request: WireFrame) -> list[str]:
    """What is wrong with one frame the master sent (EN 13757-2 frame checks, C field with
    PRM, FCV/FCB per function, frame type per function, address range)."""
    if request.frame is None:
        return [f"{request.hex()}: not a valid frame ({request.error})"]
    frame = request.frame
    if isinstance(frame, SingleChar):
        return [f"{request.hex()}: E5 is a slave's acknowledgement, not a request"]
    c = frame.c
    problems = []
    if not c & PRM:
        problems.append(f"{request.hex()}: C field {c:02X} has PRM 0 (a slave's frame)")
    name = MASTER_C_FIELDS.get(c)
    if name is None:
        problems.append(f"{request.hex()}: C field {c:02X} is no master function with its "
                        f"FCV/FCB (allowed: {', '.join(f'{k:02X}' for k in MASTER_C_FIELDS)})")
    elif (name in SHORT_FUNCTIONS) != isinstance(frame, ShortFrame):
        problems.append(f"{request.hex()}: {name} in a {type(frame).__name__} "
                        f"({'a short frame' if name in SHORT_FUNCTIONS else 'a control or long frame'}"
                        " expected)")
    a = frame.a
    if not (a <= PRIMARY_MAX or a in (ADDRESS_SELECTED, BROADCAST_ANSWER, BROADCAST_NO_ANSWER)):
        problems.append(f"{request.hex()}: address {a} is reserved (251, 252)")
    return problems


def is_function(request: WireFrame, function: Function) -> bool:
    c = request.c
    return c is not None and MASTER_C_FIELDS.get(c) == function.name


def fcb(request: WireFrame) -> bool | None:
    """The FCB of an FCV request (None: FCV not set)."""
    c = request.c
    if c is None or not c & FCV:
        return None
    return bool(c & FCB)


def to(trace_requests: Iterable[WireFrame], address: int) -> list[WireFrame]:
    return [r for r in trace_requests if r.address == address]


@dataclass(frozen=True, slots=True)
class Exchange:
    """A master frame and what the slaves sent until the master's next frame."""

    request: WireFrame
    answers: tuple[WireFrame, ...]

    @property
    def answered(self) -> bool:
        """One valid frame came back (E5 or a frame), nothing else."""
        return len(self.answers) == 1 and self.answers[0].ok

    @property
    def spoilt(self) -> bool:
        return not self.answered


def exchanges(trace: Any) -> list[Exchange]:
    """Every master frame with the answers that came before its next frame."""
    sent = requests(trace)
    heard = answers(trace)
    out = []
    for i, request in enumerate(sent):
        until = sent[i + 1].start if i + 1 < len(sent) else float("inf")
        out.append(Exchange(request, tuple(a for a in heard
                                           if request.end <= a.start < until)))
    return out


# --- timing -----------------------------------------------------------------------------------


def idle_before(trace: Any) -> list[tuple[WireFrame, float, int]]:
    """For each master frame after the first: (frame, idle line before it in seconds, the
    slower of the two rates around it): from the end of the last character on the bus
    before it (either direction) to its start bit."""
    chars = sorted(trace.entries, key=lambda e: e.time)
    out = []
    for request in requests(trace):
        before = [e for e in chars if e.time < request.entries[0].time
                  and e not in request.entries]
        if not before:
            continue
        last = before[-1]
        end = last.time + 0.5 * bit_time(last.baud)
        out.append((request, request.start - end, min(last.baud, request.baud)))
    return out


def overlaps(trace: Any) -> list[tuple[TraceEntry, TraceEntry]]:
    """(master character, slave character) pairs that were on the bus at the same time."""
    def span(e: TraceEntry) -> tuple[float, float]:
        return (e.time - STOP_SAMPLE_BITS * bit_time(e.baud), e.time + 0.5 * bit_time(e.baud))

    masters = [(span(e), e) for e in trace.entries if e.direction == "M>S"]
    slaves = [(span(e), e) for e in trace.entries if e.direction == "S>M"]
    return [(m, s) for (ms, m) in masters for (ss, s) in slaves
            if ms[0] < ss[1] and ss[0] < ms[1]]


# --- data --------------------------------------------------------------------------------------


def sent_telegram(answer: WireFrame) -> ReportedTelegram | None:
    """A valid RSP_UD answer as the project decodes it (None: not a decodable RSP_UD)."""
    return telegram_of(answer.frame)


def telegram_of(frame: Frame | None) -> ReportedTelegram | None:
    """An RSP_UD frame as the project decodes it, in the shape masters' reports are read in
    (None: not a decodable RSP_UD)."""
    if not isinstance(frame, LongFrame | ControlFrame) or frame.ci in (CI.APPLICATION_ERROR,):
        return None
    if frame.c & PRM:
        return None
    try:
        return json_telegram(telegram_json(frame, decode_telegram(frame)))
    except MBusRigError:
        return None


def sent_telegrams(trace: Any, *, source: str | None = None) -> list[tuple[bytes, ReportedTelegram]]:
    """The distinct valid RSP_UDs the slaves (``source`` only, if given) sent, in order; a
    telegram repeated for a same-FCB request counts once."""
    out: list[tuple[bytes, ReportedTelegram]] = []
    for answer in answers(trace):
        if source is not None and source not in answer.entries[0].source.split("+"):
            continue
        telegram = sent_telegram(answer)
        if telegram is not None and (not out or out[-1][0] != answer.raw):
            out.append((answer.raw, telegram))
    return out


def report_problems(report: MasterReport, sent: Sequence[ReportedTelegram]) -> list[str]:
    """Where the reported telegrams differ from the ones sent (in number, then each)."""
    reported = report.telegrams
    if len(reported) != len(sent):
        return [f"the master reported {len(reported)} telegram(s), the meter sent "
                f"{len(sent)}"]
    problems = []
    for n, (mine, theirs) in enumerate(zip(reported, sent, strict=True), 1):
        problems += [f"telegram {n}: {p}" for p in telegram_differences(mine, theirs)]
    return problems


telegram_problems = telegram_differences
"""What a reported telegram gets wrong about one sent (rig.master_output)."""

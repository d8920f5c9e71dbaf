"""The bus trace: every character with its time, direction, baud and error flags, grouped
into frames and decoded (docs/design.md "Traces, measurements, reports").

The simulated bus tap and the real master port both feed one :class:`Trace`. A character's
``time`` is when it was complete (its stop-bit sample), on the rig's clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from protocol import frames
from protocol.chars import RxChar
from protocol.errors import CharacterError, FrameError
from protocol.timing import char_time, inter_frame_idle

DIRECTIONS = ("M>S", "S>M")


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One character on the bus. ``source`` names the sender(s) ("slave1+slave2" for a
    collision), or is empty when unknown (a real bus)."""

    time: float
    direction: str
    baud: int
    value: int
    parity_error: bool = False
    framing_error: bool = False
    source: str = ""

    @property
    def ok(self) -> bool:
        return not (self.parity_error or self.framing_error)

    def flags(self) -> str:
        return ("P" if self.parity_error else "") + ("F" if self.framing_error else "")


@dataclass(frozen=True, slots=True)
class TraceFrame:
    """Consecutive characters of one direction taken as one frame.

    ``frame`` is the decoded frame, or None with ``error`` naming the failed check.
    """

    direction: str
    start: float
    end: float
    baud: int
    raw: bytes
    entries: tuple[TraceEntry, ...]
    frame: frames.Frame | None
    error: str | None

    @property
    def source(self) -> str:
        names: dict[str, None] = {}
        for entry in self.entries:
            for name in entry.source.split("+"):
                if name:
                    names[name] = None
        return "+".join(names)


class Trace:
    """An append-only record of bus characters (thread-safe appends)."""

    def __init__(self, entries: Iterable[TraceEntry] = ()) -> None:
        self._lock = threading.Lock()
        self.entries: list[TraceEntry] = list(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, entry: TraceEntry) -> None:
        if entry.direction not in DIRECTIONS:
            raise ValueError(f"trace direction {entry.direction!r} is not one of {DIRECTIONS}")
        with self._lock:
            self.entries.append(entry)

    def record(self, ch: RxChar, direction: str, baud: int, source: str = "") -> None:
        """Append a received character."""
        self.append(
            TraceEntry(ch.time, direction, baud, ch.value, ch.parity_error, ch.framing_error, source)
        )

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def since(self, t: float) -> Trace:
        """A trace of the characters completed at or after ``t``."""
        with self._lock:
            return Trace(e for e in self.entries if e.time >= t)

    def frames(self) -> list[TraceFrame]:
        """Group characters into frames and decode them.

        A frame ends at a change of direction, at an idle line of more than the inter-frame
        idle (33 bit times), or once its bytes make a whole frame by its length.
        """
        with self._lock:
            entries = sorted(self.entries, key=lambda e: e.time)
        out: list[TraceFrame] = []
        group: list[TraceEntry] = []
        for entry in entries:
            if group and _starts_new(group, entry):
                out.append(_frame(group))
                group = []
            group.append(entry)
            if _complete(group):
                out.append(_frame(group))
                group = []
        if group:
            out.append(_frame(group))
        return out

    def to_table(self, *, chars: bool = False) -> str:
        """A readable table, one row per frame (``chars=True``: one row per character)."""
        if chars:
            rows = [
                f"{e.time:12.6f}  {e.direction}  {e.baud:5d}  {e.value:02X}  "
                f"{e.flags() or '-':2}  {e.source}"
                for e in self.entries
            ]
            return "\n".join(["      time s  dir   baud  ch  err source", *rows])
        rows = []
        for fr in self.frames():
            data = " ".join(
                f"{e.value:02X}" + ("!" + e.flags() if not e.ok else "") for e in fr.entries
            )
            what = _describe(fr.frame) if fr.frame is not None else f"ERROR {fr.error}"
            rows.append(
                f"{fr.start:12.6f}  {fr.direction}  {fr.baud:5d}  {fr.source or '-':12}  "
                f"{what}\n{'':14}{data}"
            )
        return "\n".join(["      time s  dir   baud  source        frame", *rows])

    def to_json(self) -> list[dict[str, object]]:
        """Every character as a dict (the TraceEntry fields)."""
        with self._lock:
            return [asdict(e) for e in self.entries]

    def frames_json(self) -> list[dict[str, object]]:
        """Every frame as a dict: direction, start, end, baud, source, hex, decoded, error."""
        return [
            {
                "direction": fr.direction,
                "start": fr.start,
                "end": fr.end,
                "baud": fr.baud,
                "source": fr.source,
                "hex": fr.raw.hex(" ").upper(),
                "frame": _describe(fr.frame) if fr.frame is not None else None,
                "error": fr.error,
            }
            for fr in self.frames()
        ]


def _starts_new(group: list[TraceEntry], entry: TraceEntry) -> bool:
    last = group[-1]
    if entry.direction != last.direction or entry.baud != last.baud:
        return True
    return entry.time - last.time > char_time(entry.baud) + inter_frame_idle(entry.baud)


def _complete(group: list[TraceEntry]) -> bool:
    """The group holds a whole frame by its start byte and length (or a hopeless start)."""
    first = group[0]
    if not first.ok:
        return False
    try:
        length = frames.frame_length(first.value, group[1].value if len(group) > 1 else None)
    except FrameError:
        return False
    return length is not None and len(group) >= length


def _frame(group: list[TraceEntry]) -> TraceFrame:
    raw = bytes(e.value for e in group)
    frame: frames.Frame | None = None
    error: str | None = None
    bad = next((i for i, e in enumerate(group) if not e.ok), None)
    if bad is not None:
        error = str(CharacterError(f"character {raw[bad]:02X} has a {_flag_words(group[bad])}", bad))
    else:
        try:
            frame = frames.decode(raw)
        except FrameError as exc:
            error = str(exc)
    return TraceFrame(
        group[0].direction, group[0].time, group[-1].time, group[0].baud, raw, tuple(group), frame, error
    )


def _flag_words(entry: TraceEntry) -> str:
    words = [w for w, f in (("parity error", entry.parity_error), ("framing error", entry.framing_error)) if f]
    return " and ".join(words)


def _describe(frame: frames.Frame) -> str:
    if isinstance(frame, frames.SingleChar):
        return "ACK E5"
    if isinstance(frame, frames.ShortFrame):
        return f"short C={frame.c:02X} A={frame.a:02X}"
    if isinstance(frame, frames.ControlFrame):
        return f"control C={frame.c:02X} A={frame.a:02X} CI={frame.ci:02X}"
    return f"long C={frame.c:02X} A={frame.a:02X} CI={frame.ci:02X} data={len(frame.data)} bytes"

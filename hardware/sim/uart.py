"""Bit-level UART model of the simulated bus (docs/design.md "The simulated bus").

A sender's character is 11 bit-levels at its baud (start 0, 8 data bits LSB first, even
parity, stop 1; docs/mbus-facts.md "Character and physical layer"), kept as a :class:`CharRecord` on a
:class:`Channel`. A fault that holds the line at space is a :class:`Segment`. A receiver
listens to a :class:`View`: the AND of the levels of some channels (idle = 1, any space
wins). It waits for a falling edge, checks the start bit in its middle (a false start sends
it back to hunting), samples the other ten bits in their middles, checks parity and stop
bit, and reports an :class:`~protocol.chars.RxChar` with ``parity_error``/``framing_error``.

That one receiver routine gives clean reads, collisions, baud mismatches, fractional-bit
offsets and noise with no special cases. Two optimisations keep it fast and change nothing
observable (a property test checks it):

* receivers with the same view and baud that are hunting when an edge comes form one
  :class:`Pending` group: one start check and one decode per (view, baud, start edge);
* a lone, same-baud, aligned character with no noise is decoded by reading the record
  instead of sampling it (the "fast path").

Levels before the simulation's ``now`` are final: senders may only add characters from now
on, so an edge at ``a`` is judged at ``a`` and a character at its stop-bit sample.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable

from protocol.chars import RxChar, even_parity_bit
from protocol.timing import BITS_PER_CHAR

from .engine import Simulation

START_SAMPLE = 0.5
"""The start bit is checked half a bit after the falling edge ..."""
STOP_SAMPLE = BITS_PER_CHAR - 0.5
"""... and the character is complete at the stop-bit sample, 10.5 bits after the edge."""
PRUNE_AT = 4096
"""Old characters are dropped from a channel once it holds this many."""
KEEP_S = 1.0
"""... keeping the last second (far more than one character at 300 baud)."""


@functools.cache
def char_levels(value: int, bad_parity: bool) -> tuple[int, ...]:
    """The 11 bit-levels of an 8E1 character; ``bad_parity`` flips the parity bit."""
    parity = even_parity_bit(value) ^ int(bad_parity)
    return (0, *((value >> i) & 1 for i in range(8)), parity, 1)


@functools.cache
def _space_runs(value: int, bad_parity: bool) -> tuple[tuple[int, int], ...]:
    """Runs of space (0) in a character as (first bit, bit after the last) indexes."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, level in enumerate(char_levels(value, bad_parity)):
        if level == 0 and start is None:
            start = i
        elif level == 1 and start is not None:
            runs.append((start, i))
            start = None
    return tuple(runs)


class CharRecord:
    """One character on a channel: ``source`` sent ``value`` from ``t0`` at bit time ``tb``.

    ``cut`` ends it early (the sender lost the bus, or its output buffer was flushed): from
    ``cut`` on it leaves the line idle.
    """

    __slots__ = ("source", "t0", "tb", "value", "bad_parity", "levels", "end", "cut")
    is_char = True

    def __init__(self, source: str, t0: float, tb: float, value: int, bad_parity: bool) -> None:
        self.source = source
        self.t0 = t0
        self.tb = tb
        self.value = value
        self.bad_parity = bad_parity
        self.levels = char_levels(value, bad_parity)
        self.end = t0 + BITS_PER_CHAR * tb
        self.cut = self.end

    def stop(self) -> float:
        return self.cut

    def runs(self) -> list[tuple[float, float]]:
        """Space intervals [a, b) of this character, clipped at ``cut``."""
        t0, tb, cut = self.t0, self.tb, self.cut
        out = []
        for i, j in _space_runs(self.value, self.bad_parity):
            a = t0 + i * tb
            if a >= cut:
                break
            out.append((a, min(t0 + j * tb, cut)))
        return out

    def low_at(self, t: float) -> bool:
        if t < self.t0 or t >= self.cut:
            return False
        i = int((t - self.t0) / self.tb)
        return self.levels[i if i < BITS_PER_CHAR else BITS_PER_CHAR - 1] == 0


class Segment:
    """A fault holding the line at space from ``t0`` until ``cut`` (inf while open)."""

    __slots__ = ("source", "t0", "cut")
    is_char = False

    def __init__(self, source: str, t0: float, end: float = float("inf")) -> None:
        self.source = source
        self.t0 = t0
        self.cut = end

    def stop(self) -> float:
        return self.cut

    def runs(self) -> list[tuple[float, float]]:
        return [(self.t0, self.cut)] if self.t0 < self.cut else []

    def low_at(self, t: float) -> bool:
        return self.t0 <= t < self.cut


Record = CharRecord | Segment


class _Track:
    """Characters sorted by start time, for range queries."""

    __slots__ = ("chars", "starts", "longest", "prune_at")

    def __init__(self) -> None:
        self.chars: list[CharRecord] = []
        self.starts: list[float] = []
        self.longest = 0.0
        self.prune_at = PRUNE_AT

    def add(self, rec: CharRecord, now: float) -> None:
        if len(self.chars) >= self.prune_at:
            keep = [r for r in self.chars if r.cut >= now - KEEP_S]
            self.chars = keep
            self.starts = [r.t0 for r in keep]
            self.prune_at = max(PRUNE_AT, 2 * len(keep))
        i = bisect.bisect_right(self.starts, rec.t0)
        self.starts.insert(i, rec.t0)
        self.chars.insert(i, rec)
        self.longest = max(self.longest, rec.end - rec.t0)

    def records(self, t1: float, t2: float) -> list[CharRecord]:
        lo = bisect.bisect_left(self.starts, t1 - self.longest)
        hi = bisect.bisect_right(self.starts, t2)
        return [r for r in self.chars[lo:hi] if r.cut >= t1]

    def chars_from(self, t: float) -> list[CharRecord]:
        lo = bisect.bisect_left(self.starts, t - self.longest)
        return [r for r in self.chars[lo:] if r.cut > t]


class Channel:
    """One physical signal path (the bus voltage, or the bus current) with its senders.

    ``noise`` is the probability that a receiver's sample of this channel comes out flipped.
    Characters are also indexed by sender, for views that follow one sender (the echo).
    """

    def __init__(self, sim: Simulation, name: str) -> None:
        self.sim = sim
        self.name = name
        self.noise = 0.0
        self._all = _Track()
        self._by_source: dict[str, _Track] = {}
        self.segments: list[Segment] = []
        self.views: dict[str | None, list[View]] = {None: []}
        """Views following this channel, by the sender they filter on (None: all senders)."""
        self.listeners: list[Callable[[Record], None]] = []
        """Called with every record put on the channel (the level recorder of reports)."""

    def add(self, rec: Record) -> None:
        """Put a character or fault on the channel and tell the views listening to it."""
        now = self.sim.now()
        if isinstance(rec, CharRecord):
            self._all.add(rec, now)
            track = self._by_source.get(rec.source)
            if track is None:
                track = self._by_source[rec.source] = _Track()
            track.add(rec, now)
        else:
            self.segments = [s for s in self.segments if s.cut >= now - KEEP_S]
            self.segments.append(rec)
        for view in list(self.views[None]):
            view.note_runs(rec, now)
        for view in list(self.views.get(rec.source, ())):
            view.note_runs(rec, now)
        for listener in self.listeners:
            listener(rec)

    def records(self, t1: float, t2: float, source: str | None = None) -> list[Record]:
        """Records (of ``source``, or of everyone) on the line at some time in [t1, t2]."""
        if source is None:
            out: list[Record] = list(self._all.records(t1, t2))
        else:
            track = self._by_source.get(source)
            out = list(track.records(t1, t2)) if track is not None else []
        out.extend(
            s for s in self.segments
            if s.t0 <= t2 and s.cut >= t1 and (source is None or s.source == source)
        )
        return out

    def chars_from(self, t: float, source: str | None = None) -> list[CharRecord]:
        """Characters (of ``source``, or of everyone) still on the line at or after ``t``."""
        track = self._all if source is None else self._by_source.get(source)
        return track.chars_from(t) if track is not None else []

    def forget(self, source: str) -> None:
        """Drop the index of a sender that left the bus."""
        self._by_source.pop(source, None)


Part = tuple[Channel, "str | None"]


Deliver = Callable[[RxChar, "Pending"], None]
"""A receiver's output: the character and the group it was decoded in (for its sources)."""


class Receiver:
    """A UART receiver at ``baud`` on a view. Each character goes to ``on_char(ch)`` when it
    is set, else to ``deliver(ch, pending)`` (which also tells who was sending)."""

    __slots__ = ("name", "baud", "view", "deliver", "on_char", "enabled", "pending")

    def __init__(
        self, name: str, view: View, baud: int, deliver: Deliver | None = None, *, enabled: bool = True
    ) -> None:
        self.name = name
        self.view = view
        self.baud = baud
        self.deliver = deliver
        self.on_char: Callable[[RxChar], None] | None = None
        self.enabled = False
        self.pending: Pending | None = None
        if enabled:
            self.enable()

    def enable(self) -> None:
        """Start hunting for a start edge now (a character already under way is missed)."""
        if not self.enabled:
            self.enabled = True
            self.view.add_idle(self)

    def disable(self) -> None:
        """Stop receiving; a character being received is lost."""
        if self.enabled:
            self._leave()
            self.enabled = False

    def set_baud(self, baud: int) -> None:
        """Reprogram the UART: a character being received is lost, hunting restarts now."""
        if baud == self.baud:
            return
        if self.enabled:
            self._leave()
            self.baud = baud
            self.view.add_idle(self)
        else:
            self.baud = baud

    def set_view(self, view: View) -> None:
        """Listen to ``view`` from now on (a character under way is decoded on it)."""
        if view is self.view:
            return
        if self.enabled and self.pending is None:
            self._leave()
            view.add_idle(self)
        else:
            self.view = view
            if self.pending is not None:
                self.pending.moved = True

    def _leave(self) -> None:
        pending = self.pending
        if pending is not None:
            pending.members.pop(self, None)
            self.pending = None
        else:
            self.view.drop_idle(self)


class View:
    """What a receiver hears: the AND of some channels, each optionally filtered to one
    sender (``(channel, "slave 3")`` is that slave's own signal, as the TSS721A echoes it)."""

    def __init__(self, sim: Simulation, name: str, parts: Iterable[Part]) -> None:
        self.sim = sim
        self.name = name
        self.parts: tuple[Part, ...] = tuple(parts)
        self.idle: dict[int, dict[Receiver, None]] = {}
        self.n_idle = 0
        self.attached = False
        self._edges: set[float] = set()

    # --- wiring ---------------------------------------------------------------------------

    def attach(self) -> View:
        """Start following the channels (edges from now on are seen)."""
        if not self.attached:
            self.attached = True
            now = self.sim.now()
            for channel, source in self.parts:
                channel.views.setdefault(source, []).append(self)
                for rec in channel.chars_from(now, source) + channel.segments:
                    if source is None or rec.source == source:
                        self.note_runs(rec, now)
        return self

    def detach(self) -> None:
        if self.attached:
            self.attached = False
            for channel, source in self.parts:
                followers = channel.views[source]
                followers.remove(self)
                if not followers and source is not None:
                    del channel.views[source]

    def note_runs(self, rec: Record, now: float) -> None:
        """Schedule an edge check at the start of every space run of ``rec`` from ``now`` on."""
        for a, _ in rec.runs():
            if a >= now and a not in self._edges:
                self._edges.add(a)
                self.sim.schedule(a, functools.partial(self._edge, a))

    # --- receivers ------------------------------------------------------------------------

    def add_idle(self, rx: Receiver) -> None:
        rx.view = self
        rx.pending = None
        group = self.idle.get(rx.baud)
        if group is None:
            group = self.idle[rx.baud] = {}
        if rx not in group:
            group[rx] = None
            self.n_idle += 1

    def drop_idle(self, rx: Receiver) -> None:
        group = self.idle.get(rx.baud)
        if group is not None and rx in group:
            del group[rx]
            self.n_idle -= 1

    def _edge(self, a: float) -> None:
        self._edges.discard(a)
        if not self.attached or not self.n_idle:
            return
        recs = self.records(a, a)
        if not any(rec.low_at(a) for rec in recs) or any(
                a0 < a <= b for rec in recs for a0, b in rec.runs()):
            return  # covered by another sender's space, or cut away: not a falling edge
        for baud, group in list(self.idle.items()):
            if not group:
                continue
            self.idle[baud] = {}
            self.n_idle -= len(group)
            pending = Pending(self, baud, a, group)
            for rx in group:
                rx.pending = pending
            self.sim.schedule(a + START_SAMPLE / baud, pending.start_check)

    # --- levels ---------------------------------------------------------------------------

    def records(self, t1: float, t2: float) -> list[Record]:
        """Records of this view on the line at some time in [t1, t2]."""
        out: list[Record] = []
        for channel, source in self.parts:
            out.extend(channel.records(t1, t2, source))
        return out

    def low_at(self, t: float) -> bool:
        """The noiseless level at ``t`` is space."""
        return any(rec.low_at(t) for rec in self.records(t, t))

    def low_before(self, t: float) -> bool:
        """The line was at space just before ``t`` (some space interval runs up to ``t``)."""
        return any(a < t <= b for rec in self.records(t, t) for a, b in rec.runs())

    def high_at(self, t: float) -> bool:
        """One sample at ``t`` is mark (noise included, as ``sampler`` takes it)."""
        for channel, source in self.parts:
            if source is None and channel.noise:
                return bool(self.sampler(t, t)(t))
        return not self.low_at(t)

    @property
    def noisy(self) -> bool:
        return any(channel.noise > 0 for channel, source in self.parts if source is None)

    def sampler(self, t1: float, t2: float) -> Callable[[float], int]:
        """A function sampling this view's level (1 mark, 0 space) at times in [t1, t2],
        flipping each channel's level with its noise probability."""
        rng = self.sim.random
        groups = []
        for channel, source in self.parts:
            recs = channel.records(t1, t2, source)
            noise = channel.noise if source is None else 0.0
            if recs or noise:
                groups.append((recs, noise))

        def sample(t: float) -> int:
            level = 1
            for recs, noise in groups:
                low = any(r.low_at(t) for r in recs)
                if noise and rng.random() < noise:
                    low = not low
                if low:
                    level = 0
            return level

        return sample

    def decode_rest(self, baud: int, a: float, *, fast: bool = True) -> RxChar:
        """The character whose start edge was at ``a`` (start bit already checked)."""
        tb = 1.0 / baud
        t_end = a + STOP_SAMPLE * tb
        if fast and not self.noisy:
            recs = [r for r in self.records(a, t_end) if r.cut > a]  # not ones ended at a
            if len(recs) == 1:
                rec = recs[0]
                if (
                    isinstance(rec, CharRecord)
                    and rec.t0 == a
                    and rec.tb == tb
                    and rec.cut == rec.end
                ):
                    return RxChar(rec.value, t_end, rec.bad_parity, False)
        sample = self.sampler(a, t_end)
        bits = [sample(a + (k + 0.5) * tb) for k in range(1, BITS_PER_CHAR)]
        value = 0
        for i in range(8):
            value |= bits[i] << i
        return RxChar(value, t_end, bits[8] != even_parity_bit(value), bits[9] == 0)

    def decode(self, baud: int, a: float, *, fast: bool = True) -> RxChar | None:
        """The whole receiver routine for an edge at ``a``: None for a false start."""
        tb = 1.0 / baud
        t = a + START_SAMPLE * tb
        if self.high_at(t):
            return None
        return self.decode_rest(baud, a, fast=fast)


class Pending:
    """Receivers at one baud on one view that took the same falling edge at ``a``."""

    __slots__ = ("view", "baud", "a", "members", "moved")

    def __init__(self, view: View, baud: int, a: float, members: dict[Receiver, None]) -> None:
        self.view = view
        self.baud = baud
        self.a = a
        self.members = members
        self.moved = False
        """A member changed its view since the edge (Receiver.set_view)."""

    @property
    def end(self) -> float:
        return self.a + STOP_SAMPLE / self.baud

    def sources(self) -> tuple[str, ...]:
        """Who was sending (on this view) while the character was sampled."""
        names: dict[str, None] = {}
        for rec in self.view.records(self.a, self.end):
            names[rec.source] = None
        return tuple(names)

    def _split(self) -> None:
        """Members that moved to another view since the edge carry on in a group of their own."""
        if not self.moved:
            return
        for rx in [rx for rx in self.members if rx.view is not self.view]:
            del self.members[rx]
            other = Pending(rx.view, self.baud, self.a, {rx: None})
            rx.pending = other
            other.start_check()

    def start_check(self) -> None:
        self._split()
        if not self.members:
            return
        t = self.a + START_SAMPLE / self.baud
        view = self.view
        if view.high_at(t):  # false start: back to hunting
            for rx in list(self.members):
                self.view.add_idle(rx)
            return
        self.view.sim.schedule(self.end, self.decode)

    def decode(self) -> None:
        if not self.members:
            return
        home, baud = self.view, self.baud
        ch = home.decode_rest(baud, self.a)
        idle = home.idle.get(baud)
        if idle is None:
            idle = home.idle[baud] = {}
        others: dict[View, RxChar] = {}
        for rx in list(self.members):
            if rx.pending is not self:
                continue  # left the group in an earlier member's callback
            view = rx.view
            if view is home:  # the common case, inlined: back to hunting on this view
                got = ch
                rx.pending = None
                if rx not in idle:
                    idle[rx] = None
                    home.n_idle += 1
            else:
                got = others.get(view) or view.decode_rest(baud, self.a)
                others[view] = got
                view.add_idle(rx)
            on_char = rx.on_char
            if on_char is not None:
                on_char(got)
            elif rx.deliver is not None:
                rx.deliver(got, self)

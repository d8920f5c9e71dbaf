"""The discrete-event core of the simulated bus (docs/design.md "The clock rule").

Time is virtual: it moves only inside :meth:`Simulation.run_until`, jumping from one event
to the next. All randomness comes from ``Simulation.random`` (seeded), and events at equal
times run in the order they were scheduled, so one seed always gives one trace.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from protocol.errors import HardwareError

if TYPE_CHECKING:
    from .realtime import RealTimeRunner

#: How far in the past an event may be scheduled before it is an error (float rounding).
PAST_TOLERANCE = 1e-9


class Event:
    """A scheduled callback; :meth:`cancel` stops it from running."""

    __slots__ = ("time", "fn")

    def __init__(self, time: float, fn: Callable[[], object] | None) -> None:
        self.time = time
        self.fn = fn

    def cancel(self) -> None:
        self.fn = None

    @property
    def pending(self) -> bool:
        return self.fn is not None


class Simulation:
    """A heapq event loop on virtual time, with a seeded random generator.

    ``lock`` guards the whole simulation: :meth:`run_until` holds it; code driving the
    simulation from another thread (the RealTimeRunner's callers) must hold it too.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self._now = 0.0
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()
        self.runner: RealTimeRunner | None = None
        """The RealTimeRunner driving this simulation, when one is running."""
        self._loop_thread: int | None = None

    def now(self) -> float:
        """The current virtual time in seconds (starts at 0)."""
        return self._now

    def schedule(self, at: float, fn: Callable[[], object]) -> Event:
        """Run ``fn()`` when the simulation reaches ``at`` (not before now)."""
        if at < self._now:
            if at < self._now - PAST_TOLERANCE or math.isnan(at):
                raise ValueError(f"cannot schedule at {at!r}: the simulation is at {self._now!r}")
            at = self._now
        event = Event(at, fn)
        heapq.heappush(self._heap, (at, next(self._seq), event))
        return event

    def in_loop(self) -> bool:
        """True in a callback the simulation is running (in this thread) right now."""
        return self._loop_thread == threading.get_ident()

    def next_time(self) -> float | None:
        """Time of the next live event, or None when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2].fn is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, t: float, stop: Callable[[], bool] | None = None) -> bool:
        """Run events up to time ``t``; return True as soon as ``stop()`` is true.

        ``stop`` is checked first and after every event; when it becomes true the clock stays
        at that event's time. Otherwise the clock ends at ``t`` (or, for ``t = inf``, at the
        last event: the simulation ran dry) and False is returned.
        """
        with self.lock:
            if self.in_loop():
                raise HardwareError(
                    "a simulation callback tried to wait (sleep or read with a timeout): "
                    "callbacks must schedule what comes later instead"
                )
            if stop is not None and stop():
                return True
            self._loop_thread = threading.get_ident()
            try:
                return self._run(t, stop)
            finally:
                self._loop_thread = None

    def _run(self, t: float, stop: Callable[[], bool] | None) -> bool:
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= t:
            at, _, event = pop(heap)
            fn = event.fn
            if fn is None:
                continue
            event.fn = None
            self._now = at
            fn()
            if stop is not None and stop():
                return True
        if t != math.inf and t > self._now:
            self._now = t
        return False

    def run_for(self, seconds: float, stop: Callable[[], bool] | None = None) -> bool:
        """:meth:`run_until` ``now() + seconds``."""
        return self.run_until(self._now + seconds, stop)

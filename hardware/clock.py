"""The rig's clock (docs/design.md "The clock rule").

Everything that waits or measures time asks a Clock. On hardware it is the monotonic wall
clock; on the simulated bus it is virtual (``hardware.sim.clock.VirtualClock``): when the
test thread waits, the simulation jumps to the next event. Nothing else in the project calls
``time.sleep`` or ``time.monotonic``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What every waiting or measuring piece of the rig depends on."""

    def now(self) -> float:
        """Seconds on this clock's monotonic time line."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of clock time pass."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the clock reaches ``when`` (used for timed fault pulses)."""
        ...

    @property
    def is_virtual(self) -> bool: ...


class WallClock:
    """The monotonic wall clock, for real hardware and real-time simulation."""

    is_virtual = False

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        delay = max(0.0, when - self.now())
        timer = threading.Timer(delay, callback)
        timer.daemon = True
        timer.start()

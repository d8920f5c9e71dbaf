"""The virtual clock: the rig's Clock on the simulated bus (docs/design.md "The clock rule").

``sleep`` runs the simulation forward, so time advances only when the test thread waits;
``call_at`` schedules on the simulation. A 9 s readout at 300 baud costs milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .engine import Simulation


class VirtualClock:
    """A :class:`hardware.clock.Clock` on a :class:`Simulation`'s virtual time."""

    is_virtual = True

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def now(self) -> float:
        return self.sim.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and not math.isnan(seconds):
            self.sim.run_until(self.sim.now() + seconds)

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        self.sim.schedule(max(when, self.sim.now()), callback)

    def wait_until(self, deadline: float, predicate: Callable[[], bool]) -> bool:
        """Run until ``predicate()`` holds (True) or the clock reaches ``deadline`` (False)."""
        return self.sim.run_until(deadline, predicate)

"""Running a simulation along the wall clock, for endpoints that outside programs join
(pseudo-terminals, TCP): docs/design.md "Pseudo-terminal endpoints run the bus in real time".

The runner thread advances the simulation to the wall-clock time and sleeps until the next
event (or ``max_step``). Other threads touch the simulation only through :meth:`call`, which
holds the simulation's lock, first catches the simulation up to the wall clock (so what it
sends starts "now"), and wakes the runner afterwards. Callbacks from the bus (received
characters, power changes) run with the lock held, in whichever thread advanced the
simulation (the runner's, or a caller of :meth:`call`): hand data to other threads through a
queue, never block or wait there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from hardware.clock import Clock, WallClock
from protocol.errors import HardwareError

from .engine import Simulation

T = TypeVar("T")


class RealTimeRunner:
    """A thread that keeps ``sim`` in step with ``clock`` (the wall clock by default)."""

    def __init__(self, sim: Simulation, *, clock: Clock | None = None, max_step: float = 0.05) -> None:
        self.sim = sim
        self.clock: Clock = clock if clock is not None else WallClock()
        self.max_step = max_step
        self._wall0 = 0.0
        self._sim0 = 0.0
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        """An exception raised by a simulation callback; it stops the runner."""

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> RealTimeRunner:
        if self._thread is not None:
            raise HardwareError("the real-time runner is already running")
        if self.sim.runner is not None:
            raise HardwareError("another real-time runner drives this simulation")
        with self.sim.lock:
            self._wall0 = self.clock.now()
            self._sim0 = self.sim.now()
            self.sim.runner = self
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="mbussim-realtime", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (waits at most ``timeout`` seconds for it)."""
        self._stop = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self.sim.lock:
            if self.sim.runner is self:
                self.sim.runner = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> RealTimeRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stop

    # --- for other threads ----------------------------------------------------------------

    def now(self) -> float:
        """The simulation time that corresponds to the clock now."""
        return self._sim0 + (self.clock.now() - self._wall0)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` in the simulation at the current wall time (thread-safe). From a
        simulation callback it simply runs ``fn()`` (the time is already right)."""
        if self.sim.in_loop():
            return fn()
        with self.sim.lock:
            self.sim.run_until(max(self.now(), self.sim.now()))
            result = fn()
        self._wake.set()
        return result

    def wait_until(self, when: float, timeout: float | None = None) -> bool:
        """Wait (wall time, at most ``timeout``) until the simulation time ``when`` has come,
        then catch the simulation up to it: the caller sees everything that happened until
        then. The runner thread may be asleep for up to ``max_step`` when no event is due
        (after the last character of a frame, say), so waiting for it to reach ``when`` could
        return that much late; this waits on the clock instead. False if ``timeout`` ran out
        first."""
        if self.sim.in_loop():
            raise HardwareError("a simulation callback tried to wait for the real-time runner")
        deadline = None if timeout is None else self.clock.now() + timeout
        while (left := when - self.now()) > 0:
            if deadline is not None:
                if self.clock.now() >= deadline:
                    return False
                left = min(left, deadline - self.clock.now())
            self.clock.sleep(left)
        self.call(lambda: None)
        return True

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait (wall time, at most ``timeout``; None = until stopped) for ``predicate()``,
        checked with the simulation lock held after every step of the runner. At the timeout
        the simulation is caught up to the clock and the predicate checked once more: the
        runner's thread may lag behind a loaded machine's clock, and what happened on the bus
        until the deadline must count (a master would otherwise give up on an answer the bus
        delivered in time)."""
        if self.sim.in_loop():
            raise HardwareError("a simulation callback tried to wait for the real-time runner")
        deadline = None if timeout is None else self.clock.now() + timeout
        with self._cond:
            while True:
                with self.sim.lock:
                    if predicate():
                        return True
                if not self.running:
                    return False
                left = None if deadline is None else deadline - self.clock.now()
                if left is not None and left <= 0:
                    return self.call(predicate)
                self._cond.wait(self.max_step if left is None else min(left, self.max_step))

    # --- the thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        sim = self.sim
        while not self._stop:
            try:
                with sim.lock:
                    sim.run_until(max(self.now(), sim.now()))
                    nxt = sim.next_time()
            except BaseException as exc:  # a device callback failed: stop, keep the cause
                self.error = exc
                self._stop = True
                break
            with self._cond:
                self._cond.notify_all()
            delay = self.max_step if nxt is None else min(self.max_step, max(0.0, nxt - self.now()))
            if delay > 0:
                self._wake.wait(delay)
            self._wake.clear()
        with self._cond:
            self._cond.notify_all()


class RunnerClock:
    """The rig's Clock while a RealTimeRunner drives the bus: ``now`` is the simulation time
    (which follows the wall clock), ``sleep`` waits on the wall clock, ``call_at`` schedules
    on the simulation."""

    is_virtual = False

    def __init__(self, runner: RealTimeRunner) -> None:
        self.runner = runner

    def now(self) -> float:
        return self.runner.now()

    def sleep(self, seconds: float) -> None:
        self.runner.clock.sleep(seconds)

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        sim = self.runner.sim
        self.runner.call(lambda: sim.schedule(max(when, sim.now()), callback))

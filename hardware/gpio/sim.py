"""The simulated GPIO backend: pins, external pulls, and a timed record of every write.

It behaves like a Raspberry Pi header seen from outside: an output drives its level, an input
(or a released pin) reads whatever drives it from outside, or else its external pull
resistor. The default pulls are the Pi's reset state (docs/mbus-facts.md "Hardware: the two-Pi rig":
GPIO 0-8 pulled up, 9-27 pulled down), which is also what the rig's external pull-downs
give on the fault lines. The simulated bus subscribes with :meth:`SimGpio.on_change` so a
fault line switched here switches the fault on the simulated wire.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from hardware.clock import Clock, WallClock
from protocol.errors import HardwareError

#: BCM GPIO numbers on the 40-pin header.
BCM_PINS = range(0, 28)

Op = Literal["setup", "write", "release", "drive"]
Mode = Literal["output", "input"]


def reset_pull(pin: int) -> bool:
    """The Pi's power-on pull for ``pin``: up (True) for GPIO 0-8, down for 9-27."""
    return pin <= 8


def check_bcm(pin: int) -> int:
    """``pin`` if it is a BCM header GPIO number (0-27), else HardwareError."""
    if isinstance(pin, bool) or not isinstance(pin, int) or pin not in BCM_PINS:
        raise HardwareError(f"GPIO {pin!r}: not a BCM header pin (0-27)")
    return pin


@dataclass(frozen=True, slots=True)
class GpioWrite:
    """One recorded level change request: ``op`` is how it happened.

    ``setup`` (made an output at ``level``), ``write``, ``release`` (back to an input; ``level``
    is what the pin then reads), ``drive`` (an outside source set an input's level).
    """

    time: float
    pin: int
    level: bool
    op: Op


Listener = Callable[[int, bool], None]


class SimGpio:
    """A GpioBackend with no hardware: deterministic, inspectable, clock-stamped.

    ``pulls`` overrides the external pull level per pin (True = pulled high); an undriven
    pin reads its pull. ``drive(pin, level)`` plays an outside circuit driving an input (the
    TSS721A PF line, for instance); ``drive(pin, None)`` lets it float back to the pull.
    Listeners registered with :meth:`on_change` run on every change of a pin's level,
    whatever caused it, in the thread that caused it, after the backend's lock is released.
    """

    name = "sim"

    def __init__(self, clock: Clock | None = None, *, pulls: Mapping[int, bool] | None = None) -> None:
        self._clock: Clock = clock if clock is not None else WallClock()
        self._lock = threading.RLock()
        self._pulls: dict[int, bool] = {}
        for pin, level in (pulls or {}).items():
            self._pulls[check_bcm(pin)] = bool(level)
        self._modes: dict[int, Mode] = {}
        self._driven: dict[int, bool] = {}  # what this backend drives on its outputs
        self._external: dict[int, bool] = {}  # what an outside circuit drives
        self._listeners: dict[int, list[Listener]] = {}
        self.writes: list[GpioWrite] = []

    # --- the GpioBackend protocol ----------------------------------------------------------

    def setup_output(self, pin: int, level: bool) -> None:
        """Make ``pin`` an output at ``level`` (no glitch: the level applies at once)."""
        self._change(check_bcm(pin), "setup", bool(level), mode="output")

    def setup_input(self, pin: int) -> None:
        self._change(check_bcm(pin), "release", None, mode="input", record=False)

    def write(self, pin: int, level: bool) -> None:
        check_bcm(pin)
        with self._lock:
            if self._modes.get(pin) != "output":
                raise HardwareError(f"GPIO {pin}: write to a pin that is not set up as an output")
        self._change(pin, "write", bool(level), mode="output")

    def read(self, pin: int) -> bool:
        check_bcm(pin)
        with self._lock:
            if pin not in self._modes:
                raise HardwareError(f"GPIO {pin}: read of a pin that is not set up")
            return self._level(pin)

    def release(self, pin: int) -> None:
        """Stop driving ``pin``: it becomes an input and reads its pull (or outside driver)."""
        self._change(check_bcm(pin), "release", None, mode="input")

    def cleanup(self) -> None:
        """Release every pin set up here; listeners stay subscribed."""
        with self._lock:
            pins = list(self._modes)
        for pin in pins:
            self._change(pin, "release", None, mode=None)

    def on_change(self, pin: int, callback: Listener) -> None:
        with self._lock:
            self._listeners.setdefault(check_bcm(pin), []).append(callback)

    # --- the outside world -----------------------------------------------------------------

    def set_pull(self, pin: int, level: bool) -> None:
        """Fit an external pull resistor (True = up) on ``pin``."""
        self._change(check_bcm(pin), "pull", bool(level), mode=self.mode(pin), record=False)

    def drive(self, pin: int, level: bool | None) -> None:
        """An outside circuit drives ``pin`` to ``level`` (None: stops driving it)."""
        self._change(check_bcm(pin), "drive", level, mode=self.mode(pin))

    def level(self, pin: int) -> bool:
        """The level on ``pin`` now, whatever its mode (for the simulated bus and tests)."""
        check_bcm(pin)
        with self._lock:
            return self._level(pin)

    def mode(self, pin: int) -> Mode | None:
        """"output", "input", or None when this backend never set the pin up."""
        with self._lock:
            return self._modes.get(check_bcm(pin))

    def pull(self, pin: int) -> bool:
        with self._lock:
            return self._pulls.get(check_bcm(pin), reset_pull(pin))

    def writes_to(self, pin: int) -> list[GpioWrite]:
        """The recorded changes of one pin, oldest first."""
        with self._lock:
            return [w for w in self.writes if w.pin == pin]

    # --- internals -------------------------------------------------------------------------

    def _level(self, pin: int) -> bool:
        if self._modes.get(pin) == "output":
            return self._driven[pin]
        if pin in self._external:
            return self._external[pin]
        return self._pulls.get(pin, reset_pull(pin))

    def _change(
        self,
        pin: int,
        op: Op | Literal["pull"],
        level: bool | None,
        *,
        mode: Mode | None,
        record: bool = True,
    ) -> None:
        with self._lock:
            before = self._level(pin)
            if op in ("setup", "write"):
                assert level is not None
                self._driven[pin] = level
            elif op == "release":
                self._driven.pop(pin, None)
            elif op == "pull":
                assert level is not None
                self._pulls[pin] = level
            elif op == "drive":
                if level is None:
                    self._external.pop(pin, None)
                else:
                    self._external[pin] = bool(level)
            if mode is None:
                self._modes.pop(pin, None)
            else:
                self._modes[pin] = mode
            after = self._level(pin)
            if record and op != "pull":
                self.writes.append(GpioWrite(self._clock.now(), pin, after, op))
            listeners = list(self._listeners.get(pin, ())) if after != before else []
        for listener in listeners:
            listener(pin, after)

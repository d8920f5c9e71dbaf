"""The GPIO backend contract (BCM numbering, levels as bools: True = high)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class GpioBackend(Protocol):
    name: str

    def setup_output(self, pin: int, level: bool) -> None:
        """Make ``pin`` an output driving ``level`` from the first instant."""
        ...

    def setup_input(self, pin: int) -> None: ...

    def write(self, pin: int, level: bool) -> None: ...

    def read(self, pin: int) -> bool: ...

    def release(self, pin: int) -> None:
        """Return ``pin`` to an input (undriven: the external pull decides the level)."""
        ...

    def cleanup(self) -> None:
        """Release every pin this backend set up."""
        ...

    def on_change(self, pin: int, callback: Callable[[int, bool], None]) -> None:
        """Call ``callback(pin, level)`` when ``pin``'s level changes (inputs; simulated outputs)."""
        ...

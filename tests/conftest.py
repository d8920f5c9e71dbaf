"""Shared fixtures of the project's own tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hardware.gpio.sim import SimGpio


class StepClock:
    """A clock the test moves by hand."""

    is_virtual = True

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        raise NotImplementedError


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def gpio(clock: StepClock) -> SimGpio:
    return SimGpio(clock)

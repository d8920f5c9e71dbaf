"""Scenarios tests/test_farm.py passes to ``mbus-rig run`` (not collected on their own: the
file name does not start with test_). They signal through files named by the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hardware.clock import WallClock

WAIT_S = 30.0


def _mark(text: str) -> None:
    Path(os.environ["FARM_TEST_MARK"]).write_text(text)


def test_hold_a_fault(faults: Any) -> None:
    """Switches the bus short on and waits (bounded) to be stopped."""
    faults.inject("short")
    _mark(f"asserted {os.getpid()}")
    clock = WallClock()
    deadline = clock.now() + WAIT_S
    while clock.now() < deadline:
        clock.sleep(0.02)
    raise AssertionError(f"not stopped within {WAIT_S} s")

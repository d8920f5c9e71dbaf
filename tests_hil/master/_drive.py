"""Driving the master under test: the values an operation needs for a given meter."""

from __future__ import annotations

from typing import Any

SCAN_MARGIN = 2
"""A primary scan covers the meters' addresses and this many addresses either side."""


def values_for(operation: str, meter: Any, **extra: object) -> dict[str, object]:
    """``address`` / ``secondary`` (16 hex digits, libmbus's form) / a scan range around
    ``meter``, plus ``extra``."""
    values: dict[str, object] = dict(extra)
    if operation in ("read", "set_address", "switch_baud", "reset"):
        values.setdefault("address", meter.address)
    elif operation == "read_secondary":
        values.setdefault("secondary", str(meter.secondary))
    elif operation == "scan":
        values.setdefault("first", max(0, meter.address - SCAN_MARGIN))
        values.setdefault("last", min(250, meter.address + SCAN_MARGIN))
    return values


def run(mut: Any, operation: str, meter: Any, **extra: object) -> Any:
    """Run ``operation`` of the master on ``meter``."""
    return mut.run(operation, **values_for(operation, meter, **extra))

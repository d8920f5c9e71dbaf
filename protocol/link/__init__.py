"""EN 13757-2 link layer: slave and master engines, selection masks, secondary search.

All sans-I/O (DESIGN.md): engines take received characters and the time, and return what to
send and what happened.
"""

from .selection import ALL, SelectionMask
from .slave import (
    CI56_DESELECT,
    CI56_MODES,
    CI56_SELECT,
    DEFECTS,
    MeterApplication,
    RspUd,
    SetBaud,
    SlaveAction,
    SlaveLink,
    SlaveSettings,
    Transmit,
)

__all__ = [
    "ALL", "CI56_DESELECT", "CI56_MODES", "CI56_SELECT", "DEFECTS", "MeterApplication", "RspUd",
    "SelectionMask", "SetBaud", "SlaveAction", "SlaveLink", "SlaveSettings", "Transmit",
]

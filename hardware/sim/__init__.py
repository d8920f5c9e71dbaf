"""The simulated M-Bus: a discrete-event, bit-level model of one segment (docs/design.md
"The simulated bus"). See docs/simulated-bus.md.

Importing this package lets ``serial.serial_for_url`` open ``mbussim://NAME`` URLs.
"""

from .bus import (
    FAULT_ROLES,
    HOLD_UP_S,
    MAX_SLAVES,
    POWER_UP_S,
    Endpoint,
    MasterEndpoint,
    SimBus,
    SlaveEndpoint,
)
from .clock import VirtualClock
from .engine import Event, Simulation
from .realtime import RealTimeRunner, RunnerClock
from .registry import lookup
from .serial_port import SimSerial, install, parmrk

install()

__all__ = [
    "FAULT_ROLES",
    "HOLD_UP_S",
    "MAX_SLAVES",
    "POWER_UP_S",
    "Endpoint",
    "Event",
    "MasterEndpoint",
    "RealTimeRunner",
    "RunnerClock",
    "SimBus",
    "SimSerial",
    "SlaveEndpoint",
    "Simulation",
    "VirtualClock",
    "install",
    "lookup",
    "parmrk",
]

"""In-process names for simulated buses: ``mbussim://NAME`` opens the master of bus NAME."""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING

from protocol.errors import ConfigError

if TYPE_CHECKING:
    from .bus import SimBus

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_buses: weakref.WeakValueDictionary[str, SimBus] = weakref.WeakValueDictionary()


def register(name: str, bus: SimBus) -> None:
    """Make ``bus`` reachable as ``mbussim://name`` (a later bus of the same name wins)."""
    if not _NAME.match(name):
        raise ConfigError(f"simulated bus name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    _buses[name] = bus


def unregister(name: str) -> None:
    _buses.pop(name, None)


def lookup(name: str) -> SimBus:
    """The bus registered as ``name``; ConfigError naming the known ones if there is none."""
    bus = _buses.get(name)
    if bus is None:
        known = ", ".join(sorted(_buses)) or "none"
        raise ConfigError(f"no simulated bus named {name!r} in this process (known: {known})")
    return bus


def names() -> list[str]:
    return sorted(_buses)

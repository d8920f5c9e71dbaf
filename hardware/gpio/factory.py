"""Choose a GPIO backend at run time: ``open_backend("auto" | "rpi" | "sim")``."""

from __future__ import annotations

import logging

from hardware.clock import Clock
from protocol.errors import ConfigError, HardwareError

from .backend import GpioBackend
from .rpi import RpiGpio
from .sim import SimGpio

BACKEND_KINDS = ("auto", "rpi", "sim")

log = logging.getLogger(__name__)


def open_backend(kind: str = "auto", *, clock: Clock | None = None) -> GpioBackend:
    """The GPIO backend named by ``kind``.

    ``rpi`` raises HardwareError (naming the cause) when RPi.GPIO cannot be used; ``sim``
    never touches hardware; ``auto`` takes ``rpi`` when it works and otherwise falls back to
    ``sim`` with a warning in the log: check ``backend.name`` before trusting fault lines.
    ``clock`` stamps SimGpio's write record.
    """
    if kind == "sim":
        return SimGpio(clock)
    if kind == "rpi":
        return RpiGpio()
    if kind == "auto":
        try:
            return RpiGpio()
        except HardwareError as exc:
            log.warning("GPIO: %s; using the simulated backend", exc)
            return SimGpio(clock)
    raise ConfigError(f"GPIO backend {kind!r}: expected one of {', '.join(BACKEND_KINDS)}")

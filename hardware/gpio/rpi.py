"""The Raspberry Pi GPIO backend on the RPi.GPIO API.

On a Pi 5, RPi.GPIO does not work; the ``rpi-lgpio`` package installs a module of the same
name with the same API (docs/mbus-facts.md "Hardware: the two-Pi rig"), so this backend serves both.
BCM numbering, warnings off (the rig releases pins it set up; a warning about a pin "already
in use" from a previous crashed run is expected and harmless), and outputs are set up with
their initial level so the pin never glitches through the other level.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import Any

from protocol.errors import HardwareError

from .sim import check_bcm

Listener = Callable[[int, bool], None]


def import_rpi_gpio() -> ModuleType:
    """Import RPi.GPIO (or rpi-lgpio's stand-in), or raise HardwareError saying why not."""
    try:
        return import_module("RPi.GPIO")
    except ImportError as exc:
        raise HardwareError(
            f"GPIO backend 'rpi': RPi.GPIO is not installed ({exc}); on a Pi 5 install "
            "rpi-lgpio, elsewhere use the simulated backend (gpio = \"sim\")"
        ) from exc
    except Exception as exc:  # RPi.GPIO raises RuntimeError off a Pi
        raise HardwareError(
            f"GPIO backend 'rpi': RPi.GPIO cannot be used here ({exc}); "
            "this is not a Raspberry Pi, or /dev/gpiomem is not accessible "
            "(add the user to the 'gpio' group)"
        ) from exc


class RpiGpio:
    """A GpioBackend on RPi.GPIO; ``module`` lets tests pass a stand-in for RPi.GPIO."""

    name = "rpi"

    def __init__(self, module: ModuleType | Any | None = None) -> None:
        self._gpio = module if module is not None else import_rpi_gpio()
        self._lock = threading.Lock()
        self._pins: set[int] = set()
        self._outputs: dict[int, bool] = {}
        self._listeners: dict[int, list[Listener]] = {}
        self._edge_pins: set[int] = set()
        self._call("setup", self._gpio.setwarnings, False)
        self._call("setup", self._gpio.setmode, self._gpio.BCM)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HardwareError:
            raise
        except Exception as exc:  # RPi.GPIO raises RuntimeError/ValueError with a message
            raise HardwareError(f"GPIO {what}: {exc}") from exc

    def setup_output(self, pin: int, level: bool) -> None:
        check_bcm(pin)
        g = self._gpio
        self._call(f"{pin} setup", g.setup, pin, g.OUT, initial=g.HIGH if level else g.LOW)
        with self._lock:
            self._pins.add(pin)
            before = self._outputs.get(pin)
            self._outputs[pin] = bool(level)
        if before is not None and before != bool(level):
            self._notify(pin, bool(level))

    def setup_input(self, pin: int) -> None:
        """An input with the internal pull off: the rig's external resistors decide."""
        check_bcm(pin)
        g = self._gpio
        self._call(f"{pin} setup", g.setup, pin, g.IN, pull_up_down=g.PUD_OFF)
        with self._lock:
            self._pins.add(pin)
            self._outputs.pop(pin, None)
        self._ensure_edge_detection(pin)

    def write(self, pin: int, level: bool) -> None:
        check_bcm(pin)
        with self._lock:
            if pin not in self._outputs:
                raise HardwareError(f"GPIO {pin}: write to a pin that is not set up as an output")
        g = self._gpio
        self._call(f"{pin} write", g.output, pin, g.HIGH if level else g.LOW)
        with self._lock:
            changed = self._outputs.get(pin) != bool(level)
            self._outputs[pin] = bool(level)
        if changed:
            self._notify(pin, bool(level))

    def read(self, pin: int) -> bool:
        check_bcm(pin)
        with self._lock:
            if pin not in self._pins:
                raise HardwareError(f"GPIO {pin}: read of a pin that is not set up")
        return bool(self._call(f"{pin} read", self._gpio.input, pin))

    def release(self, pin: int) -> None:
        """Back to an input with pulls off (RPi.GPIO's per-pin cleanup)."""
        check_bcm(pin)
        with self._lock:
            self._pins.discard(pin)
            self._outputs.pop(pin, None)
            self._edge_pins.discard(pin)
        self._call(f"{pin} release", self._gpio.cleanup, pin)

    def cleanup(self) -> None:
        with self._lock:
            pins = sorted(self._pins)
            self._pins.clear()
            self._outputs.clear()
            self._edge_pins.clear()
        if pins:
            self._call("cleanup", self._gpio.cleanup, pins)

    def on_change(self, pin: int, callback: Listener) -> None:
        """Listen to ``pin``: edge detection on an input; this backend's own writes on an output."""
        check_bcm(pin)
        with self._lock:
            self._listeners.setdefault(pin, []).append(callback)
        self._ensure_edge_detection(pin)

    def _ensure_edge_detection(self, pin: int) -> None:
        with self._lock:
            is_input = pin in self._pins and pin not in self._outputs
            needed = is_input and pin in self._listeners and pin not in self._edge_pins
            if needed:
                self._edge_pins.add(pin)
        if needed:
            g = self._gpio
            self._call(f"{pin} edge detection", g.add_event_detect, pin, g.BOTH,
                       callback=self._edge)

    def _edge(self, pin: int) -> None:
        self._notify(pin, bool(self._gpio.input(pin)))

    def _notify(self, pin: int, level: bool) -> None:
        with self._lock:
            listeners = list(self._listeners.get(pin, ()))
        for listener in listeners:
            listener(pin, level)

"""RpiGpio against a recording stand-in for RPi.GPIO, and open_backend's choices."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

import hardware.gpio.rpi as rpi_module
from hardware.gpio import GpioBackend, RpiGpio, SimGpio, open_backend
from protocol.errors import ConfigError, HardwareError


class FakeRPiGPIO(types.ModuleType):
    """Records every call the way RPi.GPIO would receive it; keeps pin levels."""

    BCM, BOARD = 11, 10
    OUT, IN = 0, 1
    HIGH, LOW = 1, 0
    PUD_OFF, PUD_DOWN, PUD_UP = 20, 21, 22
    BOTH = 33

    def __init__(self) -> None:
        super().__init__("RPi.GPIO")
        self.calls: list[tuple[Any, ...]] = []
        self.levels: dict[int, int] = {}
        self.callbacks: dict[int, Callable[[int], None]] = {}
        self.mode: int | None = None

    def setwarnings(self, flag: bool) -> None:
        self.calls.append(("setwarnings", flag))

    def setmode(self, mode: int) -> None:
        self.calls.append(("setmode", mode))
        self.mode = mode

    def setup(self, pin: int, direction: int, **kw: Any) -> None:
        if self.mode is None:
            raise RuntimeError("Please set pin numbering mode")
        self.calls.append(("setup", pin, direction, kw))
        if direction == self.OUT:
            self.levels[pin] = kw.get("initial", self.LOW)

    def output(self, pin: int, level: int) -> None:
        self.calls.append(("output", pin, level))
        self.levels[pin] = level

    def input(self, pin: int) -> int:
        self.calls.append(("input", pin))
        return self.levels.get(pin, 0)

    def cleanup(self, pins: Any = None) -> None:
        self.calls.append(("cleanup", pins))

    def add_event_detect(self, pin: int, edge: int, callback: Callable[[int], None]) -> None:
        if pin in self.callbacks:
            raise RuntimeError("Conflicting edge detection already enabled for this GPIO channel")
        self.calls.append(("add_event_detect", pin, edge))
        self.callbacks[pin] = callback


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRPiGPIO:
    module = FakeRPiGPIO()
    package = types.ModuleType("RPi")
    package.GPIO = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "RPi", package)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", module)
    return module


def test_init_sets_bcm_mode_and_warnings_off(fake: FakeRPiGPIO) -> None:
    gpio = RpiGpio()
    assert isinstance(gpio, GpioBackend)
    assert gpio.name == "rpi"
    assert fake.calls == [("setwarnings", False), ("setmode", fake.BCM)]


def test_output_setup_carries_initial_level(fake: FakeRPiGPIO) -> None:
    gpio = RpiGpio()
    fake.calls.clear()
    gpio.setup_output(17, False)
    gpio.setup_output(22, True)
    assert fake.calls == [
        ("setup", 17, fake.OUT, {"initial": fake.LOW}),
        ("setup", 22, fake.OUT, {"initial": fake.HIGH}),
    ]


def test_write_read_release_cleanup(fake: FakeRPiGPIO) -> None:
    gpio = RpiGpio()
    gpio.setup_output(17, False)
    gpio.setup_input(5)
    fake.calls.clear()
    gpio.write(17, True)
    assert gpio.read(17) is True
    gpio.release(17)
    with pytest.raises(HardwareError, match="not set up as an output"):
        gpio.write(17, True)
    gpio.cleanup()
    assert fake.calls == [
        ("output", 17, fake.HIGH),
        ("input", 17),
        ("cleanup", 17),
        ("cleanup", [5]),
    ]


def test_inputs_have_internal_pulls_off(fake: FakeRPiGPIO) -> None:
    RpiGpio().setup_input(6)
    assert fake.calls[-1] == ("setup", 6, fake.IN, {"pull_up_down": fake.PUD_OFF})


def test_edge_detection_on_input_reports_level(fake: FakeRPiGPIO) -> None:
    gpio = RpiGpio()
    seen: list[tuple[int, bool]] = []
    gpio.on_change(6, lambda pin, level: seen.append((pin, level)))  # before setup
    gpio.setup_input(6)
    gpio.on_change(6, lambda pin, level: seen.append((pin, not level)))  # no second detect
    assert [c for c in fake.calls if c[0] == "add_event_detect"] == [
        ("add_event_detect", 6, fake.BOTH)
    ]
    fake.levels[6] = 1
    fake.callbacks[6](6)
    assert seen == [(6, True), (6, False)]


def test_output_listeners_hear_own_writes(fake: FakeRPiGPIO) -> None:
    gpio = RpiGpio()
    seen: list[bool] = []
    gpio.setup_output(20, False)
    gpio.on_change(20, lambda _pin, level: seen.append(level))
    gpio.write(20, True)
    gpio.write(20, True)
    gpio.write(20, False)
    assert seen == [True, False]
    assert not any(c[0] == "add_event_detect" for c in fake.calls)


def test_library_errors_become_hardware_errors(fake: FakeRPiGPIO) -> None:
    gpio = RpiGpio()

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("No access to /dev/mem.  Try running as root!")

    fake.setup = broken  # type: ignore[method-assign]
    with pytest.raises(HardwareError, match=r"GPIO 17 setup: No access to /dev/mem"):
        gpio.setup_output(17, False)


def test_invalid_pin_refused_before_library(fake: FakeRPiGPIO) -> None:
    gpio = RpiGpio()
    fake.calls.clear()
    with pytest.raises(HardwareError, match="BCM"):
        gpio.setup_output(28, False)
    assert fake.calls == []


def test_open_backend_picks_rpi_when_usable(fake: FakeRPiGPIO) -> None:
    assert isinstance(open_backend("rpi"), RpiGpio)
    assert open_backend("auto").name == "rpi"
    assert isinstance(open_backend("sim"), SimGpio)


def test_open_backend_rpi_missing_module_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)  # import raises ImportError
    with pytest.raises(HardwareError, match="RPi.GPIO is not installed.*rpi-lgpio"):
        open_backend("rpi")


def test_open_backend_off_a_pi(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def off_pi(name: str) -> types.ModuleType:
        raise RuntimeError("This module can only be run on a Raspberry Pi!")

    monkeypatch.setattr(rpi_module, "import_module", off_pi)
    with pytest.raises(HardwareError, match="cannot be used here.*Raspberry Pi"):
        open_backend("rpi")
    backend = open_backend("auto")
    assert backend.name == "sim"
    assert "using the simulated backend" in caplog.text


def test_open_backend_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="'gpiod'.*auto, rpi, sim"):
        open_backend("gpiod")

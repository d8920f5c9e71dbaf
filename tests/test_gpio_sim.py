"""SimGpio: levels, pulls, outside drivers, listeners and the timed write record."""

from __future__ import annotations

import pytest

from hardware.clock import Clock
from hardware.gpio import GpioBackend
from hardware.gpio.sim import GpioWrite, SimGpio
from protocol.errors import HardwareError
from tests.conftest import StepClock


def test_is_a_gpio_backend(gpio: SimGpio, clock: StepClock) -> None:
    assert isinstance(gpio, GpioBackend)
    assert isinstance(clock, Clock)
    assert gpio.name == "sim"


def test_undriven_pins_read_the_pi_reset_pulls(gpio: SimGpio) -> None:
    for pin in (0, 4, 8):
        gpio.setup_input(pin)
        assert gpio.read(pin) is True
    for pin in (9, 17, 27):
        gpio.setup_input(pin)
        assert gpio.read(pin) is False


def test_configured_pull_overrides_reset_default(clock: StepClock) -> None:
    gpio = SimGpio(clock, pulls={17: True, 4: False})
    assert gpio.level(17) is True
    assert gpio.level(4) is False
    gpio.set_pull(17, False)
    assert gpio.level(17) is False


def test_output_drives_from_setup_and_release_falls_back_to_pull(gpio: SimGpio) -> None:
    gpio.setup_output(17, True)
    assert gpio.read(17) is True
    assert gpio.mode(17) == "output"
    gpio.write(17, False)
    assert gpio.read(17) is False
    gpio.write(17, True)
    gpio.release(17)
    assert gpio.mode(17) == "input"
    assert gpio.read(17) is False  # pull-down


def test_every_write_is_recorded_with_clock_time(gpio: SimGpio, clock: StepClock) -> None:
    gpio.setup_output(22, False)
    clock.t = 1.5
    gpio.write(22, True)
    clock.t = 2.25
    gpio.write(22, False)
    clock.t = 3.0
    gpio.release(22)
    assert gpio.writes_to(22) == [
        GpioWrite(0.0, 22, False, "setup"),
        GpioWrite(1.5, 22, True, "write"),
        GpioWrite(2.25, 22, False, "write"),
        GpioWrite(3.0, 22, False, "release"),
    ]


def test_listeners_fire_on_level_changes_only(gpio: SimGpio) -> None:
    seen: list[tuple[int, bool]] = []
    gpio.on_change(23, lambda pin, level: seen.append((pin, level)))
    gpio.setup_output(23, False)  # pull-down already low: no change
    gpio.write(23, True)
    gpio.write(23, True)  # same level: no change
    gpio.write(23, False)
    gpio.write(23, True)
    gpio.release(23)  # back to the pull-down
    assert seen == [(23, True), (23, False), (23, True), (23, False)]


def test_setup_output_high_on_pulled_down_pin_notifies_once(gpio: SimGpio) -> None:
    seen: list[bool] = []
    gpio.on_change(9, lambda _pin, level: seen.append(level))
    gpio.setup_output(9, True)
    assert seen == [True]


def test_outside_driver_sets_input_level_and_notifies(gpio: SimGpio) -> None:
    seen: list[bool] = []
    gpio.setup_input(24)
    gpio.on_change(24, lambda _pin, level: seen.append(level))
    gpio.drive(24, True)
    assert gpio.read(24) is True
    gpio.drive(24, None)  # floats: the pull-down wins
    assert gpio.read(24) is False
    assert seen == [True, False]


def test_output_dominates_outside_driver(gpio: SimGpio) -> None:
    gpio.setup_output(25, False)
    gpio.drive(25, True)
    assert gpio.read(25) is False
    gpio.release(25)
    assert gpio.read(25) is True


def test_cleanup_releases_every_pin_and_keeps_listeners(gpio: SimGpio) -> None:
    seen: list[tuple[int, bool]] = []
    gpio.on_change(10, lambda pin, level: seen.append((pin, level)))
    gpio.setup_output(10, True)
    gpio.setup_output(11, True)
    gpio.cleanup()
    assert gpio.level(10) is False and gpio.level(11) is False
    assert gpio.mode(10) is None and gpio.mode(11) is None
    gpio.setup_output(10, True)
    assert seen == [(10, True), (10, False), (10, True)]


@pytest.mark.parametrize("pin", [-1, 28, 40, 1.0, "17", True])
def test_invalid_pin_numbers_are_refused(gpio: SimGpio, pin: object) -> None:
    with pytest.raises(HardwareError, match="BCM"):
        gpio.setup_output(pin, True)  # type: ignore[arg-type]


def test_write_to_input_and_read_of_unset_pin_are_errors(gpio: SimGpio) -> None:
    gpio.setup_input(12)
    with pytest.raises(HardwareError, match="not set up as an output"):
        gpio.write(12, True)
    with pytest.raises(HardwareError, match="not set up"):
        gpio.read(13)

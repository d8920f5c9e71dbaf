"""Fault lines: polarity, pin validation, the set, and safe_state on every failure."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from hardware.gpio.sim import SimGpio
from hardware.lines import FaultLines, Line, pin_advice
from protocol.errors import ConfigError, HardwareError
from tests.conftest import StepClock


@dataclass(frozen=True)
class Spec:
    role: str
    pin: int
    active_high: bool = True
    name: str = ""


def test_active_high_line_is_claimed_released_and_switches(gpio: SimGpio) -> None:
    line = Line(gpio, 17, "bus_short")
    assert gpio.mode(17) == "output" and gpio.level(17) is False
    assert not line.is_asserted
    line.assert_()
    assert gpio.level(17) is True and line.is_asserted
    line.release()
    assert gpio.level(17) is False and not line.is_asserted


def test_active_low_line_inverts(gpio: SimGpio) -> None:
    line = Line(gpio, 26, "bus_power_cut", active_high=False, name="master_hat_power")
    assert gpio.level(26) is True  # healthy: bus power on
    line.assert_()
    assert gpio.level(26) is False and line.is_asserted
    assert line.name == "master_hat_power"
    assert line.advice == []


def test_setup_never_glitches_through_asserted_level(gpio: SimGpio) -> None:
    Line(gpio, 9, "collision")
    Line(gpio, 26, "bus_power_cut", active_high=False)
    assert [(w.pin, w.level, w.op) for w in gpio.writes] == [
        (9, False, "setup"),
        (26, True, "setup"),
    ]


def test_input_line_reads_power_fail(gpio: SimGpio) -> None:
    pf = Line(gpio, 24, "slave_power_fail", active_high=False)  # TSS721A PF low = failure
    gpio.drive(24, True)
    assert not pf.is_asserted
    gpio.drive(24, False)
    assert pf.is_asserted
    with pytest.raises(HardwareError, match="is an input"):
        pf.assert_()


def test_pulse_releases_after_clock_time(gpio: SimGpio, clock: StepClock) -> None:
    line = Line(gpio, 18, "slave_disconnect")
    line.pulse(clock, 0.25)
    assert [(w.time, w.level) for w in gpio.writes_to(18)] == [
        (0.0, False), (0.0, True), (0.25, False)]


@pytest.mark.parametrize(
    ("pin", "match"),
    [
        (0, "HAT ID EEPROM"),
        (1, "HAT ID EEPROM"),
        (14, "UART TXD"),
        (15, "UART RXD"),
        (28, "not a header pin"),
        (-3, "not a header pin"),
        ("17", "not a BCM GPIO number"),
        (True, "not a BCM GPIO number"),
    ],
)
def test_bad_pins_are_refused_with_reason(gpio: SimGpio, pin: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Line(gpio, pin, "noise")  # type: ignore[arg-type]
    assert gpio.writes == []


def test_reserved_pin_allowed_on_request_with_advice(gpio: SimGpio) -> None:
    line = Line(gpio, 14, "noise", allow_reserved=True)
    assert any("UART" in text for text in line.advice)


def test_pin_advice_warns_for_26_and_pulled_up_pins() -> None:
    assert pin_advice(26, "bus_power_cut") == []
    assert "Master Hat" in pin_advice(26, "noise")[0]
    assert "pulled up at reset" in pin_advice(4, "bus_short")[0]
    assert pin_advice(4, "slave_power_fail") == []
    assert pin_advice(17, "bus_short") == []


def test_unknown_role_is_refused(gpio: SimGpio) -> None:
    with pytest.raises(ConfigError, match="'relay'.*bus_power_cut"):
        Line(gpio, 17, "relay")


def test_fault_lines_lookup_and_duplicates(gpio: SimGpio) -> None:
    lines = FaultLines.from_specs(gpio, [
        Spec("bus_short", 22, name="short_1k"),
        Spec("bus_short", 23, name="short_330"),
        Spec("noise", 27),
    ])
    assert lines["short_330"].pin == 23
    assert lines["bus_short"].pin == 22  # first line with the role
    assert lines["noise"].name == "noise"
    assert "short_1k" in lines and "collision" not in lines
    assert lines.roles == {"bus_short", "noise"}
    with pytest.raises(HardwareError, match="no fault line 'collision'.*short_1k, short_330, noise"):
        lines["collision"]
    with pytest.raises(ConfigError, match="share GPIO 22"):
        lines.add(Line(gpio, 22, "collision", name="other"))
    with pytest.raises(ConfigError, match="two fault lines are named 'noise'"):
        lines.add(Line(gpio, 24, "noise"))


def test_from_specs_releases_already_set_up_lines_on_error(gpio: SimGpio) -> None:
    with pytest.raises(ConfigError, match="GPIO 14"):
        FaultLines.from_specs(gpio, [Spec("bus_short", 22), Spec("noise", 14)])
    assert gpio.level(22) is False


def test_safe_state_releases_all_and_is_idempotent(gpio: SimGpio) -> None:
    lines = FaultLines.from_specs(gpio, [
        Spec("bus_power_cut", 26, active_high=False),
        Spec("bus_short", 22),
        Spec("collision", 23),
        Spec("slave_power_fail", 24, active_high=False),
    ])
    gpio.drive(24, True)
    for role in ("bus_power_cut", "bus_short", "collision"):
        lines[role].assert_()
    assert sorted(lines.asserted()) == ["bus_power_cut", "bus_short", "collision"]
    first = lines.safe_state()
    second = lines.safe_state()
    assert first.ok and second.ok
    assert first.released == ("bus_power_cut", "bus_short", "collision")
    assert lines.asserted() == []
    assert str(first) == "safe state: 3 fault line(s) released"


class FailingGpio(SimGpio):
    """Write to one pin fails; writes to another one hang until the test lets go."""

    def __init__(self, fail_pin: int, hang_pin: int | None = None) -> None:
        super().__init__()
        self.fail_pin, self.hang_pin = fail_pin, hang_pin
        self.broken = False
        self.let_go = threading.Event()

    def write(self, pin: int, level: bool) -> None:
        if self.broken and pin == self.fail_pin:
            raise OSError("gpiochip: Input/output error")
        if self.broken and pin == self.hang_pin:
            self.let_go.wait(5)
        super().write(pin, level)


def test_safe_state_reports_a_failing_line_and_releases_the_others() -> None:
    gpio = FailingGpio(fail_pin=22)
    lines = FaultLines.from_specs(gpio, [
        Spec("bus_power_cut", 20), Spec("bus_short", 22), Spec("noise", 27)])
    for line in lines:
        line.assert_()
    gpio.broken = True
    report = lines.safe_state()
    assert not report.ok
    assert report.released == ("bus_power_cut", "noise")
    assert report.failed[0][0] == "bus_short"
    assert "GPIO 22" in report.failed[0][1] and "Input/output error" in report.failed[0][1]
    assert "safe state NOT reached: bus_short" in str(report)
    assert gpio.level(20) is False and gpio.level(27) is False


def test_safe_state_is_bounded_when_a_line_hangs() -> None:
    gpio = FailingGpio(fail_pin=-1, hang_pin=22)
    lines = FaultLines.from_specs(gpio, [
        Spec("bus_power_cut", 20), Spec("bus_short", 22), Spec("noise", 27)])
    gpio.broken = True
    try:
        report = lines.safe_state(timeout=0.2)
    finally:
        gpio.let_go.set()
    assert report.released == ("bus_power_cut",)
    assert report.unfinished == ("bus_short", "noise")
    assert "did not finish in time" in str(report)


def test_close_stops_driving_pins(gpio: SimGpio) -> None:
    lines = FaultLines.from_specs(gpio, [Spec("noise", 27)])
    lines["noise"].assert_()
    assert lines.close().ok
    assert gpio.mode(27) == "input" and gpio.level(27) is False

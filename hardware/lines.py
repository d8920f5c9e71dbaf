"""Named fault lines on GPIO pins, and the set of them with a safe state.

A :class:`Line` is one GPIO pin with an M-Bus meaning (its *role*). "Asserted" always means
the fault is active: bus power cut, slave disconnected, bus shorted, collision sink on, noise
on; for the input ``slave_power_fail``, the slave reports a power failure. ``active_high``
says which pin level that is, so wiring polarity stays in the rig config (the packom Master
Hat cuts bus power with GPIO26 *low*; the TSS721A's PF output is *low* on failure).

The idea of building power control on a plain digital output is labgrid's
``DigitalOutputPowerDriver``; here the roles are M-Bus faults and every line has a healthy
("released") level that :meth:`FaultLines.safe_state` returns to on every exit path.

Pin advice (docs/mbus-facts.md "Hardware: the two-Pi rig"): use BCM 9-27, pulled down at reset, with an
external pull-down and relays wired so that de-energised = healthy bus. GPIO 0/1 belong to
the HAT ID EEPROM and 14/15 to the PL011 UART (GPIO14 toggles at boot): refused unless
``allow_reserved``. GPIO26 is the Master Hat's bus power switch: fine for ``bus_power_cut``,
a warning for anything else. GPIO 2-8 are pulled up at reset: a warning for outputs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from hardware.clock import Clock
from protocol.errors import ConfigError, HardwareError

from .gpio.backend import GpioBackend

log = logging.getLogger(__name__)

#: Fault-enable outputs, in the order safe_state releases them (any order is electrically
#: safe; a fixed one keeps traces and reports comparable).
OUTPUT_ROLES = ("bus_power_cut", "slave_disconnect", "bus_short", "collision", "noise")
INPUT_ROLES = ("slave_power_fail",)
ROLES = OUTPUT_ROLES + INPUT_ROLES

#: Pins refused unless ``allow_reserved``: why.
RESERVED_PINS = {
    0: "GPIO 0 is ID_SD of the HAT ID EEPROM",
    1: "GPIO 1 is ID_SC of the HAT ID EEPROM",
    14: "GPIO 14 is the PL011 UART TXD (and toggles at boot)",
    15: "GPIO 15 is the PL011 UART RXD",
}
MASTER_HAT_POWER_PIN = 26


def pin_advice(pin: int, role: str, *, allow_reserved: bool = False) -> list[str]:
    """Check ``pin`` for ``role``: ConfigError when refused, else a list of warnings."""
    if role not in ROLES:
        raise ConfigError(f"fault line role {role!r}: expected one of {', '.join(ROLES)}")
    if isinstance(pin, bool) or not isinstance(pin, int):
        raise ConfigError(f"fault line {role}: pin {pin!r} is not a BCM GPIO number")
    if not 0 <= pin <= 27:
        raise ConfigError(f"fault line {role}: GPIO {pin} is not a header pin (BCM 2-27)")
    advice: list[str] = []
    if pin in RESERVED_PINS:
        text = f"fault line {role}: {RESERVED_PINS[pin]}"
        if not allow_reserved:
            raise ConfigError(f"{text}; use BCM 9-27 (or set allow_reserved)")
        advice.append(text)
    if pin == MASTER_HAT_POWER_PIN and role != "bus_power_cut":
        advice.append(
            f"fault line {role}: GPIO 26 switches the packom Master Hat's bus power")
    if 2 <= pin <= 8 and role in OUTPUT_ROLES:
        advice.append(
            f"fault line {role}: GPIO {pin} is pulled up at reset; prefer BCM 9-27 "
            "(pulled down) so the fault stays off while the Pi boots")
    return advice


class LineSpec(Protocol):
    """One fault line as the rig config describes it (``rig.config.LineConfig`` fits)."""

    @property
    def role(self) -> str: ...

    @property
    def pin(self) -> int: ...

    @property
    def active_high(self) -> bool: ...

    @property
    def name(self) -> str: ...


class Line:
    """One fault line: a pin, a role, a polarity. Setting it up drives it released.

    Output roles are claimed as outputs at the released (healthy) level from the first
    instant; the input role is set up as an input. Backend failures are HardwareError naming
    the line.
    """

    def __init__(
        self,
        backend: GpioBackend,
        pin: int,
        role: str,
        active_high: bool = True,
        name: str = "",
        *,
        allow_reserved: bool = False,
    ) -> None:
        self.advice = pin_advice(pin, role, allow_reserved=allow_reserved)
        for text in self.advice:
            log.warning("%s", text)
        self.backend = backend
        self.pin = pin
        self.role = role
        self.active_high = bool(active_high)
        self.name = name or role
        self.is_output = role in OUTPUT_ROLES
        self._do("set up", self._setup)

    def __repr__(self) -> str:
        polarity = "active high" if self.active_high else "active low"
        return f"Line({self.name!r}, GPIO {self.pin}, {self.role}, {polarity})"

    @property
    def asserted_level(self) -> bool:
        return self.active_high

    @property
    def released_level(self) -> bool:
        return not self.active_high

    def _setup(self) -> None:
        if self.is_output:
            self.backend.setup_output(self.pin, self.released_level)
        else:
            self.backend.setup_input(self.pin)

    def _do(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            raise HardwareError(f"fault line {self.name} (GPIO {self.pin}): {what}: {exc}") from exc

    def _need_output(self) -> None:
        if not self.is_output:
            raise HardwareError(f"fault line {self.name}: {self.role} is an input; it cannot be driven")

    def assert_(self) -> None:
        """Switch the fault on."""
        self.set(True)

    def release(self) -> None:
        """Switch the fault off (drive the healthy level)."""
        self.set(False)

    def set(self, asserted: bool) -> None:
        self._need_output()
        level = self.asserted_level if asserted else self.released_level
        self._do("assert" if asserted else "release", self.backend.write, self.pin, level)

    @property
    def is_asserted(self) -> bool:
        """Whether the fault is on now (read back from the pin)."""
        return bool(self._do("read", self.backend.read, self.pin)) == self.asserted_level

    def pulse(self, clock: Clock, seconds: float) -> None:
        """Assert for ``seconds`` of ``clock`` time, then release (also when interrupted)."""
        self.set(True)
        try:
            clock.sleep(seconds)
        finally:
            self.release()

    def close(self) -> None:
        """Stop driving the pin: from now on the external pull decides (fault off)."""
        self._do("release pin", self.backend.release, self.pin)


@dataclass(frozen=True, slots=True)
class SafeStateReport:
    """What :meth:`FaultLines.safe_state` did: lines released, failed (with why), unfinished."""

    released: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    unfinished: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unfinished

    def __str__(self) -> str:
        if self.ok:
            return f"safe state: {len(self.released)} fault line(s) released"
        parts = [f"{name}: {why}" for name, why in self.failed]
        parts += [f"{name}: did not finish in time" for name in self.unfinished]
        return "safe state NOT reached: " + "; ".join(parts)


class FaultLines:
    """The rig's fault lines, by role (and by name when a role has several lines)."""

    def __init__(self, lines: Iterable[Line] = ()) -> None:
        self._lines: list[Line] = []
        for line in lines:
            self.add(line)

    @classmethod
    def from_specs(cls, backend: GpioBackend, specs: Iterable[LineSpec], *,
                   allow_reserved: bool = False) -> FaultLines:
        """Set up every line in ``specs``; on a failure the lines already set up are released."""
        lines = cls()
        try:
            for spec in specs:
                lines.add(Line(backend, spec.pin, spec.role, spec.active_high, spec.name,
                               allow_reserved=allow_reserved))
        except Exception:
            lines.safe_state()
            raise
        return lines

    def add(self, line: Line) -> None:
        for other in self._lines:
            if other.pin == line.pin and other.backend is line.backend:
                raise ConfigError(f"fault lines {other.name} and {line.name} share GPIO {line.pin}")
            if other.name == line.name:
                raise ConfigError(f"two fault lines are named {line.name!r}")
        self._lines.append(line)

    def __iter__(self) -> Iterator[Line]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __contains__(self, role_or_name: object) -> bool:
        return any(role_or_name in (line.role, line.name) for line in self._lines)

    def __getitem__(self, role_or_name: str) -> Line:
        line = self.get(role_or_name)
        if line is None:
            have = ", ".join(line.name for line in self._lines) or "none"
            raise HardwareError(f"no fault line {role_or_name!r} on this rig (have: {have})")
        return line

    def get(self, role_or_name: str) -> Line | None:
        for line in self._lines:
            if line.name == role_or_name:
                return line
        for line in self._lines:
            if line.role == role_or_name:
                return line
        return None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(line.role for line in self._lines)

    def asserted(self) -> list[str]:
        """Names of the lines whose fault is on now (inputs included)."""
        return [line.name for line in self._lines if line.is_asserted]

    def safe_state(self, timeout: float = 2.0) -> SafeStateReport:
        """Release every output line; never raises for a failing line, reports it.

        Idempotent. Every line is tried once, whatever the others do. The writes run in a
        worker thread joined for at most ``timeout`` real seconds, so a backend that hangs
        cannot hang the caller's exit path (fixture finalizer, signal handler, CLI); lines not
        reached by then are reported as unfinished.
        """
        outputs = sorted((line for line in self._lines if line.is_output),
                         key=lambda line: OUTPUT_ROLES.index(line.role))
        released: list[str] = []
        failed: list[tuple[str, str]] = []
        lock = threading.Lock()

        def work() -> None:
            for line in outputs:
                try:
                    line.release()
                except Exception as exc:  # reported, never raised: the others still go
                    with lock:
                        failed.append((line.name, str(exc)))
                else:
                    with lock:
                        released.append(line.name)

        worker = threading.Thread(target=work, name="fault-lines-safe-state", daemon=True)
        worker.start()
        worker.join(timeout)
        with lock:
            done = set(released) | {name for name, _ in failed}
            report = SafeStateReport(
                tuple(released), tuple(failed),
                tuple(line.name for line in outputs if line.name not in done))
        if not report.ok:
            log.error("%s", report)
        return report

    def close(self, timeout: float = 2.0) -> SafeStateReport:
        """Safe state, then stop driving every pin: the external pulls decide from now on.

        With the recommended wiring (active high, pull-down) that keeps every fault off. An
        active-low line (the Master Hat's GPIO26 bus power) falls to its pull-down, which
        means bus power off: the Master Hat's own boot state.
        """
        report = self.safe_state(timeout)
        for line in self._lines:
            try:
                line.close()
            except HardwareError as exc:
                log.error("%s", exc)
        return report

"""The simulated bus master as a pyserial port: ``serial.serial_for_url("mbussim://NAME")``.

Like pyserial's ``serial/urlhandler/protocol_loop.py``, but the far end is the master endpoint
of the :class:`~hardware.sim.bus.SimBus` registered as NAME. Reads, read timeouts, writes and
``flush`` run on the simulation's virtual time (or along the wall clock while a
:class:`~hardware.sim.realtime.RealTimeRunner` drives it). Received characters come out as a
Linux tty with ``INPCK|PARMRK`` delivers them (docs/mbus-facts.md "Character and physical layer"): a
character with a parity or framing error as ``FF 00 b``, a real ``FF`` as ``FF FF``.
Unlike a tty, the port remembers when each character was received (its stop-bit sample on
the bus): :meth:`SimSerial.last_read_age` tells :class:`hardware.serial_port.SerialBusPort`
how long ago the last byte read arrived, so a character that waited in the buffer (while the
master was writing and draining) is still stamped with its time on the wire.

URL: ``mbussim://NAME`` (no options). The port must be opened 8E1 (``parity="E"``); the baud
rate may be changed at any time (``port.baudrate = 9600``) and must be an M-Bus rate.
"""

from __future__ import annotations

import math
import urllib.parse
from typing import Any

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException, to_bytes

from protocol.chars import RxChar, WireBytes
from protocol.errors import ConfigError
from protocol.frame_faults import GappedWire
from protocol.timing import BAUD_RATES, char_time, check_baud

from .bus import SimBus
from .registry import lookup

SCHEME = "mbussim"
HANDLER_PACKAGE = "hardware.sim.urlhandler"
PARMRK = 0xFF


def install() -> None:
    """Let ``serial.serial_for_url`` open ``mbussim://`` URLs (idempotent)."""
    if HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(HANDLER_PACKAGE)


def parmrk(ch: RxChar) -> bytes:
    """The bytes a tty with INPCK|PARMRK (and not IGNPAR/ISTRIP) delivers for ``ch``."""
    if not ch.ok:
        return bytes((PARMRK, 0x00, ch.value))
    if ch.value == PARMRK:
        return bytes((PARMRK, PARMRK))
    return bytes((ch.value,))


def bus_for_url(url: str) -> SimBus:
    """The bus a ``mbussim://NAME`` URL names; SerialException naming what is wrong."""
    parts = urllib.parse.urlsplit(url)
    form = f'expected "{SCHEME}://NAME"'
    if parts.scheme.lower() != SCHEME:
        raise SerialException(f"{form}, not {url!r}")
    if parts.query or parts.path not in ("", "/"):
        raise SerialException(f"{form} with no path or options, not {url!r}")
    try:
        return lookup(parts.netloc)
    except ConfigError as exc:
        raise SerialException(str(exc)) from None


class SimSerial(SerialBase):  # type: ignore[misc]
    """A pyserial port on a simulated bus's master endpoint."""

    BAUDRATES = BAUD_RATES
    is_open: bool
    parmrk = True
    """Received errors come as PARMRK marks (``hardware.serial_port`` reads this)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.bus: SimBus | None = None
        self._rx = bytearray()
        self._rx_times: list[float] = []
        """The bus time each byte of ``_rx`` was received (its character's stop-bit sample)."""
        self._read_time: float | None = None
        self._last_rx = -math.inf
        super().__init__(*args, **kwargs)

    # --- open / close / settings ----------------------------------------------------------

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        bus = bus_for_url(self._port)
        if getattr(bus, "master_port", None) is not None:
            raise SerialException(f"{self._port}: the bus master port is already open")
        self._check_format()
        self.bus = bus
        bus.master_port = self
        bus.master.on_receive = self._on_char
        self.is_open = True
        try:
            self._reconfigure_port()
        except BaseException:
            self.close()
            raise
        self._clear_rx()

    def close(self) -> None:
        bus = self.bus
        if bus is not None:
            if bus.master.on_receive == self._on_char:
                bus.master.on_receive = None
            if getattr(bus, "master_port", None) is self:
                bus.master_port = None
        self.bus = None
        self.is_open = False

    def _check_format(self) -> None:
        if (self._bytesize, self._parity, self._stopbits) != (8, serial.PARITY_EVEN, 1):
            raise SerialException(
                "the simulated M-Bus is 8E1: open it with bytesize=8, parity='E', stopbits=1 "
                f"(got {self._bytesize}{self._parity}{self._stopbits})"
            )

    def _reconfigure_port(self) -> None:
        if not self.is_open or self.bus is None:
            return
        self._check_format()
        baud = int(check_baud(self._baudrate))
        bus = self.bus
        if baud == bus.master.baud:
            return  # pyserial reconfigures on every timeout change: keep that cheap

        def apply() -> None:
            bus.master.baud = baud

        self._in_sim(apply)

    # --- data -----------------------------------------------------------------------------

    def _on_char(self, ch: RxChar) -> None:
        data = parmrk(ch)
        self._rx += data
        self._rx_times.extend([ch.time] * len(data))
        self._last_rx = ch.time

    def _clear_rx(self) -> None:
        self._rx.clear()
        self._rx_times.clear()
        self._read_time = None

    def last_read_age(self) -> float | None:
        """Bus seconds since the last byte ``read`` returned was received (the stop-bit sample
        of its character); None before any byte was read. While a real-time runner drives the
        bus "now" is the runner's (the wall clock's) time: the simulation itself only catches
        up at the runner's steps, and a reader that came late would otherwise stamp the
        character late by the time since the last step (an answer read in two goes then
        showed a gap it never had on the bus)."""
        bus = self.bus
        if self._read_time is None or bus is None:
            return None
        runner = bus.sim.runner
        now = runner.now() if runner is not None else bus.sim.now()
        return max(0.0, now - self._read_time)

    @property
    def in_waiting(self) -> int:
        self._need_open()
        return len(self._rx)

    @property
    def out_waiting(self) -> int:
        bus = self._need_open()
        left = bus.master.busy_until - bus.sim.now()
        return max(0, math.ceil(left / char_time(bus.master.baud) - 1e-9))

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes (PARMRK-encoded), waiting at most ``timeout`` seconds of bus
        time; ``inter_byte_timeout`` ends the read after that much silence once data came.
        With ``timeout=None`` it returns when the simulation has nothing left to do."""
        bus = self._need_open()
        rx = self._rx
        if size > 0 and len(rx) < size and self._timeout != 0:
            if bus.sim.runner is not None:
                self._wait_wall(size)
            else:
                self._wait_virtual(size)
        with bus.sim.lock:  # the runner thread may be appending
            data = bytes(rx[:size])
            del rx[:size]
            if data:
                self._read_time = self._rx_times[len(data) - 1]
                del self._rx_times[: len(data)]
        return data

    def _wait_virtual(self, size: int) -> None:
        assert self.bus is not None
        sim, rx = self.bus.sim, self._rx
        deadline = math.inf if self._timeout is None else sim.now() + self._timeout
        ibt = self._inter_byte_timeout
        got = False
        while len(rx) < size:
            limit = deadline
            if ibt is not None and got:
                limit = min(limit, self._last_rx + ibt)
            if sim.now() >= limit:
                return
            n = len(rx)
            if sim.run_until(limit, lambda n=n: len(rx) != n):  # type: ignore[misc]
                got = True
            elif limit == math.inf:
                return  # nothing left that could ever send

    def _wait_wall(self, size: int) -> None:
        assert self.bus is not None
        runner = self.bus.sim.runner
        assert runner is not None
        rx = self._rx
        runner.wait_for(lambda: len(rx) >= size, self._timeout)

    def write(self, data: bytes | bytearray | memoryview | WireBytes) -> int:
        """Queue ``data`` on the bus (a WireBytes may carry characters with bad parity; a
        GappedWire's pause is scheduled on the bus, exact to bus time, also while a
        real-time runner drives it)."""
        bus = self._need_open()
        wire = data if isinstance(data, WireBytes) else WireBytes(bytes(to_bytes(data)))

        def send() -> None:
            if isinstance(wire, GappedWire):
                first, rest = wire.parts
                end = bus.master.transmit(first)
                bus.master.transmit(rest, at=end + wire.pause)
            else:
                bus.master.transmit(wire)

        self._in_sim(send)
        return len(wire)

    def write_wire(self, wire: WireBytes) -> int:
        """Send ``wire`` with its faults: ``bad_parity`` characters go out with odd parity, a
        GappedWire pauses where it says."""
        return self.write(wire)

    def flush(self) -> None:
        """Wait until the last queued stop bit has left."""
        bus = self._need_open()
        end = bus.master.busy_until
        runner = bus.sim.runner
        if runner is not None:
            runner.wait_until(end)
        elif end > bus.sim.now():
            bus.sim.run_until(end)

    def reset_input_buffer(self) -> None:
        bus = self._need_open()
        with bus.sim.lock:
            self._clear_rx()

    def reset_output_buffer(self) -> None:
        bus = self._need_open()
        self._in_sim(bus.master.cancel_output)

    # --- lines ----------------------------------------------------------------------------

    def _update_break_state(self) -> None:
        """A break holds the bus voltage at space (every slave hears it)."""
        if self.bus is None:
            return
        bus = self.bus
        self._in_sim(lambda: bus.master_break(bool(self._break_state)))

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        self._need_open()
        return True

    @property
    def dsr(self) -> bool:
        self._need_open()
        return True

    @property
    def ri(self) -> bool:
        self._need_open()
        return False

    @property
    def cd(self) -> bool:
        self._need_open()
        return True

    # --- helpers --------------------------------------------------------------------------

    def _need_open(self) -> SimBus:
        if not self.is_open or self.bus is None:
            raise PortNotOpenError()
        return self.bus

    def _in_sim(self, fn: Any) -> None:
        assert self.bus is not None
        self.bus.in_sim(fn)


Serial = SimSerial

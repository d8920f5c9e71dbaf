"""A BusPort over any pyserial port: 8E1, parity errors visible, times from the rig's clock.

docs/mbus-facts.md "Character and physical layer": Linux drops characters with parity errors unless the
tty has ``INPCK|PARMRK`` (pyserial clears both, and ``ISTRIP``, every time it reconfigures
the port). On a POSIX tty this port sets them on the file descriptor itself, keeps them set
across pyserial's reconfigurations, and decodes the marks: ``FF 00 b`` is a character ``b``
received with a parity (or framing: the kernel marks both alike) error, ``FF FF`` is a real
``FF``. The simulated bus's ``mbussim://`` port reports errors the same way.

Reads take one character at a time with ``timeout = deadline - clock.now()`` and stamp it
with the clock. On a real UART that is when the character reached Python: one that waited in
the driver (e.g. while :meth:`SerialBusPort.write` drained the master's frame) is stamped
late, since a tty keeps no receive times. A port that knows them (``mbussim://``: its
``last_read_age()``) gets them back-dated to their stop-bit sample on the wire.

Characters with deliberately wrong parity (``WireBytes.bad_parity``) go out through the
port's ``write_wire`` when it has one (the simulated bus), else by draining, switching the
UART to odd parity for those characters, draining again and switching back. A gap inside a
frame (``protocol.frame_faults.GappedWire``) goes through ``write_wire`` too (the simulated
bus schedules the pause exactly, in bus time); on a UART the first part is drained, the
clock waits until the pause has passed since its last stop bit, and the rest follows.

A pseudo-terminal carries no parity bit (docs/mbus-facts.md "Pseudo-terminals ignore baud and
parity"), so one is opened 8N1: asking a pty for PARENB makes Linux refuse the settings
(EINVAL) once nothing else changes, as after libmbus's tools or pyMeterBus have used it. The
state another program left a tty in does not matter otherwise: pyserial sets every flag it
needs. A path that is no terminal (a regular file, a directory, /dev/null) is named as what
it is, with what to give instead; whatever the tty refuses is one HardwareError line.

Master echo (``echo=True``: a level converter that returns the master's own transmission to
its receiver): :meth:`SerialBusPort.write` reads the echo back and drops it. An echo that
differs from what was sent means another sender was on the bus at the same time, or a broken
converter: ``write`` raises :class:`~protocol.errors.EchoMismatchError` (a CollisionError)
carrying what was sent, what came back and the end time. No echo at all raises HardwareError
(the converter does not echo: set ``echo = false``).
"""

from __future__ import annotations

import errno
import os
import select
import stat
import threading
from collections.abc import Callable
from typing import Any

import serial

from hardware.clock import Clock
from protocol.chars import RxChar, WireBytes, as_wire
from protocol.errors import ConfigError, EchoMismatchError, HardwareError
from protocol.frame_faults import GappedWire
from protocol.timing import char_time, check_baud, frame_time

try:
    import termios
except ImportError:  # not POSIX: no tty flags to set
    termios = None  # type: ignore[assignment]

MARK = 0xFF
PTY_SLAVE_MAJORS = range(136, 144)
"""Linux's UNIX98 pseudo-terminal slaves (/dev/pts/N): device major numbers 136-143."""
NETWORK_SCHEMES = ("socket://", "rfc2217://")
NETWORK_READ_LATENCY = 0.2
"""Seconds a network port may hold characters back (docs/mbus-facts.md "Timing": masters
must tolerate gaps): TCP's Nagle algorithm meeting a delayed ACK stalls the rest of an
answer 40-200 ms after its first byte, and gateways pack characters on timeouts of their
own. A frame that arrived whole at the gateway is then still one frame."""
PORT_HINT = ("give a serial device (/dev/ttyUSB0, /dev/ttyAMA0), a pseudo-terminal (mbus-rig "
             "virtual-meter prints one) or a pyserial URL (socket://HOST:PORT)")


class ParmrkDecoder:
    """Turns a PARMRK byte stream into (value, flagged) characters; keeps state across reads."""

    def __init__(self) -> None:
        self._state = 0  # 0: normal, 1: after FF, 2: after FF 00

    @property
    def pending(self) -> bool:
        """A mark sequence is half read."""
        return self._state != 0

    def reset(self) -> None:
        self._state = 0

    def feed(self, byte: int) -> list[tuple[int, bool]]:
        if self._state == 0:
            if byte == MARK:
                self._state = 1
                return []
            return [(byte, False)]
        if self._state == 1:
            if byte == MARK:
                self._state = 0
                return [(MARK, False)]
            if byte == 0:
                self._state = 2
                return []
            # Not a valid mark (cannot happen with PARMRK): keep both bytes as they came.
            self._state = 0
            return [(MARK, False), *self.feed(byte)]
        self._state = 0
        return [(byte, True)]


def _port_name(port: Any) -> str:
    return str(getattr(port, "port", None) or getattr(port, "name", None) or port)


#: What pyserial and the tty layer raise (termios.error is no OSError).
PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, ValueError) + (
    (termios.error,) if termios is not None else ())


def _errno_of(exc: BaseException) -> int | None:
    """The OS error number behind pyserial's, termios's or the OS's exception, if any:
    pyserial wraps termios errors in its text ("Could not configure port: (25, '...')")."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    if code is None:
        text = str(exc)
        for number in (errno.ENOTTY, errno.EINVAL, errno.EIO):
            if f"({number}, " in text or f"[Errno {number}]" in text:
                return number
    return code if isinstance(code, int) else None


def _hardware_error(path: str, exc: BaseException) -> HardwareError:
    """A HardwareError a user understands, from pyserial's, termios's or the OS's exception."""
    code = _errno_of(exc)
    if code == errno.ENOENT or code == errno.ENODEV or code == errno.ENXIO:
        why = "no such port"
    elif code in (errno.EACCES, errno.EPERM):
        why = "permission denied (add the user to the 'dialout' group)"
    elif code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        why = "port busy (another program has it open)"
    elif code == errno.ENOTTY:
        why = f"not a terminal, so not a serial port; {PORT_HINT}"
    elif code == errno.EISDIR:
        why = f"a directory, not a serial port; {PORT_HINT}"
    elif code == errno.EINVAL:
        why = ("the terminal refused the settings (8 data bits, parity, baud rate): a UART "
               "without parity (a Raspberry Pi's mini UART), or an adapter that cannot do this "
               "rate")
    elif code == errno.EIO:
        why = "input/output error (the device went away, or its other side was closed)"
    elif isinstance(exc, ValueError) and "protocol" in str(exc):
        why = f"unknown port URL scheme ({exc})"
    else:
        why = str(exc)
    return HardwareError(f"serial port {path}: {why}")


def _not_a_port(path: str) -> HardwareError | None:
    """What ``path`` is when it is a file system entry but no terminal device, else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # pyserial says why (no such port, permission denied)
    what = ("a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a block device" if stat.S_ISBLK(mode) else None)
    if what is None:
        return None
    return HardwareError(f"serial port {path}: {what}, not a serial port; {PORT_HINT}")


def default_read_latency(port: str) -> float:
    """The master read latency a port gets unless it is set: :data:`NETWORK_READ_LATENCY`
    for ``socket://`` and ``rfc2217://`` (TCP), 0 for a UART, a pty and the simulated bus."""
    return NETWORK_READ_LATENCY if port.lower().startswith(NETWORK_SCHEMES) else 0.0


def is_pty(path: str) -> bool:
    """``path`` (or what it links to) is a pseudo-terminal's slave side."""
    try:
        rdev = os.stat(path).st_rdev
    except OSError:
        return False
    return os.major(rdev) in PTY_SLAVE_MAJORS or os.path.realpath(path).startswith("/dev/pts/")


class SerialBusPort:
    """The rig's bus port (``hardware.port.BusPort``) over a pyserial port or URL.

    ``serial_obj_or_url``: an open or unopened ``serial.Serial``-like object, or a device
    path / pyserial URL (``/dev/ttyAMA0``, ``loop://``, ``socket://host:port``,
    ``mbussim://NAME``). ``exclusive`` locks a device (pyserial's flock) so a second program
    cannot share the bus. ``parmrk`` overrides whether the byte stream carries PARMRK marks
    (default: yes on a POSIX tty and on ``mbussim://``; the port object may also say so with a
    ``parmrk`` attribute).
    """

    def __init__(
        self,
        serial_obj_or_url: Any,
        clock: Clock,
        *,
        baud: int,
        echo: bool = False,
        exclusive: bool = True,
        parmrk: bool | None = None,
        echo_margin: float = 0.2,
    ) -> None:
        check_baud_or_error(baud)
        self._clock = clock
        self._baud = baud
        self.echo = echo
        self.echo_margin = echo_margin
        self._lock = threading.RLock()
        self._decoder = ParmrkDecoder()
        self._ready: list[RxChar] = []
        self.pty = isinstance(serial_obj_or_url, str) and is_pty(serial_obj_or_url)
        """A pseudo-terminal: opened 8N1 (it carries no parity bit)."""
        if isinstance(serial_obj_or_url, str):
            self.path = serial_obj_or_url
            self._ser = self._open_url(serial_obj_or_url, baud, exclusive)
        else:
            self._ser = serial_obj_or_url
            self.path = _port_name(serial_obj_or_url)
            self._configure_object(baud)
        age = getattr(self._ser, "last_read_age", None)
        self._read_age: Callable[[], float] | None = age if callable(age) else None
        """How long ago the byte just read arrived, from a port that knows (``mbussim://``)."""
        self._fd = self._tty_fd()
        if self._fd is not None:
            self._keep_parmrk_across_reconfigure()
            self._set_parmrk_flags()
        if parmrk is None:
            # a tty gets PARMRK set on it; a port object that marks errors itself says so
            # (the simulated bus's mbussim:// port has ``parmrk = True``)
            parmrk = bool(getattr(self._ser, "parmrk", False)) or self._fd is not None
        self.parmrk = parmrk

    # --- opening ---------------------------------------------------------------------------

    def _open_url(self, url: str, baud: int, exclusive: bool) -> Any:
        if "://" not in url:
            problem = _not_a_port(url)
            if problem is not None:
                raise problem
        try:
            return serial.serial_for_url(
                url, baudrate=baud, bytesize=serial.EIGHTBITS, parity=self._parity,
                stopbits=serial.STOPBITS_ONE, timeout=0, write_timeout=None,
                xonxoff=False, rtscts=False, dsrdtr=False, exclusive=exclusive)
        except PORT_ERRORS as exc:
            raise _hardware_error(url, exc) from exc

    @property
    def _parity(self) -> str:
        return str(serial.PARITY_NONE if self.pty else serial.PARITY_EVEN)

    def _configure_object(self, baud: int) -> None:
        ser = self._ser
        try:
            ser.baudrate = baud
            ser.bytesize = serial.EIGHTBITS
            ser.parity = serial.PARITY_EVEN
            ser.stopbits = serial.STOPBITS_ONE
            ser.timeout = 0
            if not ser.is_open:
                ser.open()
        except PORT_ERRORS as exc:
            raise _hardware_error(self.path, exc) from exc

    def _tty_fd(self) -> int | None:
        if termios is None:
            return None
        fd = getattr(self._ser, "fd", None)
        if not isinstance(fd, int):
            return None
        try:
            return fd if os.isatty(fd) else None
        except OSError:
            return None

    def _set_parmrk_flags(self) -> None:
        """INPCK|PARMRK on, IGNPAR|ISTRIP off: bad characters arrive marked, not dropped."""
        assert self._fd is not None
        try:
            attrs = termios.tcgetattr(self._fd)
            attrs[0] |= termios.INPCK | termios.PARMRK
            attrs[0] &= ~(termios.IGNPAR | termios.ISTRIP)
            termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        except termios.error as exc:
            raise HardwareError(f"serial port {self.path}: cannot set INPCK|PARMRK: {exc}") from exc

    def _keep_parmrk_across_reconfigure(self) -> None:
        """pyserial clears PARMRK/INPCK whenever it reconfigures (baud, parity): put them back."""
        original = getattr(self._ser, "_reconfigure_port", None)
        if original is None:
            return

        def reconfigure(*args: Any, **kwargs: Any) -> None:
            original(*args, **kwargs)
            self._set_parmrk_flags()

        self._ser._reconfigure_port = reconfigure

    # --- BusPort ---------------------------------------------------------------------------

    @property
    def baud(self) -> int:
        return self._baud

    @property
    def serial(self) -> Any:
        """The underlying pyserial object (for diagnostics)."""
        return self._ser

    def set_baud(self, baud: int) -> None:
        """Drain what is being sent, then change the rate."""
        check_baud_or_error(baud)
        with self._lock:
            self._io("drain", self._ser.flush)
            self._io("set baud", setattr, self._ser, "baudrate", baud)
            self._baud = baud

    def write(self, data: bytes | WireBytes) -> float:
        """Send ``data``, wait until it has left; return the end time of its last stop bit.

        The end time is when the write started plus the frame's duration at this baud: the
        port is always drained, so the UART starts sending at once. The clock after draining
        is not used: it adds the scheduler's delay (and a USB adapter's drain returns before
        the bytes are on the wire), which would make the slave's answer look early.
        """
        wire = as_wire(data)
        if not wire.data:
            return self._clock.now()
        with self._lock:
            if isinstance(wire, GappedWire) and not hasattr(self._ser, "write_wire"):
                end = self._write_gapped(wire)
            else:
                end = self._write_faults(wire)
            if self.echo:
                self._drop_echo(wire, end)
            return end

    def _write_faults(self, wire: WireBytes) -> float:
        """Plain bytes as they are; bad parity (and gaps) through the port's ``write_wire``
        when it has one, else bad parity by switching the UART."""
        if not wire.bad_parity and not isinstance(wire, GappedWire):
            return self._send(wire_time(wire, self._baud), lambda: self._ser.write(wire.data))
        if hasattr(self._ser, "write_wire"):
            return self._send(wire_time(wire, self._baud), lambda: self._ser.write_wire(wire))
        return self._write_with_odd_parity(wire)

    def _write_gapped(self, wire: GappedWire) -> float:
        """The first part drained, a wait on the clock until ``pause`` after its last stop
        bit (not after the drain returned, which comes late by the scheduler's delay), then
        the rest."""
        first, rest = wire.parts
        end = self._write_faults(first)
        wait = end + wire.pause - self._clock.now()
        if wait > 0:
            self._clock.sleep(wait)
        return self._write_faults(rest)

    def _send(self, duration: float, write: Any) -> float:
        """Write, drain; the end of the last stop bit (``duration`` after the start)."""
        start = self._clock.now()
        self._io("write", write)
        self._io("drain", self._ser.flush)
        return start + duration

    def _write_with_odd_parity(self, wire: WireBytes) -> float:
        """Runs of characters alternate between even and (for bad ones) odd parity."""
        if self.pty:
            raise HardwareError(f"serial port {self.path}: a pseudo-terminal carries no parity "
                                "bit, so characters with wrong parity cannot be sent (parity "
                                "faults belong to the simulated bus, mbussim://)")
        run_start = 0
        data = wire.data
        end = self._clock.now()
        while run_start < len(data):
            bad = run_start in wire.bad_parity
            run_end = run_start
            while run_end < len(data) and (run_end in wire.bad_parity) == bad:
                run_end += 1
            run = data[run_start:run_end]
            if bad:
                self._io("set odd parity", setattr, self._ser, "parity", serial.PARITY_ODD)
            try:
                end = self._send(frame_time(len(run), self._baud),
                                 lambda run=run: self._ser.write(run))
            finally:
                if bad:
                    self._io("set even parity", setattr, self._ser, "parity", serial.PARITY_EVEN)
            run_start = run_end
        return end

    def _drop_echo(self, wire: WireBytes, end: float) -> None:
        deadline = end + max(self.echo_margin, 4 * char_time(self._baud))
        echoed: list[RxChar] = []
        while len(echoed) < len(wire.data):
            ch = self.read_char(deadline)
            if ch is None:
                break
            echoed.append(ch)
        if not echoed:
            raise HardwareError(
                f"serial port {self.path}: no echo of the {len(wire.data)} byte(s) sent "
                "(the level converter does not echo: set echo = false)")
        for index, ch in enumerate(echoed):
            # A character sent with odd parity may come back flagged or not (the receiver
            # checked it with whatever parity was set when it arrived): compare values only.
            good = ch.value == wire.data[index] and (ch.ok or index in wire.bad_parity)
            if not good:
                break
        else:
            if len(echoed) == len(wire.data):
                return
        raise EchoMismatchError(
            f"serial port {self.path}: echo differs from what was sent "
            f"(sent {wire.data.hex(' ')}, echoed {_chars_hex(echoed)}): another sender "
            "on the bus, or a broken level converter",
            sent=wire.data, echoed=tuple(echoed), end=end)

    def read_char(self, deadline: float) -> RxChar | None:
        """The next received character, or None once the clock reaches ``deadline``; a
        character that has already arrived is returned even when the deadline has passed."""
        while not self._ready:
            remaining = max(0.0, deadline - self._clock.now())
            raw = self._read_byte(remaining)
            if not raw:
                if remaining <= 0:
                    return None
                continue
            now = self._received_time()
            if not self.parmrk:
                self._ready.append(RxChar(raw[0], now))
                continue
            for value, flagged in self._decoder.feed(raw[0]):
                self._ready.append(RxChar(value, now, parity_error=flagged))
        return self._ready.pop(0)

    def _received_time(self) -> float:
        """When the byte just read was received: now, less its age if the port knows it."""
        now = self._clock.now()
        if self._read_age is not None:
            seconds = self._read_age()
            if isinstance(seconds, (int, float)) and seconds > 0:
                now -= seconds
        return now

    def _read_byte(self, timeout: float) -> bytes:
        if self._fd is not None:
            # Our own select: setting pyserial's timeout would reconfigure the tty each time.
            try:
                ready, _, _ = select.select([self._fd], [], [], timeout)
                return os.read(self._fd, 1) if ready else b""
            except InterruptedError:
                return b""
            except BlockingIOError:
                return b""
            except OSError as exc:
                raise _hardware_error(self.path, exc) from exc
        self._io("set timeout", setattr, self._ser, "timeout", timeout)
        return bytes(self._io("read", self._ser.read, 1))

    def reset_input(self) -> None:
        """Drop everything received and not read yet (a half-read mark too)."""
        self._io("reset input", self._ser.reset_input_buffer)
        self._ready.clear()
        self._decoder.reset()

    def close(self) -> None:
        try:
            self._ser.close()
        except PORT_ERRORS as exc:
            raise _hardware_error(self.path, exc) from exc

    def __enter__(self) -> SerialBusPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _io(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except PORT_ERRORS as exc:
            error = _hardware_error(self.path, exc)
            raise HardwareError(f"{error} ({what})") from exc


def wire_time(wire: WireBytes, baud: int) -> float:
    """How long ``wire`` takes on the line at ``baud``: its characters back to back, plus a
    GappedWire's pause."""
    pause = wire.pause if isinstance(wire, GappedWire) else 0.0
    return frame_time(len(wire.data), baud) + pause


def check_baud_or_error(baud: int) -> int:
    try:
        return check_baud(baud)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _chars_hex(chars: list[RxChar]) -> str:
    return " ".join(f"{ch.value:02x}" + ("!" if not ch.ok else "") for ch in chars) or "nothing"

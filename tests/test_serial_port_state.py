"""Ports as other programs leave them, and paths that are no port (issue 10).

Whatever termios state another program (libmbus's tools, pyMeterBus, a terminal program)
left a pseudo-terminal in, SerialBusPort opens it and works; a regular file, a directory or
/dev/null given as the port is named as what it is, with what to give instead. The states
are set on a pty here, as those programs leave them.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import termios
from collections.abc import Callable, Iterator

import pytest
import serial

from hardware.clock import WallClock
from hardware.serial_port import SerialBusPort
from protocol.errors import HardwareError

CLOCK = WallClock()
CMSPAR = 0o10000000000
"""Linux's 'stick' parity flag (not in Python's termios module)."""
TCGETS2, TCSETS2, BOTHER = 0x802C542A, 0x402C542B, 0o010000
"""Linux's termios2 ioctls and the 'other baud rate' speed code (x86 and ARM)."""


def libmbus_state(fd: int) -> None:
    """What libmbus's mbus_serial_connect leaves: a zeroed termios with CS8, CREAD, CLOCAL,
    PARENB, VTIME 3 at 2400 Bd. A pty drops PARENB, so afterwards pyserial's 8E1 differs from
    the pty's state in PARENB alone, and Linux refuses that one change with EINVAL."""
    cc: list[bytes | int] = [b"\0"] * len(termios.tcgetattr(fd)[6])
    cc[termios.VMIN], cc[termios.VTIME] = 0, 3
    termios.tcsetattr(fd, termios.TCSANOW, [
        0, 0, termios.CS8 | termios.CREAD | termios.CLOCAL | termios.PARENB, 0,
        termios.B2400, termios.B2400, cc])


def pyserial_8n1_state(fd: int) -> None:
    """What pyMeterBus (pyserial with its default 8N1) leaves."""
    serial.Serial(os.ttyname(fd), 2400).close()


def stick_parity_state(fd: int) -> None:
    attrs = termios.tcgetattr(fd)
    attrs[2] |= CMSPAR | termios.PARENB | termios.PARODD
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def custom_baud_state(fd: int) -> None:
    """A rate no Bnnn constant names (termios2 BOTHER, 1234 Bd): pyserial cannot map it."""
    buf = array.array("i", [0] * 64)
    fcntl.ioctl(fd, TCGETS2, buf)
    buf[2] = (buf[2] & ~termios.CBAUD) | BOTHER
    buf[9] = buf[10] = 1234  # c_ispeed, c_ospeed
    fcntl.ioctl(fd, TCSETS2, buf)


def cooked_state(fd: int) -> None:
    """A terminal program's: canonical input, echo, signals, CR/NL mapping, XON/XOFF, 7E2."""
    attrs = termios.tcgetattr(fd)
    attrs[0] |= termios.ICRNL | termios.IXON | termios.ISTRIP | termios.IGNPAR
    attrs[1] |= termios.OPOST | termios.ONLCR
    attrs[2] = (attrs[2] & ~termios.CSIZE) | termios.CS7 | termios.CSTOPB | termios.CRTSCTS
    attrs[3] |= termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN
    attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 255, 255
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


STATES: dict[str, Callable[[int], None]] = {
    "libmbus": libmbus_state, "pyserial-8n1": pyserial_8n1_state,
    "stick-parity": stick_parity_state, "custom-baud": custom_baud_state,
    "cooked": cooked_state,
}


@pytest.fixture
def pty() -> Iterator[tuple[int, int, str]]:
    master, slave = os.openpty()
    yield master, slave, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_8e1_on_a_pty_after_libmbus_is_refused_by_linux(pty: tuple[int, int, str]) -> None:
    """The cause of the traceback in issue 10, shown with pyserial alone: 8E1 on a pty that
    libmbus used fails in pyserial's tcsetattr (termios.error is no OSError)."""
    _master, slave, path = pty
    libmbus_state(slave)
    with pytest.raises(termios.error):
        serial.Serial(path, 2400, parity=serial.PARITY_EVEN)


@pytest.mark.parametrize("state", sorted(STATES))
def test_a_pty_in_any_state_opens_and_carries_bytes(pty: tuple[int, int, str],
                                                    state: str) -> None:
    master, slave, path = pty
    STATES[state](slave)
    with SerialBusPort(path, CLOCK, baud=2400) as port:
        port.set_baud(9600)
        port.set_baud(2400)
        port.write(bytes.fromhex("10 40 01 41 16"))
        got = b""
        while len(got) < 5 and select.select([master], [], [], 2.0)[0]:
            got += os.read(master, 5 - len(got))
        assert got == bytes.fromhex("10 40 01 41 16")  # no CR/NL mapping, all 8 bits
        os.write(master, bytes.fromhex("e5 ff 0d 0a 13"))
        chars = [port.read_char(CLOCK.now() + 2.0) for _ in range(5)]
        assert [(c.value, c.ok) for c in chars if c is not None] == [
            (0xE5, True), (0xFF, True), (0x0D, True), (0x0A, True), (0x13, True)]


def test_scan_on_a_virtual_meter_pty_that_libmbus_used(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """Issue 10: `mbus-rig scan --secondary --device PTY` after libmbus's
    mbus-serial-scan-secondary had used the virtual meter's pty died with a traceback."""
    from test_tools_options import run_cli

    from hardware.sim.bridges import VirtualBusServer
    from rig.tools.bus import sim_population

    with VirtualBusServer(sim_population(1, seed=3, baud=2400), baud=2400) as server:
        path = server.open_master_pty()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            libmbus_state(fd)
        finally:
            os.close(fd)
        code, out, err = run_cli(capsys, "scan", "--secondary", "--device", path,
                                 "--timeout", "0.5", "--json")
    assert code == 0, err
    assert str(server.meters[0].core.identity) in out


@pytest.mark.parametrize("make, what", [
    (lambda tmp: tmp / "regular-file", "a regular file"),
    (lambda tmp: tmp, "a directory"),
], ids=["regular-file", "directory"])
def test_a_file_or_directory_as_the_port_is_named(tmp_path, make, what) -> None:
    path = make(tmp_path)
    if path != tmp_path:
        path.write_text("not a port\n")
    with pytest.raises(HardwareError) as info:
        SerialBusPort(str(path), CLOCK, baud=2400)
    assert str(info.value) == (
        f"serial port {path}: {what}, not a serial port; give a serial device (/dev/ttyUSB0, "
        "/dev/ttyAMA0), a pseudo-terminal (mbus-rig virtual-meter prints one) or a pyserial "
        "URL (socket://HOST:PORT)")


def test_a_device_that_is_no_terminal_is_named() -> None:
    with pytest.raises(HardwareError, match=r"^serial port /dev/null: not a terminal, so not a "
                                            r"serial port; give a serial device"):
        SerialBusPort("/dev/null", CLOCK, baud=2400)


@pytest.mark.parametrize("device", ["REGULAR", "DIRECTORY", "/dev/null"])
def test_the_tools_say_it_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path,
                                      device: str) -> None:
    from test_tools_options import run_cli

    if device == "REGULAR":
        device = str(tmp_path / "port.txt")
        (tmp_path / "port.txt").write_text("")
    elif device == "DIRECTORY":
        device = str(tmp_path)
    code, out, err = run_cli(capsys, "ping", "-d", device, "-a", "1")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"mbus-rig ping: serial port {device}: ")
    assert "Inappropriate ioctl" not in err and "Errno" not in err and "give a serial" in err

"""``mbus-rig virtual-meter``: argument errors (exit 2, one line) and a real run served over
a pty symlink and TCP, stopped by SIGTERM. Waits are bounded by deadlines on the clock."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hardware.clock import WallClock
from protocol.app.telegram import decode_telegram
from protocol.fields import Function, c_field
from protocol.frames import LongFrame, ShortFrame, decode, encode, frame_length
from rig.cli import main

STARTUP_S = 20.0
STOP_S = 10.0


@pytest.mark.parametrize(("argv", "message"), [
    (["--baud", "4800"], "--baud 4800: not a rate of profile heat-meter (allowed: 300, 2400, 9600)"),
    (["--baud", "2401"], "--baud 2401: not an M-Bus baud rate (allowed: 300, 600,"),
    (["--slaves", "0"], "--slaves 0: out of range (allowed: 1-250)"),
    (["--address", "251"], "--address 251: not a primary address (allowed: 0-250)"),
    (["--address", "249", "--slaves", "3"], "end at 251"),
    (["--tcp", "localhost"], "give HOST:PORT"),
    (["--tcp", ":70000"], "port 70000 is out of range (allowed: 0-65535)"),
    (["--profile", "no-such-profile"],
     "--profile no-such-profile: no such file, nor a shipped profile (shipped: heat-meter"),
])
def test_bad_arguments_exit_2_with_one_line(argv: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["virtual-meter", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mbus-rig virtual-meter: ")
    assert message in err


def test_bad_profile_file_names_file_and_field(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "meter.toml"
    bad.write_text('id = 1\nmanufacturer = "ABC"\nbauds = [2400, 1234]\n'
                   '[[pages]]\nmanufacturer_data = "00"\n')
    assert main(["virtual-meter", "--profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: bauds[1]: 1234 is not an M-Bus baud rate" in err


def test_link_onto_a_regular_file_is_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("keep me")
    assert main(["virtual-meter", "--link", str(target)]) == 2
    assert "exists and is not a symlink" in capsys.readouterr().err
    assert target.read_text() == "keep me"


class Served:
    """A running ``mbus-rig virtual-meter`` and the lines it printed before serving."""

    def __init__(self, argv: list[str]) -> None:
        self.clock = WallClock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rig", "virtual-meter", *argv], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self.lines: list[str] = []
        self._read_until("serving")

    def _read_until(self, marker: str) -> None:
        """Read stdout (unbuffered, by the fd) until a line starts with ``marker``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        deadline = self.clock.now() + STARTUP_S
        pending = b""
        while self.clock.now() < deadline:
            if not selector.select(timeout=max(0.0, deadline - self.clock.now())):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            pending += chunk
            *done, pending = pending.split(b"\n")
            self.lines += [line.decode() for line in done]
            if any(line.startswith(marker) for line in self.lines):
                return
        raise AssertionError(f"not serving within {STARTUP_S} s: {self.lines}, "
                             f"rc={self.proc.poll()}")

    def line(self, prefix: str) -> str:
        return next(line for line in self.lines if line.startswith(prefix))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=STOP_S)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(["--slaves", "2", "--address", "7", "--link", str(tmp_path / "mbus"),
                     "--tcp", "127.0.0.1:0"])
    try:
        yield server
    finally:
        server.stop()


def read_answer(port: serial.SerialBase) -> bytes:
    """One frame, read by its length; bounded by the port's timeout."""
    data = port.read(1)
    assert data, "no answer"
    if data == b"\xe5":
        return data
    data += port.read(3)
    total = frame_length(data[0], data[1] if len(data) > 1 else None)
    assert total is not None
    data += port.read(total - len(data))
    return data


def ask(port: serial.SerialBase, address: int) -> LongFrame:
    port.write(encode(ShortFrame(c_field(Function.REQ_UD2, fcb=True), address)))
    frame = decode(read_answer(port))
    assert isinstance(frame, LongFrame)
    return frame


def test_serves_meters_over_the_pty_link_and_tcp(served: Served, tmp_path: Path) -> None:
    assert served.lines[0].startswith("virtual bus: 2 x heat-meter at 2400 Bd")
    assert "address   7  secondary 1234567843040104" in served.lines[1]
    assert "address   8  secondary 1234567943040104" in served.lines[2]
    link = tmp_path / "mbus"
    assert link.is_symlink() and served.line("master pty:").split()[2] == os.readlink(link)
    with serial.Serial(str(link), 2400, timeout=2.0) as pty:
        header = decode_telegram(ask(pty, 8)).header
        assert header is not None and header.id == 12345679
    port = int(served.line("tcp:").split()[1].rsplit(":", 1)[1])
    with serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=2.0) as tcp:
        assert ask(tcp, 7).a == 7
    assert served.stop() == 0
    assert not link.exists() and not link.is_symlink()

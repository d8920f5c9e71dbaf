"""Bridges of the virtual bus: an outside slave on a pty answers an outside master on
another pty; the outside slave's baud comes from its pty's termios; teardown is clean.
Reads are bounded by port timeouts; nothing sleeps."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import serial

from hardware.sim.bridges import VirtualBusServer, pty_baud
from protocol.fields import Function
from protocol.frames import ShortFrame, encode
from protocol.meter import heat_meter_profile


@pytest.fixture
def server() -> Iterator[VirtualBusServer]:
    with VirtualBusServer([heat_meter_profile()], baud=2400) as srv:
        yield srv


def outside_slave(path: str, baud: int, answer: bytes, got: list[bytes],
                  ready: threading.Event) -> threading.Thread:
    """A program on the slave pty: waits for one SND_NKE to address 9, answers ``answer``."""
    wanted = encode(ShortFrame(Function.SND_NKE, 9))

    def run() -> None:
        with serial.Serial(path, baud, timeout=3.0) as port:
            ready.set()
            data = port.read(len(wanted))
            got.append(data)
            if data == wanted:
                port.write(answer)
                port.flush()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_outside_slave_answers_an_outside_master(server: VirtualBusServer) -> None:
    slave_path = server.open_slave_pty()
    master_path = server.open_master_pty()
    got: list[bytes] = []
    ready = threading.Event()
    thread = outside_slave(slave_path, 2400, b"\xe5", got, ready)
    assert ready.wait(5.0)
    with serial.Serial(master_path, 2400, timeout=3.0) as master:
        # the slave pty is set to 2400 by pyserial; give the bridge a request to carry
        master.write(encode(ShortFrame(Function.SND_NKE, 9)))
        assert master.read(1) == b"\xe5"
    thread.join(5.0)
    assert got == [encode(ShortFrame(Function.SND_NKE, 9))]


def test_outside_slave_baud_is_read_from_its_pty(server: VirtualBusServer) -> None:
    slave_path = server.open_slave_pty()
    bridge = server.bridges[-1]
    with serial.Serial(slave_path, 9600, timeout=0.5) as port:
        assert pty_baud(port.fileno()) == 9600
        follow = bridge.follow_baud
        assert follow() == 9600
        assert bridge.endpoint.baud == 9600
        port.baudrate = 300
        assert follow() == 300


def test_master_pty_link_is_removed_on_close(tmp_path: os.PathLike[str]) -> None:
    link = os.path.join(tmp_path, "mbus")
    with VirtualBusServer([heat_meter_profile()]) as srv:
        path = srv.open_master_pty(link=link)
        assert os.readlink(link) == path
    assert not os.path.lexists(link)


def test_tcp_gateway_serves_clients_one_after_another(server: VirtualBusServer) -> None:
    host, port = server.open_tcp("127.0.0.1", 0)
    for _ in range(2):
        with serial.serial_for_url(f"socket://{host}:{port}", timeout=3.0) as tcp:
            tcp.write(encode(ShortFrame(Function.SND_NKE, 1)))
            assert tcp.read(1) == b"\xe5"


def test_outside_slave_acknowledges_a_baud_switch_at_the_old_rate(server: VirtualBusServer) -> None:
    """A slave acknowledges a baud switch at the old rate and switches right after; a pty
    drains at once, so the program has set the new rate before the bridge reads its E5. The
    E5 must still go out at the old rate (EN 13757-2), and the slave be heard at the new one.
    (The bridge used to apply the new rate first: the master got a garbled FF.)"""
    slave_path = server.open_slave_pty()
    master_path = server.open_master_pty()
    switch = bytes.fromhex("68 03 03 68 53 09 BD 19 16")  # SND_UD CI BD (9600 Bd) to 9
    ready = threading.Event()
    got: list[bytes] = []

    def slave() -> None:
        with serial.Serial(slave_path, 2400, timeout=3.0) as port:
            ready.set()
            got.append(port.read(len(switch)))
            port.write(b"\xe5")
            port.flush()
            port.baudrate = 9600  # at once, as firmware does after tcdrain on a real UART
            got.append(port.read(5))
            port.write(b"\xe5")
            port.flush()

    thread = threading.Thread(target=slave, daemon=True)
    thread.start()
    assert ready.wait(5.0)
    with serial.Serial(master_path, 2400, timeout=3.0) as master:
        master.write(switch)
        assert master.read(1) == b"\xe5"
        master.baudrate = 9600
        master.write(encode(ShortFrame(Function.SND_NKE, 9)))
        assert master.read(1) == b"\xe5"
    thread.join(5.0)
    assert got == [switch, encode(ShortFrame(Function.SND_NKE, 9))]

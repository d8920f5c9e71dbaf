"""The master tools against the outside world: an outside master (pyMeterBus) sees the same
population as our scans, over TCP on 127.0.0.1 (the virtual bus's raw M-Bus gateway, in real
time); and the port errors a user meets (no such port, permission denied, busy, refused)
come out as one line.

pyMeterBus 0.8.5's console tools (``meterbus.tools``) are missing from its wheel, so its
scan is driven with the library functions those tools use (``send_ping_frame``,
``send_select_frame``, ``send_request_frame``, ``recv_frame``).
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import serial
from test_tools_options import run_cli as run

from hardware.clock import WallClock
from hardware.serial_port import SerialBusPort
from hardware.sim.bridges import VirtualBusServer
from protocol.identity import SecondaryAddress
from rig.tools.bus import sim_population

meterbus = pytest.importorskip("meterbus", reason="pyMeterBus is a dev dependency")

READ_TIMEOUT_S = 0.5
ADDRESSES = range(0, 5)
REAL_TIME = ("--timeout", "0.5", "--retries", "1")
"""The virtual bus runs in real time in a thread: on a loaded machine answers can come later
than the standard's window, so the tools wait longer here."""



@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[str, VirtualBusServer]]:
    profiles = sim_population(3, seed=7, baud=2400)
    with VirtualBusServer(profiles, baud=2400) as server:
        host, port = server.open_tcp("127.0.0.1", 0)
        yield f"socket://{host}:{port}", server


def libmbus_form(secondary: SecondaryAddress) -> str:
    """pyMeterBus (like libmbus) writes the manufacturer bytes in wire order."""
    return (f"{secondary.id:08d}{secondary.manufacturer.to_bytes(2, 'little').hex().upper()}"
            f"{secondary.version:02X}{secondary.medium:02X}")


def pymeterbus_id(text: str) -> str:
    """pyMeterBus shows the ID as its BCD bytes, MSB first: '0x12, 0x34, 0x56, 0x78'."""
    return "".join(part.strip()[2:] for part in text.split(","))


def pymeterbus_ping(ser: Any, address: int) -> bool:
    meterbus.send_ping_frame(ser, address)
    data = meterbus.recv_frame(ser, 1)
    return bool(data) and isinstance(meterbus.load(data), meterbus.TelegramACK)


def test_pymeterbus_finds_the_slaves_our_primary_scan_finds(
    capsys: pytest.CaptureFixture[str], gateway: tuple[str, VirtualBusServer]
) -> None:
    url, server = gateway
    code, out, err = run(capsys, "scan", "-d", url, "--range", "0-4", "--json", *REAL_TIME)
    assert code == 0, err
    ours = json.loads(out)
    assert [f["status"] for f in ours["found"]] == ["ok"] * 3
    with serial.serial_for_url(url, timeout=READ_TIMEOUT_S) as ser:
        theirs = [a for a in ADDRESSES if pymeterbus_ping(ser, a)]
    assert [f["address"] for f in ours["found"]] == theirs == [1, 2, 3]
    server.check()


def test_pymeterbus_selects_and_reads_every_slave_our_secondary_scan_finds(
    capsys: pytest.CaptureFixture[str], gateway: tuple[str, VirtualBusServer]
) -> None:
    url, server = gateway
    code, out, err = run(capsys, "scan", "-d", url, "--secondary", "--json", *REAL_TIME)
    assert code == 0, err
    printed = [f["secondary"] for f in json.loads(out)["found"]]
    found = [SecondaryAddress.parse(text) for text in printed]
    assert sorted(map(str, found)) == sorted(str(m.profile.secondary) for m in server.meters)
    # our text form is libmbus's and pyMeterBus's: what we print is pasted unchanged
    assert printed == [libmbus_form(secondary) for secondary in found]
    with serial.serial_for_url(url, timeout=READ_TIMEOUT_S) as ser:
        for text, secondary in zip(printed, found, strict=True):
            meterbus.send_select_frame(ser, text)
            ack = meterbus.recv_frame(ser, 1)
            assert ack and isinstance(meterbus.load(ack), meterbus.TelegramACK)
            meterbus.send_request_frame(ser, 253)
            telegram = meterbus.load(meterbus.recv_frame(ser, 1))
            header = telegram.body.bodyHeader.interpreted
            assert pymeterbus_id(header["identification"]) == f"{secondary.id:08d}"
    server.check()


def test_our_read_over_tcp_agrees_with_pymeterbus(
    capsys: pytest.CaptureFixture[str], gateway: tuple[str, VirtualBusServer]
) -> None:
    url, _ = gateway
    code, out, err = run(capsys, "read", "-d", url, "-a", "2", "--json", *REAL_TIME)
    assert code == 0, err
    ours = json.loads(out)
    with serial.serial_for_url(url, timeout=READ_TIMEOUT_S) as ser:
        meterbus.send_ping_frame(ser, 2)
        meterbus.recv_frame(ser, 1)
        meterbus.send_request_frame(ser, 2)
        theirs = meterbus.load(meterbus.recv_frame(ser, 1))
    assert pymeterbus_id(theirs.body.bodyHeader.interpreted["identification"]) == ours["header"]["id"]
    assert len([r for r in theirs.records if not r.dib.is_manufacturer_specific]) >= len(
        ours["records"])


# --- port errors --------------------------------------------------------------------------------


def test_no_such_port(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    missing = str(tmp_path / "ttyUSB9")
    code, out, err = run(capsys, "ping", "-d", missing, "-a", "1")
    assert code == 1 and out == ""
    assert err == f"mbus-rig ping: serial port {missing}: no such port\n"


@pytest.mark.parametrize(
    ("number", "words"),
    [(errno.EACCES, "permission denied (add the user to the 'dialout' group)"),
     (errno.EBUSY, "port busy (another program has it open)")],
)
def test_permission_denied_and_busy(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch, number: int,
                                    words: str) -> None:
    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise serial.SerialException(number, f"could not open port {url}: {os.strerror(number)}")

    monkeypatch.setattr(serial, "serial_for_url", refuse)
    code, out, err = run(capsys, "scan", "-d", "/dev/ttyS7", "--range", "1")
    assert code == 1 and out == ""
    assert err == f"mbus-rig scan: serial port /dev/ttyS7: {words}\n"


def test_a_port_locked_by_another_program_is_busy(capsys: pytest.CaptureFixture[str]) -> None:
    master_fd, slave_fd = os.openpty()
    path = os.ttyname(slave_fd)
    holder = SerialBusPort(path, WallClock(), baud=2400)  # exclusive, like the tools
    try:
        code, out, err = run(capsys, "ping", "-d", path, "-a", "1")
    finally:
        holder.close()
        os.close(master_fd)
        os.close(slave_fd)
    assert code == 1 and out == ""
    assert err == f"mbus-rig ping: serial port {path}: port busy (another program has it open)\n"


def test_a_gateway_that_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        code, out, err = run(capsys, "ping", "-d", f"socket://127.0.0.1:{port}", "-a", "1")
    assert code == 1 and out == ""
    assert err.startswith(f"mbus-rig ping: serial port socket://127.0.0.1:{port}: ")
    assert "refused" in err.lower() and err.count("\n") == 1

"""Interop with a real peer: pyMeterBus (PyPI pyMeterBus, module ``meterbus``) reads virtual
meters over a pseudo-terminal and over TCP (loopback) and decodes the records our decoder
decodes. Every read is bounded by the serial timeout; nothing sleeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import serial

from hardware.profile import load_profile, shipped_profile
from hardware.sim.bridges import VirtualBusServer
from protocol.app.telegram import Telegram, decode_telegram
from protocol.fields import Function, c_field
from protocol.frames import LongFrame, ShortFrame, decode, encode
from protocol.meter import heat_meter_profile

meterbus = pytest.importorskip("meterbus", reason="pyMeterBus is a dev dependency")

READ_TIMEOUT_S = 2.0
UNITS = {"MeasureUnit.WH": "Wh", "MeasureUnit.M3": "m^3", "MeasureUnit.W": "W",
         "MeasureUnit.M3_H": "m^3/h", "MeasureUnit.C": "degC", "MeasureUnit.K": "K",
         "MeasureUnit.NONE": "", "MeasureUnit.DATE": "", "MeasureUnit.DATE_TIME": ""}
FUNCTIONS = {"FunctionType.INSTANTANEOUS_VALUE": "instantaneous",
             "FunctionType.MAXIMUM_VALUE": "maximum", "FunctionType.MINIMUM_VALUE": "minimum",
             "FunctionType.ERROR_STATE_VALUE": "error"}


@pytest.fixture
def server() -> Iterator[VirtualBusServer]:
    profiles = [heat_meter_profile(), load_profile(shipped_profile("multi-telegram"))]
    with VirtualBusServer(profiles, baud=2400) as srv:
        yield srv


def read_frame(ser: Any) -> bytes:
    """pyMeterBus's own receive loop (bounded by the port timeout)."""
    data = meterbus.recv_frame(ser, 1)
    assert data, "no complete frame within the serial timeout"
    return bytes(data)


def assert_same_records(raw: bytes) -> Telegram:
    """pyMeterBus and our decoder agree on header and every record of ``raw``."""
    frame = decode(raw)
    assert isinstance(frame, LongFrame)
    ours = decode_telegram(frame)
    theirs = meterbus.load(raw)
    header = theirs.body.bodyHeader.interpreted
    assert ours.header is not None
    assert header["manufacturer"] == ours.header.manufacturer_letters
    assert int(header["medium"], 16) == ours.header.medium
    assert header["access_no"] == ours.header.access_number
    # pyMeterBus lists the DIF 1F / 0F that ends the records as one more record
    records = [r for r in theirs.records
               if not (r.dib.more_records_follow or r.dib.is_manufacturer_specific)]
    assert len(records) == len(ours.records)
    assert any(r.dib.more_records_follow for r in theirs.records) == ours.more_records_follow
    for mine, other in zip(ours.records, records, strict=True):
        info = other.interpreted
        assert info["storage_number"] == mine.storage
        assert FUNCTIONS[info["function"]] == mine.function
        assert UNITS[info["unit"]] == mine.unit
        value = info["value"]
        if isinstance(value, str):
            assert isinstance(mine.value, str)
            assert dt.datetime.fromisoformat(value) == dt.datetime.fromisoformat(mine.value)
        else:
            assert isinstance(value, int | Decimal) and isinstance(mine.value, int | float)
            assert float(value) == pytest.approx(mine.value, rel=1e-9)
    return ours


def test_pymeterbus_reads_a_virtual_meter_over_the_pty(server: VirtualBusServer) -> None:
    path = server.open_master_pty()
    with serial.Serial(path, 2400, 8, "E", 1, timeout=READ_TIMEOUT_S) as ser:
        meterbus.send_ping_frame(ser, 1)
        assert read_frame(ser) == b"\xe5"
        meterbus.send_request_frame(ser, 1)
        telegram = assert_same_records(read_frame(ser))
    assert telegram.header is not None and telegram.header.id == 12345678
    assert [r.quantity for r in telegram.records][:3] == ["Energy", "Volume", "Power"]


def test_pymeterbus_reads_all_pages_over_tcp(server: VirtualBusServer) -> None:
    host, port = server.open_tcp("127.0.0.1", 0)
    with serial.serial_for_url(f"socket://{host}:{port}", timeout=READ_TIMEOUT_S) as ser:
        meterbus.send_ping_frame(ser, 5)
        assert read_frame(ser) == b"\xe5"
        more = []
        storages: set[int] = set()
        fcb = True
        for _ in range(3):
            ser.write(encode(ShortFrame(c_field(Function.REQ_UD2, fcb=fcb), 5)))
            telegram = assert_same_records(read_frame(ser))
            more.append(telegram.more_records_follow)
            storages |= {r.storage for r in telegram.records}
            fcb = not fcb
    assert more == [True, True, False]
    assert storages == set(range(25))


def test_pty_follows_the_baud_rate_the_outside_master_sets(server: VirtualBusServer) -> None:
    path = server.open_master_pty()
    with serial.Serial(path, 9600, 8, "E", 1, timeout=0.5) as ser:
        meterbus.send_ping_frame(ser, 1)
        assert meterbus.recv_frame(ser, 1) in (None, False)  # the meters are at 2400
        ser.baudrate = 2400
        meterbus.send_ping_frame(ser, 1)
        assert read_frame(ser) == b"\xe5"

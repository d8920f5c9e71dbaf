"""The bus trace: entries, frame grouping and decoding, table and JSON."""

from __future__ import annotations

import json

import pytest

from hardware.sim import SimBus, Simulation
from hardware.sim.scripted import ScriptedSlave
from hardware.trace import Trace, TraceEntry
from protocol import frames
from protocol.chars import RxChar

REQ = frames.encode(frames.ShortFrame(0x5B, 1))
RSP = frames.encode(frames.LongFrame(0x08, 1, 0x72, b"\x01\x02\x03"))


def entries(direction: str, data: bytes, t0: float, baud: int = 2400, bad: int | None = None) -> list[TraceEntry]:
    return [
        TraceEntry(t0 + (i * 11 + 10.5) / baud, direction, baud, b, i == bad, False, "x")
        for i, b in enumerate(data)
    ]


def test_frames_are_grouped_by_direction_length_and_gap() -> None:
    trace = Trace()
    for e in entries("M>S", REQ, 0.0) + entries("S>M", b"\xe5\xe5", 0.05) + entries("S>M", RSP, 0.2):
        trace.append(e)
    got = trace.frames()
    assert [f.direction for f in got] == ["M>S", "S>M", "S>M", "S>M"]
    assert [f.frame for f in got] == [
        frames.ShortFrame(0x5B, 1),
        frames.SingleChar(),
        frames.SingleChar(),
        frames.LongFrame(0x08, 1, 0x72, b"\x01\x02\x03"),
    ]
    assert got[0].start == pytest.approx(10.5 / 2400)
    assert got[0].raw == REQ and got[0].error is None


def test_gap_splits_a_truncated_frame_and_errors_are_named() -> None:
    trace = Trace()
    for e in entries("S>M", RSP[:5], 0.0) + entries("S>M", RSP, 0.5, bad=3):
        trace.append(e)
    first, second = trace.frames()
    assert first.frame is None and first.error is not None and first.error.startswith("truncated")
    assert second.error is not None and "parity error" in second.error and "at byte 3" in second.error


def test_since_table_and_json() -> None:
    trace = Trace(entries("M>S", REQ, 0.0) + entries("S>M", RSP, 1.0))
    later = trace.since(1.0)
    assert len(later) == len(RSP)
    table = trace.to_table()
    assert "short C=5B A=01" in table and "long C=08 A=01 CI=72" in table
    chars = trace.to_table(chars=True).splitlines()
    assert len(chars) == 1 + len(REQ) + len(RSP)
    data = json.loads(json.dumps(trace.to_json()))
    assert data[0] == {
        "time": pytest.approx(10.5 / 2400), "direction": "M>S", "baud": 2400, "value": 0x10,
        "parity_error": False, "framing_error": False, "source": "x",
    }
    fj = trace.frames_json()
    assert fj[1]["hex"] == RSP.hex(" ").upper() and fj[1]["error"] is None


def test_record_and_bad_direction() -> None:
    trace = Trace()
    trace.record(RxChar(0xE5, 1.0, parity_error=True), "S>M", 2400)
    assert trace.entries[0].flags() == "P"
    with pytest.raises(ValueError, match="direction"):
        trace.append(TraceEntry(0.0, "up", 2400, 0))


def test_bus_tap_records_both_directions_with_sources() -> None:
    sim = Simulation()
    bus = SimBus(sim)
    ScriptedSlave(bus.add_slave("meter"), lambda raw: RSP, delay=0.01)
    sim.run_until(bus.master.transmit(REQ) + 0.5)
    assert bus.trace is not None
    got = bus.trace.frames()
    assert [(f.direction, f.source, f.frame is not None) for f in got] == [
        ("M>S", "master", True),
        ("S>M", "meter", True),
    ]
    assert bus.trace.entries[0].baud == 2400


def test_bus_trace_can_be_off_and_switched_on_later() -> None:
    sim = Simulation()
    bus = SimBus(sim, trace=False)
    assert bus.trace is None
    sim.run_until(bus.master.transmit(REQ) + 0.1)
    mine = Trace()
    bus.trace = mine
    sim.run_until(bus.master.transmit(REQ) + 0.1)
    assert bytes(e.value for e in mine.entries) == REQ
    assert mine.entries[0].time > 0.1

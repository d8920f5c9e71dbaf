"""Requests: every frame the master sends is a valid M-Bus frame, with even parity."""

from __future__ import annotations

import pytest

from tests_hil._scenario import scenario
from tests_hil.master import _drive, _judge, _meters

AREA = "requests"

OPERATIONS = [
    pytest.param("read", marks=pytest.mark.needs("op_read"), id="read"),
    pytest.param("read_secondary", marks=pytest.mark.needs("op_read_secondary"),
                 id="read_secondary"),
    pytest.param("scan", marks=pytest.mark.needs("op_scan"), id="scan"),
    pytest.param("scan_secondary", marks=pytest.mark.needs("op_scan_secondary"),
                 id="scan_secondary"),
]


@pytest.mark.parametrize("operation", OPERATIONS)
@scenario(AREA, "master.frames", severity="critical",
          fails_when="a frame the master sends fails a frame check, lacks PRM, carries a "
                     "C field no master function has, is of the wrong frame type or goes to "
                     "a reserved address")
def test_every_request_is_a_valid_frame(mut, meters, bus_trace, operation):
    """Reading, reading by secondary address, scanning and searching two meters: every
    frame the master puts on the bus passes the FT1.2 checks (start, both L fields,
    checksum, stop) and carries PRM 1 with its function's FCV/FCB (SND_NKE 40, SND_UD 53/73,
    REQ_UD2 5B/7B, REQ_UD1 5A/7A) in the right frame type, to address 0-250 or 253-255."""
    meter = meters.add(_meters.single_meter())
    meters.add(_meters.single_meter(_meters.METER_ADDRESS + 1, id=12345679))
    result = _drive.run(mut, operation, meter)
    sent = _judge.requests(_judge.window(bus_trace, result))
    assert sent, f"the master sent nothing: {result.describe()}"
    problems = [p for request in sent for p in _judge.request_problems(request)]
    assert not problems, f"{len(problems)} bad request(s): " + "; ".join(problems[:5])


@scenario(AREA, "master.parity", needs=("op_read", "parity"), severity="critical",
          fails_when="a character the master sends has a parity or framing error")
def test_request_characters_have_even_parity(mut, meters, bus_trace):
    """Every character of the master's frames during a readout arrives as 8E1: even
    parity, a stop bit where it belongs."""
    meter = meters.add(_meters.single_meter())
    result = _drive.run(mut, "read", meter)
    bad = [e for e in _judge.window(bus_trace, result).entries
           if e.direction == "M>S" and not e.ok]
    assert not bad, (f"{len(bad)} character(s) of the master with errors, first "
                     f"{bad[0].value:02X} ({bad[0].flags()}) at {bad[0].time:.4f} s")

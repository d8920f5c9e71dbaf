"""Addressing and control: set address, baud switch, application reset, broadcast reads."""

from __future__ import annotations

import pytest

from protocol.fields import BROADCAST_ANSWER, CI
from protocol.frames import ControlFrame, LongFrame, SingleChar
from tests_hil._scenario import scenario
from tests_hil.master import _drive, _judge, _meters

AREA = "addressing and control"

NEW_ADDRESS = 42
TO_BAUDS = (300, 2400, 9600)


def _acknowledged(trace, match) -> _judge.Exchange | None:
    """The first exchange whose request ``match``es and that an E5 answered."""
    return next((x for x in _judge.exchanges(trace) if match(x.request) and x.answered
                 and isinstance(x.answers[0].frame, SingleChar)), None)


def _is_snd_ud(request: _judge.WireFrame, address: int, ci: int) -> bool:
    frame = request.frame
    return (isinstance(frame, ControlFrame | LongFrame) and frame.a == address
            and frame.ci == ci)


def _set_address(mut, meters, bus_trace):
    meter = meters.add(_meters.single_meter())
    old = meter.address
    result = _drive.run(mut, "set_address", meter, new_address=NEW_ADDRESS)
    trace = _judge.window(bus_trace, result)
    done = _acknowledged(trace, lambda r: _is_snd_ud(r, old, CI.SET_ADDRESS)
                         and r.frame.data == bytes((0x01, 0x7A, NEW_ADDRESS)))
    return meter, result, trace, done


@scenario(AREA, "master.set_address", needs=("op_set_address",), severity="critical",
          fails_when="no acknowledged SND_UD CI 51 01 7A <new> reaches the old address, the "
                     "meter is not at the new address afterwards, or the master reports "
                     "failure")
def test_set_address(mut, meters, bus_trace):
    """Setting a meter's primary address from 5 to 42: the master sends SND_UD CI 51 with
    data 01 7A 2A to address 5, the meter acknowledges it and answers at 42 afterwards, and
    the master reports success."""
    meter, result, _trace, done = _set_address(mut, meters, bus_trace)
    assert done is not None, (f"no acknowledged SND_UD CI 51 01 7A {NEW_ADDRESS:02X} to "
                              f"address 5: {result.describe()}")
    assert meter.control.identity()["address"] == NEW_ADDRESS, (
        f"the meter is at address {meter.control.identity()['address']} afterwards")
    assert result.ok, f"the address was set, but the master says: {result.describe()}"


@scenario(AREA, "master.set_address_check", needs=("op_set_address",), severity="recommended",
          fails_when="(recommended) the master does not check that the slave answers at "
                     "the new address")
def test_set_address_is_verified(mut, meters, bus_trace):
    """After the slave acknowledged its new address the master checks it: a request to the
    new address that the slave answers."""
    _meter, result, trace, done = _set_address(mut, meters, bus_trace)
    assert done is not None, f"no acknowledged set address: {result.describe()}"
    later = [x for x in _judge.exchanges(trace) if x.request.start > done.request.end]
    assert any(x.request.address == NEW_ADDRESS and x.answered for x in later), (
        f"nothing was asked of address {NEW_ADDRESS} after the change")


def _switch(mut, meters, bus_trace, to_baud: int):
    meter = meters.add(_meters.single_meter())
    result = _drive.run(mut, "switch_baud", meter, new_baud=to_baud)
    trace = _judge.window(bus_trace, result)
    ci = 0xB8 + (300, 600, 1200, 2400, 4800, 9600, 19200, 38400).index(to_baud)
    done = _acknowledged(trace, lambda r: _is_snd_ud(r, meter.address, ci))
    return meter, result, trace, done


@pytest.mark.parametrize("to_baud", TO_BAUDS)
@scenario(AREA, "master.baud", needs=("op_switch_baud",), severity="critical",
          fails_when="the switch is not acknowledged at the old rate, the master's next frame "
                     "after the slave's E5 is at the old rate, or reading at the new rate fails")
def test_baud_switch(mut, meters, bus_trace, baud, to_baud):
    """A baud switch (control frame CI B8..BF) from the scenario's rate to 300, 2400 or
    9600 Bd: the meter acknowledges at the old rate; the master's next frame after that E5
    is at the new rate (it may look for the slave at the old rate afterwards, when the new
    one stays silent); the meter is at the new rate, and a readout there succeeds."""
    meter, result, trace, done = _switch(mut, meters, bus_trace, to_baud)
    assert done is not None, (f"no acknowledged switch to {to_baud} Bd at {baud} Bd: "
                              f"{result.describe()}")
    after = [r for r in _judge.requests(trace) if r.start > done.answers[0].end]
    assert not after or after[0].baud == to_baud, (
        f"after the switch to {to_baud} Bd the master's next frame was "
        f"{after[0].describe()}")
    assert meter.control.identity()["baud"] == to_baud, (
        f"the meter is at {meter.control.identity()['baud']} Bd")
    if "op_read" in mut.capabilities:
        read = _drive.run(mut, "read", meter, baud=to_baud)
        assert read.ok, f"reading at the new rate, {to_baud} Bd, failed: {read.describe()}"


@pytest.mark.parametrize("to_baud", TO_BAUDS)
@scenario(AREA, "master.baud_check", needs=("op_switch_baud",), severity="recommended",
          fails_when="(recommended) the master does not check that the slave answers at the "
                     "new rate")
def test_baud_switch_is_verified(mut, meters, bus_trace, baud, to_baud):
    """After the slave acknowledged a baud switch the master checks it: a request at the new
    rate that the slave answers."""
    _meter, result, trace, done = _switch(mut, meters, bus_trace, to_baud)
    assert done is not None, f"no acknowledged switch to {to_baud} Bd: {result.describe()}"
    later = [x for x in _judge.exchanges(trace) if x.request.start > done.answers[0].end]
    assert any(x.request.baud == to_baud and x.answered for x in later), (
        f"nothing was asked at {to_baud} Bd after the switch")


@scenario(AREA, "master.reset", needs=("op_reset",), severity="normal",
          fails_when="no acknowledged SND_UD CI 50 reaches the slave, or the master reports "
                     "failure")
def test_application_reset(mut, meters, bus_trace):
    """An application reset: SND_UD with CI 50 (and an optional subcode) to the meter, which
    acknowledges it; the master reports success."""
    meter = meters.add(_meters.single_meter())
    result = _drive.run(mut, "reset", meter)
    trace = _judge.window(bus_trace, result)
    done = _acknowledged(trace, lambda r: _is_snd_ud(r, meter.address, CI.APPLICATION_RESET))
    assert done is not None, f"no acknowledged SND_UD CI 50: {result.describe()}"
    assert result.ok, f"the reset was acknowledged, but the master says: {result.describe()}"


@pytest.mark.parametrize("slaves", ["one_slave", "two_slaves"])
@scenario(AREA, "master.broadcast", needs=("op_read",), severity="critical",
          fails_when="a lone slave's answer at 254 is not taken, or the collided answers of "
                     "two slaves are reported as data")
def test_read_at_broadcast_254(mut, meters, bus_trace, slaves):
    """Reading at the broadcast address 254: with one meter on the bus its answer (which
    names its own primary address) is the data; with two meters answering in step their
    answers collide, and the master reports no data and a failure."""
    meter = meters.add(_meters.single_meter())
    if slaves == "two_slaves":
        meters.add(_meters.single_meter(meter.address + 1, id=meter.secondary.id + 3))
    result = _drive.run(mut, "read", meter, address=BROADCAST_ANSWER)
    if slaves == "one_slave":
        assert result.ok, f"a lone slave's answer at 254 was not taken: {result.describe()}"
        if "reports" in mut.capabilities:
            sent = [t for _, t in _judge.sent_telegrams(_judge.window(bus_trace, result))]
            problems = _judge.report_problems(mut.report(result), sent)
            assert not problems, "; ".join(problems[:6])
        return
    reported = mut.report(result).telegrams if "reports" in mut.capabilities else ()
    assert not reported, (f"two slaves answered at 254 at once, yet the master reported "
                          f"{len(reported)} telegram(s): {result.describe()}")
    assert not result.ok and not result.hung, (
        f"two slaves collided at 254, yet: {result.describe()}")

"""Frame errors, slave to master: corrupted, truncated, late and missing answers.

The faults are armed inside the DUT (``dut.control``, capability ``control``); each wears off
after the given number of answers. The master must detect every one, repeat the request with
the same FCB the configured number of times, and report a failure as a failure.
"""

from __future__ import annotations

import pytest

from protocol.errors import LinkError
from protocol.fields import CField
from protocol.frames import encode
from tests_hil import _wire as w
from tests_hil._scenario import scenario

AREA = "frame errors (slave to master)"

ANSWER_FAULTS = ["corrupt_checksum", "truncated", "late", "silence"]
"""Armed DUT faults (MeterCore.arm kinds) that spoil one answer each, seen on the wire."""

RETRIED_FAULTS = [*ANSWER_FAULTS, "wrong_address"]
"""... and those the master must retry (an answer naming another primary address is a
valid frame: only a request to a primary address tells it is not the DUT's)."""

DETECTED_AS = {
    "corrupt_checksum": ("garbled",),
    "truncated": ("garbled", "none"),
    "late": ("none", "garbled"),
    "silence": ("none",),
}
"""How the master may classify one spoilt answer."""


@pytest.mark.parametrize("kind", ANSWER_FAULTS)
@scenario(AREA, "link.answers", needs=("control",), severity="critical",
          fails_when="a spoilt answer is delivered as data, or the next answer is not clean")
def test_spoilt_answer_is_detected(master, dut, baud, kind):
    """One answer spoilt inside the DUT (wrong checksum, truncated, after the response
    window, or missing) is detected by the master and never delivered as data; the next
    request is answered cleanly."""
    dut.control.arm(kind, 1)
    ex = w.ask(master, w.req_ud2(dut.address))
    assert w.outcome(ex) in DETECTED_AS[kind], (
        f"answer spoilt by {kind}: expected {' or '.join(DETECTED_AS[kind])}, "
        f"but {w.describe(ex)}")
    if w.outcome(ex) == "none":
        master.late_answer(ex)  # a late answer ends before the next request, not under it
    w.expect_answer(master, w.req_ud2(dut.address), "the request after the spoilt answer")


@pytest.mark.parametrize("kind", RETRIED_FAULTS)
@scenario(AREA, "link.answers", needs=("control", "fcb"), severity="critical",
          fails_when="the master does not retry, changes the FCB in the retry, or the retried "
                     "answer is not the telegram the spoilt answer carried")
def test_retry_with_same_fcb_gets_the_same_telegram(master, dut, rig, bus_trace, kind):
    """After one spoilt answer (wrong checksum, truncated, late, missing, or naming another
    primary address) the master repeats REQ_UD2 with the same FCB, and the DUT answers the
    repeat with the same telegram (byte for byte where the spoilt one can be compared: up
    to the checksum, or as far as it was truncated)."""
    master.snd_nke(dut.address)
    dut.control.arm(kind, 1)
    start = rig.clock.now()
    reply = master.req_ud2(dut.address)
    requests = w.master_requests(bus_trace, start)
    assert len(requests) >= 2, f"{kind}: the master did not retry ({len(requests)} request)"
    assert requests[-1] == requests[-2], (
        f"{kind}: the retry differs from the first request: {requests[-2].hex(' ')} then "
        f"{requests[-1].hex(' ')} (FCB must stay the same)")
    answers = [f for f in bus_trace.since(start).frames() if f.direction == "S>M"]
    good = encode(reply.frame)
    if kind in ("corrupt_checksum", "truncated") and len(answers) >= 2:
        spoilt = answers[0].raw
        n = len(spoilt) - 2 if kind == "corrupt_checksum" else len(spoilt)
        assert spoilt[:n] == good[:n], (
            f"{kind}: the repeated FCB brought another telegram: {good.hex(' ')} after "
            f"{spoilt.hex(' ')}")


@pytest.mark.parametrize("kind", ["corrupt_checksum", "silence", "wrong_address"])
@scenario(AREA, "link.answers", needs=("control",), severity="critical",
          fails_when="the master reports success, tries a different number of times than "
                     "configured, or the DUT does not answer once the fault wears off")
def test_failure_after_all_retries_is_reported(master, dut, rig, bus_trace, kind):
    """With every answer spoilt (1 + the configured retries), the master sends the request
    exactly 1 + retries times and reports a link error; once the fault wears off, the DUT
    answers again."""
    retries = master.retries
    dut.control.arm(kind, retries + 1)
    start = rig.clock.now()
    with pytest.raises(LinkError):
        master.req_ud2(dut.address)
    requests = w.master_requests(bus_trace, start)
    assert len(requests) == retries + 1, (
        f"{kind}: {len(requests)} requests sent, expected 1 + {retries} retries")
    w.expect_answer(master, w.req_ud2(dut.address), "the request after the fault wore off")


@scenario(AREA, "link.answers", needs=("control",), severity="normal",
          fails_when="the master delivers a frame whose C field is not RSP_UD as the DUT's "
                     "answer")
def test_answer_with_wrong_c_field_is_not_taken(master, dut):
    """A valid frame that is not an RSP_UD (C field 48: PRM set, as if from a master) is not
    delivered as the DUT's data: the master retries and gets the right telegram, or
    reports a link error."""
    dut.control.arm("wrong_c_field", 1)
    try:
        reply = master.req_ud2(dut.address)
    except LinkError:
        return
    c = reply.frame.c
    assert CField(c).is_rsp_ud(), f"C field {c:02X} taken as an RSP_UD"

"""Power and wiring faults: bus power loss, slave disconnect, bus short, noise.

Faults are driven through the rig's fault lines (``faults.inject``); what is checked is only
what the wire shows: no false data while the fault lasts, and the DUT back afterwards in the
state the standard and its profile say.
"""

from __future__ import annotations

import pytest

from protocol.frames import LongFrame
from protocol.timing import frame_time, response_window
from rig.rig import NotSupportedError
from tests_hil import _wire as w
from tests_hil._scenario import scenario

AREA = "power and wiring"

POWER_UP_LIMIT = 5.0
"""Seconds a slave may take to answer after bus power returns when its profile does not say
(docs/mbus-facts.md: real meters take up to about 5 s)."""

POWER_CUT = 1.0
"""Seconds of bus power cut: longer than any slave's hold-up, so the DUT loses power."""


def _power_up_limit(dut) -> float:
    profile = getattr(dut, "profile", None)
    value = getattr(profile, "power_up", None)
    return float(value) if value else POWER_UP_LIMIT


def _wait_until_answering(master, rig, dut, limit: float) -> float:
    """Poll with SND_NKE until the DUT acknowledges; seconds from now until it did."""
    start = rig.clock.now()
    while rig.clock.now() - start <= limit + 1.0:
        if w.outcome(w.ask(master, w.snd_nke(dut.address))) == "ack":
            return rig.clock.now() - start
        rig.clock.sleep(0.05)
    raise AssertionError(f"the DUT did not answer within {limit + 1.0:.1f} s after the fault")


def _reference(master, dut) -> LongFrame:
    return w.fresh_answer(master, dut.address, "reference readout")


def _keeps_fcb(dut) -> bool:
    """A request repeating the FCB of the last one gets the same telegram again, byte for
    byte, only from a DUT that handles FCB; any other DUT answers afresh (values may move)."""
    return "fcb" in dut.capabilities


def _answer_start(master, rig, dut, baud: int) -> tuple[float, LongFrame]:
    """REQ_UD2 with FCB 1 now: its answer, and when the answer to the same request sent next
    will be under way (a few characters in)."""
    ex = w.ask(master, w.req_ud2(dut.address, fcb=True))
    assert w.outcome(ex) == "frame", f"REQ_UD2 before the fault: expected an RSP_UD, but " \
                                     f"{w.describe(ex)}"
    at = rig.clock.now() + frame_time(5, baud) + (ex.response_delay or response_window(baud)[0]) \
        + frame_time(4, baud)
    return at, ex.frame


@scenario(AREA, "phys.power", needs=("power_fault",), severity="critical",
          fails_when="false data during the cut, the DUT not back within its power-up time, "
                     "or its primary address lost after power-up")
def test_power_cut_during_answer(master, dut, rig, baud, faults, measure):
    """Bus power is cut in the middle of the DUT's answer (the DUT selected, where it has
    secondary addressing) and restored after a second: the master gets no false data (a
    delivered telegram is the repeat of the one before, byte for byte where the DUT keeps FCB,
    else the same telegram's shape); the DUT answers again within its power-up time (recorded
    as a measurement) and keeps its primary address. Whether it is still selected is not
    checked: a meter on its own battery may keep its selection, and the standard leaves it
    open."""
    _reference(master, dut)
    selected = "secondary" in dut.capabilities
    if selected:
        w.expect_ack(master, w.selection(w.exact(w.dut_secondary(master, dut))),
                     "selection before the power cut")
    try:
        at, reference = _answer_start(master, rig, dut, baud)
        faults.inject("power_cut", at=at, duration=POWER_CUT)
        ex = w.ask(master, w.req_ud2(dut.address, fcb=True))
        w.no_false_data(ex, reference, "answer cut by the power loss", repeat=_keeps_fcb(dut))
        rig.clock.sleep(max(0.0, at + POWER_CUT - rig.clock.now()))
        limit = _power_up_limit(dut)
        took = _wait_until_answering(master, rig, dut, limit)
        measure("power_up_time", took, "s", high=limit,
                configured=bool(getattr(getattr(dut, "profile", None), "power_up", None)))
        w.expect_answer(master, w.req_ud2(dut.address, fcb=True), "REQ_UD2 after power-up",
                        address=dut.address)
    finally:
        if selected:
            w.deselect_all(master, rig)


@scenario(AREA, "phys.wiring", needs=("disconnect",), severity="normal",
          fails_when="an answer while disconnected, or no answer once reconnected")
def test_slave_disconnect_and_reconnect(master, dut, rig, faults):
    """While the DUT is disconnected from the bus nothing answers at its address; once it
    is reconnected it answers again (after its power-up time, if it lost power)."""
    faults.inject("disconnect", at=rig.clock.now(), duration=POWER_CUT)
    w.expect_silence(master, w.req_ud2(dut.address), "REQ_UD2 while disconnected")
    rig.clock.sleep(POWER_CUT)
    _wait_until_answering(master, rig, dut, _power_up_limit(dut))
    w.expect_answer(master, w.req_ud2(dut.address), "REQ_UD2 after reconnection")


@scenario(AREA, "phys.wiring", needs=("short",), severity="normal",
          fails_when="data accepted while the bus is shorted, no answer after recovery, or "
                     "the first telegram of a readout afterwards is not the one it was before "
                     "(identity, record layout, DIF 1F)")
def test_bus_short_and_recovery(master, dut, rig, faults):
    """While the bus is shorted nothing valid arrives; after the short is removed the DUT
    answers again within its power-up time, and a new readout starts with the same telegram
    as before: the same header identity, record layout and DIF 1F (its values may have
    moved)."""
    reference = _reference(master, dut)
    faults.inject("short", at=rig.clock.now(), duration=POWER_CUT)
    ex = w.ask(master, w.req_ud2(dut.address, fcb=True))
    assert w.outcome(ex) != "frame", f"a telegram arrived over a shorted bus: {w.describe(ex)}"
    rig.clock.sleep(POWER_CUT)
    _wait_until_answering(master, rig, dut, _power_up_limit(dut))
    after = w.fresh_answer(master, dut.address, "readout after the short")
    w.expect_same_shape(after, reference, "the first telegram after the short")


BIT_ERROR_RATES = [1e-4, 1e-3, 1e-2]
NOISY_READOUTS = 20


@pytest.mark.parametrize("ber", BIT_ERROR_RATES, ids=[f"ber{r:g}" for r in BIT_ERROR_RATES])
@scenario(AREA, "phys.wiring", needs=("noise",), severity="critical",
          fails_when="a telegram that differs from the clean one is accepted as data (byte "
                     "for byte where the DUT keeps FCB, else in identity and record layout)")
def test_noise_never_yields_false_data(master, dut, rig, faults, measure, ber):
    """With noise on the bus at a bit-error rate of 1e-4, 1e-3 and 1e-2, every readout (REQ_UD2
    repeating the FCB of a clean one) is either the clean telegram or rejected (garbled or no
    answer): no corrupted telegram is accepted as data. A DUT that keeps FCB must repeat the
    clean telegram byte for byte; any other DUT answers afresh, so only what does not move is
    compared (address, header identity, record layout, DIF 1F). The share of clean readouts
    is recorded."""
    reference = _reference(master, dut)
    try:
        faults.inject("noise", rate=ber)
    except NotSupportedError as exc:  # a real noise source has its own, fixed rate
        pytest.skip(f"bit-error rate {ber:g} cannot be set: {exc}")
    clean = 0
    for i in range(NOISY_READOUTS):
        ex = w.ask(master, w.req_ud2(dut.address, fcb=True))
        clean += w.no_false_data(ex, reference, f"noisy readout #{i + 1}",
                                 repeat=_keeps_fcb(dut))
    faults.clear()
    measure(f"clean_readouts_ber{ber:g}", clean / NOISY_READOUTS, "ratio", low=0.0, high=1.0)

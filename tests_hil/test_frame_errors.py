"""Frame errors, master to slave: a frame that fails any FT1.2 check is never answered."""

from __future__ import annotations

import pytest

from protocol.frame_faults import FrameFault, build_faulty
from protocol.timing import inter_frame_idle
from tests_hil import _wire as w
from tests_hil._scenario import recommended, scenario

AREA = "frame errors (master to slave)"

SHORT_FRAME_FAULTS = [
    FrameFault.BAD_CHECKSUM, FrameFault.BAD_STOP, FrameFault.TRUNCATED, FrameFault.PARITY,
    FrameFault.GARBAGE_BEFORE, FrameFault.GAP,
]
LONG_FRAME_FAULTS = [
    FrameFault.BAD_CHECKSUM, FrameFault.BAD_STOP, FrameFault.L_MISMATCH,
    FrameFault.L_OUT_OF_RANGE, FrameFault.TRUNCATED, FrameFault.PARITY,
    FrameFault.GARBAGE_BEFORE, FrameFault.GAP,
]


RECOMMENDED_FAULTS: dict[FrameFault, str] = {
    FrameFault.GARBAGE_BEFORE: "link.idle_after_error",
    FrameFault.GAP: "link.no_pause_in_frame",
}
"""Faults whose rejection EN 13757-2 does not clearly demand (the FT1.2 transmission rules
behind them, with the clause key): their cases are ``recommended``."""


def _cases(faults: list[FrameFault]) -> list[object]:
    """One case per fault; the parity case needs a wire that carries the parity bit (a DUT
    joined through a pseudo-terminal has none); the cases of :data:`RECOMMENDED_FAULTS` are
    recommended, with their own clause."""
    cases: list[object] = []
    for f in faults:
        if f in RECOMMENDED_FAULTS:
            cases.append(recommended(f, id=f.value, clause=RECOMMENDED_FAULTS[f]))
        else:
            cases.append(pytest.param(f, id=f.value, marks=[pytest.mark.needs("parity")]
                                      if f is FrameFault.PARITY else []))
    return cases


def _params(fault: FrameFault, baud: int, length: int) -> dict[str, object]:
    """Fault parameters that make the fault unmistakable at ``baud``."""
    if fault is FrameFault.GAP:
        # a pause of twice the inter-frame idle inside the frame: the slave must drop it
        return {"after": 2, "pause": 2 * inter_frame_idle(baud) + 11 / baud}
    if fault is FrameFault.PARITY:
        return {"index": length - 3}  # the checksum byte's neighbour: deep inside the frame
    if fault is FrameFault.TRUNCATED:
        return {"n": length - 1}  # only the stop byte missing
    return {}


def _check_ignored(master, request: bytes, fault: FrameFault, baud: int, what: str) -> None:
    faulty = build_faulty(request, fault, **_params(fault, baud, len(request)))
    w.expect_silence(master, faulty, f"{what} with {fault.value}")


@pytest.mark.parametrize("fault", _cases(SHORT_FRAME_FAULTS))
@scenario(AREA, "link.frames", needs=("primary",), severity="critical",
          fails_when="any answer to the faulty REQ_UD2, or no answer to the valid one after it")
def test_faulty_short_frame_is_ignored(master, dut, baud, fault):
    """A REQ_UD2 with one fault (bad checksum, bad stop byte, truncated, a parity error) is
    not answered; the next valid REQ_UD2 is. Recommended cases (FT1.2 transmission rules EN
    13757-2 does not clearly demand of a slave): garbage straight before the start byte, a
    pause of twice the inter-frame idle inside the frame."""
    _check_ignored(master, w.req_ud2(dut.address), fault, baud, "REQ_UD2")
    w.expect_answer(master, w.req_ud2(dut.address), "the valid REQ_UD2 after the faulty one")


@pytest.mark.parametrize("fault", _cases(LONG_FRAME_FAULTS))
@scenario(AREA, "link.frames", needs=("secondary",), severity="critical",
          fails_when="any answer to the faulty selection, the DUT selected by it, or no "
                     "answer to the valid selection after it")
def test_faulty_long_frame_is_ignored(master, dut, rig, baud, fault):
    """A long frame (the selection of the DUT, which a slave acknowledges) with one fault
    (bad checksum, bad stop byte, L1 != L2, L below 3, truncated, a parity error) is not
    answered and does not select; the next valid selection is acknowledged. Recommended
    cases: garbage straight before it, a pause inside it."""
    sec = w.dut_secondary(master, dut)
    request = w.selection(w.exact(sec))
    w.deselect_all(master, rig)
    try:
        _check_ignored(master, request, fault, baud, "selection")
        w.expect_silence(master, w.req_ud2(253), "REQ_UD2 at 253 after the faulty selection")
        w.expect_ack(master, request, "the valid selection after the faulty one")
    finally:
        w.deselect_all(master, rig)

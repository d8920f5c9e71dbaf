"""Frame errors, master to slave: a frame that fails any FT1.2 check is never answered."""

from __future__ import annotations

import pytest

from protocol.frame_faults import FrameFault, build_faulty
from protocol.timing import inter_frame_idle
from tests_hil import _wire as w
from tests_hil._scenario import scenario

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


def _cases(faults: list[FrameFault]) -> list[object]:
    """One case per fault; the parity case needs a wire that carries the parity bit (a DUT
    joined through a pseudo-terminal has none)."""
    return [pytest.param(f, id=f.value,
                         marks=[pytest.mark.needs("parity")] if f is FrameFault.PARITY else [])
            for f in faults]


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
    """A REQ_UD2 with one fault (bad checksum, bad stop byte, truncated, a parity error,
    garbage before the start byte, a gap of twice the inter-frame idle inside the frame) is
    not answered; the next valid REQ_UD2 is."""
    _check_ignored(master, w.req_ud2(dut.address), fault, baud, "REQ_UD2")
    w.expect_answer(master, w.req_ud2(dut.address), "the valid REQ_UD2 after the faulty one")


@pytest.mark.parametrize("fault", _cases(LONG_FRAME_FAULTS))
@scenario(AREA, "link.frames", needs=("secondary",), severity="critical",
          fails_when="any answer to the faulty selection, the DUT selected by it, or no "
                     "answer to the valid selection after it")
def test_faulty_long_frame_is_ignored(master, dut, rig, baud, fault):
    """A long frame (the selection of the DUT, which a slave acknowledges) with one fault
    (bad checksum, bad stop byte, L1 != L2, L below 3, truncated, a parity error, garbage
    before it, a gap inside it) is not answered and does not select; the next valid
    selection is acknowledged."""
    sec = w.dut_secondary(master, dut)
    request = w.selection(w.exact(sec))
    w.deselect_all(master, rig)
    try:
        _check_ignored(master, request, fault, baud, "selection")
        w.expect_silence(master, w.req_ud2(253), "REQ_UD2 at 253 after the faulty selection")
        w.expect_ack(master, request, "the valid selection after the faulty one")
    finally:
        w.deselect_all(master, rig)

"""Baud rate switching (CI B8..BF) and application reset."""

from __future__ import annotations

import pytest

from protocol.timing import BAUD_RATES
from tests_hil import _wire as w
from tests_hil._scenario import scenario

AREA = "baud rate"


def _supported(dut) -> tuple[int, ...]:
    bauds = w.supported_bauds(dut)
    if bauds is None:
        pytest.skip("the DUT's supported baud rates are not configured")
    return bauds


def _recover(master, address: int, baud: int) -> None:
    """Bring the DUT back to ``baud`` wherever a defect left it (finds it at any rate)."""
    master.set_baud(baud)
    if w.outcome(w.ask(master, w.snd_nke(address))) == "ack":
        return
    for rate in BAUD_RATES:
        if rate == baud:
            continue
        master.set_baud(rate)
        if w.outcome(w.ask(master, w.snd_nke(address))) == "ack":
            w.ask(master, w.baud_request(address, baud))
            break
    master.set_baud(baud)


@pytest.mark.parametrize("to_baud", BAUD_RATES)
@scenario(AREA, "app.baud", needs=("primary", "baud_switch"), severity="critical",
          fails_when="no E5 at the old rate, no answer at the new rate, an answer at the old "
                     "rate after the switch, or switching back fails")
def test_baud_switch(master, dut, baud, to_baud):
    """Switching from the current rate to another supported rate: the E5 comes at the old
    rate; then the DUT answers at the new rate and not at the old one; switching back the
    same way restores the old rate. (Pairs with equal rates are not collected.)"""
    if to_baud not in _supported(dut):
        pytest.skip(f"the DUT does not support {to_baud} Bd")
    a = dut.address
    try:
        w.expect_ack(master, w.baud_request(a, to_baud),
                     f"switch {baud} -> {to_baud} Bd (E5 expected at {baud} Bd)")
        master.set_baud(to_baud)
        w.expect_answer(master, w.req_ud2(a), f"REQ_UD2 at the new rate {to_baud} Bd")
        master.set_baud(baud)
        w.expect_silence(master, w.req_ud2(a), f"REQ_UD2 at the old rate {baud} Bd after the switch")
        master.set_baud(to_baud)
        w.expect_ack(master, w.baud_request(a, baud),
                     f"switch back {to_baud} -> {baud} Bd (E5 expected at {to_baud} Bd)")
        master.set_baud(baud)
        w.expect_answer(master, w.req_ud2(a), f"REQ_UD2 at {baud} Bd after switching back")
    finally:
        _recover(master, a, baud)


@scenario(AREA, "app.baud", needs=("primary", "baud_switch"), severity="critical",
          fails_when="a switch to an unsupported rate is acknowledged, or the DUT stops "
                     "answering at its rate")
def test_unsupported_baud_is_not_acknowledged(master, dut, baud):
    """A switch to a rate the DUT does not support is not acknowledged and changes nothing:
    the DUT keeps answering at the current rate."""
    unsupported = [b for b in BAUD_RATES if b not in _supported(dut)]
    if not unsupported:
        pytest.skip("the DUT supports every M-Bus rate")
    a = dut.address
    try:
        for rate in unsupported:
            w.expect_silence(master, w.baud_request(a, rate), f"switch to unsupported {rate} Bd")
            w.expect_answer(master, w.req_ud2(a), f"REQ_UD2 at {baud} Bd after the refused switch")
    finally:
        _recover(master, a, baud)


@pytest.mark.parametrize("subcode", [None, 0x00], ids=["plain", "subcode00"])
@scenario(AREA, "app.reset", needs=("primary", "reset"), severity="normal",
          fails_when="the reset is not acknowledged, or afterwards the DUT does not answer at "
                     "the same address and rate")
def test_application_reset(master, dut, baud, subcode):
    """Application reset (SND_UD CI 50, with or without a subcode) is acknowledged, and the
    DUT keeps its primary address and baud rate: it answers REQ_UD2 right after."""
    a = dut.address
    w.expect_ack(master, w.application_reset(a, subcode), "application reset")
    w.expect_answer(master, w.req_ud2(a), "REQ_UD2 after the application reset", address=a)

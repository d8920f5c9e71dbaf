"""Application layer (EN 13757-3): the telegram, status and alarm, application errors."""

from __future__ import annotations

import pytest

from protocol.app import decode_telegram
from protocol.fields import CI, CField
from tests_hil import _wire as w
from tests_hil._scenario import scenario

AREA = "application layer"


def _profile(dut):
    profile = getattr(dut, "profile", None)
    if profile is None or not hasattr(profile, "pages"):
        pytest.skip("the DUT has no profile to compare its telegrams with")
    return profile


def _records_of_readout(master, dut) -> list:
    master.snd_nke(dut.address)
    return [r.telegram for r in master.read_all(dut.address)]


@scenario(AREA, "app.rsp_ud", needs=("primary",), severity="critical",
          fails_when="the telegram does not decode, or its header identity or record layout "
                     "differ from the profile's")
def test_telegram_decodes_to_profile_records(master, dut, baud):
    """Every RSP_UD of a full readout decodes (CI 72, long header) and carries the DUT's
    secondary address in its header and, page by page, the records of its profile in their
    layout: DIF, DIFEs, VIF and VIFEs (data type, function, storage, tariff, subunit, unit
    and scale). Values are not compared: a meter's counters move, a profile's values are
    examples."""
    from protocol.meter import build_record

    profile = _profile(dut)
    telegrams = _records_of_readout(master, dut)
    assert len(telegrams) == len(profile.pages), (
        f"{len(telegrams)} telegrams read, the profile has {len(profile.pages)} pages")
    sec = w.dut_secondary(master, dut)
    for number, (telegram, page) in enumerate(zip(telegrams, profile.pages, strict=True), 1):
        assert telegram.ci == CI.RSP_VARIABLE, f"telegram {number}: CI {telegram.ci:02X}, not 72"
        header = telegram.header
        got = (header.id, header.manufacturer, header.version, header.medium)
        assert got == (sec.id, sec.manufacturer, sec.version, sec.medium), (
            f"telegram {number}: header identity {got} is not the DUT's {sec}")
        expected = w.record_layout(build_record(spec) for spec in page.records)
        received = w.record_layout(telegram.records)
        assert received == expected, (
            f"telegram {number}: the record layout (DIF DIFE VIF VIFE) differs from the "
            f"profile's:\n  got      {w.layout_text(received)}\n"
            f"  expected {w.layout_text(expected)}")


STATUS_BITS = 0x1F
"""The status bits EN 13757-3 defines (application status, power low, permanent and
temporary error); bits 5-7 are manufacturer specific (docs/mbus-facts.md "Application layer")."""


@scenario(AREA, "app.status", needs=("primary",), severity="normal",
          fails_when="the header's status bits 0-4 are not the profile's")
def test_status_byte(master, dut):
    """The status byte of the RSP_UD header has the standard bits (0-4: application status,
    power low, permanent error, temporary error) the DUT's profile states; the manufacturer
    specific bits 5-7 are not compared."""
    profile = _profile(dut)
    telegram = _records_of_readout(master, dut)[0]
    assert telegram.header is not None, "the RSP_UD has no header"
    got, want = telegram.header.status & STATUS_BITS, profile.status & STATUS_BITS
    assert got == want, (
        f"status byte {telegram.header.status:02X}: bits 0-4 are {got:02X}, the profile says "
        f"{want:02X}")


@scenario(AREA, "app.alarm", needs=("primary", "req_ud1"), severity="normal",
          fails_when="REQ_UD1 draws no answer, something other than E5 or CI 71, or an alarm "
                     "that is not the profile's; or the RSP_UD's ACD bit disagrees with the "
                     "alarm")
def test_req_ud1_alarm(master, dut):
    """REQ_UD1 is answered with E5 when there is no alarm, or with an RSP_UD CI 71 holding
    one alarm byte; where the DUT's profile states an alarm, it is that one (an alarm is
    live state: a profile without one does not forbid it). The access demand bit (ACD, C
    field bit 5; EN 13757-2: the slave has class 1 data) of the next REQ_UD2 answer is never
    set without an alarm, and is set (C 28/38) while the DUT's profile states one."""
    ex = w.ask(master, w.req_ud1(dut.address, fcb=True))
    kind = w.outcome(ex)
    assert kind in ("ack", "frame"), f"REQ_UD1: expected E5 or CI 71, but {w.describe(ex)}"
    alarm = None
    if kind == "frame":
        telegram = decode_telegram(ex.frame)
        assert telegram.ci == CI.ALARM, f"REQ_UD1 answered with CI {telegram.ci:02X}, not 71"
        alarm = telegram.alarm
        assert alarm is not None, "CI 71 answer without an alarm byte"
    profile = getattr(dut, "profile", None)
    known = getattr(profile, "alarm", None) is not None
    if known:
        assert alarm == profile.alarm, f"alarm {alarm}, the profile says {profile.alarm}"
    frame = w.fresh_answer(master, dut.address, "REQ_UD2 after REQ_UD1")
    acd = CField(frame.c).acd
    if alarm is None:
        assert not acd, (f"RSP_UD C field {frame.c:02X} has ACD (class 1 data) set, but "
                         f"REQ_UD1 found no alarm")
    elif known:
        assert acd, (f"RSP_UD C field {frame.c:02X} lacks ACD while alarm {alarm:02X} is "
                     f"pending (expected C {frame.c | 0x20:02X})")


@scenario(AREA, "app.errors", needs=("primary",), severity="minor",
          fails_when="a request with an unknown CI is answered with anything but E5, silence "
                     "or a CI 70 application error, or the DUT stops answering after it")
def test_unknown_ci_is_handled(master, dut):
    """A SND_UD with a CI the DUT does not implement (5F) is either acknowledged, ignored, or
    reported as an application error (CI 70, code 1 "unimplemented CI") in the next RSP_UD;
    the DUT keeps answering REQ_UD2 with valid telegrams."""
    ex = w.ask(master, w.snd_ud(dut.address, 0x5F, b"\x00"))
    assert w.outcome(ex) in ("ack", "none"), f"SND_UD CI 5F: {w.describe(ex)}"
    frame = w.expect_answer(master, w.req_ud2(dut.address), "REQ_UD2 after the unknown CI")
    telegram = decode_telegram(frame)
    if telegram.ci == CI.APPLICATION_ERROR:
        assert telegram.application_error in (0, 1), (
            f"application error {telegram.application_error} for an unknown CI (0 or 1 expected)")
        w.expect_answer(master, w.req_ud2(dut.address, fcb=True), "REQ_UD2 after the error")


@pytest.mark.parametrize("code", [1, 8])
@scenario(AREA, "app.errors", needs=("primary", "control"), severity="normal",
          fails_when="an RSP_UD CI 70 does not decode to its application error code, or the "
                     "DUT does not return to normal telegrams after it")
def test_application_error_is_decoded_and_clears(master, dut, code):
    """The DUT is made to answer one REQ_UD2 with an application error (RSP_UD CI 70, one
    error byte: 1 "unimplemented CI", 8 "application busy"); the master decodes it as that
    error, and the next REQ_UD2 gets a normal data telegram again."""
    master.snd_nke(dut.address)
    dut.control.arm("application_error", 1, code=code)
    try:
        error = master.req_ud2(dut.address).telegram
    finally:
        dut.control.disarm()
    assert error is not None, "REQ_UD2 answered with E5, not an RSP_UD"
    assert error.ci == CI.APPLICATION_ERROR, f"CI {error.ci:02X}, not 70 (application error)"
    assert error.application_error == code, (
        f"application error {error.application_error}, armed {code}")
    normal = master.req_ud2(dut.address).telegram
    assert normal is not None, "REQ_UD2 after the error answered with E5, not data"
    assert normal.ci != CI.APPLICATION_ERROR and normal.application_error is None, (
        f"REQ_UD2 after the error: still CI {normal.ci:02X} "
        f"(error {normal.application_error})")
    assert normal.records or normal.header is not None, (
        f"REQ_UD2 after the error: CI {normal.ci:02X} carries no data")

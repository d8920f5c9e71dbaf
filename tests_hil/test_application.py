"""Application layer (EN 13757-3): the telegram, status and alarm, application errors."""

from __future__ import annotations

import pytest

from protocol.app import decode_telegram
from protocol.fields import CI
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
          fails_when="the telegram does not decode, or its header or records differ from the "
                     "profile's")
def test_telegram_decodes_to_profile_records(master, dut, baud):
    """Every RSP_UD of a full readout decodes (CI 72, long header) and carries the DUT's
    secondary address in its header and, page by page, exactly the records of its profile
    (DIF/VIF, function, storage, tariff, value)."""
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
        expected = [build_record(spec).encode() for spec in page.records]
        received = [record.encode() for record in telegram.records]
        assert received == expected, (
            f"telegram {number}: records differ from the profile:\n"
            f"  got      {[r.hex(' ') for r in received]}\n"
            f"  expected {[r.hex(' ') for r in expected]}")


@scenario(AREA, "app.status", needs=("primary",), severity="normal",
          fails_when="the header's status byte is not the profile's")
def test_status_byte(master, dut):
    """The status byte of the RSP_UD header is the one the DUT's profile states (no error,
    power-low or busy bits the profile does not have)."""
    profile = _profile(dut)
    telegram = _records_of_readout(master, dut)[0]
    assert telegram.header is not None, "the RSP_UD has no header"
    assert telegram.header.status == profile.status, (
        f"status byte {telegram.header.status:02X}, the profile says {profile.status:02X}")


@scenario(AREA, "app.alarm", needs=("primary", "req_ud1"), severity="normal",
          fails_when="REQ_UD1 draws no answer, something other than E5 or CI 71, or an alarm "
                     "that is not the profile's")
def test_req_ud1_alarm(master, dut):
    """REQ_UD1 is answered with E5 when there is no alarm, or with an RSP_UD CI 71 holding
    one alarm byte; what it is matches the DUT's profile where one is known."""
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
    if profile is not None and hasattr(profile, "alarm"):
        assert alarm == profile.alarm, f"alarm {alarm}, the profile says {profile.alarm}"


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

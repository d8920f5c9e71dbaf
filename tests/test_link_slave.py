"""SlaveLink: every link-layer rule and every engine-level defect switch."""

from __future__ import annotations

import pytest
from test_link_helpers import KAM, FakeMeter, feed, make, rx, transmits

from protocol.app import decode_telegram
from protocol.app.requests import encode_set_address
from protocol.fields import CI, Function
from protocol.frame_faults import FrameFault, build_faulty
from protocol.frames import ControlFrame, LongFrame, ShortFrame, decode, encode
from protocol.identity import SecondaryAddress
from protocol.link import DEFECTS, SelectionMask, SetBaud, SlaveLink, SlaveSettings, Transmit
from protocol.timing import char_time, inter_frame_idle, response_window

E5 = b"\xe5"
NKE = Function.SND_NKE
REQ = Function.REQ_UD2


def short(c: int, a: int) -> bytes:
    return encode(ShortFrame(c, a))


def snd_ud(a: int, ci: int, data: bytes = b"", c: int = Function.SND_UD) -> bytes:
    return encode(LongFrame(c, a, ci, data) if data else ControlFrame(c, a, ci))


def select(mask: str, fab: str | None = None, ci: int = CI.SELECTION, msb: bool = False) -> bytes:
    return snd_ud(253, ci, SelectionMask.parse(mask, fab).to_bytes(msb_first=msb))


def page_of(answer: bytes) -> int:
    frame = decode(answer)
    assert isinstance(frame, LongFrame)
    (record,) = decode_telegram(frame).records
    assert isinstance(record.raw, int)
    return record.raw


def req(link: SlaveLink, a: int, fcb: bool, fcv: bool = True, t: float = 0.0) -> list[bytes]:
    c = (Function.REQ_UD2 | (0x20 if fcb else 0)) & (0xFF if fcv else ~0x10)
    return transmits(feed(link, short(c, a), t))


# --- addressing --------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "answers"), [(5, True), (6, False), (254, True), (255, False), (253, False)])
def test_address_rules_for_snd_nke(a: int, answers: bool) -> None:
    link, _ = make(5)
    assert transmits(feed(link, short(NKE, a))) == ([E5] if answers else [])


def test_unconfigured_default_is_address_0() -> None:
    link = SlaveLink(FakeMeter(), SlaveSettings(echo=False))
    assert link.address == 0
    assert transmits(feed(link, short(NKE, 0))) == [E5]


def test_rsp_ud_carries_own_address_and_identity() -> None:
    link, meter = make(5)
    (answer,) = req(link, 254, True)
    frame = decode(answer)
    assert isinstance(frame, LongFrame) and frame.a == 5 and frame.c == 0x08
    assert frame.data[:8] == meter.identity.to_bytes()


def test_answer_timing_default_and_setting() -> None:
    link, _ = make(5)
    actions = feed(link, short(NKE, 5), 1.0)
    end = rx(short(NKE, 5), 1.0, 2400)[-1].time  # the last character's stop-bit sample
    assert actions == [Transmit(E5, pytest.approx(end + 2 * response_window(2400)[0]))]
    link, _ = make(5, response_delay=0.05)
    (action,) = feed(link, short(NKE, 5), 1.0)
    assert isinstance(action, Transmit) and action.not_before == pytest.approx(end + 0.05)


def test_ignores_slave_frames_and_frames_failing_checks() -> None:
    link, _ = make(5)
    assert feed(link, short(0x08, 5)) == []  # PRM = 0: another slave's frame
    for fault in (FrameFault.BAD_CHECKSUM, FrameFault.BAD_STOP, FrameFault.PARITY, FrameFault.TRUNCATED):
        assert transmits(feed(link, build_faulty(ShortFrame(NKE, 5), fault), 10.0)) == []
    for fault in (FrameFault.L_MISMATCH, FrameFault.L_OUT_OF_RANGE):
        assert transmits(feed(link, build_faulty(ControlFrame(0x53, 5, 0x50), fault), 20.0)) == []


def test_partial_frame_dropped_after_gap_longer_than_idle() -> None:
    link, _ = make(5)
    raw = short(NKE, 5)
    first = rx(raw[:2], 0.0, 2400)
    for ch in first:
        assert link.receive(ch) == []
    late = first[-1].time + char_time(2400) + inter_frame_idle(2400) * 1.5
    assert link.poll(late) == []
    rest = rx(raw[2:], late, 2400)
    assert transmits([a for ch in rest for a in link.receive(ch)]) == []
    # a partial frame within the idle limit completes
    link, _ = make(5)
    first = rx(raw[:2], 0.0, 2400)
    rest = rx(raw[2:], first[-1].time + inter_frame_idle(2400) * 0.5, 2400)
    assert transmits([a for ch in first + rest for a in link.receive(ch)]) == [E5]


# --- FCB / multi-telegram ----------------------------------------------------------------


def test_toggled_fcb_next_page_same_fcb_repeats() -> None:
    link, meter = make(5, FakeMeter(n_pages=3))
    feed(link, short(NKE, 5))
    a0 = req(link, 5, True)[0]
    assert page_of(a0) == 0
    assert req(link, 5, True) == [a0]  # repeat: identical bytes, not re-read
    assert meter.reads == 1
    a1 = req(link, 5, False)[0]
    assert page_of(a1) == 1
    assert page_of(req(link, 5, True)[0]) == 2
    assert page_of(req(link, 5, False)[0]) == 0  # after the last page: first again


def test_more_follow_is_app_data_and_nke_restarts_readout() -> None:
    link, _ = make(5, FakeMeter(n_pages=3))
    req(link, 5, True)
    req(link, 5, False)
    feed(link, short(NKE, 5))
    assert page_of(req(link, 5, True)[0]) == 0


def test_first_fcb_after_reset_is_new_either_way() -> None:
    link, meter = make(5, FakeMeter(n_pages=2))
    assert page_of(req(link, 5, False)[0]) == 0
    assert page_of(req(link, 5, True)[0]) == 1
    assert meter.reads == 2


def test_fcv0_has_no_fcb_logic() -> None:
    link, meter = make(5, FakeMeter(n_pages=2))
    assert page_of(req(link, 5, True, fcv=False)[0]) == 0
    assert page_of(req(link, 5, True, fcv=False)[0]) == 1
    assert meter.reads == 2


def test_defect_ignores_fcb() -> None:
    link, meter = make(5, FakeMeter(n_pages=2), defects=frozenset({"ignores_fcb"}))
    feed(link, short(NKE, 5))
    assert page_of(req(link, 5, True)[0]) == 0
    assert page_of(req(link, 5, True)[0]) == 1  # a repeat, but it reads on
    assert meter.reads == 2


def test_req_ud1_ack_or_alarm() -> None:
    link, meter = make(5)
    assert transmits(feed(link, short(Function.REQ_UD1 | 0x20, 5))) == [E5]
    meter.alarm = 0x07
    (answer,) = transmits(feed(link, short(Function.REQ_UD1, 5), 1.0))
    frame = decode(answer)
    assert isinstance(frame, LongFrame) and frame.ci == CI.ALARM and frame.data == b"\x07"
    assert frame.c & 0x20  # ACD: class 1 data


def test_rsp_ud_sets_acd_while_an_alarm_is_pending() -> None:
    """EN 13757-2: ACD (C bit 5) in an RSP_UD = the slave has class 1 data (an alarm)."""
    link, meter = make(5)
    feed(link, short(NKE, 5))
    (plain,) = req(link, 5, True)
    assert decode(plain).c == 0x08
    meter.alarm = 0x01
    (flagged,) = req(link, 5, False, t=1.0)
    frame = decode(flagged)
    assert isinstance(frame, LongFrame) and frame.c == 0x28 and frame.ci == CI.RSP_VARIABLE
    meter.alarm = None
    (cleared,) = req(link, 5, True, t=2.0)
    assert decode(cleared).c == 0x08


# --- selection -----------------------------------------------------------------------------

SEC = SecondaryAddress(12345678, KAM, 1, 4)


@pytest.mark.parametrize(
    ("mask", "fab", "hit"),
    [
        ("123456782D2C0104", None, True),
        ("FFFFFFFFFFFFFFFF", None, True),
        ("1234567FFFFFFFFF", None, True),
        ("F2F4F6F8FFFF0104", None, True),
        ("123456782D2CFFFF", None, True),
        ("12345679FFFFFFFF", None, False),
        ("12345678FFFF02FF", None, False),
        ("12345678FFFFFF07", None, False),
        ("123456782D2DFFFF", None, False),
        ("12345678FFFFFFFF", "11223344", True),
        ("12345678FFFFFFFF", "1122334F", True),
        ("12345678FFFFFFFF", "11223345", False),
        ("12345678FFF0FFFF", None, False),  # standard: no nibble wildcards in the manufacturer
    ],
)
def test_selection_matching(mask: str, fab: str | None, hit: bool) -> None:
    link, _ = make(5, FakeMeter(identity=SEC))
    assert transmits(feed(link, select(mask, fab))) == ([E5] if hit else [])
    assert link.selected is hit
    assert bool(req(link, 253, True, t=1.0)) is hit


def test_nibble_wildcards_setting() -> None:
    link, _ = make(5, FakeMeter(identity=SEC), nibble_wildcards=True)
    assert transmits(feed(link, select("12345678FFFF0F0F"))) == [E5]
    assert transmits(feed(link, select("123456782FFFFFFF"), 1.0)) == [E5]
    assert transmits(feed(link, select("123456783FFFFFFF"), 2.0)) == []


def test_nonmatching_selection_deselects_and_nke_deselects() -> None:
    link, _ = make(5, FakeMeter(identity=SEC))
    feed(link, select("12345678FFFFFFFF"))
    assert link.selected
    feed(link, select("87654321FFFFFFFF"), 1.0)
    assert not link.selected
    feed(link, select("12345678FFFFFFFF"), 2.0)
    assert transmits(feed(link, short(NKE, 253), 3.0)) == [E5]
    assert not link.selected
    assert transmits(feed(link, short(NKE, 253), 4.0)) == []


def test_malformed_selection_changes_nothing() -> None:
    link, _ = make(5, FakeMeter(identity=SEC))
    feed(link, select("12345678FFFFFFFF"))
    assert transmits(feed(link, snd_ud(253, CI.SELECTION, b"\x78\x56\x34"), 1.0)) == []
    assert link.selected


@pytest.mark.parametrize("id_bytes", [b"\x78\x56\x34\x1A", b"\xB8\x56\x34\x12", b"\x7C\x56\x34\x12"])
def test_selection_with_a_to_e_id_digit_matches_nothing_and_deselects(id_bytes: bytes) -> None:
    """An ID digit A-E is neither BCD nor a wildcard: no slave matches (wire input must not
    crash the engine), and like any non-matching selection it deselects."""
    link, _ = make(5, FakeMeter(identity=SEC))
    feed(link, select("12345678FFFFFFFF"))
    assert link.selected
    rest = SEC.to_bytes()[4:]
    assert transmits(feed(link, snd_ud(253, CI.SELECTION, id_bytes + rest), 1.0)) == []
    assert not link.selected
    fab_mask = SEC.to_bytes() + b"\x0C\x78" + b"\x1A\x00\x00\x00"
    assert transmits(feed(link, snd_ud(253, CI.SELECTION, fab_mask), 2.0)) == []


def test_enhanced_selection_without_fabrication_number_never_matches() -> None:
    link, _ = make(5, FakeMeter(identity=SEC, fabrication_number=None))
    assert transmits(feed(link, select("12345678FFFFFFFF", "FFFFFFFF"))) == []


def test_ci56_select_msb_first_and_deselect() -> None:
    link, _ = make(5, FakeMeter(identity=SEC), ci56="select_msb_first")
    assert transmits(feed(link, select("123456782D2C0104", ci=CI.SELECTION_56, msb=True))) == [E5]
    link, _ = make(5, FakeMeter(identity=SEC), ci56="deselect")
    feed(link, select("12345678FFFFFFFF"))
    assert transmits(feed(link, snd_ud(253, CI.SELECTION_56), 1.0)) == [E5]
    assert not link.selected
    assert transmits(feed(link, snd_ud(253, CI.SELECTION_56), 2.0)) == []


def test_defect_keeps_selection_after_nke() -> None:
    link, _ = make(5, FakeMeter(identity=SEC), defects=frozenset({"keeps_selection_after_nke"}))
    feed(link, select("12345678FFFFFFFF"))
    feed(link, short(NKE, 253), 1.0)
    assert link.selected


def test_defect_wildcard_mismatch_manufacturer() -> None:
    link, _ = make(5, FakeMeter(identity=SEC), defects=frozenset({"wildcard_mismatch_manufacturer"}))
    assert transmits(feed(link, select("12345678FFFFFFFF"))) == []
    assert transmits(feed(link, select("123456782D2CFFFF"), 1.0)) == [E5]


# --- SND_UD: set address, reset, baud switch, FCV=0 --------------------------------------


def test_set_address_acks_at_old_then_answers_at_new() -> None:
    link, meter = make(5)
    assert transmits(feed(link, snd_ud(5, CI.SET_ADDRESS, encode_set_address(9)))) == [E5]
    assert link.address == 9 and meter.addresses == [9]
    assert transmits(feed(link, short(NKE, 5), 1.0)) == []
    assert transmits(feed(link, short(NKE, 9), 2.0)) == [E5]


def test_after_set_address_rsp_ud_names_the_new_address_whatever_fcb_came_before() -> None:
    """Regression (issue 10): a readout at the old address left FCB=1 and its RSP_UD cached;
    the master's first REQ_UD2 at the new address also carries FCB=1 and got that cached
    answer, whose A field still named the old address."""
    link, _ = make(3)
    (old,) = req(link, 3, True)
    assert decode(old).a == 3  # type: ignore[union-attr]
    assert transmits(feed(link, snd_ud(3, CI.SET_ADDRESS, encode_set_address(42)), 1.0)) == [E5]
    for fcb, t in ((True, 2.0), (False, 3.0), (False, 4.0)):
        (answer,) = req(link, 42, fcb, t=t)
        assert decode(answer).a == 42, (fcb, answer.hex(" "))  # type: ignore[union-attr]


def test_set_address_out_of_range_is_not_applied() -> None:
    link, meter = make(5)
    feed(link, snd_ud(5, CI.SET_ADDRESS, encode_set_address(251)))
    assert link.address == 5 and meter.addresses == []


def test_defect_ignores_set_address() -> None:
    link, _ = make(5, defects=frozenset({"ignores_set_address"}))
    assert transmits(feed(link, snd_ud(5, CI.SET_ADDRESS, encode_set_address(9)))) == [E5]
    assert link.address == 5


@pytest.mark.parametrize(("data", "subcode"), [(b"", None), (b"\x10", 0x10)])
def test_application_reset(data: bytes, subcode: int | None) -> None:
    link, meter = make(5, FakeMeter(n_pages=2))
    req(link, 5, True)
    assert transmits(feed(link, snd_ud(5, CI.APPLICATION_RESET, data), 1.0)) == [E5]
    assert meter.resets == [subcode]
    assert page_of(req(link, 5, False, t=2.0)[0]) == 0


def test_baud_switch_acks_at_old_rate_then_switches() -> None:
    link, _ = make(5, bauds=(300, 2400, 9600))
    actions = feed(link, snd_ud(5, 0xBD))
    assert isinstance(actions[0], Transmit) and actions[0].data == E5
    assert actions[1] == SetBaud(9600, after_transmit=True)
    assert link.baud == 9600
    assert transmits(feed(link, short(NKE, 5), 1.0)) == [E5]  # fed at 9600


def test_unsupported_baud_changes_nothing() -> None:
    link, _ = make(5, bauds=(2400,))
    assert feed(link, snd_ud(5, 0xBD)) == []
    assert link.baud == 2400


def test_defect_acks_unsupported_baud() -> None:
    link, _ = make(5, bauds=(2400,), defects=frozenset({"acks_unsupported_baud"}))
    assert transmits(feed(link, snd_ud(5, 0xBD))) == [E5]
    assert link.baud == 2400


def test_defect_acks_at_new_rate() -> None:
    link, _ = make(5, defects=frozenset({"acks_at_new_rate"}))
    actions = feed(link, snd_ud(5, 0xB8))
    assert actions[0] == SetBaud(300, after_transmit=False)
    assert isinstance(actions[1], Transmit) and actions[1].data == E5


def test_baud_switch_to_255_switches_silently() -> None:
    link, _ = make(5)
    assert feed(link, snd_ud(255, 0xB8)) == [SetBaud(300, after_transmit=False)]


def test_baud_fallback_after_timeout_unless_valid_frame() -> None:
    link, _ = make(5, baud_fallback_s=30.0)
    feed(link, snd_ud(5, 0xBD))
    assert link.next_deadline is not None
    assert link.poll(10.0) == []
    assert link.poll(31.0) == [SetBaud(2400, after_transmit=False)]
    assert link.baud == 2400 and link.next_deadline is None
    feed(link, snd_ud(5, 0xBD), 40.0)
    feed(link, short(NKE, 5), 41.0)  # valid frame at 9600: the switch holds
    assert link.poll(100.0) == [] and link.baud == 9600


def test_snd_ud_fcv0_is_a_setting() -> None:
    frame = snd_ud(5, CI.APPLICATION_RESET, c=Function.SND_UD_NOFCV)
    link, _ = make(5, accept_fcv0=True)
    assert transmits(feed(link, frame)) == [E5]
    link, _ = make(5, accept_fcv0=False)
    assert transmits(feed(link, frame)) == []


def test_other_snd_ud_is_acked() -> None:
    link, _ = make(5)
    assert transmits(feed(link, snd_ud(5, 0x51, b"\x04\x13\x01\x00\x00\x00"))) == [E5]


# --- broadcast and checksum defects ------------------------------------------------------


def test_broadcast_255_acts_without_answer_and_defect_answers() -> None:
    link, meter = make(5)
    assert feed(link, snd_ud(255, CI.APPLICATION_RESET)) == []
    assert meter.resets == [None]
    assert req(link, 255, True, t=1.0) == []
    link, _ = make(5, defects=frozenset({"answers_broadcast_255"}))
    assert transmits(feed(link, short(NKE, 255))) == [E5]


def test_defect_answers_bad_checksum() -> None:
    bad = build_faulty(ShortFrame(NKE, 5), FrameFault.BAD_CHECKSUM)
    link, _ = make(5)
    assert transmits(feed(link, bad)) == []
    link, _ = make(5, defects=frozenset({"answers_bad_checksum"}))
    assert transmits(feed(link, bad)) == [E5]
    long_bad = build_faulty(ControlFrame(0x53, 5, 0x50), FrameFault.BAD_CHECKSUM)
    assert transmits(feed(link, long_bad, 1.0)) == [E5]


def test_every_defect_has_a_description_and_bad_names_are_refused() -> None:
    assert all(text for text in DEFECTS.values())
    with pytest.raises(ValueError, match="unknown defect"):
        SlaveSettings(defects=frozenset({"nope"}))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"address": 251}, "0..250"),
        ({"baud": 9600, "bauds": (2400,)}, "supported"),
        ({"bauds": (1234,)}, "not an M-Bus rate"),
        ({"ci56": "both"}, "ci56"),
        ({"baud_fallback_s": 0.0}, "baud_fallback_s"),
    ],
)
def test_settings_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SlaveSettings(**kwargs)  # type: ignore[arg-type]


def test_ci56_alias_select() -> None:
    assert SlaveSettings(ci56="select").ci56 == "select_msb_first"


# --- echo --------------------------------------------------------------------------------


def test_own_echo_dropped_and_differing_echo_is_collision() -> None:
    link = SlaveLink(FakeMeter(), SlaveSettings(address=5, echo=True))
    (tx,) = feed(link, short(NKE, 5))
    assert isinstance(tx, Transmit)
    echo = rx(tx.data, tx.not_before, 2400)
    assert [a for ch in echo for a in link.receive(ch)] == []
    assert link.collisions == 0
    # a long answer whose echo is corrupted by another sender
    (tx,) = feed(link, short(REQ | 0x20, 5), 1.0)
    assert isinstance(tx, Transmit)
    echo = rx(tx.data, tx.not_before, 2400)
    bad = [echo[0], type(echo[1])(echo[1].value & 0x0F, echo[1].time)]
    for ch in bad:
        link.receive(ch)
    assert link.collisions == 1
    # afterwards the slave listens normally again
    assert transmits(feed(link, short(NKE, 5), 5.0)) == [E5]


def test_echo_expectation_lapses_on_a_port_that_does_not_echo() -> None:
    link = SlaveLink(FakeMeter(), SlaveSettings(address=5, echo=True))
    (tx,) = feed(link, short(NKE, 5))
    assert isinstance(tx, Transmit)
    assert transmits(feed(link, short(NKE, 5), tx.not_before + 1.0)) == [E5]


def test_ft12_receiving_rules_are_settings() -> None:
    """Strict by default: a frame straight behind garbage (FT1.2 R4) and a frame with a pause
    of twice the inter-frame idle inside (R3) are dropped. With idle_after_error off and a
    longer char_gap the slave takes both (EN 13757-2 does not clearly demand either)."""
    idle = inter_frame_idle(2400)
    behind_garbage = build_faulty(ShortFrame(NKE, 5), FrameFault.GARBAGE_BEFORE)
    gapped = short(NKE, 5)
    pause = 2 * idle + char_time(2400)

    def paused(link: SlaveLink) -> list[bytes]:
        first = rx(gapped[:2], 0.0, 2400)
        rest = rx(gapped[2:], first[-1].time + pause, 2400)
        return transmits([a for ch in first + rest for a in link.receive(ch)])

    strict, _ = make(5)
    assert transmits(feed(strict, behind_garbage)) == []
    assert paused(make(5)[0]) == []
    lenient, _ = make(5, idle_after_error=False, char_gap=0.1)
    assert transmits(feed(lenient, behind_garbage)) == [E5]
    assert paused(make(5, idle_after_error=False, char_gap=0.1)[0]) == [E5]
    with pytest.raises(ValueError, match="char_gap"):
        SlaveSettings(char_gap=0)

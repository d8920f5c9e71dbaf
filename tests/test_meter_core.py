"""MeterCore, sans-I/O: answers, pages, armed faults, defects, echo, power loss."""

from __future__ import annotations

import dataclasses

import pytest

from hardware.profile import load_profile, shipped_profile
from protocol.app.requests import encode_set_address
from protocol.app.telegram import Telegram, decode_telegram
from protocol.chars import RxChar
from protocol.errors import ChecksumError, ConfigError
from protocol.fields import CI, Function, c_field
from protocol.frames import ACK, ControlFrame, LongFrame, ShortFrame, decode, encode
from protocol.link.slave import SetBaud, SlaveAction, Transmit
from protocol.meter import (
    DEVICE_DEFECTS,
    FAULTS,
    MeterCore,
    defect_names,
    heat_meter_profile,
)
from protocol.timing import char_time, response_window


class Wire:
    """Feeds a core frames as a UART at ``baud`` would deliver them, clock advancing."""

    def __init__(self, core: MeterCore, baud: int = 2400) -> None:
        self.core = core
        self.baud = baud
        self.t = 1.0
        self.end = 0.0

    def send(self, data: bytes) -> list[SlaveAction]:
        actions: list[SlaveAction] = []
        for value in data:
            self.t += char_time(self.baud)
            actions += self.core.receive(RxChar(value, self.t))
        self.end = self.t
        self.t += 1.0  # idle line before the next request
        return actions

    def echo(self, actions: list[SlaveAction]) -> list[SlaveAction]:
        """Feed back what the core sent, as the TSS721A echo, at its times."""
        out: list[SlaveAction] = []
        for action in actions:
            if isinstance(action, Transmit):
                t = action.not_before
                for value in action.data:
                    t += char_time(self.baud)
                    out += self.core.receive(RxChar(value, t))
        return out


def req_ud2(a: int = 1, fcb: bool = True) -> bytes:
    return encode(ShortFrame(c_field(Function.REQ_UD2, fcb=fcb), a))


def snd_nke(a: int = 1) -> bytes:
    return encode(ShortFrame(Function.SND_NKE, a))


def only_transmit(actions: list[SlaveAction]) -> Transmit:
    sent = [a for a in actions if isinstance(a, Transmit)]
    assert len(sent) == 1, actions
    return sent[0]


def telegram_of(action: Transmit) -> Telegram:
    frame = decode(action.data)
    assert isinstance(frame, LongFrame)
    return decode_telegram(frame)


@pytest.fixture
def core() -> MeterCore:
    return MeterCore(heat_meter_profile())


@pytest.fixture
def wire(core: MeterCore) -> Wire:
    return Wire(core)


def test_req_ud2_answers_the_profile_after_its_response_delay(core: MeterCore, wire: Wire) -> None:
    answer = only_transmit(wire.send(req_ud2()))
    # the request ends half a bit after its last character's stop-bit sample
    assert answer.not_before == pytest.approx(wire.end + 0.5 / 2400 + core.profile.response_delay)
    t = telegram_of(answer)
    assert t.ci == CI.RSP_VARIABLE and t.header is not None
    assert t.header.secondary_address == core.profile.secondary
    assert [r.quantity for r in t.records][:2] == ["Energy", "Volume"]


def test_access_number_counts_new_readouts_and_repeats_keep_it(wire: Wire) -> None:
    numbers = []
    for fcb in (True, False, False, True):
        t = telegram_of(only_transmit(wire.send(req_ud2(fcb=fcb))))
        assert t.header is not None
        numbers.append(t.header.access_number)
    assert numbers == [0, 1, 1, 2]  # the third request repeats the second (same FCB)


def test_multi_telegram_pages_follow_fcb_and_wrap() -> None:
    core = MeterCore(load_profile(shipped_profile("multi-telegram")))
    wire = Wire(core)
    wire.send(snd_nke(5))
    more = []
    first_storage = []
    for fcb in (True, False, True, False):
        t = telegram_of(only_transmit(wire.send(req_ud2(5, fcb))))
        more.append(t.more_records_follow)
        first_storage.append(max(r.storage for r in t.records))
    assert more == [True, True, False, True]
    assert first_storage == [8, 16, 24, 8]


# --- armed faults ----------------------------------------------------------------------------


def test_corrupt_checksum_wears_off_after_count(core: MeterCore, wire: Wire) -> None:
    core.arm("corrupt_checksum", count=2)
    for fcb in (True, False):
        with pytest.raises(ChecksumError):
            decode(only_transmit(wire.send(req_ud2(fcb=fcb))).data)
    assert core.armed == ()
    telegram_of(only_transmit(wire.send(req_ud2(fcb=True))))


def test_frame_faults_skip_e5_answers(core: MeterCore, wire: Wire) -> None:
    core.arm("wrong_address", address=7)
    ack = only_transmit(wire.send(snd_nke()))
    assert ack.data == bytes((ACK,)) and len(core.armed) == 1
    frame = decode(only_transmit(wire.send(req_ud2())).data)
    assert isinstance(frame, LongFrame) and frame.a == 7
    assert core.armed == ()


def test_silence_drops_e5_too_and_a_retry_is_answered(core: MeterCore, wire: Wire) -> None:
    core.arm("silence")
    assert wire.send(snd_nke()) == []
    retry = only_transmit(wire.send(req_ud2()))
    telegram_of(retry)


def test_silenced_baud_switch_still_switches_at_once(core: MeterCore, wire: Wire) -> None:
    core.arm("silence")
    actions = wire.send(encode(ControlFrame(c_field(Function.SND_UD), 1, 0xBD)))
    assert actions == [SetBaud(9600, after_transmit=False)]
    assert core.baud == 9600


def test_late_answer_starts_delay_after_the_request(core: MeterCore, wire: Wire) -> None:
    core.arm("late", delay=0.4)
    late = only_transmit(wire.send(snd_nke())).not_before
    assert late == pytest.approx(wire.end + 0.5 / 2400 + 0.4)
    core.arm("late")
    late = only_transmit(wire.send(snd_nke())).not_before - wire.end
    assert late > response_window(2400)[1]


def test_truncated_sends_the_first_n_bytes(core: MeterCore, wire: Wire) -> None:
    full = only_transmit(wire.send(req_ud2(fcb=True))).data
    core.arm("truncated", n=10)
    assert only_transmit(wire.send(req_ud2(fcb=False))).data == full[:10]


def test_wrong_c_field_is_a_valid_frame_with_another_c(core: MeterCore, wire: Wire) -> None:
    core.arm("wrong_c_field", c=0x5B)
    frame = decode(only_transmit(wire.send(req_ud2())).data)
    assert isinstance(frame, LongFrame) and frame.c == 0x5B and frame.a == 1


def test_application_error_answers_ci70_for_count_new_readouts(core: MeterCore,
                                                              wire: Wire) -> None:
    core.arm("application_error", count=2, code=8)
    ack = only_transmit(wire.send(snd_nke()))
    assert ack.data == bytes((ACK,)) and core.armed[0].remaining == 2  # E5 does not count
    first = telegram_of(only_transmit(wire.send(req_ud2(fcb=True))))
    assert first.ci == CI.APPLICATION_ERROR and first.application_error == 8
    assert first.application_error_name == "application busy"
    repeat = telegram_of(only_transmit(wire.send(req_ud2(fcb=True))))  # same FCB: a repeat
    assert repeat.application_error == 8 and core.armed[0].remaining == 1
    assert telegram_of(only_transmit(wire.send(req_ud2(fcb=False)))).application_error == 8
    assert core.armed == ()
    normal = telegram_of(only_transmit(wire.send(req_ud2(fcb=True))))
    assert normal.ci == CI.RSP_VARIABLE and normal.header is not None
    assert normal.header.access_number == 0  # the CI 70 answers carried no access number


def test_application_error_defaults_to_code_0_and_mixes_with_frame_faults(
        core: MeterCore, wire: Wire) -> None:
    core.arm("application_error")
    core.arm("wrong_address", address=9)
    frame = decode(only_transmit(wire.send(req_ud2())).data)
    assert isinstance(frame, LongFrame) and frame.a == 9
    assert frame.ci == CI.APPLICATION_ERROR and frame.data == b"\x00"
    assert core.armed == ()


def test_application_error_on_a_multi_telegram_readout_starts_it_over() -> None:
    core = MeterCore(load_profile(shipped_profile("multi-telegram")))
    wire = Wire(core)
    wire.send(snd_nke(5))
    assert telegram_of(only_transmit(wire.send(req_ud2(5, True)))).more_records_follow
    core.arm("application_error", code=3)
    error = telegram_of(only_transmit(wire.send(req_ud2(5, False))))
    assert error.application_error == 3
    again = telegram_of(only_transmit(wire.send(req_ud2(5, True))))
    assert max(r.storage for r in again.records) == 8  # page 0 again


def test_disarm_drops_all_or_one_kind(core: MeterCore) -> None:
    core.arm("silence", count=3)
    core.arm("late", delay=1.0)
    core.disarm("silence")
    assert [f.kind for f in core.armed] == ["late"]
    core.disarm()
    assert core.armed == ()


@pytest.mark.parametrize(("kind", "params", "message"), [
    ("explode", {}, "unknown fault 'explode' (allowed: corrupt_checksum, silence"),
    ("late", {"delay": -1}, "delay=-1 must be a number 0.0..60.0"),
    ("truncated", {"n": 2.5}, "n=2.5 must be an integer 1..260"),
    ("silence", {"n": 1}, "unknown parameter 'n' (allowed: none)"),
    ("wrong_address", {"addr": 1}, "(allowed: address)"),
    ("application_error", {"code": 256}, "code=256 must be an integer 0..255"),
    ("application_error", {"code": 1.5}, "code=1.5 must be an integer 0..255"),
    ("application_error", {"error": 1}, "unknown parameter 'error' (allowed: code)"),
])
def test_arm_rejects_bad_requests(core: MeterCore, kind: str, params: dict[str, float],
                                  message: str) -> None:
    with pytest.raises(ConfigError) as info:
        core.arm(kind, **params)
    assert message in str(info.value)


def test_arm_rejects_a_bad_count(core: MeterCore) -> None:
    with pytest.raises(ConfigError, match="count 0 must be an integer >= 1"):
        core.arm("silence", count=0)
    assert set(FAULTS) == {"corrupt_checksum", "silence", "late", "truncated",
                           "wrong_address", "wrong_c_field", "application_error"}


# --- defects ---------------------------------------------------------------------------------


def test_answer_timing_defects(core: MeterCore, wire: Wire) -> None:
    low, high = response_window(2400)
    core.set_defects(["answers_too_early"])
    assert only_transmit(wire.send(snd_nke())).not_before - wire.end < low
    core.set_defects(["answers_too_late"])
    assert only_transmit(wire.send(snd_nke())).not_before - wire.end > high
    core.set_defects([])
    delay = only_transmit(wire.send(snd_nke())).not_before - wire.end
    assert low <= delay <= high


def test_wrong_checksum_in_every_answer_frame(core: MeterCore, wire: Wire) -> None:
    core.set_defects({"wrong_checksum_in_answers"})
    assert only_transmit(wire.send(snd_nke())).data == bytes((ACK,))
    for fcb in (True, False, True):
        with pytest.raises(ChecksumError):
            decode(only_transmit(wire.send(req_ud2(fcb=fcb))).data)


def test_link_defects_pass_through_to_the_engine(core: MeterCore, wire: Wire) -> None:
    core.set_defects(["ignores_fcb", "answers_too_late"])
    assert core.defects == {"ignores_fcb", "answers_too_late"}
    assert core.link.settings.defects == {"ignores_fcb"}
    first = telegram_of(only_transmit(wire.send(req_ud2(fcb=True))))
    repeat = telegram_of(only_transmit(wire.send(req_ud2(fcb=True))))
    assert first.header is not None and repeat.header is not None
    assert repeat.header.access_number == first.header.access_number + 1


def test_unknown_defect_lists_the_allowed(core: MeterCore) -> None:
    with pytest.raises(ConfigError) as info:
        core.set_defects(["answers_sometimes"])
    assert "answers_sometimes" in str(info.value)
    assert all(name in str(info.value) for name in [*DEVICE_DEFECTS, "ignores_fcb"])
    assert set(DEVICE_DEFECTS) <= set(defect_names())


# --- echo, power ---------------------------------------------------------------------------


def test_own_echo_is_dropped_even_when_a_fault_changed_the_answer(core: MeterCore,
                                                                    wire: Wire) -> None:
    core.arm("truncated", n=7)
    actions = wire.send(req_ud2())
    assert wire.echo(actions) == [] and core.collisions == 0
    assert telegram_of(only_transmit(wire.send(req_ud2(fcb=False))))


def test_a_differing_echo_counts_a_collision(core: MeterCore, wire: Wire) -> None:
    answer = only_transmit(wire.send(snd_nke()))
    core.receive(RxChar(0x00, answer.not_before + char_time(2400)))
    assert core.collisions == 1


def test_power_loss_restores_profile_address_and_baud_keeps_access_number(
        core: MeterCore, wire: Wire) -> None:
    telegram_of(only_transmit(wire.send(req_ud2())))
    ack = wire.send(encode(LongFrame(c_field(Function.SND_UD), 1, CI.SET_ADDRESS,
                                     encode_set_address(42))))
    assert only_transmit(ack).data == bytes((ACK,)) and core.address == 42
    wire.send(encode(ControlFrame(c_field(Function.SND_UD, fcb=True), 42, 0xB8)))
    assert core.baud == 300
    core.arm("silence", count=5)
    core.power_lost()
    assert (core.address, core.baud, core.selected) == (1, 2400, False)
    assert len(core.armed) == 1
    core.disarm()
    t = telegram_of(only_transmit(wire.send(req_ud2())))
    assert t.header is not None and t.header.access_number == 1


def test_req_ud1_answers_the_profile_alarm() -> None:
    quiet = Wire(MeterCore(heat_meter_profile()))
    ask = encode(ShortFrame(c_field(Function.REQ_UD1, fcb=True), 1))
    assert only_transmit(quiet.send(ask)).data == bytes((ACK,))
    alarmed = MeterCore(dataclasses.replace(heat_meter_profile(), alarm=0x05))
    frame = decode(only_transmit(Wire(alarmed).send(ask)).data)
    assert isinstance(frame, LongFrame) and frame.ci == CI.ALARM and frame.data == b"\x05"


def test_a_moving_counter_grows_with_new_telegrams_not_with_repeats() -> None:
    """RecordSpec.step: every new telegram carries the counter moved on; a repeat with the
    same FCB is the cached telegram, unchanged (a real meter's counters between readouts)."""
    profile = heat_meter_profile()
    page = profile.pages[0]
    moving = dataclasses.replace(page, records=(
        dataclasses.replace(page.records[0], step=7), *page.records[1:]))
    core = MeterCore(dataclasses.replace(profile, pages=(moving,)))
    wire = Wire(core)
    first = only_transmit(wire.send(req_ud2(fcb=True))).data
    repeat = only_transmit(wire.send(req_ud2(fcb=True))).data
    new = only_transmit(wire.send(req_ud2(fcb=False))).data
    assert repeat == first
    energy = [telegram_of(Transmit(d, 0.0)).records[0].raw for d in (first, new)]
    assert energy == [12345, 12352]
    volumes = {telegram_of(Transmit(d, 0.0)).records[1].raw for d in (first, new)}
    assert volumes == {45678}  # a record without step stays put

"""Late answers are attributed to the request they answer (issue 10): a late answer heard
before the next request is a ``LateAnswer`` to the previous one, with its delay after that
request's window; it is never part of the next exchange, never a negative delay, and the
master does not talk over it. Over the simulated bus (bit-level UART, mbussim:// port)."""

from __future__ import annotations

import pytest
from test_link_helpers import rx
from test_master import sim_master

from hardware.trace import Trace
from protocol.chars import RxChar
from protocol.frames import encode
from protocol.link import LateAnswer, MasterLink, NoAnswer, Outcome, req_ud2, snd_nke
from protocol.timing import char_time, inter_frame_idle, response_window

RATE = 2400
LATE_BY = 0.030
"""How long after the response window the armed meter's answer starts (by default)."""
PAUSE = 0.040
"""What a scenario does between two exchanges: long enough for the late answer to begin."""


def late_meter(name: str, late_by: float = LATE_BY, retries: int = 0):
    master, meters = sim_master(name, 1, retries=retries)
    window = response_window(RATE)[1]
    meters[0].core.arm("late", 1, delay=window + late_by)  # type: ignore[attr-defined]
    return master, meters[0]


def test_a_late_e5_is_attributed_to_the_previous_request_not_the_next() -> None:
    master, _meter = late_meter("late-1")
    first = master.exchange(bytes.fromhex("10 40 01 41 16"), "ack")
    assert first.outcome is Outcome.NONE and first.late_answers == ()
    master.clock.sleep(PAUSE)
    second = master.exchange(bytes.fromhex("10 40 01 41 16"), "ack")
    assert second.outcome is Outcome.ACK
    assert second.response_delay is not None and second.response_delay > 0
    (late,) = second.late_answers
    assert late.raw == b"\xe5" and late.request is not None
    assert late.request.data == first.request.data
    assert late.after_window == pytest.approx(LATE_BY, abs=1e-6)
    assert late.delay == pytest.approx(response_window(RATE)[1] + LATE_BY, abs=1e-6)
    assert late.describe() == ("late answer to the previous SND_NKE A=1, 30.0 ms after its "
                               "window (217.5 ms after the request): E5")


def test_the_master_does_not_talk_over_a_late_answer() -> None:
    """The late RSP_UD has begun and is still coming when the master would send next: it
    waits for the idle line after it, so no request overlaps the answer on the bus."""
    master, meter = late_meter("late-2")
    first = master.exchange(bytes.fromhex("10 7B 01 7C 16"), "frame")
    assert first.outcome is Outcome.NONE
    master.clock.sleep(PAUSE)
    second = master.exchange(bytes.fromhex("10 40 01 41 16"), "ack")
    (late,) = second.late_answers
    assert len(late.raw) > 40 and late.raw[0] == 0x68 and late.raw[-1] == 0x16  # whole
    trace = meter.endpoint.bus.trace  # type: ignore[attr-defined]
    sent = [e for e in trace.entries if e.direction == "M>S"]
    second_start = sent[5].time - char_time(RATE)  # the second request's first stop bit
    assert second_start >= late.chars[-1].time + inter_frame_idle(RATE)


def test_late_answer_listens_on_after_an_exchange_that_got_nothing() -> None:
    master, _meter = late_meter("late-3")
    ex = master.exchange(bytes.fromhex("10 40 01 41 16"), "ack")
    assert ex.outcome is Outcome.NONE
    late = master.late_answer(ex)
    assert late is not None and late.raw == b"\xe5"
    assert late.after_window == pytest.approx(LATE_BY, abs=1e-6)
    after = master.exchange(bytes.fromhex("10 40 01 41 16"), "ack")
    assert after.late_answers == ()  # taken by late_answer, not passed on
    assert master.late_answer(after) is None  # a prompt answer: nothing more comes


def test_a_retry_hears_the_late_answer_to_the_first_attempt() -> None:
    """The first attempt's RSP_UD starts 10 ms after its window, while the retry is on the
    bus (as the answers_too_late defect does) and runs on past the retry's end: all of it is
    that attempt's late answer, none of it an answer to the retry. The meter, busy sending,
    misses the retry; the third attempt gets the clean answer."""
    master, meter = late_meter("late-4", late_by=0.010, retries=2)
    reply = master.req_ud2(1)
    ex = reply.exchange
    assert [a.outcome for a in ex.history] == [Outcome.NONE, Outcome.NONE, Outcome.FRAME]
    (late,) = ex.late_answers
    assert ex.history[1].late is late
    assert late.request is not None and late.request.data == ex.history[0].request.data
    assert late.raw == encode(reply.frame)  # the whole late telegram, nothing of it lost
    assert late.after_window == pytest.approx(0.010, abs=1e-6)
    assert ex.response_delay == pytest.approx(meter.profile.response_delay, abs=1e-6)


def test_link_keeps_strays_out_of_the_attempt() -> None:
    """Characters received before the request ended (or while nobody listens) never enter
    an attempt: they wait as a late answer to the attempt before."""
    link = MasterLink(RATE, retries=0)
    send = link.start(req_ud2(5), 0.0)
    end = send.not_before + 5 * char_time(RATE)
    link.sent(end)
    (none,) = link.poll(link.next_deadline)  # type: ignore[arg-type]
    assert isinstance(none, NoAnswer)
    window_end = end + response_window(RATE)[1]
    late_chars = rx(b"\xe5", window_end + 0.05, RATE)
    link.receive(late_chars[0])  # between exchanges
    send = link.start(snd_nke(5), late_chars[0].time)
    assert send.not_before >= late_chars[0].time + inter_frame_idle(RATE)
    end2 = send.not_before + 5 * char_time(RATE)
    link.sent(end2)
    overlap = RxChar(0xE5, end2 - 0.001)  # stop-sampled before the request had ended
    link.receive(overlap)
    events = link.poll(link.next_deadline)  # type: ignore[arg-type]
    attempt = events[0].attempt  # type: ignore[union-attr]
    assert attempt.outcome is Outcome.NONE and attempt.response_delay is None
    late = attempt.late
    assert isinstance(late, LateAnswer) and late.chars == (late_chars[0], overlap)
    assert late.after_window == pytest.approx(0.05)  # rx() starts the E5 there


def test_characters_before_any_request_are_named_so() -> None:
    link = MasterLink(RATE)
    link.receive(RxChar(0x68, 1.0))
    late = link.take_late()
    assert late is not None and late.request is None
    assert late.describe() == "1 characters before any request: 68"
    assert link.take_late() is None


def test_the_trace_keeps_the_late_answer_once() -> None:
    trace = Trace()
    master, _meter = late_meter("late-5")
    master.trace = trace
    master.exchange(bytes.fromhex("10 40 01 41 16"), "ack")
    master.clock.sleep(PAUSE)
    master.exchange(bytes.fromhex("10 40 01 41 16"), "ack")
    assert [e.value for e in trace.entries if e.direction == "S>M"] == [0xE5, 0xE5]


class BabblingPort:
    """A bus that never falls silent: a character every character time, and one is always
    waiting to be read (a stuck slave, a noise source)."""

    def __init__(self) -> None:
        from test_link_helpers import FakeClock

        self.clock = FakeClock(0.0)
        self.baud = RATE
        self.writes = 0

    def set_baud(self, baud: int) -> None:
        self.baud = baud

    def write(self, data: object) -> float:
        self.writes += 1
        return self.clock.now() + 5 * char_time(RATE)

    def read_char(self, deadline: float) -> RxChar:
        self.clock.advance_to(min(deadline, self.clock.now() + char_time(RATE)))
        return RxChar(0x55, self.clock.now())

    def reset_input(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_babbling_bus_does_not_hold_the_master_for_ever() -> None:
    from protocol.timing import frame_time
    from rig.master import MAX_FRAME_BYTES, Master

    port = BabblingPort()
    master = Master(port, port.clock, retries=1)  # type: ignore[arg-type]
    ex = master.exchange(bytes.fromhex("10 40 01 41 16"), "ack", retries=1)
    # the babble began before each request ended and never paused: no answer to it
    assert ex.outcome is Outcome.NONE and port.writes == 2 and ex.late_answers
    late = master.late_answer(ex)
    assert late is not None and late.raw[:3] == b"UUU"
    longest = frame_time(MAX_FRAME_BYTES, RATE)
    assert port.clock.now() < 6 * (response_window(RATE)[1] + longest)  # every wait bounded

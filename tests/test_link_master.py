"""MasterLink: request encoding, FCB per address, listening window, classification, retries."""

from __future__ import annotations

import pytest
from test_link_helpers import rx

from protocol.chars import RxChar, WireBytes
from protocol.frames import LongFrame, ShortFrame, SingleChar, encode
from protocol.link import (
    Ack,
    Answer,
    Collision,
    Garbled,
    MasterLink,
    NoAnswer,
    Outcome,
    Retrying,
    raw_request,
    req_ud1,
    req_ud2,
    snd_nke,
    snd_ud,
)
from protocol.link.master import Request
from protocol.timing import char_time, inter_frame_idle, response_window

BAUD = 2400
CT = char_time(BAUD)
RSP = encode(LongFrame(0x08, 5, 0x72, bytes(12)))


def run_attempt(link: MasterLink, answer: list[RxChar] | None, *, sent_at: float) -> list[object]:
    """Report the request as sent at ``sent_at``, deliver ``answer``, poll until an outcome."""
    link.sent(sent_at)
    for ch in answer or []:
        assert link.receive(ch) == []
    events: list[object] = []
    while not events:
        deadline = link.next_deadline
        assert deadline is not None
        assert link.poll(deadline - 1e-6) == []
        events = list(link.poll(deadline))
    return events


def answer_at(data: bytes, request_end: float, delay: float = 0.01) -> list[RxChar]:
    return rx(data, request_end + delay, BAUD)


def one(link: MasterLink, request: Request, data: bytes | None, t: float = 10.0) -> object:
    send = link.start(request, t)
    end = send.not_before + len(send.data) * CT
    events = run_attempt(link, answer_at(data, end) if data is not None else None, sent_at=end)
    return events[0]


def test_request_encodings_and_fcb_sequence() -> None:
    link = MasterLink(BAUD, retries=0)
    assert link.start(snd_nke(5), 0.0).data.data == encode(ShortFrame(0x40, 5))
    link.abort()
    # first REQ_UD2 after nothing / SND_NKE carries FCB=1, then toggles on success
    c_fields = []
    for _ in range(3):
        send = link.start(req_ud2(5), 100.0)
        c_fields.append(send.data.data[1])
        end = send.not_before + 5 * CT
        run_attempt(link, answer_at(RSP, end), sent_at=end)
    assert c_fields == [0x7B, 0x5B, 0x7B]
    assert one(link, snd_nke(5), b"\xe5", 200.0).attempt.outcome is Outcome.ACK  # type: ignore[attr-defined]
    assert link.start(req_ud2(5), 300.0).data.data[1] == 0x7B
    link.abort()
    assert link.start(req_ud2(6), 300.0).data.data[1] == 0x7B  # per address
    link.abort()


def test_failed_exchange_does_not_toggle_and_retry_keeps_fcb() -> None:
    link = MasterLink(BAUD, retries=2)
    send = link.start(req_ud2(5), 0.0)
    sent = [send.data]
    end = send.not_before + 5 * CT
    events = run_attempt(link, None, sent_at=end)
    assert isinstance(events[0], NoAnswer) and not events[0].final
    assert isinstance(events[1], Retrying) and events[1].number == 2
    sent.append(events[1].send.data)
    assert events[1].send.not_before >= end + inter_frame_idle(BAUD)
    end2 = events[1].send.not_before + 5 * CT
    events = run_attempt(link, None, sent_at=end2)
    sent.append(events[1].send.data)
    end3 = events[1].send.not_before + 5 * CT
    events = run_attempt(link, None, sent_at=end3)
    assert isinstance(events[0], NoAnswer) and events[0].final and len(events) == 1
    assert len({w.data for w in sent}) == 1 and sent[0].data[1] == 0x7B
    assert link.start(req_ud2(5), 50.0).data.data[1] == 0x7B  # not toggled
    link.abort()


@pytest.mark.parametrize("retries", [0, 1, 9])
def test_retry_count_setting(retries: int) -> None:
    link = MasterLink(BAUD, retries=retries)
    send = link.start(snd_nke(1), 0.0)
    attempts = 0
    while True:
        end = send.not_before + 5 * CT
        events = run_attempt(link, None, sent_at=end)
        attempts += 1
        if isinstance(events[-1], Retrying):
            send = events[-1].send
            continue
        break
    assert attempts == retries + 1


def test_retries_out_of_range() -> None:
    with pytest.raises(ValueError, match="0..9"):
        MasterLink(BAUD, retries=10)


@pytest.mark.parametrize(
    ("data", "kind", "outcome"),
    [
        (b"\xe5", Ack, Outcome.ACK),
        (RSP, Answer, Outcome.FRAME),
        (b"\xe5\xe5", Collision, Outcome.COLLISION),
        (b"\xe5\x42", Collision, Outcome.COLLISION),
        (RSP + b"\x00", Collision, Outcome.COLLISION),
        (RSP[:-1] + b"\x00", Garbled, Outcome.GARBLED),
        (RSP[:10], Garbled, Outcome.GARBLED),
        (b"\x42", Garbled, Outcome.GARBLED),
    ],
)
def test_classification(data: bytes, kind: type, outcome: Outcome) -> None:
    link = MasterLink(BAUD, retries=0)
    event = one(link, req_ud2(5), data)
    assert isinstance(event, kind)
    assert event.attempt.outcome is outcome  # type: ignore[attr-defined]


def test_flagged_char_is_garbled_and_offset_second_ack_is_collision() -> None:
    link = MasterLink(BAUD, retries=0)
    send = link.start(snd_nke(5), 0.0)
    end = send.not_before + 5 * CT
    (event,) = run_attempt(link, [RxChar(0xE5, end + 0.01, parity_error=True)], sent_at=end)
    assert isinstance(event, Garbled)
    # a second E5 late in the response window is still heard
    send = link.start(snd_nke(5), 1.0)
    end = send.not_before + 5 * CT
    (late,) = rx(b"\xe5", end + response_window(BAUD)[1], BAUD)  # starts at the window's end
    (event,) = run_attempt(link, [RxChar(0xE5, end + 0.01), late], sent_at=end)
    assert isinstance(event, Collision)


def test_listening_covers_window_and_answer_transmission() -> None:
    link = MasterLink(BAUD, retries=0)
    send = link.start(req_ud2(5), 0.0)
    end = send.not_before + 5 * CT
    link.sent(end)
    # the latest answer starts at the window's end; its first character is received a
    # character time later
    assert link.next_deadline == pytest.approx(end + response_window(BAUD)[1] + CT)
    chars = answer_at(RSP, end, delay=response_window(BAUD)[1])
    for ch in chars:
        link.receive(ch)
    deadline = link.next_deadline
    assert deadline is not None and deadline > chars[-1].time
    events = link.poll(deadline)
    assert isinstance(events[0], Answer) and events[0].frame == LongFrame(0x08, 5, 0x72, bytes(12))
    attempt = events[0].attempt
    assert attempt.response_delay == pytest.approx(response_window(BAUD)[1])


@pytest.mark.parametrize("rate", [300, 2400, 9600])
@pytest.mark.parametrize("request_", [snd_nke(5), req_ud2(5)], ids=["E5", "RSP_UD"])
def test_answer_starting_at_the_end_of_the_window_is_heard(rate: int, request_: Request) -> None:
    # a slave may start its answer up to 330 bit times + 50 ms after the request: listening
    # must last until that answer's first character has been received (its stop-bit sample)
    link = MasterLink(rate, retries=0)
    send = link.start(request_, 0.0)
    end = send.not_before + len(send.data) * char_time(rate)
    data = b"\xe5" if request_.kind == "snd_nke" else RSP
    chars = rx(data, end + response_window(rate)[1], rate)
    link.sent(end)
    deadline = link.next_deadline
    assert deadline is not None and deadline >= chars[0].time  # still listening then
    (event,) = run_attempt(link, chars, sent_at=end)
    assert isinstance(event, Ack if request_.kind == "snd_nke" else Answer)
    assert event.attempt.response_delay == pytest.approx(response_window(rate)[1])
    # and the next frame waits for the idle line after the answer's last character
    assert link.start(snd_nke(5), 0.0).not_before >= chars[-1].time + inter_frame_idle(rate)


def test_read_latency_extends_listening_and_the_gap_limit() -> None:
    """A USB-serial master sees characters late and in chunks: with its read latency declared,
    an E5 that starts at the window's end and is read 16 ms late is heard; without, it is not."""
    rate, latency = 9600, 0.016

    def outcome(read_latency: float) -> list[object]:
        link = MasterLink(rate, retries=0, read_latency=read_latency)
        send = link.start(snd_nke(5), 0.0)
        end = send.not_before + len(send.data) * char_time(rate)
        link.sent(end)
        (e5,) = rx(b"\xe5", end + response_window(rate)[1], rate)
        late = RxChar(e5.value, e5.time + latency)
        events = list(link.poll(late.time - 1e-6))
        if events:
            return events  # the master gave up before the character was read
        link.receive(late)
        while not events:
            deadline = link.next_deadline
            assert deadline is not None
            events = list(link.poll(deadline))
        return events

    assert isinstance(outcome(0.0)[0], NoAnswer)
    assert isinstance(outcome(latency)[0], Ack)
    assert MasterLink(rate, read_latency=latency).gap_limit == pytest.approx(
        MasterLink(rate).gap_limit + latency)
    with pytest.raises(ValueError, match="read latency"):
        MasterLink(rate, read_latency=2.0)


def test_response_delay_and_first_char_time() -> None:
    link = MasterLink(BAUD, retries=0)
    event = one(link, snd_nke(5), b"\xe5", 0.0)
    attempt = event.attempt  # type: ignore[attr-defined]
    assert attempt.response_delay == pytest.approx(0.01)
    assert attempt.frame == SingleChar()


def test_inter_frame_idle_respected_after_traffic() -> None:
    link = MasterLink(BAUD, retries=0)
    link.receive(RxChar(0x42, 5.0))  # stray traffic between exchanges
    send = link.start(snd_nke(5), 5.0)
    assert send.not_before == pytest.approx(5.0 + inter_frame_idle(BAUD) + CT)
    link.abort()


def test_broadcast_255_expects_nothing_and_does_not_retry() -> None:
    link = MasterLink(BAUD, retries=2)
    events = run_attempt(link, None, sent_at=link.start(snd_nke(255), 0.0).not_before + 5 * CT)
    assert isinstance(events[0], NoAnswer) and events[0].final


def test_other_requests_and_raw() -> None:
    link = MasterLink(BAUD)
    assert link.start(req_ud1(5), 0.0).data.data[1] == 0x7A
    link.abort()
    assert link.start(req_ud2(5, fcv=False), 0.0).data.data[1] == 0x4B
    link.abort()
    assert link.start(snd_ud(5, 0xBD), 0.0).data.data == bytes.fromhex("680303685305BD1516")
    link.abort()
    assert link.start(snd_ud(5, 0x50, fcv=False), 0.0).data.data[4] == 0x43
    link.abort()
    wire = WireBytes(b"\x10\x40", frozenset({1}))
    assert link.start(raw_request(wire), 0.0).data == wire
    link.abort()
    assert link.start(raw_request(ShortFrame(0x40, 1)), 0.0).data.data == encode(ShortFrame(0x40, 1))
    link.abort()


def test_misuse_is_refused() -> None:
    link = MasterLink(BAUD)
    link.start(snd_nke(1), 0.0)
    with pytest.raises(RuntimeError, match="in progress"):
        link.start(snd_nke(1), 0.0)
    with pytest.raises(RuntimeError, match="baud"):
        link.set_baud(9600)
    link.abort()
    with pytest.raises(RuntimeError, match="sent"):
        link.sent(1.0)
    with pytest.raises(ValueError, match="expect"):
        Request("raw", None, expect="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="address"):
        snd_nke(256)


def test_babbling_bus_does_not_keep_the_master_listening() -> None:
    link = MasterLink(BAUD, retries=0)
    send = link.start(req_ud2(5), 0.0)
    end = send.not_before + 5 * CT
    link.sent(end)
    t = end
    events: list[object] = []
    for _ in range(100_000):
        t += CT
        deadline = link.next_deadline
        assert deadline is not None
        if t > deadline:
            events = link.poll(deadline)
            break
        link.receive(RxChar(0x00, t, framing_error=True))
    assert isinstance(events[0], Garbled)
    assert t - end < response_window(BAUD)[1] + 262 * CT + 8 * link.gap_limit


def test_response_timeout_setting_replaces_the_window() -> None:
    link = MasterLink(BAUD, retries=0)
    link.response_timeout = 0.5
    send = link.start(snd_nke(5), 0.0)
    end = send.not_before + 5 * CT
    link.sent(end)
    assert link.next_deadline == pytest.approx(end + 0.5 + CT)  # + the first character
    link.abort()
    with pytest.raises(ValueError, match="response timeout"):
        link.response_timeout = 0.0


def test_answer_naming_another_primary_address_is_a_wrong_address() -> None:
    from protocol.link import WrongAddress

    link = MasterLink(BAUD, retries=0)
    event = one(link, req_ud2(4), RSP)  # RSP has A = 5
    assert isinstance(event, WrongAddress) and event.received == 5
    assert event.attempt.outcome is Outcome.WRONG_ADDRESS
    assert isinstance(one(link, req_ud2(5), RSP, t=20.0), Answer)


@pytest.mark.parametrize("address", [253, 254])
def test_selected_and_broadcast_requests_take_any_a_field(address: int) -> None:
    # the slave answers a request to 253 / 254 with its own primary address
    link = MasterLink(BAUD, retries=0)
    assert isinstance(one(link, req_ud2(address), RSP), Answer)


def test_wrong_address_is_retried() -> None:
    link = MasterLink(BAUD, retries=1)
    send = link.start(req_ud2(4), 0.0)
    end = send.not_before + len(send.data) * CT
    events = run_attempt(link, answer_at(RSP, end), sent_at=end)
    assert [type(e).__name__ for e in events] == ["WrongAddress", "Retrying"]

"""Framer: incremental receive, resynchronisation, gaps, flagged characters; frame faults."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_frames import frame_strategy

from protocol.chars import RxChar
from protocol.errors import (
    CharacterError,
    ChecksumError,
    GapError,
    LengthMismatchError,
    LengthRangeError,
    LineIdleError,
    StartByteError,
    StopByteError,
    TruncatedFrameError,
)
from protocol.frame_faults import FrameFault, GappedWire, build_faulty
from protocol.framer import Framer, FrameReceived, FrameRejected
from protocol.frames import ControlFrame, LongFrame, ShortFrame, SingleChar, encode

CT = 11 / 2400
GAP = 33 / 2400


def chars(data: bytes, t0: float = 0.0, bad: frozenset[int] = frozenset()) -> list[RxChar]:
    return [RxChar(b, t0 + (i + 1) * CT, parity_error=i in bad) for i, b in enumerate(data)]


def run(framer: Framer, rx: list[RxChar]) -> list[FrameReceived | FrameRejected]:
    out: list[FrameReceived | FrameRejected] = []
    for ch in rx:
        out.extend(framer.feed(ch))
    return out


def frames_of(events: list[FrameReceived | FrameRejected]) -> list[object]:
    return [e.frame for e in events if isinstance(e, FrameReceived)]


def errors_of(events: list[FrameReceived | FrameRejected]) -> list[type]:
    return [type(e.error) for e in events if isinstance(e, FrameRejected)]


LONG = LongFrame(0x08, 0x05, 0x72, bytes(range(0xE0, 0xF0)))  # E5 among the data
SHORT = ShortFrame(0x7B, 0x05)
CONTROL = ControlFrame(0x53, 0xFE, 0xBD)


@pytest.mark.parametrize("frame", [SingleChar(), SHORT, CONTROL, LONG, LongFrame(8, 1, 0x72, bytes(252))])
def test_each_kind_received_with_times(frame: object) -> None:
    raw = encode(frame)  # type: ignore[arg-type]
    events = run(Framer(GAP, char_time=CT), chars(raw, 1.0))
    assert len(events) == 1 and isinstance(events[0], FrameReceived)
    assert events[0].frame == frame and events[0].raw == raw
    assert events[0].start == pytest.approx(1.0 + CT)
    assert events[0].end == pytest.approx(1.0 + len(raw) * CT)


def test_nothing_emitted_before_last_byte() -> None:
    raw = encode(LONG)
    framer = Framer(None)
    rx = chars(raw)
    assert run(framer, rx[:-1]) == []
    assert framer.pending == raw[:-1]
    assert frames_of(run(framer, rx[-1:])) == [LONG]


def test_garbage_bytes_rejected_one_by_one_then_frame() -> None:
    events = run(Framer(None), chars(b"\x00\x42" + encode(SHORT)))
    assert errors_of(events) == [StartByteError, StartByteError]
    assert frames_of(events) == [SHORT]


def test_flagged_char_inside_frame_rejects_and_resyncs_after_it() -> None:
    raw = encode(LONG)
    events = run(Framer(None), chars(raw, bad=frozenset({5})) + chars(encode(SHORT), 1.0))
    assert errors_of(events)[0] is CharacterError
    rejected = [e for e in events if isinstance(e, FrameRejected)][0]
    assert rejected.raw == raw[:6] and rejected.error.offset == 5
    # the rest of the corrupted frame is garbage: its E5 data bytes are not taken for acks
    assert frames_of(events) == [SHORT]
    assert SingleChar() not in frames_of(events)


def test_flagged_char_while_hunting_is_character_error() -> None:
    events = run(Framer(None), chars(b"\xe5", bad=frozenset({0})))
    assert errors_of(events) == [CharacterError] and frames_of(events) == []


def test_bad_checksum_drops_whole_frame_even_with_e5_in_data() -> None:
    bad = build_faulty(LONG, FrameFault.BAD_CHECKSUM).data
    events = run(Framer(None), chars(bad + encode(SHORT)))
    assert errors_of(events) == [ChecksumError]
    assert frames_of(events) == [SHORT]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FrameFault.BAD_STOP, StopByteError),
        (FrameFault.L_MISMATCH, LengthMismatchError),
        (FrameFault.L_OUT_OF_RANGE, LengthRangeError),
        (FrameFault.BAD_CHECKSUM, ChecksumError),
    ],
)
def test_faulty_long_frames_rejected_then_next_frame_found(fault: FrameFault, error: type) -> None:
    bad = build_faulty(CONTROL, fault).data
    events = run(Framer(None), chars(bad) + chars(encode(SHORT), 1.0))
    assert errors_of(events)[0] is error
    assert frames_of(events)[-1] == SHORT


def test_stray_68_before_frame_costs_only_itself() -> None:
    for followers in ([SHORT], [CONTROL], [SingleChar(), SHORT]):
        raw = b"".join(encode(f) for f in followers)  # type: ignore[arg-type]
        events = run(Framer(None), chars(b"\x68" + raw))
        assert frames_of(events) == followers
        assert len(errors_of(events)) == 1


def test_e5_after_header_failure_is_an_ack() -> None:
    events = run(Framer(None), chars(b"\x68\xe5\x42"))
    assert errors_of(events) == [LengthMismatchError, StartByteError]
    assert frames_of(events) == [SingleChar()]


def test_gap_inside_frame_drops_partial_and_restarts() -> None:
    raw = encode(SHORT)
    framer = Framer(GAP, char_time=CT)
    first = chars(raw[:3])
    late = chars(raw, first[-1].time + 2 * GAP)
    events = run(framer, first + late)
    assert errors_of(events) == [GapError]
    assert frames_of(events) == [SHORT]


def test_gap_at_limit_is_tolerated() -> None:
    raw = encode(SHORT)
    framer = Framer(GAP, char_time=CT)
    first = chars(raw[:2])
    rest = chars(raw[2:], first[-1].time + GAP * 0.99)
    assert frames_of(run(framer, first + rest)) == [SHORT]


def test_expire_drops_partial_only_after_gap() -> None:
    framer = Framer(GAP, char_time=CT)
    rx = chars(encode(LONG)[:10])
    run(framer, rx)
    assert framer.expire(rx[-1].time + GAP * 0.5) == []
    events = framer.expire(rx[-1].time + GAP * 1.5)
    assert errors_of(events) == [GapError] and framer.pending == b""


def test_expire_without_gap_limit_keeps_partial_flush_rejects() -> None:
    framer = Framer(None)
    run(framer, chars(b"\x10\x5b"))
    assert framer.expire(1e9) == []
    events = framer.flush()
    assert errors_of(events) == [TruncatedFrameError]
    assert framer.flush() == []


def test_negative_gap_limit_refused() -> None:
    with pytest.raises(ValueError, match="gap_limit"):
        Framer(-1.0)


# --- property: valid frames separated by garbage and gaps come out exactly -----------------

frame_st = frame_strategy(60)
plain_garbage = st.binary(max_size=6).map(lambda b: bytes(x for x in b if x not in (0x10, 0x68, 0xE5)))
# ("plain", bytes): non-start bytes; ("flagged", bytes): any values with parity errors;
# ("partial", bytes): a proper prefix of a frame (a frame cut off), followed by a gap.
separator_st = st.one_of(
    st.tuples(st.just("plain"), plain_garbage),
    st.tuples(st.just("flagged"), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("partial"), st.builds(
        lambda f, cut: encode(f)[: max(1, min(cut, len(encode(f)) - 1))],
        frame_st.filter(lambda f: not isinstance(f, SingleChar)), st.integers(1, 70))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(separator_st, frame_st), max_size=8), st.booleans())
def test_property_frames_survive_garbage_and_gaps(items: list[tuple[tuple[str, bytes], object]],
                                                  strict: bool) -> None:
    """Strict receiving (the slave's) needs the idle line after garbage: give it one."""
    framer = Framer(GAP, char_time=CT, idle_after_error=GAP if strict else None)
    rx: list[RxChar] = []
    t = 0.0
    for (kind, junk), frame in items:
        if kind == "flagged":
            part = chars(junk, t, bad=frozenset(range(len(junk))))
        else:
            part = chars(junk, t)
        rx += part
        t = part[-1].time if part else t
        if kind == "partial" or (strict and junk):
            t += 2 * GAP
        part = chars(encode(frame), t)  # type: ignore[arg-type]
        rx += part
        t = part[-1].time
    events = run(framer, rx)
    events += framer.expire(t + 10)
    assert frames_of(events) == [f for _, f in items]


# --- frame faults --------------------------------------------------------------------------


def test_build_faulty_variants() -> None:
    raw = encode(CONTROL)
    assert build_faulty(CONTROL, FrameFault.TRUNCATED, n=4).data == raw[:4]
    par = build_faulty(CONTROL, FrameFault.PARITY, index=3)
    assert par.data == raw and par.bad_parity == frozenset({3})
    assert build_faulty(raw, "garbage_before", garbage=b"\x01").data == b"\x01" + raw
    assert build_faulty(CONTROL, FrameFault.BAD_STOP, value=0x17).data[-1] == 0x17
    assert build_faulty(CONTROL, FrameFault.L_MISMATCH, l2=9).data[1:3] == b"\x03\x09"
    assert build_faulty(CONTROL, FrameFault.L_OUT_OF_RANGE, length=0).data[1:3] == b"\x00\x00"
    assert build_faulty(SHORT, FrameFault.BAD_CHECKSUM, delta=3).data[3] == (encode(SHORT)[3] + 3) & 0xFF


def test_gapped_wire_parts() -> None:
    gapped = build_faulty(LONG, FrameFault.GAP, after=4, pause=0.25)
    assert isinstance(gapped, GappedWire) and gapped.pause == 0.25
    first, second = gapped.parts
    assert first.data + second.data == encode(LONG) and len(first) == 4


@pytest.mark.parametrize(
    ("frame", "fault", "params", "match"),
    [
        (SHORT, FrameFault.L_MISMATCH, {}, "only long"),
        (SingleChar(), FrameFault.BAD_CHECKSUM, {}, "single character"),
        (SHORT, FrameFault.TRUNCATED, {"n": 5}, "n=5"),
        (SHORT, FrameFault.PARITY, {"index": 9}, "index=9"),
        (SHORT, FrameFault.BAD_STOP, {"value": 0x16}, "other than 0x16"),
        (SHORT, FrameFault.BAD_CHECKSUM, {"whatever": 1}, "unknown parameter"),
        (CONTROL, FrameFault.L_OUT_OF_RANGE, {"length": 3}, "0..2"),
    ],
)
def test_build_faulty_rejects_bad_params(frame: object, fault: FrameFault, params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_faulty(frame, fault, **params)  # type: ignore[arg-type]


def test_every_fault_is_rejected_by_the_framer() -> None:
    for fault in FrameFault:
        if fault in (FrameFault.GARBAGE_BEFORE, FrameFault.GAP):
            continue
        wire = build_faulty(LONG, fault)
        framer = Framer(None)
        events = run(framer, chars(wire.data, bad=wire.bad_parity)) + framer.flush()
        assert LONG not in frames_of(events), fault
        assert any(isinstance(e, FrameRejected) for e in events), fault


def test_skip_after_flagged_char_ends_at_a_gap() -> None:
    raw = encode(LONG)
    framer = Framer(GAP, char_time=CT)
    cut = chars(raw[:8], bad=frozenset({6}))
    events = run(framer, cut + chars(encode(SHORT), cut[-1].time + 2 * GAP))
    assert errors_of(events) == [CharacterError]
    assert frames_of(events) == [SHORT]


# --- strict receiving (the slave's FT1.2 rule): idle line after an error -------------------


def strict() -> Framer:
    return Framer(GAP, char_time=CT, idle_after_error=GAP)


def test_strict_frame_right_behind_garbage_is_rejected() -> None:
    events = run(strict(), chars(b"\x00\xff" + encode(SHORT)))
    assert frames_of(events) == []
    assert LineIdleError in errors_of(events)


def test_strict_frame_after_idle_line_is_taken() -> None:
    framer = strict()
    junk = chars(b"\x00\xff")
    late = chars(encode(SHORT), junk[-1].time + GAP * 1.01)
    assert frames_of(run(framer, junk + late)) == [SHORT]


def test_strict_every_early_byte_restarts_the_wait() -> None:
    framer = strict()
    junk = chars(b"\x00")
    more = chars(b"\x01", junk[-1].time + GAP * 0.5)
    late = chars(encode(SHORT), more[-1].time + GAP * 0.9)
    assert frames_of(run(framer, junk + more + late)) == []


def test_strict_back_to_back_valid_frames_are_fine() -> None:
    assert frames_of(run(strict(), chars(encode(SHORT) + encode(CONTROL)))) == [SHORT, CONTROL]


def test_strict_stray_68_costs_the_frame_behind_it() -> None:
    events = run(strict(), chars(b"\x68" + encode(SHORT)))
    assert frames_of(events) == []

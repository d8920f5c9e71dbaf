"""The bit-level UART model of the simulated bus: one receiver rule, no special cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.sim import Endpoint, SimBus, Simulation
from hardware.sim.uart import Channel, CharRecord, View, char_levels
from protocol import frames
from protocol.chars import RxChar, WireBytes, even_parity_bit
from protocol.timing import BAUD_RATES, char_time

RSP_A = frames.encode(frames.LongFrame(0x08, 1, 0x72, bytes(range(0x10, 0x30))))
RSP_B = frames.encode(frames.LongFrame(0x08, 2, 0x72, bytes(range(0x40, 0x60))))


def collect(ep: Endpoint) -> list[RxChar]:
    got: list[RxChar] = []
    ep.on_receive = got.append
    return got


def values(chars: list[RxChar]) -> bytes:
    return bytes(c.value for c in chars)


def make_bus(master_baud: int = 2400, **kw: object) -> tuple[Simulation, SimBus]:
    sim = Simulation(7)
    return sim, SimBus(sim, master_baud=master_baud, **kw)  # type: ignore[arg-type]


def test_char_levels_are_8e1_lsb_first() -> None:
    assert char_levels(0xE5, False) == (0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1)
    assert char_levels(0x00, False) == (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
    assert char_levels(0x00, True)[9] == 1


@pytest.mark.parametrize("rate", [300, 2400, 9600, 38400])
def test_master_frame_reaches_every_slave_clean_with_stop_sample_times(rate: int) -> None:
    sim, bus = make_bus(rate)
    slaves = [bus.add_slave(f"s{i}", rate) for i in range(3)]
    got = [collect(s) for s in slaves]
    req = frames.encode(frames.ShortFrame(0x5B, 1))
    end = bus.master.transmit(req, at=0.5)
    sim.run_until(end + 0.1)
    assert end == pytest.approx(0.5 + len(req) * char_time(rate))
    for chars in got:
        assert values(chars) == req
        assert all(c.ok for c in chars)
        assert [c.time for c in chars] == pytest.approx(
            [0.5 + (i * 11 + 10.5) / rate for i in range(len(req))]
        )


def test_slave_answer_reaches_master_and_slaves_do_not_hear_each_other() -> None:
    sim, bus = make_bus()
    a, b = bus.add_slave("a"), bus.add_slave("b")
    got_m, got_a, got_b = collect(bus.master), collect(a), collect(b)
    a.transmit(RSP_A, at=0.01)
    sim.run_until(1.0)
    assert values(got_m) == RSP_A and all(c.ok for c in got_m)
    assert got_b == []
    assert values(got_a) == RSP_A  # the TSS721A echo: a slave hears itself


def test_two_identical_aligned_acks_read_as_one_clean_ack() -> None:
    sim, bus = make_bus()
    got = collect(bus.master)
    for name in ("a", "b"):
        bus.add_slave(name).transmit(b"\xe5", at=0.02)
    sim.run_until(0.1)
    assert got == [RxChar(0xE5, 0.02 + 10.5 / 2400)]


def test_two_different_aligned_answers_read_as_garbage_with_parity_errors() -> None:
    sim, bus = make_bus()
    got = collect(bus.master)
    bus.add_slave("a").transmit(RSP_A, at=0.02)
    bus.add_slave("b").transmit(RSP_B, at=0.02)
    sim.run_until(1.0)
    data = values(got)
    assert data == bytes(x & y for x, y in zip(RSP_A, RSP_B, strict=False))  # the AND
    assert data not in (RSP_A, RSP_B)
    assert any(c.parity_error for c in got)
    assert all(c.parity_error == (even_parity_bit(x) & even_parity_bit(y) != even_parity_bit(x & y))
               for c, x, y in zip(got, RSP_A, RSP_B, strict=False))


def test_two_answers_offset_by_bits_read_with_framing_errors() -> None:
    sim, bus = make_bus()
    got = collect(bus.master)
    bus.add_slave("a").transmit(RSP_A, at=0.02)
    bus.add_slave("b").transmit(RSP_B, at=0.02 + 3.5 / 2400)
    sim.run_until(1.0)
    assert any(c.framing_error for c in got)
    assert any(c.parity_error for c in got)
    assert values(got) not in (RSP_A, RSP_B)


def test_2400_baud_slave_hears_9600_baud_master_as_garbage() -> None:
    sim, bus = make_bus(9600)
    slow, fast = bus.add_slave("slow", 2400), bus.add_slave("fast", 9600)
    got_slow, got_fast = collect(slow), collect(fast)
    req = frames.encode(frames.LongFrame(0x53, 1, 0x51, b"\x01\x7a\x05"))
    sim.run_until(bus.master.transmit(req) + 0.1)
    assert values(got_fast) == req
    assert values(got_slow) != req
    assert len(got_slow) < len(req)
    assert any(not c.ok for c in got_slow)


@pytest.mark.parametrize(
    ("offset_bits", "clean"),
    [(0.05, True), (0.2, True), (0.45, True), (0.55, False), (0.8, False), (1.0, False)],
)
def test_fractional_bit_offsets_behave_as_a_real_uart(offset_bits: float, clean: bool) -> None:
    sim, bus = make_bus()
    got = collect(bus.master)
    bus.add_slave("a").transmit(b"\xe5\xe5", at=0.02)
    bus.add_slave("b").transmit(b"\xe5\xe5", at=0.02 + offset_bits / 2400)
    sim.run_until(0.1)
    if clean:
        assert values(got) == b"\xe5\xe5" and all(c.ok for c in got)
    else:
        assert values(got) != b"\xe5\xe5" or not all(c.ok for c in got)


def test_wirebytes_bad_parity_flags_exactly_that_character() -> None:
    sim, bus = make_bus()
    got = collect(bus.add_slave("a"))
    req = frames.encode(frames.ShortFrame(0x40, 0xFD))
    sim.run_until(bus.master.transmit(WireBytes(req, frozenset({2}))) + 0.01)
    assert values(got) == req
    assert [c.parity_error for c in got] == [False, False, True, False, False]
    assert not any(c.framing_error for c in got)


def test_master_echo_is_a_setting() -> None:
    req = frames.encode(frames.ShortFrame(0x40, 1))
    for echo, expect in ((False, b""), (True, req)):
        sim, bus = make_bus(echo=echo)
        got = collect(bus.master)
        sim.run_until(bus.master.transmit(req) + 0.01)
        assert values(got) == expect


def test_slave_echo_overlapping_master_sees_the_and() -> None:
    sim, bus = make_bus()
    a = bus.add_slave("a")
    got = collect(a)
    bus.master.transmit(b"\x0f", at=0.01)
    a.transmit(b"\xf0", at=0.01)
    sim.run_until(0.1)
    assert values(got) == b"\x00"
    assert got[0].parity_error is False  # 0F and F0 both have parity 0; the AND 00 too


def test_slave_returns_to_the_shared_view_after_answering() -> None:
    sim, bus = make_bus()
    a = bus.add_slave("a")
    got = collect(a)
    a.transmit(b"\xe5", at=0.01)
    sim.run_until(0.05)
    assert a.rx.view is bus.slave_view
    sim.run_until(bus.master.transmit(b"\x10\x40\x01\x41\x16") + 0.01)
    assert values(got) == b"\xe5\x10\x40\x01\x41\x16"


def test_baud_change_at_run_time() -> None:
    sim, bus = make_bus(2400)
    a = bus.add_slave("a", 2400)
    got = collect(a)
    sim.run_until(bus.master.transmit(b"\x10\x40\x01\x41\x16") + 0.01)
    bus.master.baud = 9600
    a.baud = 9600
    sim.run_until(bus.master.transmit(b"\x10\x40\x02\x42\x16") + 0.01)
    assert values(got) == b"\x10\x40\x01\x41\x16\x10\x40\x02\x42\x16"
    assert all(c.ok for c in got)
    with pytest.raises(ValueError, match="not an M-Bus rate"):
        a.baud = 1234


def test_300_baud_long_frame_advances_virtual_time_exactly() -> None:
    sim, bus = make_bus(300)
    a = bus.add_slave("a", 300)
    got = collect(a)
    frame = frames.encode(frames.LongFrame(0x53, 1, 0x51, bytes(range(246))))
    assert len(frame) == 255
    end = bus.master.transmit(frame)
    sim.run_until(end)
    assert sim.now() == pytest.approx(255 * 11 / 300, abs=1e-9)
    assert values(got) == frame and all(c.ok for c in got)


def test_many_slaves_share_decodes() -> None:
    sim, bus = make_bus(2400)
    slaves = [bus.add_slave(baud=2400) for _ in range(250)]
    got = [collect(s) for s in slaves]
    req = frames.encode(frames.ShortFrame(0x5B, 0xFE))
    sim.run_until(bus.master.transmit(req) + 0.01)
    assert all(values(g) == req for g in got)
    assert all(g[-1] is got[0][-1] for g in got)  # one decode, shared


# --- the fast path is the full model -----------------------------------------------------

senders = st.lists(
    st.tuples(
        st.integers(0, 255),  # value
        st.booleans(),  # bad parity
        st.sampled_from(BAUD_RATES[:6]),  # sender baud
        st.floats(0.0, 2.0),  # offset in receiver bits
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(senders=senders, rx_baud=st.sampled_from(BAUD_RATES[:6]), before=st.integers(0, 255) | st.none())
def test_fast_path_equals_full_model(
    senders: list[tuple[int, bool, int, float]], rx_baud: int, before: int | None
) -> None:
    sim = Simulation(0)
    channel = Channel(sim, "c")
    view = View(sim, "v", [(channel, None)])
    t0 = 1.0
    if before is not None:  # a character back to back in front of the one decoded
        tb = 1.0 / senders[0][2]
        channel.add(CharRecord("s0", t0 - 11 * tb, tb, before, False))
    for i, (value, bad, baud, offset) in enumerate(senders):
        start = t0 if i == 0 else t0 + offset / rx_baud
        channel.add(CharRecord(f"s{i}", start, 1.0 / baud, value, bad))
    fast = view.decode(rx_baud, t0, fast=True)
    full = view.decode(rx_baud, t0, fast=False)
    assert fast == full
    if len(senders) == 1 and senders[0][2] == rx_baud:
        assert full == RxChar(senders[0][0], t0 + 10.5 / rx_baud, senders[0][1], False)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(0, 255), bad=st.booleans(), baud=st.sampled_from(BAUD_RATES))
def test_lone_character_decodes_to_itself(value: int, bad: bool, baud: int) -> None:
    sim = Simulation(0)
    channel = Channel(sim, "c")
    view = View(sim, "v", [(channel, None)])
    channel.add(CharRecord("s", 0.25, 1.0 / baud, value, bad))
    expect = RxChar(value, 0.25 + 10.5 / baud, bad, False)
    assert view.decode(baud, 0.25, fast=False) == expect
    assert view.decode(baud, 0.25, fast=True) == expect


def test_fast_path_serves_a_back_to_back_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    windows: list[tuple[float, float]] = []
    original = View.sampler

    def counting(self: View, t1: float, t2: float):  # type: ignore[no-untyped-def]
        windows.append((t1, t2))
        return original(self, t1, t2)

    monkeypatch.setattr(View, "sampler", counting)
    sim, bus = make_bus()
    got = collect(bus.add_slave("a"))
    sim.run_until(bus.master.transmit(RSP_A) + 0.01)
    assert values(got) == RSP_A
    assert all(t1 == t2 for t1, t2 in windows)  # only start-bit checks were sampled


@pytest.mark.parametrize(("error", "clean"), [(0.0, True), (0.02, True), (-0.02, True), (0.07, False), (-0.07, False)])
def test_sender_clock_error_within_a_uart_tolerance_reads_clean(error: float, clean: bool) -> None:
    sim, bus = make_bus()
    got = collect(bus.master)
    slave = bus.add_slave("a")
    slave.clock_error = error
    slave.transmit(RSP_A, at=0.01)
    sim.run_until(1.0)
    ok = values(got) == RSP_A and all(c.ok for c in got)
    assert ok is clean

"""rig.master.Master over an in-memory bus of SlaveLinks: the instrument's API end to end."""

from __future__ import annotations

import pytest
from test_link_helpers import FakeMeter, MemoryBus, make

from hardware.trace import Trace
from protocol.chars import WireBytes
from protocol.errors import (
    CollisionError,
    GarbledAnswerError,
    NoAnswerError,
    UnexpectedAnswerError,
)
from protocol.fields import CI
from protocol.frame_faults import FrameFault, build_faulty
from protocol.frames import ControlFrame, ShortFrame, SingleChar
from protocol.identity import SecondaryAddress
from protocol.link import Outcome, SlaveLink, SlaveSettings
from protocol.timing import char_time, inter_frame_idle, response_window
from rig.master import Master

SEC_A = SecondaryAddress(12345678, 0x2C2D, 1, 4)
SEC_B = SecondaryAddress(87654321, 0x2C2D, 1, 4)


def rig(*slaves: SlaveLink, retries: int = 2, trace: Trace | None = None) -> tuple[Master, MemoryBus]:
    bus = MemoryBus(list(slaves))
    return Master(bus, bus.clock, retries=retries, trace=trace), bus


def test_snd_nke_and_req_ud2_with_timings() -> None:
    slave, meter = make(5, response_delay=0.02)
    master, bus = rig(slave)
    ex = master.snd_nke(5)
    assert ex.outcome is Outcome.ACK and ex.attempts == 1 and ex.frame == SingleChar()
    # SlaveLink times its answer from the request's last stop-bit sample, half a bit
    # before the request's end
    assert ex.response_delay == pytest.approx(0.02 - 0.5 / 2400)
    assert ex.first_char_time == pytest.approx(ex.request_end + 0.02 + 10 / 2400)
    reply = master.req_ud2(5)
    assert reply.telegram is not None and reply.telegram.ci == 0x72
    assert reply.telegram.header is not None
    assert reply.telegram.header.secondary_address == meter.identity  # type: ignore[union-attr]


def test_no_answer_raises_with_address_and_baud_after_retries() -> None:
    slave, _ = make(5)
    master, bus = rig(slave, retries=2)
    with pytest.raises(NoAnswerError, match="address 7 at 2400 Bd after 3 attempts"):
        master.req_ud2(7)
    assert len(bus.writes) == 3


def test_retry_uses_same_fcb_and_slave_repeats() -> None:
    slave, meter = make(5, FakeMeter(n_pages=2))
    master, bus = rig(slave)
    master.snd_nke(5)
    bus.faults = ["drop"]  # the first answer is lost
    reply = master.req_ud2(5)
    assert reply.exchange.attempts == 2
    first, second = bus.writes[-2][1].data, bus.writes[-1][1].data
    assert first == second and first[1] == 0x7B
    assert meter.reads == 1  # the retry got the repeated telegram, page 0
    assert reply.telegram is not None and reply.telegram.records[0].raw == 0
    nxt = master.req_ud2(5)
    assert bus.writes[-1][1].data[1] == 0x5B
    assert nxt.frame != reply.frame


def test_garbled_answers_raise_garbled_error() -> None:
    slave, _ = make(5)
    master, bus = rig(slave, retries=1)
    bus.faults = ["garble", "garble"]
    with pytest.raises(GarbledAnswerError, match="address 5 at 2400 Bd"):
        master.snd_nke(5)


def test_read_all_multi_telegram() -> None:
    slave, meter = make(5, FakeMeter(n_pages=3))
    master, bus = rig(slave)
    replies = master.read_all(5)
    assert len(replies) == 3
    assert [r.more_follow for r in replies] == [True, True, False]
    assert [r.telegram.records[0].raw for r in replies if r.telegram] == [0, 1, 2]
    c_fields = [w.data[1] for _, w in bus.writes]
    assert c_fields == [0x40, 0x7B, 0x5B, 0x7B]
    assert meter.reads == 3


def test_read_all_stops_at_max_pages() -> None:
    slave, _ = make(5, FakeMeter(n_pages=50))
    master, _ = rig(slave)
    with pytest.raises(UnexpectedAnswerError, match="more than 4 telegrams"):
        master.read_all(5, max_pages=4)


def test_collision_at_one_primary_address() -> None:
    a, _ = make(5, FakeMeter(identity=SEC_A))
    b, _ = make(5, FakeMeter(identity=SEC_B))
    master, _ = rig(a, b, retries=0)
    assert master.snd_nke(5).outcome is Outcome.ACK  # aligned E5s merge cleanly
    # two different RSP_UDs AND-ed: no valid frame at all, so "garbled", not "collision"
    with pytest.raises(GarbledAnswerError, match="address 5 at 2400 Bd"):
        master.req_ud2(5)


def test_scan_primary_reports_found_and_collisions() -> None:
    a, _ = make(3, FakeMeter(identity=SEC_A))
    b, _ = make(7, FakeMeter(identity=SEC_A))
    c, _ = make(7, FakeMeter(identity=SEC_B))
    master, _ = rig(a, b, c, retries=0)
    hits = master.scan_primary(range(0, 10))
    assert [(h.address, h.outcome) for h in hits] == [(3, Outcome.FRAME), (7, Outcome.GARBLED)]
    assert hits[0].secondary == SEC_A and hits[1].secondary is None
    with pytest.raises(ValueError, match="0..250"):
        master.scan_primary([251])


def test_select_and_read_at_253() -> None:
    a, _ = make(5, FakeMeter(identity=SEC_A))
    b, _ = make(6, FakeMeter(identity=SEC_B))
    master, _ = rig(a, b)
    master.select(SEC_B)
    reply = master.req_ud2(253)
    assert reply.frame is not None and reply.frame.a == 6  # type: ignore[union-attr]
    with pytest.raises(NoAnswerError):
        master.select("99999999FFFFFFFF")
    master.select("FFFFFFFFFFFFFFFF", fabrication=11223344)
    with pytest.raises(GarbledAnswerError):
        master.req_ud2(253)


def test_set_address_and_application_reset() -> None:
    slave, meter = make(5)
    master, _ = rig(slave)
    master.set_address(5, 9)
    assert slave.address == 9 and meter.addresses == [9]
    master.snd_nke(9)
    master.application_reset(9, subcode=3)
    assert meter.resets == [3]
    with pytest.raises(ValueError, match="0..250"):
        master.set_address(9, 251)
    with pytest.raises(ValueError, match="subcode"):
        master.application_reset(9, 300)


def test_switch_baud_follows_and_unsupported_rate_no_answer() -> None:
    slave, _ = make(5, bauds=(2400, 9600))
    master, _ = rig(slave)
    master.switch_baud(5, 9600)
    assert master.baud == 9600 and slave.baud == 9600
    assert master.snd_nke(5).baud == 9600
    with pytest.raises(NoAnswerError, match="at 9600 Bd"):
        master.switch_baud(5, 300)
    assert slave.baud == 9600
    with pytest.raises(ValueError, match="baud"):
        master.switch_baud(5, 1234)


def test_acks_at_new_rate_defect_is_garbled_at_old_rate() -> None:
    slave, _ = make(5, bauds=(2400, 9600), defects=frozenset({"acks_at_new_rate"}))
    master, _ = rig(slave, retries=0)
    with pytest.raises(GarbledAnswerError):
        master.switch_baud(5, 9600)


def test_raw_exchange_for_fault_scenarios_never_raises() -> None:
    slave, _ = make(5)
    master, bus = rig(slave)
    bad = build_faulty(ShortFrame(0x40, 5), FrameFault.BAD_CHECKSUM)
    ex = master.exchange(bad, expect="none")
    assert ex.outcome is Outcome.NONE and ex.ok and ex.attempts == 1
    ex = master.exchange(ShortFrame(0x40, 5), expect="ack")
    assert ex.outcome is Outcome.ACK and ex.ok
    ex = master.exchange(bytes.fromhex("1040054516"), expect="none")
    assert not ex.ok


def test_gapped_frame_sent_in_two_parts_with_pause() -> None:
    slave, _ = make(5)
    master, bus = rig(slave)
    long_gap = inter_frame_idle(2400) * 3
    gapped = build_faulty(ControlFrame(0x53, 5, CI.APPLICATION_RESET), FrameFault.GAP,
                          after=3, pause=long_gap)
    ex = master.exchange(gapped, expect="none")
    assert ex.outcome is Outcome.NONE  # the slave dropped the partial frame
    (end1, first), (end2, second) = bus.writes[-2:]
    assert first.data + second.data == gapped.data
    assert end2 - len(second.data) * char_time(2400) - end1 == pytest.approx(long_gap)
    short_gap = build_faulty(ControlFrame(0x53, 5, CI.APPLICATION_RESET), FrameFault.GAP,
                             after=3, pause=inter_frame_idle(2400) / 3)
    assert master.exchange(short_gap, expect="ack").outcome is Outcome.ACK


def test_gapped_frame_in_the_masters_trace_has_its_gap() -> None:
    """On a real bus the master's own trace records what it sent: the characters before a
    gap end ``pause`` earlier than back-to-back sending would put them."""
    slave, _ = make(5)
    trace = Trace()
    master, bus = rig(slave, trace=trace)
    gapped = build_faulty(ShortFrame(0x5B, 5), FrameFault.GAP, after=2, pause=0.05)
    master.exchange(gapped)
    sent = [e for e in trace.entries if e.direction == "M>S"]
    assert bytes(e.value for e in sent) == gapped.data
    steps = [b.time - a.time for a, b in zip(sent, sent[1:], strict=False)]
    assert steps == pytest.approx([char_time(2400), char_time(2400) + 0.05, char_time(2400),
                                   char_time(2400)])
    assert sent[-1].time == pytest.approx(bus.writes[-1][0])


def test_parity_fault_reaches_the_wire() -> None:
    slave, _ = make(5)
    master, bus = rig(slave)
    ex = master.exchange(build_faulty(ShortFrame(0x40, 5), FrameFault.PARITY, index=2))
    assert ex.outcome is Outcome.NONE
    assert isinstance(bus.writes[-1][1], WireBytes) and bus.writes[-1][1].bad_parity == {2}


def test_broadcast_255_no_answer_expected() -> None:
    slave, meter = make(5)
    master, _ = rig(slave)
    ex = master.application_reset(255)
    assert ex.outcome is Outcome.NONE and meter.resets == [None]
    noisy, _ = make(5, defects=frozenset({"answers_broadcast_255"}))
    master, _ = rig(noisy)
    with pytest.raises(UnexpectedAnswerError, match="address 255"):
        master.snd_nke(255)


def test_req_ud1_ack_and_alarm() -> None:
    slave, meter = make(5)
    master, _ = rig(slave)
    assert master.req_ud1(5).telegram is None
    meter.alarm = 2
    reply = master.req_ud1(5)
    assert reply.telegram is not None and reply.telegram.alarm == 2


def test_answer_timing_respects_window_and_idle() -> None:
    slave, _ = make(5)
    master, bus = rig(slave)
    master.snd_nke(5)
    first_end = bus.writes[-1][0]
    master.snd_nke(5)
    second_start = bus.writes[-1][0] - 5 * char_time(2400)
    assert second_start >= first_end + response_window(2400)[1]


def test_trace_records_both_directions() -> None:
    trace = Trace()
    slave, _ = make(5)
    master, _ = rig(slave, trace=trace)
    master.snd_nke(5)
    assert [e.direction for e in trace.entries] == ["M>S"] * 5 + ["S>M"]


def test_port_error_leaves_master_usable() -> None:
    slave, _ = make(5)
    master, bus = rig(slave)

    def broken(data: object) -> float:
        raise CollisionError("echo differs")

    original = bus.write
    bus.write = broken  # type: ignore[method-assign]
    with pytest.raises(CollisionError):
        master.snd_nke(5)
    bus.write = original  # type: ignore[method-assign]
    assert master.snd_nke(5).outcome is Outcome.ACK


def test_slave_settings_reach_through() -> None:
    slave = SlaveLink(FakeMeter(), SlaveSettings(address=5, echo=False, accept_fcv0=False))
    master, _ = rig(slave, retries=0)
    assert master.exchange(ControlFrame(0x43, 5, 0x50), expect="none").ok


# --- over the simulated bus (bit-level UART model, emulated meters, mbussim:// port) -------


def sim_master(name: str, count: int, *, first_address: int = 1, retries: int = 0,
               **profile_changes: object) -> tuple[Master, list[object]]:
    import dataclasses

    from hardware.serial_port import SerialBusPort
    from hardware.sim import SimBus, Simulation, VirtualClock
    from hardware.sim.meter import put_meters
    from protocol.meter import heat_meter_profile

    sim = Simulation(seed=7)
    bus = SimBus(sim, name=name)
    profile = dataclasses.replace(heat_meter_profile(), **profile_changes)  # type: ignore[arg-type]
    meters = put_meters(bus, profile, count, first_address=first_address)
    port = SerialBusPort(f"mbussim://{name}", VirtualClock(sim), baud=2400)
    return Master(port, VirtualClock(sim), retries=retries), list(meters)


def test_sim_bus_primary_readout_and_timing() -> None:
    master, meters = sim_master("link-master-1", 1)
    replies = master.read_all(1)
    assert replies and replies[-1].more_follow is False
    delay = replies[0].exchange.response_delay
    low, high = response_window(2400)
    assert delay is not None and low <= delay <= high
    assert delay == pytest.approx(meters[0].profile.response_delay, abs=1e-6)  # type: ignore[attr-defined]


def test_sim_bus_secondary_search_finds_every_meter() -> None:
    master, meters = sim_master("link-master-2", 6, first_address=0)
    result = master.search_secondary()
    expected = {m.profile.secondary for m in meters}  # type: ignore[attr-defined]
    assert set(result.found) == expected and result.unresolved == ()


def test_sim_bus_two_meters_at_one_address_collide() -> None:
    master, _ = sim_master("link-master-3", 2, first_address=0)
    with pytest.raises((CollisionError, GarbledAnswerError)):
        master.req_ud2(0)


def test_answer_from_another_address_raises_wrong_address_with_the_exchange() -> None:
    from protocol.errors import WrongAddressError
    from protocol.meter import heat_meter_profile
    from rig.master import exchange_of
    from rig.tools.bus import open_sim

    bus = open_sim([heat_meter_profile()], baud=2400, seed=1, retries=1)
    try:
        address = bus.meters[0].profile.address
        bus.meters[0].core.arm("wrong_address", 2)
        with pytest.raises(WrongAddressError) as info:
            bus.master.req_ud2(address)
        error = info.value
        assert (error.expected, error.received) == (address, address + 1)
        assert f"names address {address + 1}, not {address}" in str(error)
        exchange = exchange_of(error)
        assert exchange is not None and exchange.attempts == 2
        assert exchange.outcome is Outcome.WRONG_ADDRESS
        assert exchange.received_address == address + 1
        # the fault is used up: the next answer is the slave's own
        assert bus.master.req_ud2(address).frame.a == address  # type: ignore[union-attr]
    finally:
        bus.close()


def test_link_errors_carry_the_exchange() -> None:
    from rig.master import exchange_of

    slave, _ = make(5)
    master, _ = rig(slave, retries=1)
    with pytest.raises(NoAnswerError) as info:
        master.req_ud2(7)
    exchange = exchange_of(info.value)
    assert exchange is not None and exchange.attempts == 2 and exchange.address == 7
    assert exchange.outcome is Outcome.NONE


def test_repeated_identical_garbling_counts_as_several_answers() -> None:
    # two slaves at one address, bit-aligned: their RSP_UDs AND into the same bad bytes on
    # every attempt (noise would differ)
    a, _ = make(5, FakeMeter(identity=SEC_A))
    b, _ = make(5, FakeMeter(identity=SEC_B))
    master, _ = rig(a, b, retries=2)
    master.snd_nke(5)
    with pytest.raises(GarbledAnswerError) as info:
        master.req_ud2(5)
    from rig.master import exchange_of

    exchange = exchange_of(info.value)
    assert exchange is not None and exchange.attempts == 3
    assert exchange.repeated_garbling and exchange.several_answered
    single, _ = make(5)
    master, bus = rig(single, retries=0)
    bus.faults = ["garble"]
    with pytest.raises(GarbledAnswerError) as info:
        master.snd_nke(5)
    exchange = exchange_of(info.value)
    assert exchange is not None and not exchange.repeated_garbling

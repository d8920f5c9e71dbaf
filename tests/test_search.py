"""SecondarySearch over populations of SlaveLinks (in-memory bus, AND-merge collision model).

Slaves answering with the same response delay are byte-aligned: identical bytes (two E5s)
merge cleanly, different bytes garble. Slaves with different delays collide with framing
errors. Both kinds of population are searched here, and the probe count is compared with a
model of libmbus's algorithm (mbus_scan_2nd_address_range: digits 0-9 at each of the 16
positions, most significant first).
"""

from __future__ import annotations

from functools import reduce
from operator import and_

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_link_helpers import FakeMeter, MemoryBus

from protocol.fields import CI
from protocol.identity import SecondaryAddress, manufacturer_code
from protocol.link import (
    ALL,
    Outcome,
    ReadProbe,
    SecondarySearch,
    SelectionMask,
    SelectProbe,
    SlaveLink,
    SlaveSettings,
    req_ud2,
    snd_ud,
)
from rig.master import Master

KAM = manufacturer_code("KAM")
ELS = manufacturer_code("ELS")


def slave(sec: SecondaryAddress, delay: float | None = None, *, fab: int | None = None,
          nibbles: bool = False) -> SlaveLink:
    settings = SlaveSettings(address=0, echo=False, response_delay=delay, nibble_wildcards=nibbles)
    return SlaveLink(FakeMeter(identity=sec, fabrication_number=fab), settings)


def run(slaves: list[SlaveLink], mask: SelectionMask = ALL) -> tuple[set[SecondaryAddress], Master, object]:
    bus = MemoryBus(slaves)
    master = Master(bus, bus.clock, retries=0)
    result = master.search_secondary(mask)
    return set(result.found), master, result


def sec(id_: int, man: int = KAM, version: int = 1, medium: int = 4) -> SecondaryAddress:
    return SecondaryAddress(id_, man, version, medium)


def staggered(addresses: list[SecondaryAddress], *, nibbles: bool = False) -> list[SlaveLink]:
    """Slaves with distinct response delays (a few bit times apart) and fabrication numbers."""
    return [slave(a, 0.005 + i * 0.0031, fab=10_000_000 + 1_234_567 * i, nibbles=nibbles)
            for i, a in enumerate(addresses)]


def test_empty_bus_costs_one_probe() -> None:
    found, _, result = run([])
    assert found == set() and result.probes == 1  # type: ignore[attr-defined]


def test_single_slave_costs_a_select_a_read_and_the_access_number_check() -> None:
    found, _, result = run([slave(sec(12345678))])
    assert found == {sec(12345678)}
    # select + read, then the check: select exactly, read, select the mask, read
    assert (result.selects, result.reads) == (3, 3)  # type: ignore[attr-defined]
    assert result.verifications == 4  # type: ignore[attr-defined]


def test_exact_mask_needs_no_access_number_check() -> None:
    found, _, result = run([slave(sec(12345678))], SelectionMask.of(sec(12345678)))
    assert found == {sec(12345678)}
    assert (result.selects, result.reads, result.verifications) == (1, 1, 0)  # type: ignore[attr-defined]


def test_consecutive_serials_split_in_one_level() -> None:
    addresses = [sec(12345670 + i) for i in range(10)]
    found, _, result = run(staggered(addresses))
    assert found == set(addresses)
    # 4 probes of access-number check per slave found under a wildcard
    assert result.selects <= 11 + 20 and result.reads == 10 + 20  # type: ignore[attr-defined]
    assert result.verifications == 40  # type: ignore[attr-defined]
    assert result.unresolved == ()  # type: ignore[attr-defined]


def test_clean_e5_pair_is_confirmed_and_split() -> None:
    # same response delay: the two E5s overlap cleanly; their RSP_UDs garble
    a, b = sec(12345678), sec(87654321)
    search_found, _, result = run([slave(a), slave(b)])
    assert search_found == {a, b}
    assert result.reads >= 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "pair",
    [
        (sec(12345678), sec(12345677)),  # last digit only
        (sec(10000000), sec(20000000)),  # first digit only
        (sec(12345678, medium=4), sec(12345678, medium=7)),
        (sec(12345678, version=1), sec(12345678, version=0x1A)),
        (sec(12345678, man=KAM), sec(12345678, man=ELS)),
        (sec(12345678, medium=0x0E), sec(12345678, medium=0xFE)),
    ],
)
def test_pairs_differing_in_one_place_with_nibble_wildcard_slaves(pair: tuple[SecondaryAddress, SecondaryAddress]) -> None:
    found, _, result = run(staggered(list(pair), nibbles=True))
    assert found == set(pair) and result.unresolved == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "pair",
    [
        (sec(12345678, medium=4), sec(12345678, medium=7)),
        (sec(12345678, man=KAM), sec(12345678, man=ELS)),
    ],
)
def test_same_id_standard_slaves_resolved_by_fabrication_number(pair: tuple[SecondaryAddress, SecondaryAddress]) -> None:
    slaves = [slave(pair[0], 0.005, fab=11112222), slave(pair[1], 0.009, fab=11113333)]
    found, _, result = run(slaves)
    assert found == set(pair) and result.unresolved == ()  # type: ignore[attr-defined]


def test_indistinguishable_slaves_are_reported_unresolved() -> None:
    twins = [slave(sec(12345678), 0.005), slave(sec(12345678), 0.009)]
    found, _, result = run(twins)
    assert found == set()
    assert [str(m) for m in result.unresolved] == ["12345678FFFFFFFF"]  # type: ignore[attr-defined]


def test_root_mask_limits_the_search() -> None:
    addresses = [sec(12345678), sec(12345679), sec(22345678)]
    found, _, _ = run(staggered(addresses), SelectionMask.parse("1FFFFFFFFFFFFFFF"))
    assert found == {sec(12345678), sec(12345679)}


def test_search_protocol_misuse() -> None:
    search = SecondarySearch()
    assert isinstance(search.next_probe(), SelectProbe)
    assert search.next_probe() == search.next_probe()  # same probe until reported
    search.report(Outcome.NONE)
    assert search.done and search.next_probe() is None
    with pytest.raises(RuntimeError, match="finished"):
        search.report(Outcome.NONE)


def test_ack_without_confirming_read_descends() -> None:
    search = SecondarySearch(SelectionMask.parse("1234567FFFFFFFFF"))
    search.report(Outcome.ACK)
    assert isinstance(search.next_probe(), ReadProbe)
    search.report(Outcome.NONE)  # nobody answers the read: descend rather than guess
    probe = search.next_probe()
    assert isinstance(probe, SelectProbe) and str(probe.mask) == "12345670FFFFFFFF"


# --- random populations ------------------------------------------------------------------

ids = st.integers(0, 99_999_999)
populations = st.lists(
    st.builds(sec, ids, st.sampled_from([KAM, ELS]), st.sampled_from([1, 2]), st.sampled_from([4, 7])),
    min_size=0, max_size=6, unique=True)


@settings(max_examples=40, deadline=None)
@given(populations)
def test_random_populations_all_found(addresses: list[SecondaryAddress]) -> None:
    fabs = [10_000_000 + i * 1_111_111 for i in range(len(addresses))]
    slaves = [slave(a, 0.005 + i * 0.0031, fab=f) for i, (a, f) in enumerate(zip(addresses, fabs, strict=True))]
    found, _, result = run(slaves)
    assert found == set(addresses) and result.unresolved == ()  # type: ignore[attr-defined]


# --- compared with libmbus's algorithm ---------------------------------------------------


def libmbus_search(master: Master) -> tuple[set[SecondaryAddress], int]:
    """mbus_scan_2nd_address_range: at each position 0..15, digits 0-9; collision -> next
    position (none after the last); single E5 -> read the address."""
    found: set[SecondaryAddress] = set()
    probes = 0

    def scan(pos: int, mask: str) -> None:
        nonlocal probes
        for digit in "0123456789":
            m = mask[:pos] + digit + mask[pos + 1 :]
            probes += 1
            ex = master.run(snd_ud(253, CI.SELECTION, SelectionMask.parse(m).to_bytes(), retries=0))
            if ex.outcome is Outcome.ACK:
                probes += 1
                address = master.secondary_of(master.run(req_ud2(253)))
                if address is not None:
                    found.add(address)
            elif ex.outcome is not Outcome.NONE and pos < 15:
                scan(pos + 1, m)

    scan(0, "F" * 16)
    return found, probes


@pytest.mark.parametrize(
    "addresses",
    [
        [],
        [sec(12345678)],
        [sec(12345670 + i) for i in range(10)],
        [sec(31000000 + 7 * i) for i in range(6)],
    ],
)
def test_fewer_probes_and_less_bus_time_than_libmbus(addresses: list[SecondaryAddress]) -> None:
    found, _, ours = run(staggered(addresses))
    bus = MemoryBus(staggered(addresses))
    master = Master(bus, bus.clock, retries=0)
    start = bus.clock.now()
    theirs, their_probes = libmbus_search(master)
    their_time = bus.clock.now() - start
    assert found == set(addresses) == theirs
    assert ours.probes < their_probes  # type: ignore[attr-defined]
    assert ours.duration is not None and ours.duration < their_time  # type: ignore[attr-defined]


def test_spread_population_costs_at_most_the_root_probe_more_than_libmbus() -> None:
    addresses = [sec(12345678), sec(55555555), sec(99999999)]
    found, _, ours = run(staggered(addresses))
    bus = MemoryBus(staggered(addresses))
    theirs, their_probes = libmbus_search(Master(bus, bus.clock, retries=0))
    assert found == theirs == set(addresses)
    # plus the access-number check, which libmbus does not make
    assert ours.probes - ours.verifications <= their_probes + 1  # type: ignore[attr-defined]


def test_libmbus_model_misses_what_the_search_finds() -> None:
    pair = [sec(12345678, medium=4), sec(12345678, medium=0x0A)]
    bus = MemoryBus(staggered(pair, nibbles=True))
    theirs, _ = libmbus_search(Master(bus, bus.clock, retries=0))
    found, _, _ = run(staggered(pair, nibbles=True))
    assert found == set(pair) and theirs != set(pair)


# --- the algorithm against an oracle (no bus): slave kinds the engine does not model -----


def oracle(population: list[tuple[SecondaryAddress, int | None]], *, ignores_fab: bool = False,
           aligned: bool = False) -> tuple[set[SecondaryAddress], SecondarySearch]:
    """Run the search where a selection matches by SelectionMask rules; several matches
    collide (or, ``aligned``, ack cleanly and AND their answers: address bytes and access
    numbers; a merged address that is one of theirs reads clean, else garbled). Every slave
    that answers a read increments its access number."""
    search = SecondarySearch()
    selected: list[int] = []
    access = [0] * len(population)
    while (probe := search.next_probe()) is not None:
        if isinstance(probe, SelectProbe):
            mask = SelectionMask(probe.mask.digits) if ignores_fab else probe.mask
            selected = [i for i, (a, fab) in enumerate(population) if mask.matches(a, fab)]
            if not selected:
                search.report(Outcome.NONE)
            elif len(selected) == 1 or aligned:
                search.report(Outcome.ACK)
            else:
                search.report(Outcome.COLLISION)
            continue
        merged = bytes(reduce(and_, column)
                       for column in zip(*(population[i][0].to_bytes() for i in selected), strict=True))
        number = 0xFF
        for i in selected:
            number &= access[i]
            access[i] = (access[i] + 1) & 0xFF
        owner = [population[i][0] for i in selected if population[i][0].to_bytes() == merged]
        if owner:
            search.report(Outcome.FRAME, owner[0], number)
        else:
            search.report(Outcome.GARBLED)
    return set(search.result.found), search


def test_slaves_ignoring_the_fabrication_number_do_not_blow_up() -> None:
    twins = [(sec(12345678, medium=4), 1), (sec(12345678, medium=7), 2)]
    found, search = oracle(twins, ignores_fab=True)
    assert found == set()
    assert search.result.unresolved and search.result.probes < 400


def test_aligned_population_found_by_reads() -> None:
    population = [(sec(12345670 + i), None) for i in range(5)] + [(sec(99999999), None)]
    found, search = oracle(population, aligned=True)
    assert found == {a for a, _ in population}
    assert search.result.unresolved == ()


def test_aligned_subset_slave_does_not_hide_the_others() -> None:
    # 12345670's address bytes are a bitwise subset of 12345671's, 12345673's, ...: under a
    # wildcard their ANDed answers read as a clean 12345670; the access number gives it away
    population = [(sec(12345670 + i), None) for i in (0, 1, 3, 5, 7)]
    found, search = oracle(population, aligned=True)
    assert found == {a for a, _ in population}
    assert search.result.verifications > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ids, st.sampled_from([KAM, ELS]), st.integers(0, 255), st.integers(0, 255),
                          st.integers(0, 99_999_999)),
                max_size=8, unique_by=lambda t: t[4]))
def test_oracle_random_populations_with_distinct_fabrication_numbers(rows: list[tuple[int, int, int, int, int]]) -> None:
    population = [(SecondaryAddress(i, m, v, md), fab) for i, m, v, md, fab in rows]
    found, search = oracle(population)
    assert found == {a for a, _ in population}
    assert search.result.unresolved == ()


def test_bit_aligned_population_on_the_simulated_bus() -> None:
    """Same response delay to the bit: the simulated bus ANDs the answers, and 11721301's
    RSP_UD (fabrication number 10000000) is the AND of its own and 11721315's (10000003): a
    valid frame. Every slave must still be found."""
    import dataclasses

    from protocol.meter import heat_meter_profile
    from rig.tools.bus import open_sim

    base = heat_meter_profile()
    profiles = [dataclasses.replace(base, id=11721300 + k, address=0, name=f"m{k}",
                                    fabrication_number=10_000_000 + fab, response_delay=0.050)
                for k, fab in ((1, 0), (15, 3))]
    bus = open_sim(profiles, baud=2400, seed=1, retries=2)
    try:
        result = bus.master.search_secondary(bus.mask_of("F" * 16))
    finally:
        bus.close()
    assert {str(s) for s in result.found} == {str(p.secondary) for p in profiles}


# --- late but legal response delays (simulated bus, emulated meters) ------------------------

LATE_DELAYS_2400 = (0.010, 0.120, 0.175, 0.185)
"""Response delays at 2400 Bd, the last ones near the end of the window (4.6 .. 187.5 ms)."""
PREFIX_IDS = (12345670, 12345671, 12345601, 22345671)
"""Distinct IDs sharing prefixes and suffixes (the search has to split several levels)."""


def window_delays(baud: int) -> list[float]:
    """LATE_DELAYS_2400 placed at the same points of ``baud``'s response window, and the
    window's very end (the latest legal answer start)."""
    from protocol.timing import response_window

    low, high = response_window(2400)
    lo, hi = response_window(baud)
    return [lo + (d - low) / (high - low) * (hi - lo) for d in LATE_DELAYS_2400] + [hi]


def sim_search(baud: int, delays: list[float], ids: tuple[int, ...], name: str
               ) -> tuple[set[SecondaryAddress], set[SecondaryAddress], object, object]:
    """Search a simulated bus of heat meters with ``ids`` answering after ``delays``; return
    (found, expected, result, master trace)."""
    import dataclasses

    from hardware.serial_port import SerialBusPort
    from hardware.sim import SimBus, Simulation, VirtualClock
    from hardware.sim.meter import add_meters
    from hardware.trace import Trace
    from protocol.meter import heat_meter_profile

    base = heat_meter_profile()
    profiles = [dataclasses.replace(base, id=id_, address=0, baud=baud, response_delay=delay,
                                    name=f"m{id_}") for id_, delay in zip(ids, delays, strict=True)]
    sim = Simulation(seed=3)
    bus = SimBus(sim, master_baud=baud, name=name)
    try:
        add_meters(bus, profiles)
        port = SerialBusPort(f"mbussim://{name}", VirtualClock(sim), baud=baud)
        trace = Trace()
        master = Master(port, VirtualClock(sim), retries=0, trace=trace)
        result = master.search_secondary()
    finally:
        bus.close()
    return set(result.found), {p.secondary for p in profiles}, result, trace


def master_overlaps(trace: object) -> list[str]:
    """Slave characters on the line while the master sent, or less than the inter-frame
    idle before it began a frame (the master did not wait for an answer still arriving)."""
    from hardware.trace import Trace
    from protocol.timing import char_time, inter_frame_idle

    assert isinstance(trace, Trace)
    assert any(e.direction == "S>M" for e in trace.entries)  # slaves answered
    frames: list[tuple[float, float, int]] = []  # master frames: (start, end, baud)
    for entry in sorted((e for e in trace.entries if e.direction == "M>S"), key=lambda e: e.time):
        start = entry.time - char_time(entry.baud)  # a sent character's time is its end
        if frames and start <= frames[-1][1] + 1e-9:
            frames[-1] = (frames[-1][0], entry.time, entry.baud)
        else:
            frames.append((start, entry.time, entry.baud))
    bad: list[str] = []
    for entry in trace.entries:
        if entry.direction != "S>M":
            continue
        # a received character's time is its stop-bit sample, half a bit before its end
        end = entry.time + 0.5 / entry.baud
        begin = end - char_time(entry.baud)
        bad += [f"slave character {begin:.4f}..{end:.4f} s, master frame {start:.4f}..{stop:.4f} s"
                for start, stop, baud in frames
                if begin < stop and end > start - inter_frame_idle(baud)]
    return bad


@pytest.mark.parametrize("rate", [300, 2400, 9600])
def test_late_but_legal_slaves_are_all_found(rate: int) -> None:
    """Slaves answering anywhere inside the response window (up to its very end) are found;
    two of them at different delays collide instead of hiding one; no probe starts while an
    answer may still be arriving."""
    delays = window_delays(rate)
    ids = (*PREFIX_IDS, 12345611)
    found, expected, result, trace = sim_search(rate, delays, ids, f"late-search-{rate}")
    assert found == expected
    assert result.unresolved == ()  # type: ignore[attr-defined]
    assert master_overlaps(trace) == []


@pytest.mark.parametrize("rate", [300, 2400, 9600])
def test_single_slave_answering_at_the_end_of_the_window_is_found(rate: int) -> None:
    from protocol.timing import response_window

    found, expected, _, trace = sim_search(rate, [response_window(rate)[1]], (12345678,),
                                           f"late-single-{rate}")
    assert found == expected
    assert master_overlaps(trace) == []


def test_early_and_latest_slave_collide_on_the_selection() -> None:
    """An E5 at 4.6 ms and one at 187.5 ms (2400 Bd) are two answers: a collision."""
    from protocol.link.master import snd_ud as link_snd_ud
    from protocol.timing import response_window

    low, high = response_window(2400)
    import dataclasses

    from hardware.serial_port import SerialBusPort
    from hardware.sim import SimBus, Simulation, VirtualClock
    from hardware.sim.meter import add_meters
    from protocol.meter import heat_meter_profile

    base = heat_meter_profile()
    sim = Simulation(seed=3)
    bus = SimBus(sim, master_baud=2400, name="late-collision")
    try:
        add_meters(bus, [dataclasses.replace(base, id=12345670 + i, address=0, name=f"m{i}",
                                             response_delay=d)
                         for i, d in enumerate((low, high))])
        master = Master(SerialBusPort("mbussim://late-collision", VirtualClock(sim), baud=2400),
                        VirtualClock(sim), retries=0)
        exchange = master.run(link_snd_ud(253, CI.SELECTION, ALL.to_bytes(), retries=0))
    finally:
        bus.close()
    assert exchange.outcome is Outcome.COLLISION
    assert exchange.raw == b"\xe5\xe5"

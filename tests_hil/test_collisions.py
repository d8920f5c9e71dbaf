"""Collisions: several slaves answering at once are detected and never read as data."""

from __future__ import annotations

import pytest

from protocol import fields
from protocol.errors import LinkError
from protocol.frames import encode
from protocol.identity import SecondaryAddress
from protocol.meter import MeterProfile, heat_meter_profile
from protocol.timing import frame_time, inter_frame_idle, response_window
from tests_hil import _wire as w
from tests_hil._population import adversarial, as_profiles
from tests_hil._scenario import scenario

AREA = "collisions"


def _add(sim_population, master, dut, secondaries: list[SecondaryAddress],
         address: int = 0) -> None:
    """Extra emulated slaves like the DUT at primary ``address``, with these identities, each
    with its own fabrication number and response delay (inside the window at this rate)."""
    base = dut.profile if isinstance(dut.profile, MeterProfile) else heat_meter_profile()
    # the last answer starts well inside the window: 60 % of the way from the DUT's delay
    latest = base.response_delay + 0.6 * (response_window(master.baud)[1] - base.response_delay)
    sim_population.add(as_profiles(base, secondaries, latest=latest), address=address)


def _twin(sec: SecondaryAddress) -> SecondaryAddress:
    """A slave whose ID differs from ``sec`` only in the last digit."""
    return SecondaryAddress(sec.id - sec.id % 10 + (sec.id + 1) % 10, sec.manufacturer,
                            sec.version, sec.medium)


@scenario(AREA, "link.collision", needs=("multi_slave",), severity="critical",
          fails_when="the overlapping answers of two slaves are delivered as a valid RSP_UD")
def test_two_slaves_at_one_primary_address_collide(master, dut, sim_population):
    """A second slave at the DUT's primary address: REQ_UD2 there draws two overlapping
    answers, which the master reports as a collision (or garbled answer), never as data;
    with retries, the read fails with a link error."""
    _add(sim_population, master, dut, [_twin(w.dut_secondary(master, dut))], address=dut.address)
    ex = w.ask(master, w.req_ud2(dut.address))
    assert w.outcome(ex) in ("collision", "garbled"), (
        f"two slaves at address {dut.address}: expected a collision, but {w.describe(ex)}")
    with pytest.raises(LinkError):
        master.req_ud2(dut.address)


@scenario(AREA, "link.collision", needs=("multi_slave", "secondary", "wildcard_selection"),
          severity="critical",
          fails_when="the wildcard selection of two slaves gets no answer, their overlapping "
                     "RSP_UDs are read as data, or the search misses one of them")
def test_wildcard_selecting_two_slaves(master, dut, rig, sim_population):
    """A wildcard selection matching the DUT and a twin (differing in the last ID digit) is
    answered (their E5s may merge into one clean E5, or collide); REQ_UD2 at 253 then draws
    two answers, detected as a collision; a secondary search resolves both."""
    sec = w.dut_secondary(master, dut)
    twin = _twin(sec)
    _add(sim_population, master, dut, [twin])
    w.deselect_all(master, rig)
    try:
        digits = f"{sec.id:08d}"[:7] + "F"
        ex = w.ask(master, w.selection(w.mask(digits, sec.manufacturer, sec.version,
                                                     sec.medium)))
        assert w.outcome(ex) in ("ack", "collision", "garbled"), (
            f"selection matching two slaves: expected E5s, but {w.describe(ex)}")
        ex = w.ask(master, w.req_ud2(fields.ADDRESS_SELECTED))
        assert w.outcome(ex) in ("collision", "garbled"), (
            f"two selected slaves: expected a collision, but {w.describe(ex)}")
    finally:
        w.deselect_all(master, rig)
    found = set(master.search_secondary().found)
    assert {sec, twin} <= found, f"the search missed {', '.join(sorted(map(str, {sec, twin} - found)))}"


@scenario(AREA, "link.answers", needs=("collision_injector",), severity="critical",
          fails_when="the answer corrupted by the injector is read as data, the master does "
                     "not retry, or the retry (same FCB) does not bring a clean telegram of the "
                     "DUT; with fcb, not the one the spoilt answer carried (its clean first "
                     "bytes differ, or it is not the first telegram of a readout)")
def test_injected_collision_is_detected_and_retried(master, dut, rig, faults):
    """The collision injector holds the bus at space in the middle of the DUT's answer: the
    master detects that answer as garbled and repeats the request with the same FCB, and a
    clean telegram of the DUT arrives. A DUT that keeps FCB repeats the telegram the spoilt
    answer carried: byte for byte as far as the spoilt answer arrived before the injector
    switched on, and the first telegram of a readout (the header identity, record layout and
    DIF 1F of an undisturbed first telegram; its values may have moved since). Any other
    DUT answers the repeat afresh: its telegram is compared by shape only."""
    master.snd_nke(dut.address)
    clean = master.req_ud2(dut.address)
    delay = clean.exchange.response_delay or 0.0
    baud = master.baud
    master.snd_nke(dut.address)
    # the request leaves now or after the inter-frame idle: either way this lands inside
    # the answer, and long before the retry
    start = (rig.clock.now() + inter_frame_idle(baud) + frame_time(5, baud) + delay
             + frame_time(3, baud))
    fault = faults.inject("collision", at=start, duration=frame_time(4, baud))
    reply = master.req_ud2(dut.address)
    first = reply.exchange.history[0]
    assert first.outcome.value in ("garbled", "collision"), (
        f"the answer under the collision injector came back {first.outcome.value}: "
        f"{bytes(ch.value for ch in first.chars).hex(' ')}")
    assert reply.exchange.attempts >= 2, "the master did not retry the garbled answer"
    assert reply.frame.a == dut.address, (
        f"the retry was answered from address {reply.frame.a}, not {dut.address}")
    if "fcb" in dut.capabilities:
        before = _clean_prefix(first.chars, fault.start)
        repeated = encode(reply.frame)
        assert repeated.startswith(before), (
            f"the retry with the same FCB brought another telegram: {repeated.hex(' ')}, but "
            f"the spoilt answer began {before.hex(' ')} before the injector switched on")
    w.expect_same_shape(reply.frame, clean.frame, "the retry after the collision")


def _clean_prefix(chars, until: float) -> bytes:
    """The characters received whole and without error flags before ``until``."""
    out = bytearray()
    for ch in chars:
        if ch.time >= until or not ch.ok:
            break
        out.append(ch.value)
    return bytes(out)


SEARCH_SIZES = [2, 10, 250]


@pytest.mark.parametrize("slaves", SEARCH_SIZES)
@scenario(AREA, "net.search", needs=("multi_slave", "secondary", "wildcard_selection"),
          severity="critical",
          fails_when="the search misses a slave or reports one that is not there "
                     "(probes are recorded, without a limit)")
def test_search_adversarial_population(master, dut, rig, sim_population, measure, slaves):
    """A secondary search over 2, 10 and 250 slaves (the DUT plus slaves whose IDs share
    prefixes with it, differ only in the last digit, or are equal and differ only in
    manufacturer, version or medium) finds every one of them; the number of probes is
    recorded as a measurement."""
    sec = w.dut_secondary(master, dut)
    others = adversarial(sec, slaves - 1)
    _add(sim_population, master, dut, others)
    w.deselect_all(master, rig)
    result = master.search_secondary()
    found = set(result.found)
    expected = set(others) | {sec} | set(w.bus_secondaries(rig))
    measure(f"search_probes_{slaves}", result.probes, "probes")
    assert expected <= found, f"the search missed {len(expected - found)}: " \
                              f"{', '.join(sorted(map(str, expected - found))[:10])}"
    assert found <= expected, f"the search reports slaves not on the bus: " \
                              f"{', '.join(sorted(map(str, found - expected))[:10])}"

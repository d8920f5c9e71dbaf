"""The libmbus baseline of the benchmarks does what docs/mbus-facts.md says libmbus does (and ours not):
two slaves at one primary address are one device; hex digits of manufacturer, version and
medium are never tried; a collision at the last mask position is dropped. Its timeouts are
libmbus's fixed ones (3 x VTIME).

(The last-position drop itself needs slaves that take F nibbles in the hex fields, which the
emulated meters, following EN 13757-3, do not; the baseline's code path is ``scan_range``
at position 15.)"""

from __future__ import annotations

import dataclasses

import pytest

from protocol.meter import MeterProfile, heat_meter_profile
from rig.tools import libmbus_baseline as baseline
from rig.tools.bus import BusSession, open_sim


def bus_of(profiles: list[MeterProfile]) -> BusSession:
    return open_sim(profiles, baud=2400, seed=1, retries=2)


def meter(n: int, **fields: object) -> MeterProfile:
    values: dict[str, object] = {"id": 40_000_000 + n, "address": 0, "name": f"b{n}",
                                 "fabrication_number": 70_000_000 + n,
                                 "response_delay": 0.02 + 0.011 * n}
    values.update(fields)
    return dataclasses.replace(heat_meter_profile(), **values)  # type: ignore[arg-type]


def test_two_slaves_at_one_address_are_one_device_for_libmbus() -> None:
    bus = bus_of([meter(1, address=5, response_delay=0.05),
                  meter(2, address=5, response_delay=0.05)])
    try:
        result = baseline.scan_primary(bus.port, bus.clock, addresses=range(4, 7))
    finally:
        bus.close()
    assert result.found == ["address 5"] and result.collisions == []
    # two empty addresses at 3 x 0.3 s each, one answer and its 0.9 s purge, five requests
    assert result.bus_time == pytest.approx(3 * 0.9 + 3 * 5 * 11 / 2400 + 0.05 + 11 / 2400,
                                            abs=0.01)


def test_libmbus_never_tries_hex_digits() -> None:
    profiles = [meter(n, id=12345678, manufacturer=m) for n, m in enumerate(("KAM", "ABB", "ELS"))]
    bus = bus_of(profiles)
    try:
        theirs = baseline.scan_secondary(bus.port, bus.clock)
        ours = bus.master.search_secondary("F" * 16)
    finally:
        bus.close()
    assert theirs.found == []
    assert sorted(map(str, ours.found)) == sorted(str(p.secondary) for p in profiles)


def test_libmbus_loses_slaves_sharing_a_secondary_address() -> None:
    """Below a fixed ID libmbus narrows digit by digit into the manufacturer, which slaves
    that take only whole-field wildcards (EN 13757-3) never match, and a collision that
    survived to the last position would be dropped anyway. Ours resolves them by their
    fabrication numbers (enhanced selection)."""
    twins = [meter(1, id=12345678), meter(2, id=12345678)]
    bus = bus_of(twins)
    try:
        theirs = baseline.scan_secondary(bus.port, bus.clock)
        ours = bus.master.search_secondary("F" * 16)
    finally:
        bus.close()
    assert theirs.found == []
    # SearchResult lists secondary addresses: the two slaves show up as their one address
    assert {str(a) for a in ours.found} == {str(twins[0].secondary)} and not ours.unresolved

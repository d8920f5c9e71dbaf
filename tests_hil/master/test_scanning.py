"""Scanning: a primary scan finds every slave and reports a shared address as a collision;
a secondary search finds every slave of adversarial populations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol.fields import ADDRESS_SELECTED, CI, Function
from tests_hil._scenario import scenario
from tests_hil.master import _judge, _meters

AREA = "scanning"

PRIMARY = (1, 2, 4)
"""The meters of the primary scan: neighbours and a gap, scanned over 0..6."""


def _found(report, *, status: str = "ok") -> set:
    return {s.address for s in report.slaves if s.status == status and s.address is not None}


@scenario(AREA, "master.scan", needs=("op_scan", "reports"), severity="critical",
          fails_when="a slave in the scanned range is not reported, or an empty address is")
def test_primary_scan_finds_every_slave(mut, meters):
    """Meters at primary addresses 1, 2 and 4, scanned over 0..6: the master reports exactly
    those three."""
    for n, address in enumerate(PRIMARY):
        meters.add(_meters.single_meter(address, id=12345670 + n))
    result = mut.run("scan", first=0, last=6)
    report = mut.report(result)
    found = {s.address for s in report.slaves}
    assert found == set(PRIMARY), (f"the scan of 0..6 reported {sorted(found)}, the meters "
                                   f"are at {list(PRIMARY)}: {result.describe()}")
    assert _found(report) == set(PRIMARY), (
        f"not every meter was reported as found: {report.slaves}")


@pytest.mark.parametrize("timing", ["aligned", "offset"])
@scenario(AREA, "master.scan", needs=("op_scan", "reports"), severity="critical",
          fails_when="two slaves at one address are reported as one slave, or not at all")
def test_primary_scan_reports_a_collision(mut, meters, timing):
    """Two meters at address 3 (and one at 5), scanned over 1..6: address 3 is reported as
    a collision, address 5 as one slave. ``aligned``: the two answer in step to the bit
    (their E5s merge into one clean E5, their RSP_UDs AND on the wire); ``offset``: three
    characters apart."""
    first = _meters.single_meter(3)
    second_delay = first.response_delay + (0.0 if timing == "aligned" else
                                           3 * 11 / mut.baud)
    meters.add(first)
    meters.add(_meters.single_meter(3, id=first.id + 3, response_delay=second_delay))
    meters.add(_meters.single_meter(5, id=first.id + 5))
    result = mut.run("scan", first=1, last=6)
    report = mut.report(result)
    at_3 = [s for s in report.slaves if s.address == 3]
    assert at_3 and all(s.status == "collision" for s in at_3), (
        f"two meters at address 3 were reported as {[s.status for s in at_3] or 'nothing'}, "
        f"not as a collision: {result.describe()}")
    assert 5 in _found(report), f"the lone meter at 5 was not reported: {report.slaves}"


@pytest.mark.parametrize("population", _meters.SEARCH_POPULATIONS)
@scenario(AREA, "net.search", needs=("op_scan_secondary", "reports"), severity="critical",
          fails_when="the search misses a slave or reports one that is not on the bus "
                     "(probes and bus time are recorded against the project's own search, "
                     "without limits)")
def test_secondary_search_finds_every_slave(mut, meters, bus_trace, measure, baud,
                                           population):
    """A secondary search over adversarial populations finds every slave and no other:
    IDs differing only in the last digit; IDs sharing leading digits; hex digits A-E in
    manufacturer, version and medium, three slaves with one ID told apart there (and by
    enhanced selection); two slaves in step whose
    E5s merge into one clean E5; slaves answering late but inside the window; a mixed ten.
    The probes (selections and REQ_UD2 at 253) and the bus time are recorded, with those of
    the project's own search on the same population."""
    profiles = _meters.search_population(population, baud, mut.timing_slack)
    for profile in profiles:
        meters.add(replace(profile, baud=baud))
    expected = {str(p.secondary) for p in profiles}
    result = mut.run("scan_secondary")
    report = mut.report(result)
    found = {s.secondary.upper() for s in report.slaves
             if s.status == "ok" and s.secondary is not None}
    sent = _judge.requests(_judge.window(bus_trace, result))
    probes = [r for r in sent if r.address == ADDRESS_SELECTED
              and (getattr(r.frame, "ci", None) in (CI.SELECTION, CI.SELECTION_56)
                   or _judge.is_function(r, Function.REQ_UD2))]
    reference = meters.reference_search()
    measure("search_probes", len(probes), "probes")
    measure("search_bus_time", round(sent[-1].end - sent[0].start, 3) if sent else None, "s")
    measure("reference_probes", reference.probes, "probes")
    measure("reference_bus_time", round(reference.duration or 0.0, 3), "s")
    assert expected <= found, (f"the search missed {len(expected - found)} of {len(expected)}: "
                               f"{sorted(expected - found)[:6]} ({result.describe()})")
    assert found <= expected, f"the search reports slaves not on the bus: {sorted(found - expected)}"

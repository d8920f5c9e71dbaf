"""How fast emulated slaves take characters they are not the target of.

A secondary search (the real Master, rig/master.py, over ``mbussim://``) finds 250 emulated
heat meters at 2400 Bd, all at primary address 0. Every slave hears every master character
(selection probes, REQ_UD2 to 253), almost all of them not matching it: this is the
per-character cost of an idle or not-addressed slave, which dominates large populations in
the conformance suite.

Prints the wall time and the count of characters the slaves received, and last
``slave_chars: X slave-characters per wall-second``.
Run: ``.venv/bin/python benchmarks/slave_chars.py [COUNT]``
"""

from __future__ import annotations

import sys

from hardware.clock import WallClock
from hardware.serial_port import SerialBusPort
from hardware.sim import SimBus, Simulation, VirtualClock
from hardware.sim.bus import Endpoint
from hardware.sim.meter import put_meters
from hardware.sim.registry import unregister
from protocol.chars import WireBytes
from protocol.meter import heat_meter_profile
from rig.master import Master

BAUD = 2400
NAME = "slave-chars"


def _count_transmit(endpoint: Endpoint, sent: dict[str, int], key: str) -> None:
    """Count what ``endpoint`` transmits (a wrapper on the rare transmit, not on the
    per-character receive path that is measured)."""
    transmit = endpoint.transmit

    def counting(data: bytes | WireBytes, at: float | None = None) -> float:
        sent[key] += len(data)
        return transmit(data, at)

    endpoint.transmit = counting  # type: ignore[method-assign]


def main(count: int = 250) -> None:
    sim = Simulation(7)
    bus = SimBus(sim, master_baud=BAUD, name=NAME, trace=False)
    meters = put_meters(bus, heat_meter_profile(), count, first_address=0, baud=BAUD)
    sent = {"master": 0, "slaves": 0}  # characters put on the bus, counted at the source
    _count_transmit(bus.master, sent, "master")
    for meter in meters:
        _count_transmit(meter.endpoint, sent, "slaves")
    port = SerialBusPort(f"mbussim://{NAME}", VirtualClock(sim), baud=BAUD)
    master = Master(port, VirtualClock(sim), retries=0)
    wall = WallClock()
    try:
        start = wall.now()
        result = master.search_secondary()
        elapsed = wall.now() - start
    finally:
        unregister(NAME)
    # every slave hears every master character, and its own transmissions (the echo)
    received = sent["master"] * count + sent["slaves"]
    expected = {m.profile.secondary for m in meters}
    if set(result.found) != expected or result.unresolved:
        raise SystemExit(f"search found {len(result.found)} of {count} meters "
                         f"({len(result.unresolved)} unresolved)")
    print(f"secondary search of {count} meters at {BAUD} Bd: {elapsed:.2f} s wall, "
          f"{sim.now():.1f} s bus time, {received} characters to slaves")
    print(f"slave_chars: {received / elapsed:.0f} slave-characters per wall-second")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 250)

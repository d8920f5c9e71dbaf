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
from hardware.sim.meter import put_meters
from hardware.sim.registry import unregister
from protocol.chars import RxChar
from protocol.meter import heat_meter_profile
from rig.master import Master

BAUD = 2400
NAME = "slave-chars"


def main(count: int = 250) -> None:
    sim = Simulation(7)
    bus = SimBus(sim, master_baud=BAUD, name=NAME, trace=False)
    meters = put_meters(bus, heat_meter_profile(), count, first_address=0, baud=BAUD)
    received = [0]
    for meter in meters:  # count what each slave is handed, then hand it on
        deliver = meter.endpoint.on_receive
        assert deliver is not None

        def counting(ch: RxChar, deliver=deliver) -> None:  # type: ignore[no-untyped-def]
            received[0] += 1
            deliver(ch)

        meter.endpoint.on_receive = counting
    port = SerialBusPort(f"mbussim://{NAME}", VirtualClock(sim), baud=BAUD)
    master = Master(port, VirtualClock(sim), retries=0)
    wall = WallClock()
    try:
        start = wall.now()
        result = master.search_secondary()
        elapsed = wall.now() - start
    finally:
        unregister(NAME)
    expected = {m.profile.secondary for m in meters}
    if set(result.found) != expected or result.unresolved:
        raise SystemExit(f"search found {len(result.found)} of {count} meters "
                         f"({len(result.unresolved)} unresolved)")
    print(f"secondary search of {count} meters at {BAUD} Bd: {elapsed:.2f} s wall, "
          f"{sim.now():.1f} s bus time, {received[0]} characters to slaves")
    print(f"slave_chars: {received[0] / elapsed:.0f} slave-characters per wall-second")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 250)

"""How fast the simulated bus runs emulated meters, read by the real master instrument.

The master (rig/master.py) talks through SerialBusPort over ``mbussim://``, the same path the
rig and the tools use; the meters are SimMeters (MeterCore + the heat meter profile).

1. Reading 250 meters at 2400 Bd: one REQ_UD2 to each of addresses 1..250 (full segment).
2. A mixed workload at 300 and at 2400 Bd: SND_NKE, REQ_UD2, a multi-telegram readout
   (3 pages), a secondary selection and a read at 253, a REQ_UD2 to an empty address (the
   full response window) and a collision on broadcast 254, repeated.

Prints the wall time of 1, and last ``sim_speed: X bus-seconds per wall-second`` for 2
(bus time simulated / wall time spent, both baud rates together).
Run: ``.venv/bin/python benchmarks/sim_speed.py``
"""

from __future__ import annotations

import dataclasses
import itertools

from hardware.clock import WallClock
from hardware.profile import load_profile, shipped_profile
from hardware.serial_port import SerialBusPort
from hardware.sim import SimBus, Simulation, VirtualClock
from hardware.sim.meter import add_meters, meter_population
from hardware.sim.registry import unregister
from protocol.app.header import Header
from protocol.errors import LinkError
from protocol.meter import MeterProfile, heat_meter_profile
from rig.master import Master

_names = itertools.count(1)
WALL = WallClock()


def open_bus(profiles: list[MeterProfile], baud: int) -> tuple[Simulation, Master, str]:
    sim = Simulation(7)
    name = f"sim-speed-{next(_names)}"
    bus = SimBus(sim, master_baud=baud, name=name, trace=False)
    add_meters(bus, profiles)
    port = SerialBusPort(f"mbussim://{name}", VirtualClock(sim), baud=baud)
    return sim, Master(port, VirtualClock(sim), retries=0), name


def read_250_at_2400() -> tuple[float, float]:
    """(wall seconds, bus seconds) of reading addresses 1..250 once each."""
    profiles = meter_population(heat_meter_profile(), 250, first_address=1, baud=2400)
    sim, master, name = open_bus(profiles, 2400)
    try:
        start = WALL.now()
        for address in range(1, 251):
            reply = master.req_ud2(address)
            header = reply.telegram.header if reply.telegram is not None else None
            assert isinstance(header, Header) and header.id == profiles[address - 1].id
        return WALL.now() - start, sim.now()
    finally:
        unregister(name)


def mixed(baud: int, rounds: int) -> tuple[float, float]:
    """(wall seconds, bus seconds) of the mixed workload at ``baud``."""
    heat = meter_population(heat_meter_profile(), 8, first_address=1, baud=baud)
    multi = dataclasses.replace(load_profile(shipped_profile("multi-telegram")), address=20,
                                baud=baud)
    sim, master, name = open_bus([*heat, multi], baud)
    try:
        start = WALL.now()
        for i in range(rounds):
            address = 1 + i % len(heat)
            master.snd_nke(address)
            master.req_ud2(address)
            master.snd_nke(multi.address)
            assert len(master.read_all(multi.address)) == len(multi.pages)
            master.select(heat[(i + 3) % len(heat)].secondary)
            master.req_ud2(253)
            try:
                master.req_ud2(99)  # nobody there: the whole response window
            except LinkError:
                pass
            try:
                master.snd_nke(254)  # 9 E5s at once: byte-aligned, one clean E5
            except LinkError:
                pass
        return WALL.now() - start, sim.now()
    finally:
        unregister(name)


def main() -> None:
    wall, bus = read_250_at_2400()
    print(f"read 250 meters at 2400 Bd: {wall:.2f} s wall for {bus:.1f} s of bus time")
    total_wall = total_bus = 0.0
    for baud, rounds in ((300, 4), (2400, 30)):
        wall, bus = mixed(baud, rounds)
        print(f"mixed workload at {baud} Bd: {bus:.1f} s of bus time in {wall:.2f} s wall "
              f"({bus / wall:.1f}x)")
        total_wall += wall
        total_bus += bus
    print(f"sim_speed: {total_bus / total_wall:.1f} bus-seconds per wall-second")


if __name__ == "__main__":
    main()

"""Wall-clock speed of the simulated bus's UART model.

Scenario 1: one master and one slave at 300 baud exchange 255-byte long frames.
Scenario 2: 250 slaves at 2400 baud each hear a REQ_UD2 and answer a 60-byte RSP_UD (as a
primary scan of a full segment would). The last line is ``sim_uart: X chars per wall-second``
over both scenarios (characters received by any endpoint).
"""

from __future__ import annotations

import time

from hardware.sim import SimBus, Simulation
from hardware.sim.scripted import ScriptedSlave
from protocol import frames


def long_frames_300(rounds: int = 20) -> tuple[int, float]:
    sim = Simulation(1)
    bus = SimBus(sim, master_baud=300)
    rsp = frames.encode(frames.LongFrame(0x08, 1, 0x72, bytes(246)))
    slave = ScriptedSlave(bus.add_slave("a", 300), lambda raw: rsp, delay=0.05)
    count = [0]
    bus.master.on_receive = lambda ch: count.__setitem__(0, count[0] + 1)
    req = frames.encode(frames.LongFrame(0x53, 1, 0x51, bytes(246)))
    for _ in range(rounds):
        end = bus.master.transmit(req)
        sim.run_until(end + 0.05 + 255 * 11 / 300 + 0.1)
    return count[0] + len(slave.heard), sim.now()


def population_2400(slaves: int = 250) -> tuple[int, float]:
    sim = Simulation(2)
    bus = SimBus(sim, master_baud=2400)
    received = [0]
    for i in range(1, slaves + 1):
        rsp = frames.encode(frames.LongFrame(0x08, i, 0x72, bytes(51)))

        def answer(raw: bytes, i: int = i, rsp: bytes = rsp) -> bytes | None:
            received[0] += len(raw)
            return rsp if raw[2] == i else None

        ScriptedSlave(bus.add_slave(f"m{i}", 2400), answer, delay=0.01)
    got = [0]
    bus.master.on_receive = lambda ch: got.__setitem__(0, got[0] + 1)
    for i in range(1, slaves + 1):
        end = bus.master.transmit(frames.encode(frames.ShortFrame(0x5B, i)))
        sim.run_until(end + 0.01 + 60 * 11 / 2400 + 0.05)
    assert got[0] == slaves * 60, got[0]
    return received[0] + got[0], sim.now()


def broadcast_collisions(slaves: int = 250, rounds: int = 4) -> tuple[int, float]:
    """Every slave answers a broadcast REQ_UD2 (address 254) at once: a 250-way collision."""
    sim = Simulation(3)
    bus = SimBus(sim, master_baud=2400)
    for i in range(1, slaves + 1):
        rsp = frames.encode(frames.LongFrame(0x08, i, 0x72, bytes([i]) * 51))
        ScriptedSlave(bus.add_slave(f"m{i}", 2400), lambda raw, rsp=rsp: rsp, delay=0.01)
    got = [0]
    bus.master.on_receive = lambda ch: got.__setitem__(0, got[0] + 1)
    for _ in range(rounds):
        end = bus.master.transmit(frames.encode(frames.ShortFrame(0x5B, 0xFE)))
        sim.run_until(end + 0.01 + 60 * 11 / 2400 + 0.05)
    return got[0] + rounds * 5 * slaves, sim.now()


def main() -> None:
    total_chars = 0
    total_wall = 0.0
    for name, fn in (
        ("300 Bd long frames", long_frames_300),
        ("250 slaves at 2400 Bd", population_2400),
        ("250-way collisions", broadcast_collisions),
    ):
        t0 = time.perf_counter()
        chars, bus_time = fn()
        wall = time.perf_counter() - t0
        total_chars += chars
        total_wall += wall
        print(f"{name}: {chars} chars, {bus_time:.1f} s bus time in {wall:.2f} s wall "
              f"({bus_time / wall:.0f}x real time)")
    print(f"sim_uart: {total_chars / total_wall:.0f} chars per wall-second")


if __name__ == "__main__":
    main()

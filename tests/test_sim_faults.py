"""Physical faults on the simulated bus, switched through simulated GPIO fault lines."""

from __future__ import annotations

import pytest

from hardware.gpio import SimGpio
from hardware.lines import Line
from hardware.sim import SimBus, Simulation, VirtualClock
from hardware.sim.scripted import ScriptedSlave
from protocol import frames
from protocol.chars import RxChar
from protocol.errors import ConfigError

PINS = {"bus_power_cut": 17, "slave_disconnect": 27, "bus_short": 22, "collision": 23, "noise": 24}
REQ = frames.encode(frames.ShortFrame(0x5B, 1))
RSP = frames.encode(frames.LongFrame(0x08, 1, 0x72, bytes(range(40))))


class Rig:
    """A bus, one scripted slave answering RSP, and fault lines on a SimGpio."""

    def __init__(self, seed: int = 1, *, active_high: bool = True, slaves: int = 1) -> None:
        self.sim = Simulation(seed)
        self.clock = VirtualClock(self.sim)
        self.bus = SimBus(self.sim, master_baud=2400)
        self.slaves = [
            ScriptedSlave(self.bus.add_slave(f"s{i + 1}"), lambda raw: RSP, delay=0.01)
            for i in range(slaves)
        ]
        self.gpio = SimGpio(self.clock, pulls={pin: not active_high for pin in PINS.values()})
        self.bus.wire_lines(self.gpio, PINS, active_high=active_high, disconnect=[self.slaves[0].endpoint])
        self.lines = {role: Line(self.gpio, pin, role, active_high) for role, pin in PINS.items()}
        self.heard: list[RxChar] = []
        self.bus.master.on_receive = self.heard.append

    def exchange(self, at: float) -> bytes:
        """Send REQ at ``at``; what the master heard in the next 0.5 s."""
        self.sim.run_until(at)
        self.heard.clear()
        self.bus.master.transmit(REQ)
        self.sim.run_until(at + 0.5)
        return bytes(c.value for c in self.heard)


def test_lines_start_released_and_the_bus_works() -> None:
    rig = Rig()
    assert rig.exchange(0.1) == RSP
    assert all(c.ok for c in rig.heard)


def test_power_cut_longer_than_hold_up_resets_the_slave() -> None:
    rig = Rig()
    slave = rig.slaves[0]
    rig.sim.run_until(1.0)
    rig.lines["bus_power_cut"].assert_()
    rig.sim.run_until(1.05)
    assert slave.endpoint.powered  # running on its hold-up capacitor
    # the slave hears the voltage drop as a break: a 00 with a framing error
    assert slave.heard[-1] == RxChar(0x00, 1.0 + 10.5 / 2400, False, True)
    assert rig.exchange(1.5) == b""  # unpowered: no answer
    assert slave.power_events == [(pytest.approx(1.09), False)]
    rig.sim.run_until(2.0)
    rig.lines["bus_power_cut"].release()
    assert rig.exchange(2.05) == b""  # powering up (0.3 s)
    assert slave.power_events[-1] == (pytest.approx(2.3), True)
    assert rig.exchange(2.5) == RSP


def test_power_cut_within_hold_up_loses_nothing() -> None:
    rig = Rig()
    rig.sim.run_until(1.0)
    rig.lines["bus_power_cut"].pulse(rig.clock, 0.05)
    assert rig.sim.now() == pytest.approx(1.05)
    assert rig.slaves[0].power_events == []
    assert rig.exchange(1.2) == RSP


def test_hold_up_and_power_up_are_per_slave_settings() -> None:
    rig = Rig()
    ep = rig.bus.add_slave("slow", hold_up=0.5, power_up=5.0)
    events: list[tuple[float, bool]] = []
    ep.on_power = lambda on: events.append((rig.sim.now(), on))
    rig.sim.run_until(1.0)
    rig.lines["bus_power_cut"].pulse(rig.clock, 1.0)
    rig.sim.run_until(10.0)
    assert events == [(pytest.approx(1.5), False), (pytest.approx(7.0), True)]


def test_short_master_sees_space_and_slaves_lose_power() -> None:
    rig = Rig(slaves=2)
    rig.sim.run_until(1.0)
    rig.lines["bus_short"].assert_()
    rig.sim.run_until(1.5)
    assert rig.heard == [RxChar(0x00, 1.0 + 10.5 / 2400, False, True)]  # continuous space
    assert all(s.power_events == [(pytest.approx(1.09), False)] for s in rig.slaves)
    rig.lines["bus_short"].release()
    rig.sim.run_until(2.0)
    assert all(s.power_events[-1] == (pytest.approx(1.8), True) for s in rig.slaves)
    entries = [e for e in rig.bus.trace.entries if e.direction == "S>M"]
    assert entries[0].source == "short" and entries[0].framing_error


def test_slave_disconnect_cuts_only_the_target() -> None:
    rig = Rig(slaves=2)
    target, other = rig.slaves
    pf = 5
    rig.bus.wire_lines(rig.gpio, {"slave_power_fail": pf})
    assert rig.gpio.level(pf) is True
    rig.sim.run_until(1.0)
    rig.lines["slave_disconnect"].assert_()
    assert rig.gpio.level(pf) is False  # the TSS721A PF output: bus lost
    heard_before = len(target.heard)
    rig.exchange(1.01)
    assert len(target.heard) == heard_before
    assert other.requests == [REQ]
    rig.lines["slave_disconnect"].release()
    assert rig.gpio.level(pf) is True
    assert target.power_events == [(pytest.approx(1.09), False)]


def test_disconnect_mid_answer_cuts_the_answer() -> None:
    rig = Rig()
    rig.sim.run_until(0.1)
    rig.bus.master.transmit(REQ)
    rig.sim.run_until(0.1 + len(REQ) * 11 / 2400 + 0.01 + 5 * 11 / 2400)
    rig.lines["slave_disconnect"].assert_()
    rig.sim.run_until(1.0)
    assert 5 <= len(rig.heard) <= 6
    assert bytes(c.value for c in rig.heard[:5]) == RSP[:5]


def test_collision_window_garbles_an_answer() -> None:
    rig = Rig()
    answer_start = 0.1 + len(REQ) * 11 / 2400 - 0.5 / 2400 + 0.01
    rig.bus.set_collision(start=answer_start + 20 * 11 / 2400 + 3 / 2400, duration=4 / 2400)
    rig.sim.run_until(0.1)
    rig.lines["collision"].assert_()
    got = rig.exchange(0.1)
    # data bits 2-5 of character 20 forced to space; 0D -> 01 keeps its parity: only the
    # checksum can tell
    assert got[:20] == RSP[:20] and got[21:] == RSP[21:]
    assert (RSP[20], got[20]) == (0x0D, 0x01)
    assert rig.bus.trace is not None
    answer = [e for e in rig.bus.trace.entries if e.direction == "S>M"]
    assert [e.source for e in answer].count("s1+collision") == 1
    assert answer[20].source == "s1+collision"
    (frame,) = [f for f in rig.bus.trace.frames() if f.direction == "S>M"]
    assert frame.error is not None and frame.error.startswith("checksum")


def test_collision_sink_follows_the_line_without_a_window() -> None:
    rig = Rig()
    rig.sim.run_until(1.0)
    rig.lines["collision"].pulse(rig.clock, 2.4 / 2400)
    rig.sim.run_until(1.1)
    # space for 2.4 bits: start bit and d0 read 0, the rest idle: FE with good parity
    assert rig.heard == [RxChar(0xFE, 1.0 + 10.5 / 2400)]


def test_noise_line_uses_the_rates_set_on_the_bus() -> None:
    rig = Rig()
    rig.bus.set_noise(down=0.0, up=0.05)
    rig.lines["noise"].assert_()
    got = rig.exchange(0.1)
    assert rig.slaves[0].requests == [REQ]  # no noise on the way down
    assert got != RSP or not all(c.ok for c in rig.heard)
    rig.lines["noise"].release()
    assert rig.exchange(1.0) == RSP


def test_noise_down_reaches_slaves() -> None:
    rig = Rig()
    rig.bus.set_noise(down=0.2)
    rig.lines["noise"].assert_()
    rig.exchange(0.1)
    assert rig.slaves[0].requests != [REQ]


def test_same_seed_same_trace_and_another_seed_differs() -> None:
    def run(seed: int) -> list[dict[str, object]]:
        rig = Rig(seed)
        rig.bus.set_noise(down=0.01, up=0.02)
        rig.lines["noise"].assert_()
        for i in range(5):
            rig.exchange(0.1 + i * 0.6)
        assert rig.bus.trace is not None
        return rig.bus.trace.to_json()

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_active_low_lines() -> None:
    rig = Rig(active_high=False)
    assert rig.exchange(0.1) == RSP
    rig.lines["bus_power_cut"].assert_()
    assert rig.gpio.level(PINS["bus_power_cut"]) is False
    assert not rig.bus.power_on


def test_wiring_errors_name_the_role() -> None:
    sim = Simulation()
    bus = SimBus(sim)
    with pytest.raises(ConfigError, match="'bus_melt' is not known"):
        bus.wire_lines(SimGpio(VirtualClock(sim)), {"bus_melt": 12})
    with pytest.raises(ConfigError, match="not a probability"):
        bus.set_noise(up=2.0)
    with pytest.raises(ConfigError, match="at most 250"):
        for _ in range(251):
            bus.add_slave()


def test_slaves_do_not_hear_the_collision_sink() -> None:
    rig = Rig()
    heard_before = len(rig.slaves[0].heard)
    rig.lines["collision"].pulse(rig.clock, 0.01)
    rig.sim.run_until(0.5)
    assert len(rig.slaves[0].heard) == heard_before
    assert len(rig.heard) == 1 and rig.heard[0].framing_error  # the master does

"""SimMeter: emulated meters on the simulated bus (timing on the wire, baud, power, many)."""

from __future__ import annotations

import dataclasses

import pytest

from hardware.profile import load_profile, shipped_profile
from hardware.sim.bus import SimBus
from hardware.sim.engine import Simulation
from hardware.sim.meter import SimMeter, add_meters, meter_population, put_meters
from protocol.app.requests import encode_set_address
from protocol.app.telegram import decode_telegram
from protocol.chars import RxChar
from protocol.errors import ConfigError
from protocol.fields import CI, Function, c_field
from protocol.frames import ControlFrame, Frame, LongFrame, ShortFrame, decode, encode
from protocol.meter import heat_meter_profile
from protocol.timing import char_time, response_window


class Probe:
    """The master endpoint, driven by hand: send a frame, collect what comes back."""

    def __init__(self, bus: SimBus) -> None:
        self.bus = bus
        self.sim = bus.sim
        self.heard: list[RxChar] = []
        bus.master.on_receive = self.heard.append

    def ask(self, data: bytes, wait: float = 2.0) -> tuple[float, list[RxChar]]:
        """Send ``data``; run ``wait`` s of bus time; (end of the request, chars heard)."""
        self.heard.clear()
        end = self.bus.master.transmit(data)
        self.sim.run_until(end + wait)
        return end, list(self.heard)

    def frame(self, data: bytes, wait: float = 2.0) -> Frame:
        _, chars = self.ask(data, wait)
        assert chars and all(c.ok for c in chars), chars
        return decode(bytes(c.value for c in chars))

    def set_baud(self, baud: int) -> None:
        self.bus.master.baud = baud


@pytest.fixture
def bus() -> SimBus:
    return SimBus(Simulation(seed=1), trace=False)


@pytest.fixture
def probe(bus: SimBus) -> Probe:
    return Probe(bus)


def req_ud2(a: int, fcb: bool = True) -> bytes:
    return encode(ShortFrame(c_field(Function.REQ_UD2, fcb=fcb), a))


def test_answer_on_the_wire_after_the_response_delay(bus: SimBus, probe: Probe) -> None:
    meter = SimMeter.on_bus(bus, heat_meter_profile())
    end, chars = probe.ask(req_ud2(1))
    frame = decode(bytes(c.value for c in chars))
    assert isinstance(frame, LongFrame) and frame.a == 1
    first_start = chars[0].time - 10.5 / 2400  # the stop-bit sample is 10.5 bits in
    assert first_start - end == pytest.approx(meter.profile.response_delay, abs=1e-6)
    low, high = response_window(2400)
    assert low <= first_start - end <= high


def test_many_meters_distinct_ids_each_answers_its_address(bus: SimBus, probe: Probe) -> None:
    profiles = meter_population(heat_meter_profile(), 5, first_address=10)
    meters = add_meters(bus, profiles)
    assert [m.core.address for m in meters] == [10, 11, 12, 13, 14]
    seen = set()
    for p in profiles:
        frame = probe.frame(req_ud2(p.address))
        assert isinstance(frame, LongFrame) and frame.a == p.address
        header = decode_telegram(frame).header
        assert header is not None
        seen.add(header.id)
    assert seen == {p.id for p in profiles} and len(seen) == 5


def test_two_meters_on_broadcast_254_collide(bus: SimBus, probe: Probe) -> None:
    add_meters(bus, meter_population(heat_meter_profile(), 2))
    _, chars = probe.ask(req_ud2(254))
    assert any(not c.ok for c in chars) or decode_fails(bytes(c.value for c in chars))


def decode_fails(data: bytes) -> bool:
    try:
        decode(data)
    except Exception:
        return True
    return False


def test_baud_switch_e5_at_old_rate_then_answers_at_new(bus: SimBus, probe: Probe) -> None:
    meter = SimMeter.on_bus(bus, heat_meter_profile())
    ack = probe.frame(encode(ControlFrame(c_field(Function.SND_UD), 1, CI.BAUD_9600)))
    assert encode(ack) == b"\xe5"
    assert meter.endpoint.baud == 9600
    _, chars = probe.ask(req_ud2(1))
    assert not chars or any(not c.ok for c in chars) or decode_fails(bytes(c.value for c in chars))
    probe.set_baud(9600)
    assert isinstance(probe.frame(req_ud2(1, fcb=False)), LongFrame)


def test_baud_fallback_after_silence_at_the_new_rate(bus: SimBus, probe: Probe) -> None:
    profile = load_profile(shipped_profile("multi-telegram"))  # baud_fallback = 30 s
    meter = SimMeter.on_bus(bus, profile)
    end, _ = probe.ask(encode(ControlFrame(c_field(Function.SND_UD), 5, CI.BAUD_300)))
    assert meter.endpoint.baud == 300
    bus.sim.run_until(end + 29.9)
    assert meter.endpoint.baud == 300
    bus.sim.run_until(end + 30.1)
    assert meter.endpoint.baud == 2400 and meter.core.baud == 2400
    assert isinstance(probe.frame(req_ud2(5)), LongFrame)


def test_power_loss_resets_link_state_to_the_profile(bus: SimBus, probe: Probe) -> None:
    meter = SimMeter.on_bus(bus, heat_meter_profile())
    probe.frame(encode(LongFrame(c_field(Function.SND_UD), 1, CI.SET_ADDRESS,
                                 encode_set_address(42))))
    assert meter.core.address == 42
    bus.set_power(False)
    bus.sim.run_for(0.05)  # within the hold-up time: nothing lost
    bus.set_power(True)
    bus.sim.run_for(0.5)
    assert meter.core.address == 42 and meter.power_losses == 0
    bus.set_power(False)
    bus.sim.run_for(1.0)
    bus.set_power(True)
    bus.sim.run_for(1.0)
    assert meter.power_losses == 1 and meter.core.address == 1
    assert isinstance(probe.frame(req_ud2(1)), LongFrame)


def test_armed_silence_on_the_wire_then_recovers(bus: SimBus, probe: Probe) -> None:
    meter = SimMeter.on_bus(bus, heat_meter_profile())
    meter.core.arm("silence", count=2)
    for fcb in (True, True):
        assert probe.ask(req_ud2(1, fcb))[1] == []
    assert isinstance(probe.frame(req_ud2(1, True)), LongFrame)


def test_population_limits_name_the_problem() -> None:
    base = heat_meter_profile()
    with pytest.raises(ConfigError, match="end at 251"):
        meter_population(base, 2, first_address=250)
    with pytest.raises(ConfigError, match=r"allowed: 300, 2400, 9600"):
        meter_population(base, 1, baud=4800)
    zeros = meter_population(dataclasses.replace(base, address=0), 3)
    assert [p.address for p in zeros] == [0, 0, 0]
    assert len({p.id for p in zeros}) == 3
    top = meter_population(dataclasses.replace(base, id=99_999_999), 2)
    assert [p.id for p in top] == [99_999_999, 0]


def test_remove_takes_the_meter_off_the_bus(bus: SimBus, probe: Probe) -> None:
    meter = SimMeter.on_bus(bus, heat_meter_profile())
    meter.remove()
    assert probe.ask(req_ud2(1))[1] == [] and bus.slaves == []


def test_char_time_of_a_300_baud_readout_runs_on_virtual_time(bus: SimBus,
                                                              probe: Probe) -> None:
    profile = dataclasses.replace(heat_meter_profile(), baud=300)
    meter = SimMeter.on_bus(bus, profile)
    probe.set_baud(300)
    end, chars = probe.ask(req_ud2(1), wait=5.0)
    assert len(chars) > 60 and meter.endpoint.baud == 300
    assert chars[-1].time - end > len(chars) * char_time(300)


def test_put_meters_puts_n_distinct_meters_on_the_bus(bus: SimBus, probe: Probe) -> None:
    meters = put_meters(bus, heat_meter_profile(), 250, first_address=1)
    assert len(bus.slaves) == 250 and len({m.profile.id for m in meters}) == 250
    frame = probe.frame(req_ud2(250))
    assert isinstance(frame, LongFrame) and frame.a == 250

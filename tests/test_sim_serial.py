"""The ``mbussim://`` pyserial URL: virtual-time reads, PARMRK errors, baud changes."""

from __future__ import annotations

import pytest
import serial

from hardware.clock import WallClock
from hardware.serial_port import SerialBusPort
from hardware.sim import RealTimeRunner, SimBus, Simulation, VirtualClock, parmrk
from hardware.sim.scripted import ScriptedSlave
from protocol import frames
from protocol.chars import RxChar, WireBytes

REQ = frames.encode(frames.ShortFrame(0x5B, 1))
RSP = frames.encode(frames.LongFrame(0x08, 1, 0x72, bytes([0xFF, 0x01, 0xFF, 0x02])))


def open_bus(name: str, baud: int = 2400, **kw: object) -> tuple[Simulation, SimBus, serial.SerialBase]:
    sim = Simulation(3)
    bus = SimBus(sim, master_baud=baud, name=name, **kw)  # type: ignore[arg-type]
    port = serial.serial_for_url(f"mbussim://{name}", baudrate=baud, parity="E", timeout=1.0)
    return sim, bus, port


def test_parmrk_encoding() -> None:
    assert parmrk(RxChar(0x41)) == b"\x41"
    assert parmrk(RxChar(0xFF)) == b"\xff\xff"
    assert parmrk(RxChar(0x41, parity_error=True)) == b"\xff\x00\x41"
    assert parmrk(RxChar(0x00, framing_error=True)) == b"\xff\x00\x00"


def test_request_and_answer_on_virtual_time() -> None:
    sim, bus, port = open_bus("ser1")
    slave = ScriptedSlave(bus.add_slave("a"), lambda raw: RSP, delay=0.02)
    assert port.write(REQ) == len(REQ)
    port.flush()
    assert sim.now() == pytest.approx(len(REQ) * 11 / 2400)
    assert slave.requests == [REQ]
    data = port.read(100)  # returns at the 1 s timeout, with the whole answer
    assert data == RSP.replace(b"\xff", b"\xff\xff")
    assert sim.now() == pytest.approx(len(REQ) * 11 / 2400 + 1.0)


def test_read_returns_as_soon_as_enough_arrived() -> None:
    sim, bus, port = open_bus("ser2")
    ScriptedSlave(bus.add_slave("a"), lambda raw: b"\xe5", delay=0.01)
    port.write(REQ)
    port.flush()
    t = sim.now()
    assert port.read(1) == b"\xe5"
    assert sim.now() == pytest.approx(t + 0.01 + 10 / 2400)


def test_read_timeout_runs_on_virtual_time_and_zero_timeout_does_not_wait() -> None:
    sim, _bus, port = open_bus("ser3")
    assert port.read(1) == b""
    assert sim.now() == pytest.approx(1.0)
    port.timeout = 0
    assert port.read(1) == b""
    assert sim.now() == pytest.approx(1.0)
    port.timeout = None
    assert port.read(1) == b""  # nothing scheduled: the simulation ran dry, no hang


def test_inter_byte_timeout_ends_a_read_after_silence() -> None:
    sim, bus, port = open_bus("ser4")
    port.timeout = 10.0
    port.inter_byte_timeout = 0.05
    ScriptedSlave(bus.add_slave("a"), lambda raw: RSP[:6], delay=0.01)
    port.write(REQ)
    assert port.read(100) == RSP[:6]
    assert sim.now() < 1.0


def test_errors_arrive_as_parmrk_marks() -> None:
    sim, bus, port = open_bus("ser5")
    bus.add_slave("a").transmit(WireBytes(b"\x10\x20\x30", frozenset({1})), at=0.01)
    assert port.read(5) == b"\x10\xff\x00\x20\x30"


def test_write_wire_sends_bad_parity() -> None:
    sim, bus, port = open_bus("ser6")
    slave = ScriptedSlave(bus.add_slave("a"), lambda raw: None)
    port.write_wire(WireBytes(REQ, frozenset({0})))
    port.flush()
    sim.run_for(0.01)
    assert [c.parity_error for c in slave.heard] == [True, False, False, False, False]


def test_baud_rate_change_reaches_the_master_endpoint() -> None:
    _sim, bus, port = open_bus("ser7")
    port.baudrate = 9600
    assert bus.master.baud == 9600
    assert all(tap.baud == 9600 for tap in bus.taps)
    with pytest.raises(ValueError, match="not an M-Bus rate"):
        port.baudrate = 115200


def test_reset_output_buffer_cancels_queued_characters() -> None:
    sim, bus, port = open_bus("ser8", baud=300)
    slave = ScriptedSlave(bus.add_slave("a", 300), lambda raw: None)
    port.write(bytes(20))
    assert port.out_waiting == 20
    sim.run_for(2.5 * 11 / 300)
    port.reset_output_buffer()
    sim.run_for(1.0)
    # two whole characters; the third was cut half-way: its tail reads as idle (ones)
    assert [c.value for c in slave.heard] == [0x00, 0x00, 0xF0]
    assert [c.ok for c in slave.heard] == [True, True, False]


def test_url_errors_are_clear() -> None:
    with pytest.raises(serial.SerialException, match="no simulated bus named 'nosuchbus'"):
        serial.serial_for_url("mbussim://nosuchbus", parity="E")
    SimBus(Simulation(), name="fmt")
    with pytest.raises(serial.SerialException, match="8E1"):
        serial.serial_for_url("mbussim://fmt")
    with pytest.raises(serial.SerialException, match="no path or options"):
        serial.serial_for_url("mbussim://fmt?x=1", parity="E")


def test_second_open_of_one_master_is_refused() -> None:
    _sim, _bus, port = open_bus("ser9")
    with pytest.raises(serial.SerialException, match="already open"):
        serial.serial_for_url("mbussim://ser9", parity="E")
    port.close()
    serial.serial_for_url("mbussim://ser9", parity="E").close()


def test_serial_bus_port_over_the_url_decodes_errors_and_times() -> None:
    sim, bus, _port = open_bus("ser10")
    _port.close()
    clock = VirtualClock(sim)
    port = SerialBusPort("mbussim://ser10", clock, baud=2400)
    ScriptedSlave(bus.add_slave("a"), lambda raw: WireBytes(b"\xe5\xff", frozenset({0})), delay=0.01)
    end = port.write(REQ)
    assert end == pytest.approx(len(REQ) * 11 / 2400)
    first = port.read_char(end + 1.0)
    second = port.read_char(end + 1.0)
    assert first is not None and second is not None
    assert (first.value, first.parity_error) == (0xE5, True)
    assert (second.value, second.parity_error) == (0xFF, False)
    assert first.time == pytest.approx(end + 0.01 + 10 / 2400)  # delay counted from the stop sample
    assert port.read_char(end + 2.0) is None
    assert clock.now() == pytest.approx(end + 2.0)


def test_serial_bus_port_with_master_echo() -> None:
    sim = Simulation()
    bus = SimBus(sim, name="ser11", echo=True)
    port = SerialBusPort("mbussim://ser11", VirtualClock(sim), baud=2400, echo=True)
    ScriptedSlave(bus.add_slave("a"), lambda raw: b"\xe5", delay=0.01)
    end = port.write(REQ)
    ch = port.read_char(end + 0.5)
    assert ch is not None and ch.value == 0xE5


def test_port_under_a_real_time_runner() -> None:
    sim = Simulation()
    bus = SimBus(sim, name="ser12", master_baud=9600)
    ScriptedSlave(bus.add_slave("a", 9600), lambda raw: b"\xe5", delay=0.002)
    port = serial.serial_for_url("mbussim://ser12", baudrate=9600, parity="E", timeout=2.0)
    with RealTimeRunner(sim, clock=WallClock()):
        port.write(REQ)
        assert port.read(1) == b"\xe5"
    assert sim.runner is None


def test_break_condition_holds_the_bus_voltage_at_space() -> None:
    sim, bus, port = open_bus("ser13")
    slave = ScriptedSlave(bus.add_slave("a"), lambda raw: None)
    sim.run_until(0.1)
    port.break_condition = True
    sim.run_until(0.2)
    port.break_condition = False
    sim.run_until(0.3)
    assert slave.heard == [RxChar(0x00, 0.1 + 10.5 / 2400, False, True)]


def test_closed_bus_name_is_gone() -> None:
    bus = SimBus(Simulation(), name="ser14")
    bus.close()
    with pytest.raises(serial.SerialException, match="no simulated bus named 'ser14'"):
        serial.serial_for_url("mbussim://ser14", parity="E")


def test_master_sending_over_a_late_answer_gets_each_slave_char_once_at_its_stop_sample() -> None:
    """The master starts its next frame while the slave still answers: every slave character
    is in the bus trace once, and the port stamps it with its stop-bit sample time (as the
    simulated UART received it), not with the end of the master's write."""
    sim = Simulation()
    bus = SimBus(sim, name="ser-overlap")
    port = SerialBusPort("mbussim://ser-overlap", VirtualClock(sim), baud=2400)
    answers = iter([RSP])
    ScriptedSlave(bus.add_slave("a"), lambda raw: next(answers, None), delay=0.05)
    end = port.write(REQ)
    ct = 11 / 2400
    first_char = end + 0.05 + ct
    sim.run_until(first_char + 3 * ct)  # three slave characters in
    second_end = port.write(REQ)  # the master talks over the rest of the answer
    assert second_end < first_char + (len(RSP) - 1) * ct  # really overlapping
    got: list[RxChar] = []
    while (ch := port.read_char(second_end + 1.0)) is not None:
        got.append(ch)
    s2m = [e for e in bus.trace.entries if e.direction == "S>M"] if bus.trace else []
    assert [e.value for e in s2m] == list(RSP)
    assert {e.source for e in s2m} == {"a"}
    assert [ch.value for ch in got] == list(RSP)
    assert [ch.time for ch in got] == pytest.approx([e.time for e in s2m])
    m2s = [e for e in bus.trace.entries if e.direction == "M>S"] if bus.trace else []
    assert bytes(e.value for e in m2s) == REQ + REQ


class StepRunner:
    """A real-time runner without a thread, on a clock the test moves: the simulation catches
    up only when the port calls in (as the real runner's thread may come late)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.t = 0.0
        sim.runner = self

    def now(self) -> float:
        return self.t

    def call(self, fn):  # type: ignore[no-untyped-def]
        with self.sim.lock:
            self.sim.run_until(max(self.t, self.sim.now()))
            return fn()

    def wait_until(self, when: float, timeout: float | None = None) -> bool:
        self.t = max(self.t, when)
        self.call(lambda: None)
        return True

    def wait_for(self, predicate, timeout):  # type: ignore[no-untyped-def]
        return bool(predicate())


def test_character_read_late_in_real_time_keeps_its_bus_time() -> None:
    """The master reads a buffered character while the simulation lags the wall clock (the
    runner has not stepped since it arrived): it is stamped with its stop-bit sample, not
    with that sample plus the lag."""
    sim, bus, plain = open_bus("ser-late")
    plain.close()
    runner = StepRunner(sim)
    ScriptedSlave(bus.add_slave("a"), lambda raw: b"\xe5", delay=0.02)
    from hardware.sim.realtime import RunnerClock

    port = SerialBusPort("mbussim://ser-late", RunnerClock(runner), baud=2400)  # type: ignore[arg-type]
    end = port.write(REQ)
    runner.wait_until(end + 0.1)  # the answer is in the port's buffer ...
    runner.t += 0.5  # ... and the wall clock runs on while the simulation waits
    ch = port.read_char(runner.t + 1.0)
    assert ch is not None and ch.value == 0xE5
    assert ch.time == pytest.approx(end + 0.02 + 10 / 2400)


def test_master_reading_late_gets_what_arrived_before_its_deadline() -> None:
    """The master's thread resumes after its deadline has passed on the clock: characters
    already received are returned, each with its own receive time (the link judges them)."""
    sim, bus, plain = open_bus("ser-deadline")
    plain.close()
    runner = StepRunner(sim)
    ScriptedSlave(bus.add_slave("a"), lambda raw: b"\xe5\xe5", delay=0.02)
    from hardware.sim.realtime import RunnerClock

    port = SerialBusPort("mbussim://ser-deadline", RunnerClock(runner), baud=2400)  # type: ignore[arg-type]
    end = port.write(REQ)
    first = end + 0.02 + 10 / 2400  # stop-bit samples of the two E5s
    second = first + 11 / 2400
    deadline = (first + second) / 2
    runner.wait_until(second + 0.5)  # both in the buffer; the clock is far past the deadline
    got = [port.read_char(deadline), port.read_char(deadline)]
    assert [c.time for c in got if c is not None] == pytest.approx([first, second])
    assert port.read_char(deadline) is None

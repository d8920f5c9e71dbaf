"""The simulation loop, the virtual clock and the real-time runner."""

from __future__ import annotations

import threading

import pytest

from hardware.clock import Clock, WallClock
from hardware.sim import RealTimeRunner, SimBus, Simulation, VirtualClock
from hardware.sim.scripted import ScriptedSlave
from protocol.chars import RxChar
from protocol.errors import HardwareError


def test_events_run_in_time_order_then_schedule_order() -> None:
    sim = Simulation()
    log: list[str] = []
    sim.schedule(2.0, lambda: log.append("b"))
    sim.schedule(1.0, lambda: log.append("a"))
    sim.schedule(2.0, lambda: log.append("c"))
    assert sim.run_until(1.5) is False
    assert (log, sim.now()) == (["a"], 1.5)
    sim.run_until(10.0)
    assert log == ["a", "b", "c"] and sim.now() == 10.0


def test_run_until_stops_at_the_event_that_satisfies_the_predicate() -> None:
    sim = Simulation()
    hits: list[float] = []
    for t in (0.5, 1.0, 1.5):
        sim.schedule(t, lambda t=t: hits.append(t))
    assert sim.run_until(5.0, stop=lambda: len(hits) == 2) is True
    assert sim.now() == 1.0
    assert sim.run_until(5.0, stop=lambda: True) is True  # checked before anything runs
    assert sim.now() == 1.0


def test_cancelled_events_do_not_run_and_the_past_is_refused() -> None:
    sim = Simulation()
    ran: list[int] = []
    ev = sim.schedule(1.0, lambda: ran.append(1))
    ev.cancel()
    assert sim.next_time() is None
    sim.run_until(2.0)
    assert ran == []
    with pytest.raises(ValueError, match="cannot schedule"):
        sim.schedule(1.0, lambda: None)


def test_infinite_horizon_stops_when_dry_without_jumping_to_infinity() -> None:
    sim = Simulation()
    sim.schedule(3.0, lambda: None)
    assert sim.run_until(float("inf")) is False
    assert sim.now() == 3.0


def test_virtual_clock_is_a_clock_sleeping_on_simulated_time() -> None:
    sim = Simulation()
    clock = VirtualClock(sim)
    assert isinstance(clock, Clock) and clock.is_virtual
    fired: list[float] = []
    clock.call_at(2.5, lambda: fired.append(clock.now()))
    clock.sleep(2.0)
    assert (clock.now(), fired) == (2.0, [])
    clock.sleep(1.0)
    assert (clock.now(), fired) == (3.0, [2.5])
    clock.sleep(-1.0)
    assert clock.now() == 3.0
    assert clock.wait_until(10.0, lambda: clock.now() >= 3.0) is True


def test_seeded_random_is_reproducible() -> None:
    assert Simulation(5).random.random() == Simulation(5).random.random()
    assert Simulation(5).random.random() != Simulation(6).random.random()


def test_real_time_runner_lets_another_thread_join_the_bus() -> None:
    sim = Simulation()
    bus = SimBus(sim, master_baud=9600)
    ScriptedSlave(bus.add_slave("a", 9600), lambda raw: b"\xe5", delay=0.002)
    got: list[RxChar] = []
    bus.master.on_receive = got.append
    with RealTimeRunner(sim, clock=WallClock()) as runner:
        assert sim.runner is runner
        with pytest.raises(HardwareError, match="already running"):
            runner.start()
        start = runner.call(lambda: bus.master.transmit(b"\x10\x40\x01\x41\x16"))
        assert runner.wait_for(lambda: len(got) == 1, timeout=5.0)
        assert got[0].value == 0xE5
        assert got[0].time > start
        thread_names = {t.name for t in threading.enumerate()}
        assert "mbussim-realtime" in thread_names
    assert sim.runner is None
    assert not runner.running
    assert runner.wait_for(lambda: False, timeout=1.0) is False  # stopped: no wait


class StarvedRunner(RealTimeRunner):
    """A runner whose thread never gets to step (a loaded machine, taken to the extreme)."""

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(0.05)
            self._wake.clear()


def test_wait_for_decides_on_bus_time_when_the_runner_lags() -> None:
    """An answer the bus delivered before the deadline counts even if the runner's thread
    has not simulated it yet when the deadline passes on the clock."""
    sim = Simulation()
    bus = SimBus(sim, master_baud=9600)
    ScriptedSlave(bus.add_slave("a", 9600), lambda raw: b"\xe5", delay=0.002)
    got: list[RxChar] = []
    bus.master.on_receive = got.append
    with StarvedRunner(sim, clock=WallClock()) as runner:
        runner.call(lambda: bus.master.transmit(b"\x10\x40\x01\x41\x16"))
        assert runner.wait_for(lambda: len(got) == 1, timeout=0.2)
        assert not runner.wait_for(lambda: len(got) == 2, timeout=0.05)


def test_real_time_runner_reports_a_failing_callback() -> None:
    sim = Simulation()

    def boom() -> None:
        raise RuntimeError("device failed")

    with RealTimeRunner(sim, clock=WallClock()) as runner:
        runner.call(lambda: sim.schedule(sim.now(), boom))
        assert runner.wait_for(lambda: False, timeout=5.0) is False
    assert isinstance(runner.error, RuntimeError)


def test_a_callback_that_waits_is_refused() -> None:
    sim = Simulation()
    clock = VirtualClock(sim)
    sim.schedule(1.0, lambda: clock.sleep(0.5))
    with pytest.raises(HardwareError, match="callback tried to wait"):
        sim.run_until(2.0)
    sim.schedule(3.0, lambda: None)
    assert sim.run_until(4.0) is False  # the loop is usable again


def test_runner_call_from_a_callback_runs_in_place_and_runner_clock() -> None:
    from hardware.gpio import SimGpio
    from hardware.lines import Line
    from hardware.sim import RunnerClock

    sim = Simulation()
    bus = SimBus(sim, master_baud=9600)
    with RealTimeRunner(sim, clock=WallClock()) as runner:
        clock = RunnerClock(runner)
        assert not clock.is_virtual
        gpio = SimGpio(clock)
        runner.call(lambda: bus.wire_lines(gpio, {"bus_power_cut": 17}))
        line = Line(gpio, 17, "bus_power_cut")
        done: list[float] = []
        # a timed fault: the line is released from inside a simulation callback
        line.assert_()
        assert runner.wait_for(lambda: not bus.power_on, timeout=5.0)
        clock.call_at(clock.now() + 0.01, lambda: (line.release(), done.append(sim.now())))
        assert runner.wait_for(lambda: bool(done) and bus.power_on, timeout=5.0)
        assert runner.call(lambda: 42) == 42
        t = clock.now()
        clock.sleep(0.01)
        assert clock.now() >= t + 0.01

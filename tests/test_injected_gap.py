"""An injected gap inside a master frame (FrameFault.GAP) is on the wire as long as asked,
within one character time, at every M-Bus rate and on every kind of DUT: an emulated slave on
virtual time, an outside program over a pty and the agent in loopback (both in real time).

The gap is measured on the simulated bus's trace (each character stamped at its stop-bit
sample): the idle line between the stop bit of the character before the gap and the start
bit of the one after it.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.serial_port import SerialBusPort
from protocol.chars import WireBytes
from protocol.frame_faults import FrameFault, GappedWire, build_faulty
from protocol.timing import BAUD_RATES, char_time, frame_time, inter_frame_idle
from rig.config import config_from_dict
from rig.rig import Rig
from tests_hil import _wire as w

OUTSIDE_SLAVE = Path(__file__).resolve().parent / "outside" / "mbus_slave.py"
AFTER = 2
"""The pause comes after the second character (the scenarios' choice)."""


def scenario_pause(baud: int) -> float:
    """The pause tests_hil/test_frame_errors.py asks for: twice the inter-frame idle plus a
    character time."""
    return 2 * inter_frame_idle(baud) + char_time(baud)


def measured_gap(rig: Rig, since: float) -> float:
    """Idle line between the characters around the gap of the last master frame."""
    sent = [e for e in rig.trace.since(since).entries if e.direction == "M>S"]
    assert len(sent) == 5, f"expected the 5 characters of the REQ_UD2, got {len(sent)}"
    return sent[AFTER].time - sent[AFTER - 1].time - char_time(sent[AFTER].baud)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dut(kind: str, tmp_path: Path) -> dict[str, object]:
    if kind == "emulated":
        return {"name": "meter", "kind": "emulated", "address": 5}
    if kind == "program":
        return {"name": "outside", "kind": "program", "address": 5,
                "command": [sys.executable, str(OUTSIDE_SLAVE), "{tty}", "--address", "5"]}
    token = tmp_path / "agent.token"
    token.write_text("gap-test-token\n")
    token.chmod(0o600)
    port = _free_port()
    return {"name": "agent", "kind": "agent", "url": f"http://127.0.0.1:{port}",
            "token_file": str(token), "address": 5,
            "command": ["mbus-rig", "agent", "--port", "{tty}", "--listen",
                        f"127.0.0.1:{port}", "--token-file", str(token), "--no-echo",
                        "--gpio", "sim"]}


@pytest.fixture(params=["emulated", "program", "agent"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    cfg = config_from_dict({"dut": [_dut(request.param, tmp_path)]},
                           str(tmp_path / "gap.toml"))
    with Rig(cfg) as the_rig:
        assert the_rig.mode == ("sim" if request.param == "emulated" else "loopback")
        yield the_rig


def test_injected_gap_is_as_long_as_asked_at_every_rate(rig: Rig) -> None:
    master = rig.master
    for baud in BAUD_RATES:
        master.set_baud(baud)
        pause = scenario_pause(baud)
        start = rig.clock.now()
        master.exchange(build_faulty(w.req_ud2(5), FrameFault.GAP, after=AFTER, pause=pause))
        gap = measured_gap(rig, start)
        assert abs(gap - pause) <= char_time(baud), (
            f"{rig.dut.kind} DUT at {baud} Bd: a gap of {pause * 1000:.3f} ms was asked, "
            f"{gap * 1000:.3f} ms went on the wire (allowed: one character, "
            f"{char_time(baud) * 1000:.3f} ms)")


# --- a UART port (no write_wire): the pause counts from the first part's last stop bit ---------


class LateDrain:
    """A pyserial-like port whose drain returns ``late`` seconds after the bytes left, as a
    loaded scheduler makes it; it records when each write started on the clock."""

    def __init__(self, clock: StepClock, late: float) -> None:
        self.clock = clock
        self.late = late
        self.writes: list[tuple[float, bytes]] = []
        self.baudrate, self.bytesize, self.parity, self.stopbits = 2400, 8, "E", 1
        self.timeout: float | None = 0
        self.is_open = True
        self.port = "late-drain"

    def write(self, data: bytes) -> int:
        self.writes.append((self.clock.now(), bytes(data)))
        self.clock.t += frame_time(len(data), self.baudrate)
        return len(data)

    def flush(self) -> None:
        self.clock.t += self.late

    def read(self, size: int = 1) -> bytes:
        return b""

    def close(self) -> None:
        self.is_open = False


class StepClock:
    is_virtual = True

    def __init__(self) -> None:
        self.t = 10.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def call_at(self, when: float, callback: object) -> None:
        raise NotImplementedError


def test_uart_gap_counts_from_the_last_stop_bit_not_from_the_late_drain() -> None:
    clock = StepClock()
    ser = LateDrain(clock, late=0.010)
    port = SerialBusPort(ser, clock, baud=2400)
    wire = build_faulty(w.req_ud2(5), FrameFault.GAP, after=AFTER, pause=0.0321)
    assert isinstance(wire, GappedWire)
    end = port.write(wire)
    (t1, first), (t2, rest) = ser.writes
    assert first + rest == wire.data and len(first) == AFTER
    first_end = t1 + frame_time(AFTER, 2400)
    # the drain came back 10 ms late: the rest still starts 32.1 ms after the first part
    assert t2 - first_end == pytest.approx(0.0321)
    assert end == pytest.approx(t2 + frame_time(len(rest), 2400))


def test_uart_gap_with_bad_parity_in_both_parts() -> None:
    clock = StepClock()
    ser = LateDrain(clock, late=0.0)
    port = SerialBusPort(ser, clock, baud=2400)
    gapped = GappedWire(bytes.fromhex("10 5b 05 60 16"), frozenset({0, 3}), after=2,
                        pause=0.01)
    first, rest = gapped.parts
    assert first == WireBytes(b"\x10\x5b", frozenset({0}))
    assert rest == WireBytes(b"\x05\x60\x16", frozenset({1}))
    port.write(gapped)
    assert b"".join(data for _, data in ser.writes) == gapped.data


def test_runner_wait_until_follows_the_clock_not_the_runner_step() -> None:
    """``RealTimeRunner.wait_until`` (what ``flush`` waits with in real time) returns once the
    clock has reached the asked simulation time, with the simulation caught up to it, even
    while the runner thread sleeps a long step; a timeout ends it early."""
    from hardware.sim import RealTimeRunner, SimBus, Simulation

    sim = Simulation(1)
    bus = SimBus(sim, master_baud=2400)
    clock = StepClock()
    with RealTimeRunner(sim, clock=clock, max_step=5.0) as runner:
        end = runner.call(lambda: bus.master.transmit(w.snd_nke(1)))
        assert end == pytest.approx(frame_time(5, 2400))
        assert runner.wait_until(end)
        assert clock.t - 10.0 == pytest.approx(end)  # waited until then, not a step longer
        assert sim.now() >= end and bus.master.busy_until <= sim.now()
        assert not runner.wait_until(end + 1.0, timeout=0.25)
        assert clock.t - 10.0 == pytest.approx(end + 0.25)

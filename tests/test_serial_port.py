"""SerialBusPort over a real pseudo-terminal and over pyserial's loop:// URL."""

from __future__ import annotations

import errno
import os
import select
import termios
from collections.abc import Iterator
from typing import Any

import pytest
import serial
from serial.urlhandler.protocol_loop import Serial as LoopSerial

from hardware.clock import WallClock
from hardware.port import BusPort
from hardware.serial_port import ParmrkDecoder, SerialBusPort, _hardware_error
from protocol.chars import RxChar, WireBytes
from protocol.errors import CollisionError, ConfigError, EchoMismatchError, HardwareError
from protocol.timing import frame_time

CLOCK = WallClock()


# --- the PARMRK decoder ---------------------------------------------------------------------


def decode(data: bytes) -> list[tuple[int, bool]]:
    decoder = ParmrkDecoder()
    return [out for byte in data for out in decoder.feed(byte)]


def test_decoder_marks_plain_doubled_and_flagged_bytes() -> None:
    assert decode(bytes.fromhex("10 ff ff 00 ff 00 41 ff 00 ff 16")) == [
        (0x10, False), (0xFF, False), (0x00, False), (0x41, True), (0xFF, True), (0x16, False)]


def test_decoder_keeps_state_between_feeds() -> None:
    decoder = ParmrkDecoder()
    assert decoder.feed(0xFF) == [] and decoder.pending
    assert decoder.feed(0x00) == []
    assert decoder.feed(0x68) == [(0x68, True)] and not decoder.pending


def test_decoder_passes_an_invalid_mark_through() -> None:
    assert decode(bytes.fromhex("ff 41")) == [(0xFF, False), (0x41, False)]


# --- a real pseudo-terminal -------------------------------------------------------------------


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    yield master, name
    os.close(master)
    os.close(slave)


def iflag(port: SerialBusPort) -> int:
    return int(termios.tcgetattr(port.serial.fd)[0])


def read_master(master: int, n: int) -> bytes:
    out = b""
    while len(out) < n and select.select([master], [], [], 2.0)[0]:
        out += os.read(master, n - len(out))
    return out


def test_pty_port_is_8n1_with_parmrk_flags(pty: tuple[int, str]) -> None:
    """A pty carries no parity bit: it is opened 8N1 (tests/test_serial_port_state.py shows
    why 8E1 fails there); the PARMRK flags a UART needs are set all the same."""
    _master, name = pty
    with SerialBusPort(name, CLOCK, baud=2400) as port:
        assert isinstance(port, BusPort) and port.pty
        ser = port.serial
        assert (ser.bytesize, ser.parity, ser.stopbits, ser.baudrate) == (8, "N", 1, 2400)
        flags = iflag(port)
        assert flags & termios.INPCK and flags & termios.PARMRK
        assert not flags & termios.IGNPAR and not flags & termios.ISTRIP
        assert port.parmrk


def test_pty_flags_survive_baud_change(pty: tuple[int, str]) -> None:
    _master, name = pty
    with SerialBusPort(name, CLOCK, baud=2400) as port:
        port.set_baud(9600)
        assert port.baud == 9600 and port.serial.baudrate == 9600
        flags = iflag(port)
        assert flags & termios.INPCK and flags & termios.PARMRK


def test_pty_real_ff_arrives_as_one_character(pty: tuple[int, str]) -> None:
    master, name = pty
    with SerialBusPort(name, CLOCK, baud=2400) as port:
        os.write(master, bytes.fromhex("68 ff 00 16"))  # the kernel doubles FF (PARMRK)
        chars = [port.read_char(CLOCK.now() + 2.0) for _ in range(4)]
        assert [(c.value, c.ok) for c in chars if c] == [
            (0x68, True), (0xFF, True), (0x00, True), (0x16, True)]


def test_pty_marked_sequences_decode_to_flagged_characters(pty: tuple[int, str]) -> None:
    master, name = pty
    with SerialBusPort(name, CLOCK, baud=2400) as port:
        # A pty never flags parity itself: with PARMRK off on this tty the marks written
        # from the other side reach the port byte for byte, as a UART's marks would.
        attrs = termios.tcgetattr(port.serial.fd)
        attrs[0] &= ~termios.PARMRK
        termios.tcsetattr(port.serial.fd, termios.TCSANOW, attrs)
        before = CLOCK.now()
        os.write(master, bytes.fromhex("ff 00 41 ff ff ff 00 ff 42"))
        chars = []
        while (ch := port.read_char(CLOCK.now() + 0.5)) is not None:
            chars.append(ch)
        assert [(c.value, c.parity_error) for c in chars] == [
            (0x41, True), (0xFF, False), (0xFF, True), (0x42, False)]
        assert all(before <= c.time <= CLOCK.now() for c in chars)


def test_pty_read_returns_none_at_deadline(pty: tuple[int, str]) -> None:
    _master, name = pty
    with SerialBusPort(name, CLOCK, baud=2400) as port:
        deadline = CLOCK.now() + 0.05
        assert port.read_char(deadline) is None
        assert CLOCK.now() >= deadline


def test_pty_write_reaches_other_side_and_returns_end_time(pty: tuple[int, str]) -> None:
    master, name = pty
    with SerialBusPort(name, CLOCK, baud=300) as port:
        start = CLOCK.now()
        end = port.write(bytes.fromhex("10 40 01 41 16"))
        assert read_master(master, 5) == bytes.fromhex("10 40 01 41 16")
        assert end >= start + frame_time(5, 300)


def test_pty_reset_input_drops_pending(pty: tuple[int, str]) -> None:
    master, name = pty
    with SerialBusPort(name, CLOCK, baud=2400) as port:
        os.write(master, b"\xe5\xe5")
        first = port.read_char(CLOCK.now() + 2.0)
        assert first is not None and first.value == 0xE5
        port.reset_input()
        assert port.read_char(CLOCK.now() + 0.05) is None


def test_exclusive_second_open_is_port_busy(pty: tuple[int, str]) -> None:
    _master, name = pty
    with SerialBusPort(name, CLOCK, baud=2400):
        with pytest.raises(HardwareError, match=f"serial port {name}: port busy"):
            SerialBusPort(name, CLOCK, baud=2400)


def test_missing_port_is_named() -> None:
    with pytest.raises(HardwareError, match="serial port /dev/ttyNOSUCH0: no such port"):
        SerialBusPort("/dev/ttyNOSUCH0", CLOCK, baud=2400)


def test_unknown_url_scheme_is_named() -> None:
    with pytest.raises(HardwareError, match="serial port nosuch://x: unknown port URL scheme"):
        SerialBusPort("nosuch://x", CLOCK, baud=2400)


def test_permission_denied_message() -> None:
    exc = serial.SerialException(errno.EACCES, "could not open port /dev/ttyAMA0: denied")
    assert str(_hardware_error("/dev/ttyAMA0", exc)) == (
        "serial port /dev/ttyAMA0: permission denied (add the user to the 'dialout' group)")


def test_invalid_baud_is_refused() -> None:
    with pytest.raises(ConfigError, match="baud rate 1000 is not an M-Bus rate"):
        SerialBusPort("loop://", CLOCK, baud=1000)


# --- loop:// -------------------------------------------------------------------------------


def drain(port: SerialBusPort) -> list[RxChar]:
    out = []
    while (ch := port.read_char(CLOCK.now() + 0.05)) is not None:
        out.append(ch)
    return out


def test_loop_url_is_8e1_without_parmrk_decoding() -> None:
    with SerialBusPort("loop://", CLOCK, baud=2400) as port:
        assert not port.parmrk
        port.write(bytes.fromhex("ff 00 41"))
        assert [(c.value, c.ok) for c in drain(port)] == [(0xFF, True), (0x00, True), (0x41, True)]


def test_echo_is_read_back_and_dropped() -> None:
    with SerialBusPort("loop://", CLOCK, baud=2400, echo=True) as port:
        port.write(bytes.fromhex("10 5b fe 59 16"))
        assert drain(port) == []


def test_differing_echo_raises_collision() -> None:
    with SerialBusPort("loop://", CLOCK, baud=2400, echo=True) as port:
        port.serial.write(b"\x00")  # another sender's character lands before the echo
        with pytest.raises(EchoMismatchError, match="sent 10 40 01 41 16, echoed 00 10 40 01 41") as info:
            port.write(bytes.fromhex("10 40 01 41 16"))
        assert isinstance(info.value, CollisionError)
        assert info.value.sent == bytes.fromhex("10 40 01 41 16")
        assert [c.value for c in info.value.echoed] == [0x00, 0x10, 0x40, 0x01, 0x41]


def test_missing_echo_is_a_hardware_error() -> None:
    class NoEcho(LoopSerial):
        def write(self, data: Any) -> int:
            return len(data)

    ser = NoEcho("loop://")
    with SerialBusPort(ser, CLOCK, baud=9600, echo=True, echo_margin=0.05) as port:
        with pytest.raises(HardwareError, match="no echo.*set echo = false"):
            port.write(b"\xe5")


class ParityLog(LoopSerial):
    """loop:// that records the parity each write went out with."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.log: list[tuple[str, bytes]] = []
        super().__init__(*args, **kwargs)

    def write(self, data: Any) -> int:
        self.log.append((self.parity, bytes(data)))
        return int(super().write(data))


def test_existing_serial_object_is_set_to_8e1() -> None:
    ser = ParityLog(None, baudrate=9600, parity="N")
    ser.port = "loop://"
    with SerialBusPort(ser, CLOCK, baud=2400) as port:
        assert ser.is_open
        assert (ser.baudrate, ser.parity, ser.bytesize, ser.stopbits) == (2400, "E", 8, 1)
        assert port.path == "loop://"


def test_bad_parity_bytes_go_out_with_odd_parity() -> None:
    ser = ParityLog("loop://")
    with SerialBusPort(ser, CLOCK, baud=2400) as port:
        port.write(WireBytes(bytes.fromhex("68 03 03 68 53 fe 51"), frozenset({1, 2, 6})))
        assert ser.log == [
            ("E", b"\x68"), ("O", b"\x03\x03"), ("E", b"\x68\x53\xfe"), ("O", b"\x51")]
        assert ser.parity == "E"
        assert [c.value for c in drain(port)] == list(bytes.fromhex("68 03 03 68 53 fe 51"))


def test_bad_parity_echo_compares_values_only() -> None:
    ser = ParityLog("loop://")
    with SerialBusPort(ser, CLOCK, baud=2400, echo=True) as port:
        port.write(WireBytes(b"\xe5\xe5", frozenset({0})))
        assert drain(port) == []


def test_port_with_write_wire_gets_the_wire_bytes() -> None:
    class WirePort(LoopSerial):
        wires: list[WireBytes] = []

        def write_wire(self, wire: WireBytes) -> None:
            self.wires.append(wire)
            self.write(wire.data)

    ser = WirePort("loop://")
    wire = WireBytes(b"\xe5", frozenset({0}))
    with SerialBusPort(ser, CLOCK, baud=2400) as port:
        port.write(wire)
        assert ser.wires == [wire] and ser.parity == "E"


def test_parmrk_attribute_on_port_object_turns_decoding_on() -> None:
    class MarkingLoop(LoopSerial):
        parmrk = True

    with SerialBusPort(MarkingLoop("loop://"), CLOCK, baud=2400) as port:
        assert port.parmrk
        port.serial.write(bytes.fromhex("ff 00 41 ff ff"))
        assert [(c.value, c.parity_error) for c in drain(port)] == [(0x41, True), (0xFF, False)]


# --- the simulated bus's mbussim:// URL ----------------------------------------------------


def sim_port(name: str, *, echo: bool = False) -> tuple[Any, Any, SerialBusPort]:
    from hardware.sim import SimBus, Simulation, VirtualClock

    sim = Simulation(7)
    bus = SimBus(sim, master_baud=2400, echo=echo, name=name)
    return sim, bus, SerialBusPort(f"mbussim://{name}", VirtualClock(sim), baud=2400, echo=echo)


def test_mbussim_stamps_are_the_bus_times_and_errors_are_flagged() -> None:
    sim, bus, port = sim_port("serialport-stamps")
    assert port.parmrk
    bus.add_slave("a").transmit(WireBytes(b"\x68\xff\x16", frozenset({2})), at=0.01)
    chars = []
    while (ch := port.read_char(sim.now() + 0.5)) is not None:
        chars.append(ch)
    tapped = [e for e in bus.trace.entries if e.direction == "S>M"]
    assert [(c.value, c.parity_error) for c in chars] == [
        (e.value, e.parity_error) for e in tapped]
    assert [c.time for c in chars] == [e.time for e in tapped]
    assert [c.parity_error for c in chars] == [False, False, True]


def test_mbussim_write_ends_at_last_stop_bit_and_sends_bad_parity() -> None:
    sim, bus, port = sim_port("serialport-write")
    start = sim.now()
    end = port.write(WireBytes(bytes.fromhex("10 40 05 45 16"), frozenset({3})))
    assert end == pytest.approx(start + frame_time(5, 2400))
    assert sim.now() == pytest.approx(end)
    sent = [e for e in bus.trace.entries if e.direction == "M>S"]
    assert [e.value for e in sent] == list(bytes.fromhex("10 40 05 45 16"))
    assert [e.parity_error for e in sent] == [False, False, False, True, False]


def test_mbussim_master_echo_is_dropped() -> None:
    sim, bus, port = sim_port("serialport-echo", echo=True)
    port.write(bytes.fromhex("10 40 05 45 16"))
    assert port.read_char(sim.now() + 0.2) is None


class AgedLoop(LoopSerial):
    """loop:// that says every byte read was received 0.25 s ago (as mbussim:// can)."""

    def last_read_age(self) -> float:
        return 0.25


class FrozenClock:
    def now(self) -> float:
        return 100.0


def test_a_port_that_knows_receive_times_back_dates_characters() -> None:
    with SerialBusPort(AgedLoop("loop://"), FrozenClock(), baud=2400) as port:  # type: ignore[arg-type]
        port.serial.write(b"\xe5\x10")
        chars = [port.read_char(101.0), port.read_char(101.0)]
    assert [(c.value, c.time) for c in chars if c is not None] == [(0xE5, 99.75), (0x10, 99.75)]


def test_a_port_without_receive_times_stamps_with_the_clock() -> None:
    with SerialBusPort("loop://", FrozenClock(), baud=2400) as port:  # type: ignore[arg-type]
        port.serial.write(b"\xe5")
        ch = port.read_char(101.0)
    assert ch is not None and ch.time == 100.0

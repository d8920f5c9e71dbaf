"""Shared test doubles for the link-layer tests: a meter application and wire helpers.

(Named test_* so it lives with the link tests; it holds a few self-checks.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.app import Header, Record, encode_variable_data
from protocol.chars import RxChar, WireBytes, as_wire, even_parity_bit
from protocol.frame_faults import GappedWire
from protocol.frames import ShortFrame, encode
from protocol.identity import SecondaryAddress, manufacturer_code
from protocol.link import RspUd, SetBaud, SlaveAction, SlaveLink, SlaveSettings, Transmit
from protocol.link.master import STOP_SAMPLE_BITS
from protocol.timing import char_time

KAM = manufacturer_code("KAM")


@dataclass
class FakeMeter:
    """A MeterApplication with numbered pages (data = page number and access counter)."""

    identity: SecondaryAddress = SecondaryAddress(12345678, KAM, 1, 4)
    fabrication_number: int | None = 11223344
    alarm: int | None = None
    n_pages: int = 1
    resets: list[int | None] = field(default_factory=list)
    addresses: list[int] = field(default_factory=list)
    reads: int = 0

    def rsp_ud(self, page: int) -> RspUd:
        """CI 72: the identity in the header, the access number counting reads, one record
        (DIF 01 VIF 13 = volume) holding the page number; DIF 1F when more pages follow."""
        self.reads += 1
        ident = self.identity
        header = Header(ident.id, ident.manufacturer, ident.version, ident.medium,
                        access_number=self.reads & 0xFF)
        more = page + 1 < self.n_pages
        data = encode_variable_data(header, [Record.build(0x01, 0x13, page)],
                                    more_records_follow=more)
        return RspUd(0x72, data, more_follow=more)

    def application_reset(self, subcode: int | None) -> None:
        self.resets.append(subcode)

    def on_address_changed(self, address: int) -> None:
        self.addresses.append(address)


def rx(data: bytes | WireBytes, t0: float, baud: int) -> list[RxChar]:
    """The characters of ``data`` as received back to back, the first starting at ``t0``;
    each time-stamped at its stop-bit sample (10.5 bit times after its start bit)."""
    wire = as_wire(data)
    ct = char_time(baud)
    return [RxChar(b, t0 + i * ct + STOP_SAMPLE_BITS / baud, parity_error=i in wire.bad_parity)
            for i, b in enumerate(wire.data)]


def feed(link: SlaveLink, data: bytes | WireBytes, t0: float = 0.0) -> list[SlaveAction]:
    """Feed ``data`` to ``link`` at its current baud; return its actions."""
    out: list[SlaveAction] = []
    for ch in rx(data, t0, link.baud):
        out += link.receive(ch)
    return out


def transmits(actions: list[SlaveAction]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Transmit)]


def make(address: int = 5, meter: FakeMeter | None = None, **settings: object) -> tuple[SlaveLink, FakeMeter]:
    """A SlaveLink without echo (tests feed only the master's bytes) and its meter."""
    app = meter or FakeMeter()
    opts: dict[str, object] = {"address": address, "echo": False}
    opts.update(settings)
    return SlaveLink(app, SlaveSettings(**opts)), app  # type: ignore[arg-type]


def and_merge(answers: list[bytes]) -> list[tuple[int, bool]]:
    """Bitwise AND of byte-aligned answers (docs/mbus-facts.md collision model) -> (value, parity error).

    A byte is flagged when the AND of the senders' parity bits is not the parity of the AND
    of their data bits; bytes only the longest answer has arrive clean.
    """
    out: list[tuple[int, bool]] = []
    for i in range(max((len(a) for a in answers), default=0)):
        present = [a[i] for a in answers if i < len(a)]
        value = 0xFF
        parity = 1
        for b in present:
            value &= b
            parity &= even_parity_bit(b)
        out.append((value, parity != even_parity_bit(value)))
    return out


def test_and_merge_identical_is_clean_and_differing_is_flagged_or_changed() -> None:
    assert and_merge([b"\xe5", b"\xe5"]) == [(0xE5, False)]
    merged = and_merge([b"\x68\x10", b"\x68\x20"])
    assert merged[0] == (0x68, False) and merged[1][0] == 0x00


def test_fake_meter_pages_follow() -> None:
    meter = FakeMeter(n_pages=2)
    assert meter.rsp_ud(0).more_follow and not meter.rsp_ud(1).more_follow


# --- an in-memory bus: a BusPort test double in front of SlaveLinks ----------------------


class FakeClock:
    """A virtual Clock: sleep advances time."""

    is_virtual = True

    def __init__(self, start: float = 100.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def advance_to(self, t: float) -> None:
        self.t = max(self.t, t)

    def call_at(self, when: float, callback: object) -> None:
        raise NotImplementedError("not needed by these tests")


class MemoryBus:
    """A BusPort whose far side is a set of SlaveLinks (no echo, no bit timing).

    Answers are computed when the master writes. Answers that start together are merged
    with ``and_merge``; characters overlapping in time otherwise arrive AND-ed with a framing
    error; an answer at another baud than the master's arrives with framing errors.
    ``faults`` is a queue consumed one per write that gets an answer: "drop" loses the
    answer, "garble" flags its first character.
    """

    def __init__(self, slaves: list[SlaveLink], baud: int = 2400,
                 clock: FakeClock | None = None) -> None:
        self.slaves = list(slaves)
        self.clock = clock or FakeClock()
        self._baud = baud
        self._tx_baud = {id(s): s.baud for s in self.slaves}
        self.queue: list[RxChar] = []
        self.writes: list[tuple[float, WireBytes]] = []
        self.faults: list[str] = []

    @property
    def baud(self) -> int:
        return self._baud

    def set_baud(self, baud: int) -> None:
        self._baud = baud

    def write(self, data: bytes | WireBytes) -> float:
        wire = as_wire(data)
        if isinstance(wire, GappedWire):  # as a port sends it: part, pause, rest
            first, rest = wire.parts
            end = self.write(first)
            self.clock.advance_to(end + wire.pause)
            return self.write(rest)
        t0 = self.clock.now()
        end = t0 + len(wire.data) * char_time(self._baud)
        self.writes.append((end, wire))
        sends: list[tuple[float, int, bytes]] = []
        for slave in self.slaves:
            for ch in rx(wire, t0, self._baud):
                if slave.baud != self._baud:
                    ch = RxChar(ch.value, ch.time, framing_error=True)
                for action in slave.receive(ch):
                    self._act(slave, action, sends)
        self.clock.advance_to(end)
        self.queue += self._merge(sends)
        self.queue.sort(key=lambda c: c.time)
        return end

    def _act(self, slave: SlaveLink, action: SlaveAction,
             sends: list[tuple[float, int, bytes]]) -> None:
        if isinstance(action, Transmit):
            sends.append((action.not_before, self._tx_baud[id(slave)], action.data))
        elif isinstance(action, SetBaud):
            self._tx_baud[id(slave)] = action.baud

    def _merge(self, sends: list[tuple[float, int, bytes]]) -> list[RxChar]:
        if sends and self.faults:
            fault = self.faults.pop(0)
            if fault == "drop":
                return []
            chars = self._merge_clean(sends)
            chars[0] = RxChar(chars[0].value, chars[0].time, parity_error=True)
            return chars
        return self._merge_clean(sends)

    def _merge_clean(self, sends: list[tuple[float, int, bytes]]) -> list[RxChar]:
        by_start: dict[tuple[float, int], list[bytes]] = {}
        for start, baud, data in sends:
            by_start.setdefault((round(start, 9), baud), []).append(data)
        chars: list[tuple[float, float, int, bool, bool]] = []  # (begin, end, value, p, f)
        for (start, baud), datas in by_start.items():
            ct = char_time(baud)
            for i, (value, parity) in enumerate(and_merge(datas)):
                # the master's UART takes its stop-bit sample 10.5 of ITS bit times after the
                # start edge, whatever rate the sender used
                chars.append((start + i * ct, start + i * ct + STOP_SAMPLE_BITS / self._baud,
                              value, parity, baud != self._baud))
        out: list[RxChar] = []
        for begin, stop, value, parity, framing in chars:
            overlapping = [c for c in chars if c[0] < stop and begin < c[1]
                           and (c[0], c[1]) != (begin, stop)]
            for c in overlapping:
                value &= c[2]
            out.append(RxChar(value, stop, parity_error=parity,
                              framing_error=framing or bool(overlapping)))
        return out

    def read_char(self, deadline: float) -> RxChar | None:
        if self.queue and self.queue[0].time <= deadline:
            ch = self.queue.pop(0)
            self.clock.advance_to(ch.time)
            return ch
        self.clock.advance_to(deadline)
        for slave in self.slaves:
            for action in slave.poll(self.clock.now()):
                self._act(slave, action, [])
        return None

    def reset_input(self) -> None:
        self.queue.clear()

    def close(self) -> None:
        pass


def test_memory_bus_merges_aligned_acks_cleanly() -> None:
    a, _ = make(5)
    b, _ = make(5)
    bus = MemoryBus([a, b])
    end = bus.write(encode(ShortFrame(0x40, 5)))
    ch = bus.read_char(end + 1.0)
    assert ch is not None and ch.ok and ch.value == 0xE5
    assert bus.read_char(end + 1.0) is None

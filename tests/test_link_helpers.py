"""Shared test doubles for the link-layer tests: a meter application and wire helpers.

(Named test_* so it lives with the link tests; it holds a few self-checks.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.chars import RxChar, WireBytes, as_wire, even_parity_bit
from protocol.identity import SecondaryAddress, manufacturer_code
from protocol.link import RspUd, SlaveAction, SlaveLink, SlaveSettings, Transmit
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
        self.reads += 1
        data = self.identity.to_bytes() + bytes((self.reads & 0xFF, 0, 0, 0, page))
        return RspUd(0x72, data, more_follow=page + 1 < self.n_pages)

    def application_reset(self, subcode: int | None) -> None:
        self.resets.append(subcode)

    def on_address_changed(self, address: int) -> None:
        self.addresses.append(address)


def rx(data: bytes | WireBytes, t0: float, baud: int) -> list[RxChar]:
    """The characters of ``data`` as received back to back, the first starting at ``t0``."""
    wire = as_wire(data)
    ct = char_time(baud)
    return [RxChar(b, t0 + (i + 1) * ct, parity_error=i in wire.bad_parity)
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
    """Bitwise AND of byte-aligned answers (MBUS.md collision model) -> (value, parity error).

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

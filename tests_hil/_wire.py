"""The scenarios' vocabulary: requests in M-Bus terms and what may come back.

Only the wire (the ``master`` instrument) is used here. Requests are built with
``protocol.frames``; single raw exchanges go through ``Master.exchange`` (no retries), so a
scenario sees exactly what the DUT did with exactly one request. Every check raises an
``AssertionError`` whose message names the request, what was expected, and what came back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from protocol import fields
from protocol.app import decode_telegram
from protocol.app.requests import baud_switch_ci, encode_application_reset, encode_set_address
from protocol.chars import WireBytes
from protocol.fields import CI, CField, Function, c_field
from protocol.frames import ControlFrame, Frame, LongFrame, ShortFrame, encode
from protocol.identity import SecondaryAddress, manufacturer_text
from protocol.link.selection import SelectionMask

# --- requests ------------------------------------------------------------------------------


def snd_nke(address: int) -> bytes:
    """SND_NKE (40) to ``address``."""
    return encode(ShortFrame(int(Function.SND_NKE), address))


def req_ud2(address: int, *, fcb: bool = False) -> bytes:
    """REQ_UD2 (5B, 7B with FCB) to ``address``."""
    return encode(ShortFrame(c_field(Function.REQ_UD2, fcb=fcb), address))


def req_ud1(address: int, *, fcb: bool = False) -> bytes:
    """REQ_UD1 (5A, 7A with FCB) to ``address``."""
    return encode(ShortFrame(c_field(Function.REQ_UD1, fcb=fcb), address))


def snd_ud(address: int, ci: int, data: bytes = b"", *, fcb: bool = False) -> bytes:
    """SND_UD (53/73): a control frame without data, a long frame with data."""
    c = c_field(Function.SND_UD, fcb=fcb)
    frame: Frame = LongFrame(c, address, ci, data) if data else ControlFrame(c, address, ci)
    return encode(frame)


def set_address_request(address: int, new: int) -> bytes:
    """SND_UD CI 51, data 01 7A <new> (docs/mbus-facts.md "Set primary address")."""
    return snd_ud(address, CI.SET_ADDRESS, encode_set_address(new))


def baud_request(address: int, baud: int) -> bytes:
    """SND_UD control frame with CI B8..BF (docs/mbus-facts.md "Baud switch")."""
    return snd_ud(address, baud_switch_ci(baud))


def application_reset(address: int, subcode: int | None = None) -> bytes:
    """SND_UD CI 50 with an optional subcode byte."""
    return snd_ud(address, CI.APPLICATION_RESET, encode_application_reset(subcode))


def exact(sec: SecondaryAddress, fabrication: int | None = None) -> SelectionMask:
    """The mask that selects exactly ``sec`` (enhanced with ``fabrication`` when given)."""
    return SelectionMask.of(sec, fabrication)


def mask(id_digits: str, manufacturer: int, version: int, medium: int) -> SelectionMask:
    """A mask from its fields: ``id_digits`` is 8 characters 0-9 or F (wildcard); FFFF, FF,
    FF are the whole-field wildcards of the others (the 16-digit form writes the
    manufacturer in wire order, see protocol.link.selection)."""
    return SelectionMask(f"{id_digits}{manufacturer_text(manufacturer)}{version:02X}"
                         f"{medium:02X}".upper())


def selection(mask: SelectionMask | bytes, *, ci: int = CI.SELECTION) -> bytes:
    """SND_UD to 253 with a selection mask (CI 56 sends it MSB first)."""
    data = mask if isinstance(mask, bytes) else mask.to_bytes(msb_first=ci == CI.SELECTION_56)
    return snd_ud(fields.ADDRESS_SELECTED, ci, data)


def nobody(population: list[SecondaryAddress]) -> SelectionMask:
    """An exact mask that matches no slave in ``population`` (used to deselect everybody)."""
    taken = {s.id for s in population}
    ident = next(i for i in range(99_999_999, 0, -1) if i not in taken)
    template = population[0] if population else SecondaryAddress(0, 0, 0, 0)
    return exact(SecondaryAddress(ident, template.manufacturer, template.version,
                                  template.medium))


# --- outcomes -------------------------------------------------------------------------------


def outcome(ex: Any) -> str:
    """The exchange's outcome as a lower-case name: ack, frame, none, garbled, collision."""
    value = ex.outcome
    name = getattr(value, "name", None) or getattr(value, "value", None) or str(value)
    return str(name).lower()


def _hex(data: bytes | WireBytes | None) -> str:
    if data is None:
        return "-"
    raw = data.data if isinstance(data, WireBytes) else bytes(data)
    return raw.hex(" ").upper() or "(nothing)"


def describe(ex: Any, late: Any = None) -> str:
    """One line: what was sent, what came back, and when; late answers to the request before
    it (heard meanwhile) and ``late``, a late answer to this one (``Master.late_answer``)."""
    chars = getattr(ex, "chars", None)
    got = _hex(bytes(ch.value for ch in chars)) if chars else "(nothing)"
    flagged = sum(1 for ch in chars or () if not ch.ok)
    if flagged:
        got += f" ({flagged} with parity/framing errors)"
    delay = getattr(ex, "response_delay", None)
    when = f" after {delay * 1000:.1f} ms" if isinstance(delay, float) else ""
    error = getattr(ex, "error", None)
    why = f" ({error})" if error else ""
    text = f"sent {_hex(getattr(ex, 'request', None))}, got {got}{when}: {outcome(ex)}{why}"
    for earlier in getattr(ex, "late_answers", ()):
        text += f"; before it, a {earlier.describe()}"
    if late is not None:
        text += f"; then a {late.describe('the')}"
    return text


def ask(master: Any, request: bytes | WireBytes, expect: str = "any") -> Any:
    """One raw exchange, no retries."""
    return master.exchange(request, expect=expect)


def _failed(master: Any, ex: Any, what: str, expected: str) -> str:
    """The failure text of an exchange that did not bring what was expected: after no
    answer, the master listens on for one that comes too late, and names its delay."""
    late = master.late_answer(ex) if outcome(ex) == "none" else None
    return f"{what}: expected {expected}, but {describe(ex, late)}"


def expect_silence(master: Any, request: bytes | WireBytes, what: str) -> Any:
    """Send ``request``; nothing at all may come back within the response window."""
    ex = ask(master, request, "none")
    assert outcome(ex) == "none", f"{what}: expected no answer, but {describe(ex)}"
    return ex


def expect_ack(master: Any, request: bytes | WireBytes, what: str) -> Any:
    """Send ``request``; the answer must be the single character E5."""
    ex = ask(master, request, "ack")
    assert outcome(ex) == "ack", _failed(master, ex, what, "E5")
    return ex


def expect_answer(master: Any, request: bytes | WireBytes, what: str,
                  *, address: int | None = None) -> LongFrame:
    """Send ``request``; the answer must be a valid RSP_UD (from ``address`` if given)."""
    ex = ask(master, request, "frame")
    assert outcome(ex) == "frame", _failed(master, ex, what, "an RSP_UD")
    frame = ex.frame
    assert isinstance(frame, LongFrame | ControlFrame), (
        f"{what}: not a long frame: {describe(ex)}")
    assert CField(frame.c).is_rsp_ud(), f"{what}: C field {frame.c:02X} is not RSP_UD"
    if address is not None:
        assert frame.a == address, f"{what}: answer from address {frame.a}, expected {address}"
    return frame  # type: ignore[return-value]


def fresh_answer(master: Any, address: int, what: str) -> LongFrame:
    """SND_NKE, then REQ_UD2 with FCB 1: a new readout's first telegram, whatever FCB the
    slave saw before (a plain repeated REQ_UD2 may rightly get the cached last answer)."""
    expect_ack(master, snd_nke(address), f"{what}: SND_NKE")
    return expect_answer(master, req_ud2(address, fcb=True), f"{what}: REQ_UD2",
                         address=address)


def no_false_data(ex: Any, reference: LongFrame, what: str, *, repeat: bool) -> bool:
    """True when the exchange delivered a frame. With ``repeat`` (the request repeated the FCB
    of the one ``reference`` answered, to a DUT that keeps FCB) a delivered frame must be
    ``reference`` byte for byte; otherwise (a new telegram, whose values may have moved) it
    must be from the same address with the same shape (:class:`TelegramShape`). A corrupted
    telegram accepted as data fails here."""
    if outcome(ex) != "frame":
        return False
    got = encode(ex.frame)
    if repeat:
        assert got == encode(reference), (
            f"{what}: a telegram that differs from the clean one was accepted as data "
            f"(corrupted, or not the repeat its unchanged FCB asks for): {_hex(got)} instead "
            f"of {_hex(encode(reference))}")
        return True
    assert ex.frame.a == reference.a, (
        f"{what}: a telegram from address {ex.frame.a} was accepted as data, expected "
        f"{reference.a}: {_hex(got)}")
    expect_same_shape(ex.frame, reference, f"{what} (accepted as data)")
    return True


# --- what stays the same between readouts ------------------------------------------------------


Layout = tuple[tuple[int, tuple[int, ...], int, tuple[int, ...]], ...]
"""DIF, DIFEs, VIF and VIFEs of each record of a telegram."""


@dataclass(frozen=True, slots=True)
class TelegramShape:
    """What stays the same between fresh readouts of one telegram of a readout (EN 13757-3
    variable data structure): its CI, the identity in its header (ID, manufacturer, version,
    medium), its record layout (DIF, DIFEs, VIF, VIFEs of each record: data type, function,
    storage, tariff, subunit, unit and scale) and whether more records follow (DIF 1F: its
    position in the readout). Values, the access number and the status move between readouts
    and are not part of it: only a repeat with the same FCB repeats them."""

    ci: int
    identity: tuple[int | str, int, int, int] | None
    layout: Layout
    more_records_follow: bool

    def differences(self, other: TelegramShape) -> list[str]:
        """In words, how ``other`` differs from this one (empty: the same shape)."""
        out = []
        if self.ci != other.ci:
            out.append(f"CI {other.ci:02X} instead of {self.ci:02X}")
        if self.identity != other.identity:
            out.append(f"header identity {other.identity} instead of {self.identity}")
        if self.layout != other.layout:
            out.append(f"record layout (DIF DIFE VIF VIFE) {layout_text(other.layout)} "
                       f"instead of {layout_text(self.layout)}")
        if self.more_records_follow != other.more_records_follow:
            out.append("DIF 1F (more records follow) " + (
                "present" if other.more_records_follow else "missing"))
        return out


def layout_text(layout: Layout) -> str:
    """A layout as hex, one record's DIF..VIFE bytes per item: "[04 06, 42 6C]"."""
    return "[" + ", ".join(bytes((dif, *difes, vif, *vifes)).hex(" ").upper()
                           for dif, difes, vif, vifes in layout) + "]"


def record_layout(records: Any) -> Layout:
    """DIF, DIFEs, VIF and VIFEs of each record (values left out)."""
    return tuple((r.dif, tuple(r.difes), r.vif, tuple(r.vifes)) for r in records)


def telegram_shape(frame: LongFrame) -> TelegramShape:
    """The shape of an RSP_UD (see :class:`TelegramShape`)."""
    telegram = decode_telegram(frame)
    header = telegram.header
    identity = None if header is None else (header.id, header.manufacturer, header.version,
                                            header.medium)
    return TelegramShape(telegram.ci, identity, record_layout(telegram.records),
                         telegram.more_records_follow)


def expect_same_shape(got: LongFrame, expected: LongFrame, what: str) -> None:
    """``got`` is the same telegram of a readout as ``expected``, read afresh: same CI, header
    identity, record layout and DIF 1F (values may have moved)."""
    diffs = telegram_shape(expected).differences(telegram_shape(got))
    assert not diffs, f"{what}: not the same telegram of the readout: " + "; ".join(diffs)


# --- rig state -------------------------------------------------------------------------------


def dut_secondary(master: Any, dut: Any) -> SecondaryAddress:
    """The DUT's secondary address: as configured, else from its RSP_UD header."""
    if getattr(dut, "secondary", None) is not None:
        return dut.secondary  # type: ignore[no-any-return]
    header = master.req_ud2(dut.address).telegram.header
    assert header is not None, "the DUT's RSP_UD carries no long header: no secondary address"
    return SecondaryAddress(header.id, header.manufacturer, header.version, header.medium)


def bus_secondaries(rig: Any) -> list[SecondaryAddress]:
    """Secondary addresses of every slave the rig knows on the bus."""
    return [d.secondary for d in rig.duts if getattr(d, "secondary", None) is not None]


def bus_addresses(rig: Any) -> set[int]:
    """Primary addresses in use on the bus."""
    return {d.address for d in rig.duts}


def free_address(rig: Any, *, avoid: set[int] | None = None) -> int:
    """A primary address 1..250 no slave uses (highest first)."""
    used = bus_addresses(rig) | (avoid or set())
    return next(a for a in range(fields.PRIMARY_MAX, 0, -1) if a not in used)


def deselect_all(master: Any, rig: Any) -> None:
    """Leave no slave selected: a selection that matches nobody deselects everybody."""
    ask(master, selection(nobody(bus_secondaries(rig))))


@contextmanager
def primary_address(master: Any, dut: Any, new: int) -> Iterator[None]:
    """Move the DUT to ``new`` for the block, then back (the restore is checked)."""
    old = dut.address
    expect_ack(master, set_address_request(old, new), f"set address {old} -> {new}")
    try:
        yield
    finally:
        ex = ask(master, set_address_request(new, old))
        if outcome(ex) != "ack":
            # the DUT may not have moved (a defect): make sure it is at ``old`` again
            ask(master, set_address_request(old, old))


def master_requests(trace: Any, since: float) -> list[bytes]:
    """The master's frames on the bus since ``since``, as raw bytes (grouped from the master's
    characters alone, so an answer overlapping a request does not split it)."""
    from hardware.trace import Trace

    sent = Trace(e for e in trace.since(since).entries if e.direction == "M>S")
    return [f.raw for f in sent.frames()]


def page_records(frame: LongFrame) -> bytes:
    """A telegram's data after the 12-byte header (records only: header fields such as the
    access number may change between readouts)."""
    return frame.data[12:] if frame.ci == CI.RSP_VARIABLE else frame.data


def supported_bauds(dut: Any) -> tuple[int, ...] | None:
    """The rates the DUT supports, from its configuration or profile (None: unknown)."""
    bauds = getattr(dut, "bauds", None)
    if bauds is None:
        bauds = getattr(getattr(dut, "profile", None), "bauds", None)
    return tuple(bauds) if bauds else None

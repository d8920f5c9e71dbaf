"""A test master with named defects: the project's master (``rig.master.Master`` on
``MasterLink``) made to misbehave one way at a time, to prove that the master suite catches
each defect (as the emulated slave's named defects prove the slave suite).

Each defect is switched on by name (``--defect NAME`` with an emulated master DUT) and acts
through the engine's own settings or a thin layer around it, never by editing the engine:

- the link's settings: ``retries`` (one fewer, one more), a :class:`DefectiveLink` that
  listens half the response window, or ends an attempt at the last character of an answer
  and keeps no idle line before the next frame;
- :class:`DefectivePort` around the bus port: answers with a bad checksum repaired on the way
  in (accepted), parity and framing errors dropped (two collided answers' AND taken as one),
  a repeated REQ_UD with its FCB flipped;
- :class:`TestMaster` (a ``Master``): the FCB reset after every request (never toggles), a
  secondary search that gives up a branch whose clean E5 reads garbled, or never probes the
  hex digits A-E, a readout that stops after its first telegram, a baud switch after which
  the master stays at the old rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from hardware.clock import Clock
from hardware.port import BusPort
from protocol.chars import RxChar, WireBytes, as_wire
from protocol.errors import ConfigError
from protocol.fields import ADDRESS_SELECTED, FCB, FCV, FUNCTION_MASK, Function
from protocol.framer import FrameReceived
from protocol.identity import SecondaryAddress
from protocol.link.master import MAX_RETRIES, MasterLink, Outcome, Request
from protocol.link.search import ReadProbe, SelectProbe
from protocol.link.selection import WILDCARD
from rig.master import MAX_PAGES, Exchange, Master, Reply

MASTER_DEFECTS: dict[str, str] = {
    "never_toggles_fcb": "sends every REQ_UD2 / REQ_UD1 with FCB 1: the FCB never toggles",
    "toggles_fcb_on_retry": "repeats a request after a missing or spoilt answer with its FCB "
                            "toggled",
    "retries_too_few": "makes one retry fewer than configured",
    "retries_too_many": "makes one retry more than configured",
    "gives_up_early": "stops listening halfway through the response window "
                      "(330 bit times + 50 ms)",
    "no_inter_frame_idle": "ends listening at an answer's last character and sends the next "
                           "frame at once, with no idle line",
    "accepts_bad_checksum": "takes an answer frame whose checksum is wrong",
    "takes_and_of_collision": "ignores parity and framing errors and the checksum: the AND of "
                              "two collided answers is taken as one slave's",
    "stops_search_at_merged_e5": "in a secondary search, takes a clean E5 as one slave and "
                                 "gives the branch up when reading it comes back garbled",
    "skips_hex_digits": "in a secondary search, never probes the hex digits A-E of "
                        "manufacturer, version and medium (0-9 only, as libmbus)",
    "reads_first_telegram_only": "reads only the first telegram of a multi-telegram readout",
    "talks_old_rate_after_switch": "after a baud switch, keeps talking at the old rate",
}
"""The named defects of the test master (docs/scenarios.md prints which scenarios catch each)."""

EARLY_FRACTION = 0.5
"""``gives_up_early`` listens this fraction of the response window."""


def check_defects(names: Iterable[str]) -> frozenset[str]:
    """The names, or ConfigError naming an unknown one and the allowed."""
    wanted = frozenset(names)
    unknown = sorted(wanted - set(MASTER_DEFECTS))
    if unknown:
        raise ConfigError(f"unknown master defect {unknown[0]!r} "
                          f"(allowed: {', '.join(MASTER_DEFECTS)})")
    return wanted


class DefectiveLink(MasterLink):
    """``MasterLink`` that gives up early, or ends at an answer and keeps no idle line."""

    def __init__(self, baud: int, *, defects: frozenset[str], **settings: Any) -> None:
        super().__init__(baud, **settings)
        self.defects = defects

    @property
    def answer_window(self) -> float:
        window = super().answer_window
        return window * EARLY_FRACTION if "gives_up_early" in self.defects else window

    @property
    def next_deadline(self) -> float | None:
        deadline = super().next_deadline
        if (deadline is not None and "no_inter_frame_idle" in self.defects and self._chars
                and any(isinstance(e, FrameReceived) for e in self._events)):
            return min(deadline, self._chars[-1].time + 0.5 / self.baud)  # its stop bit's end
        return deadline

    def _earliest(self, now: float) -> float:
        return now if "no_inter_frame_idle" in self.defects else super()._earliest(now)


class _ChecksumRepair:
    """Follows the frames coming in and replaces each frame's CS by the sum it should be."""

    def __init__(self) -> None:
        self._frame: list[int] = []
        self._cs_at: int | None = None

    def feed(self, ch: RxChar) -> RxChar:
        frame = self._frame
        if not frame and ch.value not in (0x10, 0x68):
            return ch
        frame.append(ch.value)
        if frame[0] == 0x10:
            self._cs_at = 3
        elif len(frame) == 2:
            self._cs_at = 4 + frame[1]
        if self._cs_at is not None and len(frame) == self._cs_at + 1:
            body = frame[1:3] if frame[0] == 0x10 else frame[4:self._cs_at]
            return replace(ch, value=sum(body) & 0xFF)
        if self._cs_at is not None and len(frame) > self._cs_at + 1:
            self._frame, self._cs_at = [], None  # the stop byte: the frame is over
        return ch


class DefectivePort:
    """A bus port that lets the master take what it should refuse, or alters retries."""

    def __init__(self, port: BusPort, defects: frozenset[str]) -> None:
        self._port = port
        self._repair = (_ChecksumRepair()
                        if defects & {"accepts_bad_checksum", "takes_and_of_collision"}
                        else None)
        self._clean = "takes_and_of_collision" in defects
        self._flip_repeats = "toggles_fcb_on_retry" in defects
        self._last_write: bytes | None = None

    @property
    def baud(self) -> int:
        return self._port.baud

    def set_baud(self, baud: int) -> None:
        self._port.set_baud(baud)

    def write(self, data: bytes | WireBytes) -> float:
        if self._repair is not None:
            self._repair = _ChecksumRepair()  # a new request: whatever came before is over
        wire = as_wire(data)
        if self._flip_repeats and wire.data == self._last_write and _is_fcv_request(wire.data):
            c = wire.data[1] ^ FCB
            wire = WireBytes(bytes((0x10, c, wire.data[2], (c + wire.data[2]) & 0xFF, 0x16)))
        else:
            self._last_write = wire.data
        return self._port.write(wire)

    def read_char(self, deadline: float) -> RxChar | None:
        ch = self._port.read_char(deadline)
        if ch is None:
            return None
        if self._clean:
            ch = replace(ch, parity_error=False, framing_error=False)
        if self._repair is not None:
            ch = self._repair.feed(ch)
        return ch

    def reset_input(self) -> None:
        self._port.reset_input()

    def close(self) -> None:
        self._port.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)


def _is_fcv_request(data: bytes) -> bool:
    """A short frame REQ_UD2 / REQ_UD1 with FCV set (the FCB means something)."""
    return (len(data) == 5 and data[0] == 0x10 and bool(data[1] & FCV)
            and data[1] & FUNCTION_MASK in (Function.REQ_UD2 & FUNCTION_MASK,
                                            Function.REQ_UD1 & FUNCTION_MASK))


class TestMaster(Master):
    """The project's master with ``defects`` switched on (none: exactly ``Master``)."""

    __test__ = False  # not a pytest test class

    def __init__(self, port: BusPort, clock: Clock, *, retries: int,
                 defects: Iterable[str] = (), **settings: Any) -> None:
        self.defects = check_defects(defects)
        if self.defects & {"accepts_bad_checksum", "takes_and_of_collision",
                           "toggles_fcb_on_retry"}:
            port = DefectivePort(port, self.defects)
        super().__init__(port, clock, retries=retries, **settings)
        if self.defects & {"gives_up_early", "no_inter_frame_idle"}:
            self.link = DefectiveLink(port.baud, defects=self.defects, retries=retries,
                                      read_latency=self.link.read_latency)
        if "retries_too_few" in self.defects:
            self.retries = max(0, retries - 1)
        if "retries_too_many" in self.defects:
            self.retries = min(MAX_RETRIES, retries + 1)
        self._read_ahead: tuple[Outcome, SecondaryAddress | None, int | None] | None = None
        self._stuck_at: int | None = None

    def run(self, request: Request) -> Exchange:
        exchange = super().run(request)
        if ("never_toggles_fcb" in self.defects and request.address is not None
                and request.kind in ("req_ud2", "req_ud1")):
            self.link.reset_fcb(request.address)
        return exchange

    def search_probe(self, probe: SelectProbe | ReadProbe, select_retries: int = 0
                     ) -> tuple[Outcome, SecondaryAddress | None, int | None]:
        if isinstance(probe, ReadProbe) and self._read_ahead is not None:
            read, self._read_ahead = self._read_ahead, None
            return read  # the read the master already made of this selection
        if (isinstance(probe, SelectProbe) and "skips_hex_digits" in self.defects
                and any(ch in "ABCDE" for ch in probe.mask.digits[8:])):
            return Outcome.NONE, None, None  # never sent: taken for nobody there
        result = super().search_probe(probe, select_retries)
        if (isinstance(probe, SelectProbe) and "stops_search_at_merged_e5" in self.defects
                and result[0] is Outcome.ACK and WILDCARD in probe.mask.digits):
            read = super().search_probe(ReadProbe(), select_retries)
            if read[0] is not Outcome.FRAME:
                return Outcome.NONE, None, None  # "one slave" that reads garbled: given up
            self._read_ahead = read
        return result

    def read_all(self, address: int, *, reset: bool | None = None,
                 max_pages: int = MAX_PAGES) -> list[Reply]:
        if "reads_first_telegram_only" not in self.defects:
            return super().read_all(address, reset=reset, max_pages=max_pages)
        if reset if reset is not None else address != ADDRESS_SELECTED:
            self.snd_nke(address)
        return [self.req_ud2(address)]

    def switch_baud(self, address: int, baud: int) -> Exchange:
        old = self.baud
        exchange = super().switch_baud(address, baud)
        if "talks_old_rate_after_switch" in self.defects:
            super().set_baud(old)
            self._stuck_at = old
        return exchange

    def set_baud(self, baud: int) -> None:
        if self._stuck_at is None:
            super().set_baud(baud)

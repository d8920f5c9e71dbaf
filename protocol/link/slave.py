"""The slave link engine (EN 13757-2 link layer; docs/mbus-facts.md "Frames", "Link-layer behaviour").

``SlaveLink`` is sans-I/O: feed it every received character (``receive``) and the time when
nothing arrives (``poll``); it returns actions: ``Transmit(data, not_before)`` and
``SetBaud(baud, after_transmit)``. What the meter says comes from a ``MeterApplication``;
the link-layer choices where meters differ, and deliberate defects, from ``SlaveSettings``.

Rules (one place each):

* Addresses: its own primary address (0 = unconfigured default, 1-250); 253 while selected;
  254 always (answers: a collision when several slaves share the bus); 255 acts on SND_NKE
  and SND_UD but never answers.
* SND_NKE: E5, FCB expectation reset (next FCV frame carries FCB=1), page 0, deselect.
* REQ_UD2 / REQ_UD1 with FCV=1: an FCB that differs from the last one of the same request
  kind is a new request (REQ_UD2: next page of a multi-telegram readout); the same FCB is a
  repeat and gets the identical last answer. FCV=0: always a new request, no FCB logic.
  SND_UD does not take part in FCB repetition: masters (libmbus among them) send every
  selection as 53, and a slave that treated the second one as a repeat would never re-select.
* REQ_UD1: E5 when no alarm, else RSP_UD CI 71 with the alarm byte.
* SND_UD: CI 52 selection at 253 (a match selects and answers E5, a mismatch deselects
  silently); CI 56 selection with an MSB-first mask or deselect (``ci56`` setting);
  CI 51 ``01 7A <new>`` set address (E5, then the new address); CI 50 application reset
  (optional subcode); CI B8-BF baud switch (E5 at the old rate, then ``SetBaud``; an
  unsupported rate: no E5, nothing changes; optional fallback to the old rate when nothing
  valid arrives at the new one); any other CI: E5. SND_UD with FCV=0 (43/63) only with
  ``accept_fcv0``.
* Any frame failing a check is ignored; so is every frame without PRM (another slave's).
  After any error (garbage, a failed check) a frame counts only after 33 bit times of idle
  line (IEC 60870-5-1 FT1.2): a frame right behind garbage is ignored too.
* Echo: with ``echo=True`` (a TSS721A always echoes) characters arriving while or just after
  transmitting that equal what was sent are dropped; a differing one is a collision (counted
  in ``collisions``; the partial frame is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..app.requests import ENHANCED_SELECTION, SELECTION_LENGTH, SET_ADDRESS_PREFIX
from ..chars import RxChar
from ..errors import ChecksumError, FrameError
from ..fields import (
    ACD,
    ADDRESS_SELECTED,
    BAUD_BY_CI,
    BROADCAST_ANSWER,
    BROADCAST_NO_ANSWER,
    CI,
    FUNCTION_MASK,
    PRM,
    CField,
    Function,
    is_primary,
)
from ..framer import Framer, FrameReceived, FrameRejected
from ..frames import ACK, ControlFrame, Frame, LongFrame, ShortFrame, checksum, decode, encode
from ..identity import SecondaryAddress, bcd_encode
from ..timing import char_time, check_baud, inter_frame_idle, response_window
from .selection import SelectionMask

REQ_UD2 = Function.REQ_UD2 & FUNCTION_MASK
REQ_UD1 = Function.REQ_UD1 & FUNCTION_MASK

CI56_SELECT = "select_msb_first"
CI56_DESELECT = "deselect"
CI56_MODES = (CI56_SELECT, CI56_DESELECT)
_NIBBLE_LOW = 0x11111111
"""The lowest bit of each of the 8 nibbles of a 4-byte selection ID."""
_CI56_ALIASES = {"select": CI56_SELECT}

DEFECTS: dict[str, str] = {
    "ignores_fcb": "treats every REQ_UD2 as new: a repeat (same FCB) gets the next telegram",
    "answers_bad_checksum": "accepts and answers frames whose checksum is wrong",
    "acks_unsupported_baud": "answers E5 to a baud switch to a rate it does not support",
    "acks_at_new_rate": "switches baud first and sends the E5 at the new rate",
    "answers_broadcast_255": "answers requests to broadcast address 255 as if it were 254",
    "keeps_selection_after_nke": "stays selected after SND_NKE",
    "wildcard_mismatch_manufacturer": "manufacturer FFFF in a selection is not a wildcard",
    "ignores_set_address": "acknowledges CI 51 set address but keeps its old address",
}
"""Engine-level defects an emulated slave can switch on to prove the suite catches them."""


_ADDRESSED_FRAMES = (ShortFrame, ControlFrame, LongFrame)
"""Frames with a C and an A field (not the single character E5)."""


# --- what the meter says ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RspUd:
    """One RSP_UD telegram: CI and data; ``more_follow`` when another page comes after."""

    ci: int
    data: bytes
    more_follow: bool = False


@runtime_checkable
class MeterApplication(Protocol):
    """The application behind a SlaveLink (implemented by protocol.meter.ProfileApplication)."""

    @property
    def identity(self) -> SecondaryAddress: ...

    @property
    def fabrication_number(self) -> int | None: ...

    @property
    def alarm(self) -> int | None:
        """Alarm byte for REQ_UD1, None when there is none (the answer is E5)."""
        ...

    def rsp_ud(self, page: int) -> RspUd:
        """Telegram ``page`` (0-based) of a readout; asked once per new REQ_UD2."""
        ...

    def application_reset(self, subcode: int | None) -> None: ...

    def on_address_changed(self, address: int) -> None: ...


# --- settings and actions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaveSettings:
    """Link-layer choices of one slave.

    ``response_delay``: seconds from the request's last character (its ``RxChar.time``,
    the stop-bit sample, half a bit before the request's end) to the answer's start bit;
    None = 22 bit times at the current rate (twice the minimum). ``baud_fallback_s``: after a
    baud switch, return to the old rate when no valid frame arrives for this long (None:
    never). ``nibble_wildcards``: F nibbles are wildcards in manufacturer/version/medium too.
    ``echo``: the receiver hears the slave's own transmission (TSS721A: always).
    The FT1.2 transmission rules of IEC 60870-5-1 that EN 13757-2 does not clearly demand of a
    slave are choices too: ``idle_after_error`` (rule R4: after an error a frame counts only
    after 33 bit times of idle line) and ``char_gap`` (the longest pause between two
    characters of a frame before it is dropped; None: the inter-frame idle, as rule R3 wants
    no pause at all).
    """

    address: int = 0
    bauds: tuple[int, ...] = (300, 2400, 9600)
    baud: int = 2400
    ci56: str = CI56_SELECT
    accept_fcv0: bool = True
    baud_fallback_s: float | None = None
    response_delay: float | None = None
    nibble_wildcards: bool = False
    echo: bool = True
    idle_after_error: bool = True
    char_gap: float | None = None
    defects: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not is_primary(self.address):
            raise ValueError(f"slave address {self.address} is not 0..250")
        for baud in self.bauds:
            check_baud(baud)
        if check_baud(self.baud) not in self.bauds:
            raise ValueError(f"baud {self.baud} is not among the supported {self.bauds}")
        mode = _CI56_ALIASES.get(self.ci56, self.ci56)
        if mode not in CI56_MODES:
            raise ValueError(f"ci56 {self.ci56!r} is not one of {', '.join(CI56_MODES)}")
        object.__setattr__(self, "ci56", mode)
        unknown = sorted(set(self.defects) - set(DEFECTS))
        if unknown:
            raise ValueError(f"unknown defect(s) {', '.join(unknown)} "
                             f"(known: {', '.join(DEFECTS)})")
        if self.baud_fallback_s is not None and self.baud_fallback_s <= 0:
            raise ValueError(f"baud_fallback_s {self.baud_fallback_s} must be > 0 or None")
        if self.response_delay is not None and self.response_delay < 0:
            raise ValueError(f"response_delay {self.response_delay} must be >= 0")
        if self.char_gap is not None and self.char_gap <= 0:
            raise ValueError(f"char_gap {self.char_gap} must be > 0 or None")


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``data`` starting no sooner than ``not_before``."""

    data: bytes
    not_before: float


@dataclass(frozen=True, slots=True)
class SetBaud:
    """Change the UART rate: after the preceding Transmit has left, or at once."""

    baud: int
    after_transmit: bool


SlaveAction = Transmit | SetBaud


# --- the engine ------------------------------------------------------------------------------


class SlaveLink:
    """Sans-I/O slave link layer. See the module docstring for the rules."""

    def __init__(self, app: MeterApplication, settings: SlaveSettings | None = None) -> None:
        self.app = app
        self.settings = settings or SlaveSettings()
        self.address = self.settings.address
        self.baud = self.settings.baud
        self.selected = False
        self.collisions = 0
        self.page = 0  # the last RSP_UD page sent
        self._next_page_index = 0
        self._framer = self._new_framer()
        self._last_fcb: dict[int, bool] = {}  # per request function (REQ_UD1, REQ_UD2)
        self._last_answer: dict[int, bytes] = {}
        self._echo: list[int] = []
        self._echo_until = 0.0
        self._fallback: tuple[float, int] | None = None  # (deadline, old baud)
        self._own_id = -1  # the identification number _own_bcd holds (BCD, as an int)
        self._own_bcd = 0

    # --- inputs ---------------------------------------------------------------------------

    def receive(self, ch: RxChar) -> list[SlaveAction]:
        """Take one received character; return what to do."""
        if self._fallback is None and not self._echo:
            # the common case: no baud fallback pending, no own echo expected
            events = self._framer.feed(ch)
            if not events:
                return []
            actions: list[SlaveAction] = []
            for event in events:
                actions += self._on_event(event)
            return actions
        actions = self._expire(ch.time)
        if self._echo:
            if ch.time <= self._echo_until:
                if ch.ok and ch.value == self._echo[0]:
                    self._echo.pop(0)
                    return actions
                self.collisions += 1
                self._echo.clear()
                self._framer.reset()
                return actions
            self._echo.clear()
        for event in self._framer.feed(ch):
            actions += self._on_event(event)
        return actions

    def poll(self, now: float) -> list[SlaveAction]:
        """Let time pass: drop a stale partial frame, fall back from a baud switch."""
        actions = self._expire(now)
        for event in self._framer.expire(now):
            actions += self._on_event(event)
        return actions

    @property
    def next_deadline(self) -> float | None:
        """When ``poll`` next has something to do (the baud fallback), else None."""
        return self._fallback[0] if self._fallback else None

    def power_up(self) -> None:
        """Forget all link state (bus power returned): address and baud stay."""
        self.selected = False
        self._reset_link()
        self._echo.clear()
        self._framer.reset()

    def _reset_link(self) -> None:
        """SND_NKE / power-up: FCB expectation and readout position start over."""
        self._forget_answers()
        self._next_page_index = 0

    def _forget_answers(self) -> None:
        """No request counts as a repeat: the FCB expectation and the cached last answers
        (which a repeated FCB would send again) are dropped."""
        self._last_fcb.clear()
        self._last_answer.clear()

    # --- internals ------------------------------------------------------------------------

    def _new_framer(self) -> Framer:
        idle = inter_frame_idle(self.baud)
        gap = idle if self.settings.char_gap is None else self.settings.char_gap
        return Framer(gap, char_time=char_time(self.baud),
                      idle_after_error=idle if self.settings.idle_after_error else None)

    def _set_baud(self, baud: int) -> None:
        self.baud = baud
        self._framer = self._new_framer()

    def _expire(self, now: float) -> list[SlaveAction]:
        if self._fallback and now >= self._fallback[0]:
            old = self._fallback[1]
            self._fallback = None
            self._set_baud(old)
            return [SetBaud(old, after_transmit=False)]
        return []

    def _has(self, defect: str) -> bool:
        return defect in self.settings.defects

    def _on_event(self, event: FrameReceived | FrameRejected) -> list[SlaveAction]:
        if isinstance(event, FrameRejected):
            frame = self._accept_bad_checksum(event)
            if frame is None:
                return []
        else:
            frame = event.frame
        if self._fallback:
            self._fallback = None  # a valid frame at the new rate: the switch held
        if isinstance(frame, _ADDRESSED_FRAMES):
            return self._on_frame(frame, event.end)
        return []

    def _accept_bad_checksum(self, event: FrameRejected) -> Frame | None:
        if not self._has("answers_bad_checksum") or not isinstance(event.error, ChecksumError):
            return None
        raw = bytearray(event.raw)
        cs_at = len(raw) - 2
        raw[cs_at] = checksum(bytes(raw[1:3] if raw[0] != 0x68 else raw[4:cs_at]))
        try:
            return decode(bytes(raw))
        except FrameError:
            return None

    def _addressed(self, a: int) -> tuple[bool, bool]:
        """(is this slave addressed, may it answer)."""
        if a == BROADCAST_NO_ANSWER:
            return True, self._has("answers_broadcast_255")
        if a == BROADCAST_ANSWER:
            return True, True
        if a == ADDRESS_SELECTED:
            return self.selected, self.selected
        return a == self.address, a == self.address

    def _answer(self, data: bytes, end: float, may_answer: bool) -> list[SlaveAction]:
        if not may_answer:
            return []
        delay = self.settings.response_delay
        if delay is None:
            delay = 2 * response_window(self.baud)[0]
        not_before = end + delay
        if self.settings.echo:
            self._echo = list(data)
            self._echo_until = (not_before + (len(data) + 2) * char_time(self.baud)
                                + inter_frame_idle(self.baud))
        return [Transmit(data, not_before)]

    def _ack(self, end: float, may_answer: bool) -> list[SlaveAction]:
        return self._answer(bytes((ACK,)), end, may_answer)

    def _on_frame(self, frame: ShortFrame | ControlFrame | LongFrame,
                  end: float) -> list[SlaveAction]:
        if not frame.c & PRM:
            return []  # another slave's frame
        if isinstance(frame, ShortFrame):
            return self._on_short(frame, end)
        if CField(frame.c).is_snd_ud(allow_no_fcv=self.settings.accept_fcv0):
            data = frame.data if isinstance(frame, LongFrame) else b""
            return self._on_snd_ud(frame.a, frame.ci, data, end)
        return []

    # --- short frames ---------------------------------------------------------------------

    def _on_short(self, frame: ShortFrame, end: float) -> list[SlaveAction]:
        addressed, may_answer = self._addressed(frame.a)
        if not addressed:
            return []
        c = CField(frame.c)
        if c.is_snd_nke():
            self._reset_link()
            if not self._has("keeps_selection_after_nke"):
                self.selected = False
            return self._ack(end, may_answer)
        function = c.function
        if function not in (REQ_UD2, REQ_UD1):
            return []
        repeat = self._is_repeat(function, c)
        if repeat is not None:
            return self._answer(repeat, end, may_answer)
        if function == REQ_UD2:
            answer = self._next_page()
        else:
            answer = self._alarm_answer()
        if c.fcv:
            self._last_answer[function] = answer
        return self._answer(answer, end, may_answer)

    def _is_repeat(self, function: int, c: CField) -> bytes | None:
        """The last answer when this request repeats the previous one (same FCB), else None."""
        if not c.fcv:
            return None
        previous = self._last_fcb.get(function)
        self._last_fcb[function] = c.fcb
        if function == REQ_UD2 and self._has("ignores_fcb"):
            return None
        if previous is None:
            # after a reset the slave expects FCB=1; a first FCB=0 is taken as new as well
            return None
        if previous == c.fcb:
            return self._last_answer.get(function)
        return None

    def _next_page(self) -> bytes:
        self.page = self._next_page_index
        rsp = self.app.rsp_ud(self.page)
        self._next_page_index = self.page + 1 if rsp.more_follow else 0
        c = Function.RSP_UD | (ACD if self.app.alarm is not None else 0)
        return encode(LongFrame(c, self.address, rsp.ci, rsp.data))

    def _alarm_answer(self) -> bytes:
        alarm = self.app.alarm
        if alarm is None:
            return bytes((ACK,))
        return encode(LongFrame(Function.RSP_UD | ACD, self.address, CI.ALARM, bytes((alarm,))))

    # --- SND_UD ---------------------------------------------------------------------------

    def _on_snd_ud(self, a: int, ci: int, data: bytes, end: float) -> list[SlaveAction]:
        if a == ADDRESS_SELECTED and (ci == CI.SELECTION
                                      or (ci == CI.SELECTION_56 and
                                          self.settings.ci56 == CI56_SELECT)):
            return self._on_selection(data, ci == CI.SELECTION_56, end)
        addressed, may_answer = self._addressed(a)
        if not addressed:
            return []
        if ci == CI.SELECTION_56 and a == ADDRESS_SELECTED:
            self.selected = False  # "deselect" reading
            return self._ack(end, may_answer)
        if ci in BAUD_BY_CI:
            return self._on_baud_switch(BAUD_BY_CI[ci], end, may_answer)
        if ci == CI.SET_ADDRESS:
            return self._on_set_address(data, end, may_answer)
        if ci == CI.APPLICATION_RESET:
            if len(data) > 1:
                return []
            self.app.application_reset(data[0] if data else None)
            self._next_page_index = 0
            return self._ack(end, may_answer)
        return self._ack(end, may_answer)

    def _on_selection(self, data: bytes, msb_first: bool, end: float) -> list[SlaveAction]:
        if len(data) not in (SELECTION_LENGTH, SELECTION_LENGTH + 6):
            return []
        if len(data) > SELECTION_LENGTH and data[8:10] != ENHANCED_SELECTION:
            return []
        if self._id_mismatch(data, msb_first):
            self.selected = False
            return []
        try:
            mask = SelectionMask.from_bytes(data, msb_first=msb_first)
        except ValueError:
            # an ID or fabrication digit A-E is neither BCD nor a wildcard: no slave matches,
            # and a selection that does not match deselects (EN 13757-3, selection)
            self.selected = False
            return []
        self.selected = mask.matches(
            self.app.identity, self.app.fabrication_number,
            nibble_wildcards=self.settings.nibble_wildcards,
            manufacturer_wildcard=not self._has("wildcard_mismatch_manufacturer"))
        return self._ack(end, True) if self.selected else []

    def _id_mismatch(self, data: bytes, msb_first: bool) -> bool:
        """The selection's ID digits are all 0-9 or F and one of them differs from this
        slave's: what ``SelectionMask.matches`` finds first, in a few integer operations
        (most probes of a search; a mask with an A-E ID digit takes the general way)."""
        ident = self.app.identity.id
        if ident != self._own_id:
            self._own_id = ident
            self._own_bcd = int.from_bytes(bcd_encode(ident, 4), "little")
        mask = int.from_bytes(data[:4], "big" if msb_first else "little")
        b1, b2, b3 = (mask >> 1) & _NIBBLE_LOW, (mask >> 2) & _NIBBLE_LOW, (mask >> 3) & _NIBBLE_LOW
        wild = mask & b1 & b2 & b3 & _NIBBLE_LOW  # low bit of each F nibble
        if b3 & (b2 | b1) & ~wild:  # a nibble A-E
            return False
        return bool((mask ^ self._own_bcd) & ~(wild * 0xF))

    def _on_baud_switch(self, baud: int, end: float, may_answer: bool) -> list[SlaveAction]:
        supported = baud in self.settings.bauds
        if not supported:
            return self._ack(end, may_answer) if self._has("acks_unsupported_baud") else []
        old = self.baud
        if self._has("acks_at_new_rate"):
            self._set_baud(baud)
            actions: list[SlaveAction] = [SetBaud(baud, after_transmit=False)]
            actions += self._ack(end, may_answer)
        else:
            actions = self._ack(end, may_answer)
            self._set_baud(baud)
            actions.append(SetBaud(baud, after_transmit=bool(actions)))
        if self.settings.baud_fallback_s is not None and baud != old:
            self._fallback = (end + self.settings.baud_fallback_s, old)
        return actions

    def _on_set_address(self, data: bytes, end: float, may_answer: bool) -> list[SlaveAction]:
        if len(data) != 3 or data[:2] != SET_ADDRESS_PREFIX or not is_primary(data[2]):
            return self._ack(end, may_answer)  # a data send this engine does not act on
        actions = self._ack(end, may_answer)
        if not self._has("ignores_set_address"):
            self.address = data[2]
            self.app.on_address_changed(self.address)
            # the cached answers name the old address; the master starts the new address
            # with FCB=1 (a new link, docs/mbus-facts.md "FCB/FCV"), which must not fetch them
            self._forget_answers()
        return actions



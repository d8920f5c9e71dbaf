"""The master instrument: ``MasterLink`` driven over a ``BusPort`` on the rig's clock.

Synchronous: every call sends, listens until the response window has closed (and the answer
is complete), retries as the link says, and returns an ``Exchange`` / ``Reply`` or raises a
``LinkError`` naming the address and baud rate. Nothing waits without a deadline: the port's
``read_char(deadline)`` returns None at the latest when the clock reaches the deadline.

Every ``LinkError`` the master raises carries the ``Exchange`` it is about as its
``exchange`` attribute (``exchange_of(error)``), so callers read bytes, attempts and the
frame from there, never from the message text.

Late answers: before it sends, the master listens until the line has been idle for the
inter-frame time, so it never talks over a late answer; what it hears then is a
``LateAnswer`` to the request before (``Exchange.late_answers``), never part of the new
exchange. ``late_answer(exchange)`` listens on after an exchange that got nothing, for the
delay of an answer that came too late.

Echo: the port drops the master's own echo (``hardware.serial_port``); the master never sees
it. Faulty wires (bad parity, a gap inside a frame: ``protocol.frame_faults.GappedWire``)
are the port's to send: the master hands them over whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from hardware.clock import Clock
from hardware.port import BusPort
from hardware.trace import Trace, TraceEntry
from protocol.app import decode_telegram
from protocol.app.header import Header
from protocol.app.requests import (
    baud_switch_ci,
    encode_application_reset,
    encode_set_address,
)
from protocol.app.telegram import Telegram
from protocol.chars import RxChar, WireBytes
from protocol.errors import (
    ApplicationError,
    CollisionError,
    EncodeError,
    FrameError,
    GarbledAnswerError,
    LinkError,
    NoAnswerError,
    UnexpectedAnswerError,
    WrongAddressError,
)
from protocol.fields import ADDRESS_SELECTED, CI, PRIMARY_MAX, CField
from protocol.frame_faults import GappedWire
from protocol.frames import ControlFrame, Frame, LongFrame
from protocol.identity import SecondaryAddress
from protocol.link.master import (
    DEFAULT_RETRIES,
    MAX_FRAME_BYTES,
    Attempt,
    Expect,
    LateAnswer,
    MasterLink,
    Outcome,
    Request,
    Retrying,
    Send,
    answer_address,
    check_retries,
    raw_request,
    req_ud1,
    req_ud2,
    snd_nke,
    snd_ud,
)
from protocol.link.search import ReadProbe, SearchResult, SecondarySearch, SelectProbe
from protocol.link.selection import ALL, SelectionMask
from protocol.timing import char_time, check_baud, frame_time

MAX_PAGES = 32
"""read_all stops after this many telegrams even if the slave says more follow."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and what came back (the last attempt; ``history`` holds every attempt)."""

    request: WireBytes
    address: int | None
    baud: int
    expect: Expect
    outcome: Outcome
    frame: Frame | None
    error: FrameError | None
    chars: tuple[RxChar, ...]
    request_end: float
    first_char_time: float | None
    response_delay: float | None
    attempts: int
    history: tuple[Attempt, ...]
    probe: bool = False
    """A search or scan probe: no answer is as good an outcome as any."""

    @property
    def ok(self) -> bool:
        """The outcome is what ``expect`` asked for."""
        return _matches(self.expect, self.outcome)

    @property
    def failed(self) -> bool:
        """The exchange did not bring what its request asked for. Probes and raw exchanges
        that expect "any" ask for nothing in particular (their caller judges): never failed."""
        if self.probe or (self.address is None and self.expect == "any"):
            return False
        return not self.ok

    @property
    def raw(self) -> bytes:
        return bytes(ch.value for ch in self.chars)

    @property
    def character_errors(self) -> bool:
        """Some attempt received characters with parity or framing errors."""
        return any(not ch.ok for attempt in self.history for ch in attempt.chars)

    @property
    def repeated_garbling(self) -> bool:
        """Garbled on every one of several attempts with the very same bytes: noise does not
        repeat itself, bit-aligned slaves ANDing two differing answers do."""
        return (self.outcome is Outcome.GARBLED and len(self.history) > 1
                and len({attempt.raw for attempt in self.history}) == 1
                and all(attempt.outcome is Outcome.GARBLED for attempt in self.history))

    @property
    def several_answered(self) -> bool:
        """The evidence that more than one slave answered: the one rule the tools use.

        A collision (a valid frame plus more), or a garbled answer with parity/framing errors
        (slaves whose answers are not bit-aligned; noise does this too, so the tools word
        it as "several slaves, or noise"), or garbled the same way on every attempt
        (bit-aligned slaves whose RSP_UDs AND into no valid frame, ``repeated_garbling``).
        """
        if self.outcome is Outcome.COLLISION:
            return True
        return self.outcome is Outcome.GARBLED and (self.character_errors
                                                    or self.repeated_garbling)

    @property
    def received_address(self) -> int | None:
        """The A field of the answer frame (None for an E5 or no frame)."""
        return answer_address(self.frame)

    @property
    def late_answers(self) -> tuple[LateAnswer, ...]:
        """Late answers to earlier requests (or attempts) heard during this exchange."""
        return tuple(a.late for a in self.history if a.late is not None)


def exchange_of(error: BaseException) -> Exchange | None:
    """The Exchange a ``LinkError`` raised by ``Master`` is about (None for other errors)."""
    exchange = getattr(error, "exchange", None)
    return exchange if isinstance(exchange, Exchange) else None


def _about(error: LinkError, exchange: Exchange) -> LinkError:
    """``error`` carrying ``exchange`` (``LinkError.exchange``)."""
    error.exchange = exchange
    return error


@dataclass(frozen=True, slots=True)
class Reply:
    """An exchange whose answer was decoded (``telegram`` None for an E5)."""

    exchange: Exchange
    telegram: Telegram | None

    @property
    def frame(self) -> Frame | None:
        return self.exchange.frame

    @property
    def more_follow(self) -> bool:
        return self.telegram is not None and self.telegram.more_records_follow


@dataclass(frozen=True, slots=True)
class PrimaryHit:
    """A primary address where something answered a scan."""

    address: int
    outcome: Outcome  # FRAME (one slave), COLLISION / GARBLED (several, or a bad answer),
    # WRONG_ADDRESS (a frame naming another address)
    secondary: SecondaryAddress | None
    exchange: Exchange


def _matches(expect: Expect, outcome: Outcome) -> bool:
    if expect == "ack":
        return outcome is Outcome.ACK
    if expect == "frame":
        return outcome is Outcome.FRAME
    if expect == "none":
        return outcome is Outcome.NONE
    return outcome in (Outcome.ACK, Outcome.FRAME)


class Master:
    """The rig's M-Bus master over one ``BusPort``."""

    def __init__(self, port: BusPort, clock: Clock, *, retries: int = DEFAULT_RETRIES,
                 trace: Trace | None = None, read_latency: float = 0.0) -> None:
        self.port = port
        self.clock = clock
        self.trace = trace
        self.link = MasterLink(port.baud, retries=check_retries(retries),
                               read_latency=read_latency)

    # --- settings -----------------------------------------------------------------------------

    @property
    def baud(self) -> int:
        return self.link.baud

    @property
    def retries(self) -> int:
        return self.link.retries

    @retries.setter
    def retries(self, value: int) -> None:
        self.link.retries = check_retries(value)

    def set_baud(self, baud: int) -> None:
        """Change the master's rate (port and engine)."""
        check_baud(baud)
        self.port.set_baud(baud)
        self.link.set_baud(baud)

    # --- the core loop ----------------------------------------------------------------------------

    def run(self, request: Request) -> Exchange:
        """Send ``request`` with the link's retries; return the last attempt (never raises on
        the outcome; port errors propagate)."""
        send = self.link.start(request, self.clock.now())
        history: list[Attempt] = []
        try:
            while True:
                self._send(send)
                next_send: Send | None = None
                while next_send is None:
                    deadline = self.link.next_deadline
                    assert deadline is not None
                    ch = self.port.read_char(deadline)
                    if ch is not None:
                        self._trace_rx(ch)
                        self.link.receive(ch)
                        deadline = self.link.next_deadline
                        assert deadline is not None
                        if self.clock.now() < deadline:
                            continue  # (a babbling bus ends the attempt at its bound)
                    for event in self.link.poll(max(self.clock.now(), deadline)):
                        if isinstance(event, Retrying):
                            next_send = event.send
                        else:
                            history.append(event.attempt)
                            if event.final:
                                return self._exchange(request, history)
                send = next_send
        finally:
            if self.link.busy:
                self.link.abort()

    def _send(self, send: Send) -> None:
        """Wait for the idle line (listening: a late answer pushes the send back), then
        write; the link learns when the last stop bit left."""
        while (ch := self.port.read_char(self.link.send_time(send, self.clock.now()))):
            self._trace_rx(ch)
            self.link.receive(ch)
            if self.clock.now() >= self.link.send_bound(send):
                break  # a babbling bus does not hold the master off for ever
        end = self.port.write(send.data)
        self._trace_tx(send.data, end)
        self.link.sent(end)

    def _exchange(self, request: Request, history: list[Attempt]) -> Exchange:
        last = history[-1]
        return Exchange(
            request=last.request, address=request.address, baud=last.baud,
            expect=request.expect, outcome=last.outcome, frame=last.frame, error=last.error,
            chars=last.chars, request_end=last.request_end,
            first_char_time=last.first_char_time, response_delay=last.response_delay,
            attempts=len(history), history=tuple(history), probe=request.probe)

    def late_answer(self, exchange: Exchange) -> LateAnswer | None:
        """Listen on after ``exchange`` (one more answer window after its own, and then
        while characters keep coming) for an answer that came too late; None if nothing
        came. What was heard is this exchange's, not the next one's."""
        link = self.link
        ct = char_time(self.baud)
        deadline = exchange.request_end + 2 * link.answer_window + ct + link.read_latency
        hard = deadline + frame_time(MAX_FRAME_BYTES, self.baud) + 4 * link.gap_limit
        while (ch := self.port.read_char(deadline)) is not None:
            self._trace_rx(ch)
            link.receive(ch)
            if self.clock.now() >= hard:
                break
            deadline = min(hard, max(deadline, ch.time + link.gap_limit + ct))
        return link.take_late()

    def _trace_tx(self, data: WireBytes, end: float) -> None:
        if self.trace is None:
            return
        ct = char_time(self.baud)
        n = len(data.data)
        after, pause = (data.after, data.pause) if isinstance(data, GappedWire) else (n, 0.0)
        for i, value in enumerate(data.data):
            t = end - (n - 1 - i) * ct - (pause if i < after else 0.0)
            self.trace.append(TraceEntry(t, "M>S", self.baud, value,
                                         parity_error=i in data.bad_parity, source="master"))

    def _trace_rx(self, ch: RxChar) -> None:
        if self.trace is not None:
            self.trace.record(ch, "S>M", self.baud)

    # --- checked requests -----------------------------------------------------------------------

    def _where(self, address: int | None) -> str:
        where = "raw request" if address is None else f"address {address}"
        return f"{where} at {self.baud} Bd"

    def _checked(self, request: Request) -> Exchange:
        exchange = self.run(request)
        if exchange.ok:
            return exchange
        where = self._where(request.address)
        tries = f"{exchange.attempts} attempt{'s' if exchange.attempts > 1 else ''}"
        outcome = exchange.outcome
        raw = exchange.raw.hex(' ').upper()
        error: LinkError
        if outcome is Outcome.NONE:
            error = NoAnswerError(f"no answer from {where} after {tries}")
        elif outcome is Outcome.COLLISION:
            error = CollisionError(f"collision at {where} after {tries}: {raw}")
        elif outcome is Outcome.GARBLED:
            error = GarbledAnswerError(f"garbled answer from {where} after {tries} "
                                       f"({exchange.error}): {raw}")
        elif outcome is Outcome.WRONG_ADDRESS:
            received = exchange.received_address
            assert request.address is not None and received is not None
            error = WrongAddressError(
                f"{where}: the answer names address {received}, not {request.address} "
                f"(another slave's answer, or a wrong A field) after {tries}: {raw}",
                expected=request.address, received=received)
        else:
            error = UnexpectedAnswerError(f"{where}: expected {request.expect}, got "
                                          f"{outcome.value} {raw}")
        raise _about(error, exchange)

    def _reply(self, exchange: Exchange) -> Reply:
        frame = exchange.frame
        if not isinstance(frame, LongFrame | ControlFrame):
            return Reply(exchange, None)
        if not CField(frame.c).is_rsp_ud():
            raise _about(UnexpectedAnswerError(f"{self._where(exchange.address)}: answer C "
                                               f"field {frame.c:02X} is not RSP_UD"), exchange)
        try:
            return Reply(exchange, decode_telegram(frame))
        except ApplicationError as error:
            raise _about(UnexpectedAnswerError(f"{self._where(exchange.address)}: RSP_UD does "
                                               f"not decode: {error}"), exchange) from error

    # --- the instrument's API --------------------------------------------------------------------

    def exchange(self, request: bytes | WireBytes | Frame, expect: Expect = "any", *,
                 retries: int = 0) -> Exchange:
        """Send ``request`` exactly as given (no FCB logic, no retries by default) and return
        what came back, whatever it is: for fault scenarios. Never raises on the outcome."""
        return self.run(raw_request(request, expect, check_retries(retries)))

    def snd_nke(self, address: int) -> Exchange:
        """SND_NKE: reset the slave's link layer (and the FCB for ``address``)."""
        return self._checked(snd_nke(address))

    def req_ud2(self, address: int, *, fcv: bool = True) -> Reply:
        """REQ_UD2 with the address's FCB; the answer decoded."""
        exchange = self._checked(req_ud2(address, fcv=fcv))
        return self._reply(exchange)

    def req_ud1(self, address: int) -> Reply:
        """REQ_UD1: E5 (``telegram`` None) or an alarm RSP_UD (CI 71)."""
        return self._reply(self._checked(req_ud1(address)))

    def read_all(self, address: int, *, reset: bool | None = None,
                 max_pages: int = MAX_PAGES) -> list[Reply]:
        """Every telegram of a multi-telegram readout (FCB toggled between them).

        ``reset`` sends SND_NKE first (default: yes, except at 253 where SND_NKE deselects).
        """
        if reset is None:
            reset = address != ADDRESS_SELECTED
        if reset:
            self.snd_nke(address)
        replies = [self.req_ud2(address)]
        while replies[-1].more_follow:
            if len(replies) >= max_pages:
                raise _about(UnexpectedAnswerError(f"{self._where(address)}: more than "
                                                   f"{max_pages} telegrams, readout stopped"),
                             replies[-1].exchange)
            replies.append(self.req_ud2(address))
        return replies

    def select(self, mask: SelectionMask | SecondaryAddress | str, *,
               fabrication: int | str | None = None, ci: int = CI.SELECTION) -> Exchange:
        """SND_UD to 253 with a selection (CI 52, or 56); E5 expected."""
        sel = _mask(mask, fabrication)
        data = sel.to_bytes(msb_first=ci == CI.SELECTION_56)
        return self._checked(snd_ud(ADDRESS_SELECTED, ci, data))

    def set_address(self, address: int, new: int) -> Exchange:
        """CI 51 ``01 7A <new>``; the E5 comes at the old address."""
        if not 0 <= new <= PRIMARY_MAX:
            raise ValueError(f"new primary address {new} is not 0..{PRIMARY_MAX}")
        exchange = self._checked(snd_ud(address, CI.SET_ADDRESS, encode_set_address(new)))
        self.link.reset_fcb(new)
        return exchange

    def switch_baud(self, address: int, baud: int) -> Exchange:
        """CI B8-BF: E5 at the old rate, then the master follows to ``baud``."""
        try:
            ci = baud_switch_ci(baud)
        except EncodeError as error:
            raise ValueError(str(error)) from None
        exchange = self._checked(snd_ud(address, ci))
        self.set_baud(baud)
        return exchange

    def application_reset(self, address: int, subcode: int | None = None) -> Exchange:
        try:
            data = encode_application_reset(subcode)
        except EncodeError as error:
            raise ValueError(str(error)) from None
        return self._checked(snd_ud(address, CI.APPLICATION_RESET, data))

    def scan_primary(self, addresses: Iterable[int] = range(PRIMARY_MAX + 1)) -> list[PrimaryHit]:
        """REQ_UD2 to each address; every address where anything answered.

        A REQ_UD2 (not SND_NKE) probes, so two slaves at one address give different RSP_UDs
        and show up as a COLLISION instead of one clean E5.
        """
        hits: list[PrimaryHit] = []
        for address in addresses:
            if not 0 <= address <= PRIMARY_MAX:
                raise ValueError(f"scan address {address} is not 0..{PRIMARY_MAX}")
            exchange = self.run(replace(req_ud2(address), probe=True))
            if exchange.outcome is Outcome.NONE:
                continue
            hits.append(PrimaryHit(address, exchange.outcome, self.secondary_of(exchange),
                                   exchange))
        return hits

    def search_secondary(self, mask: SelectionMask | str = ALL, *, select_retries: int = 0,
                         progress: Callable[[SearchResult], None] | None = None
                         ) -> SearchResult:
        """Find every slave matching ``mask`` by secondary address (protocol.link.search).

        Selection probes are sent with ``select_retries`` (default none: a probe nobody
        answers costs one response window); confirming reads use the master's retries.
        ``progress`` gets the result so far after every probe (probes made, slaves found).
        """
        search = SecondarySearch(_mask(mask, None))
        started = self.clock.now()
        while (probe := search.next_probe()) is not None:
            search.report(*self.search_probe(probe, select_retries))
            if progress is not None:
                progress(replace(search.result, duration=self.clock.now() - started))
        return replace(search.result, duration=self.clock.now() - started)

    def search_probe(self, probe: SelectProbe | ReadProbe, select_retries: int = 0
                     ) -> tuple[Outcome, SecondaryAddress | None, int | None]:
        """Make one probe of a secondary search: its outcome, and for a read the secondary
        address and access number of a clean RSP_UD (what ``SecondarySearch.report``
        takes)."""
        if isinstance(probe, SelectProbe):
            exchange = self.run(replace(snd_ud(ADDRESS_SELECTED, CI.SELECTION,
                                               probe.mask.to_bytes(), retries=select_retries),
                                        probe=True))
            return exchange.outcome, None, None
        exchange = self.run(replace(req_ud2(ADDRESS_SELECTED), probe=True))
        header = self._header_of(exchange)
        return (exchange.outcome, _secondary(header),
                None if header is None else header.access_number)

    def secondary_of(self, exchange: Exchange) -> SecondaryAddress | None:
        """The secondary address in a clean RSP_UD's fixed header, else None."""
        return _secondary(self._header_of(exchange))

    def _header_of(self, exchange: Exchange) -> Header | None:
        """The fixed header (CI 72/76) of a clean RSP_UD, else None."""
        if exchange.outcome is not Outcome.FRAME:
            return None
        try:
            reply = self._reply(exchange)
        except LinkError:
            return None
        header = reply.telegram.header if reply.telegram else None
        return header if isinstance(header, Header) else None


def _secondary(header: Header | None) -> SecondaryAddress | None:
    if header is None:
        return None
    try:
        return header.secondary_address
    except ValueError:
        return None


def _mask(mask: SelectionMask | SecondaryAddress | str, fabrication: int | str | None
          ) -> SelectionMask:
    if isinstance(mask, SecondaryAddress):
        sel = SelectionMask.of(mask)
    elif isinstance(mask, str):
        sel = SelectionMask.parse(mask)
    else:
        sel = mask
    if fabrication is not None:
        fab = f"{fabrication:08d}" if isinstance(fabrication, int) else fabrication
        sel = SelectionMask.parse(sel.digits, fab)
    return sel

#!/usr/bin/env python3
"""An independent M-Bus slave (EN 13757-2 link layer, EN 13757-3 application layer) on a
serial line: the rig's outside DUT, written only from the rules docs/mbus-facts.md states.

Python standard library only; it shares no code with the rig (no ``protocol`` import), so the
suite judges a slave it did not write. It opens the tty given on the command line: 8N1 by
default (a pseudo-terminal carries no parity bit), ``--parity even`` for 8E1 on a real UART
(parity errors seen through INPCK|PARMRK). What it does (docs/mbus-facts.md sections):

- Frames (FT1.2): E5, short ``10 C A CS 16``, control/long ``68 L L 68 C A CI .. CS 16``;
  every check (start, L1 = L2 >= 3, CS, stop); a frame failing one is never answered, and
  why is logged on stderr. A partial frame is dropped after more than 33 bit times of idle
  line, and after a character error the line must be idle that long before a start
  character counts ("Where this project departs": the FT1.2 inter-frame idle). With
  ``--read-latency S`` (a line fed in real time, which may stall inside a frame) a character
  other than a start character continues a partial frame after up to S more.
- Addresses: its primary address (0-250), 253 while selected, 254 (answered), 255 (carried
  out, never answered). RSP_UD carries its own primary address.
- SND_NKE: E5, FCB expectation reset, readout back to its first telegram, deselected.
- REQ_UD2 / REQ_UD1 with FCV: a repeated FCB repeats the last answer byte for byte; a toggled
  FCB brings the next telegram (DIF 1F: more follow; after the last, a new readout). Meter
  values move between fresh readouts (counters grow), the access number counts every new
  RSP_UD. REQ_UD1: E5, or RSP_UD CI 71 with the alarm byte (``--alarm``; ACD set meanwhile).
- SND_UD: CI 52 selection at 253 (F nibbles in the ID, FFFF/FF/FF whole-field wildcards,
  enhanced selection ``0C 78`` + fabrication number, F nibbles there too); a selection that
  does not match deselects silently. CI 56: deselect. CI 51 ``01 7A new``: E5, then the new
  primary address. CI 50: E5, readout restarts. CI B8-BF: E5 at the old rate, then the new
  rate; an unsupported rate is not acknowledged. Other CIs: E5.
- Answers start ``--delay`` seconds after the request's last character (default: 22 bit
  times, at least 20 ms: inside 11 bit times .. 330 bit times + 50 ms).

``--defect NAME`` seeds a defect real firmware has shipped with (``--list-defects``).

Usage::

    python3 mbus_slave.py /dev/pts/5 --address 1 --secondary "12345678 4304 01 04"
    python3 mbus_slave.py /dev/ttyAMA0 --parity even --echo --bauds 300,2400,9600
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

# --- protocol constants (docs/mbus-facts.md "Frames (FT1.2)", "Link-layer behaviour") -------

ACK = 0xE5
SHORT_START = 0x10
LONG_START = 0x68
STOP = 0x16
PRM = 0x40
FCB = 0x20
FCV = 0x10
ACD = 0x20
FUNCTION_MASK = 0x0F
SND_NKE = 0x0
SND_UD = 0x3
REQ_UD2 = 0xB
REQ_UD1 = 0xA
RSP_UD = 0x08
ADDRESS_MAX = 250
SELECTED = 253
BROADCAST_ANSWER = 254
BROADCAST_SILENT = 255
CI_APPLICATION_RESET = 0x50
CI_DATA_SEND = 0x51
CI_SELECTION = 0x52
CI_DESELECTION_56 = 0x56
CI_ALARM = 0x71
CI_VARIABLE = 0x72
BAUD_BY_CI = {0xB8: 300, 0xB9: 600, 0xBA: 1200, 0xBB: 2400, 0xBC: 4800, 0xBD: 9600,
              0xBE: 19200, 0xBF: 38400}
BAUD_RATES = tuple(BAUD_BY_CI.values())
BITS_PER_CHAR = 11
IDLE_BITS = 33
"""FT1.2 inter-frame idle: a longer pause drops a partial frame, and ends an error's wait."""

DEFECTS: dict[str, str] = {
    "answers_253_unselected": "answers REQ_UD2 at 253 while not selected",
    "acd_without_alarm": "sets ACD (C 28) in every RSP_UD although it has no alarm",
    "no_stop_byte_check": "takes a frame once its checksum is right, without its stop byte",
    "ignores_version_in_selection": "does not compare the version byte of a selection",
    "rebuilds_fcb_repeat": "answers a repeated FCB with a newly built telegram (new access "
                           "number, moved values) instead of the last one",
    "answers_address_0": "answers requests at primary address 0 whatever its own address",
    "ignores_fabrication": "enhanced selection: selects whatever the fabrication number",
    "nke_keeps_readout": "SND_NKE does not restart the readout: the next telegram follows "
                         "the last one read",
    "access_number_frozen": "every RSP_UD carries the same access number (it counts the "
                            "RSP_UDs sent)",
}


def char_time(baud: int) -> float:
    return BITS_PER_CHAR / baud


def checksum(data: bytes) -> int:
    """CS: the 8-bit sum (no carry) from C through the last data byte."""
    return sum(data) & 0xFF


def bcd(value: int, digits: int) -> bytes:
    """``value`` as BCD, least significant byte first."""
    text = f"{value:0{digits}d}"
    return bytes(int(text[i - 2:i], 16) for i in range(len(text), 0, -2))


# --- frames in and out ----------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """A received master frame: short (``ci`` None) or control/long."""

    c: int
    a: int
    ci: int | None = None
    data: bytes = b""


def long_frame(c: int, a: int, ci: int, data: bytes) -> bytes:
    body = bytes((c, a, ci)) + data
    return bytes((LONG_START, len(body), len(body), LONG_START)) + body + bytes(
        (checksum(body), STOP))


class FrameReader:
    """Bytes with their arrival times in, checked frames out (FT1.2 receive rules)."""

    def __init__(self, baud: int, *, check_stop: bool = True, latency: float = 0.0) -> None:
        self.check_stop = check_stop
        self.latency = latency
        self.buf = bytearray()
        self.last = float("-inf")
        self.in_error = False
        self.rejected: list[str] = []
        """Why frames were dropped since the caller last looked (for the log)."""
        self.set_baud(baud)

    def set_baud(self, baud: int) -> None:
        # arrival times are end-of-character times: idle = distance - one character. After
        # that much idle line a start character begins a new frame and an error is over. A
        # line that delivers late (``latency``) can stall inside a frame: another character
        # continues the partial frame unless the pause was longer than the latency too.
        self.idle_limit = (IDLE_BITS + BITS_PER_CHAR) / baud
        self.gap_limit = self.idle_limit + self.latency
        self.buf.clear()
        self.in_error = False

    def error(self, why: str) -> None:
        """A character error: drop the frame, wait for idle line."""
        if not self.in_error:
            self.rejected.append(f"{why} after {bytes(self.buf).hex(' ') or 'nothing'}")
        self.buf.clear()
        self.in_error = True

    def feed(self, byte: int, t: float, *, bad: bool = False) -> Frame | None:
        pause = t - self.last
        self.last = t
        starts = byte in (SHORT_START, LONG_START)
        if self.buf and (pause > self.gap_limit or (pause > self.idle_limit and starts)):
            self.rejected.append(f"partial frame {bytes(self.buf).hex(' ')} dropped after "
                                 f"{pause * 1000:.1f} ms of idle line")
            self.buf.clear()
        if self.in_error and pause > self.idle_limit:
            self.in_error = False
        if bad:
            self.error(f"character {byte:02x} with a parity error")
            return None
        if self.in_error:
            return None
        buf = self.buf
        if not buf:
            if byte in (SHORT_START, LONG_START):
                buf.append(byte)
            elif byte != ACK:  # an E5 is no frame for a slave, but no error either
                self.error(f"{byte:02x} starts no frame")
            return None
        buf.append(byte)
        if buf[0] == SHORT_START:
            return self._short()
        return self._long()

    def _short(self) -> Frame | None:
        buf = self.buf
        if len(buf) == 4 and not self.check_stop and buf[3] == checksum(buf[1:3]):
            return self._done(Frame(buf[1], buf[2]))
        if len(buf) < 5:
            return None
        if buf[3] != checksum(buf[1:3]) or buf[4] != STOP:
            self.error("checksum or stop byte wrong")
            return None
        return self._done(Frame(buf[1], buf[2]))

    def _long(self) -> Frame | None:
        buf = self.buf
        n = len(buf)
        if n == 2 and buf[1] < 3:
            self.error("L below 3")
        elif n == 3 and buf[2] != buf[1]:
            self.error("L fields differ")
        elif n == 4 and buf[3] != LONG_START:
            self.error("no second start byte")
        elif n > 4:
            length = buf[1]
            body = bytes(buf[4:4 + length])
            if n == length + 5 and not self.check_stop and buf[-1] == checksum(body):
                return self._done(Frame(body[0], body[1], body[2], body[3:]))
            if n == length + 6:
                if buf[-2] != checksum(body) or buf[-1] != STOP:
                    self.error("checksum or stop byte wrong")
                    return None
                return self._done(Frame(body[0], body[1], body[2], body[3:]))
        return None

    def _done(self, frame: Frame) -> Frame:
        self.buf.clear()
        return frame


# --- the meter (application layer, EN 13757-3) ------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Secondary address: ID (8 BCD digits), manufacturer code, version, medium."""

    id: int
    manufacturer: int
    version: int
    medium: int

    def header_bytes(self) -> bytes:
        return bcd(self.id, 8) + self.manufacturer.to_bytes(2, "little") + bytes(
            (self.version, self.medium))


def parse_secondary(text: str) -> Identity:
    """16 hex digits (spaces allowed): ID digits, manufacturer in wire order, version, medium."""
    digits = text.replace(" ", "")
    if len(digits) != 16 or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
        raise ValueError(f"{text!r} is not 16 hex digits (ID, manufacturer, version, medium)")
    if not digits[:8].isdigit():
        raise ValueError(f"{text!r}: the identification number must be 8 decimal digits")
    return Identity(int(digits[:8]), int.from_bytes(bytes.fromhex(digits[8:12]), "little"),
                    int(digits[12:14], 16), int(digits[14:16], 16))


def date_time_f(t: time.struct_time) -> bytes:
    """Type F: minute, hour, day + year bits, month + year bits."""
    year = t.tm_year % 100
    return bytes((t.tm_min & 0x3F, t.tm_hour & 0x1F, (t.tm_mday & 0x1F) | ((year & 0x07) << 5),
                  (t.tm_mon & 0x0F) | ((year & 0x78) << 1)))


def date_g(t: time.struct_time) -> bytes:
    """Type G: day + year bits, month + year bits."""
    year = t.tm_year % 100
    return bytes(((t.tm_mday & 0x1F) | ((year & 0x07) << 5), (t.tm_mon & 0x0F) | ((year & 0x78) << 1)))


@dataclass
class Meter:
    """What the meter measures: counters that grow between readouts, as a real meter's do."""

    identity: Identity
    fabrication: int | None
    send_fabrication: bool
    pages: int
    alarm: int | None
    energy_kwh: int = 12_000
    volume_l: int = 345_000
    hours: int = 1_000
    access: int = 0
    status: int = 0

    def telegram(self, page: int, *, count: bool = True) -> bytes:
        """The data of an RSP_UD CI 72 (after the CI): the long header (its access number
        counting the RSP_UDs, unless not ``count``), then page ``page``'s records; DIF 1F
        closes every page but the last."""
        if count:
            self.access = (self.access + 1) & 0xFF
        self.volume_l += 7
        if page == 0:
            self.energy_kwh += 1
            self.hours += 1
        now = time.localtime()
        header = self.identity.header_bytes() + bytes((self.access, self.status, 0, 0))
        records = bytearray()
        if page == 0:
            if self.fabrication is not None and self.send_fabrication:
                records += bytes((0x0C, 0x78)) + bcd(self.fabrication, 8)
            records += bytes((0x04, 0x06)) + self.energy_kwh.to_bytes(4, "little")  # kWh
            records += bytes((0x04, 0x13)) + self.volume_l.to_bytes(4, "little")    # l
            records += bytes((0x02, 0x5A)) + (612 + self.access % 5).to_bytes(2, "little")
            records += bytes((0x04, 0x6D)) + date_time_f(now)
        else:
            records += bytes((0x44, 0x06)) + (self.energy_kwh - 100 * page).to_bytes(4, "little")
            records += bytes((0x42, 0x6C)) + date_g(now)
            records += bytes((0x03, 0x26)) + (self.hours + page).to_bytes(3, "little")  # h
            records += bytes((0x04, 0x13)) + self.volume_l.to_bytes(4, "little")
        if page < self.pages - 1:
            records.append(0x1F)
        return header + bytes(records)


# --- the link layer (EN 13757-2) ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """Bytes to send, and the rate to switch to once they have left (a baud switch)."""

    data: bytes
    then_baud: int | None = None


@dataclass
class Slave:
    """The slave's link state: address, selection, FCB expectation and the readout."""

    address: int
    meter: Meter
    bauds: tuple[int, ...]
    baud: int
    defects: frozenset[str] = frozenset()
    selected: bool = False
    last_fcb: bool | None = None
    last_answer: tuple[int, bytes] | None = None  # (function, frame) of the last REQ answer
    next_page: int = 0

    def receive(self, frame: Frame) -> Answer | None:
        """What to answer ``frame`` with (None: nothing)."""
        if not frame.c & PRM:
            return None  # not from a master
        a = frame.a
        function = frame.c & FUNCTION_MASK
        if a == SELECTED and function == SND_UD and frame.ci in (CI_SELECTION, CI_DESELECTION_56):
            return self._selection(frame)
        if not self._addressed(a, function):
            return None
        if a == BROADCAST_SILENT and function in (REQ_UD2, REQ_UD1):
            return None  # a request nobody answers changes nothing
        answer = self._dispatch(frame, function)
        return None if a == BROADCAST_SILENT else answer

    def _addressed(self, a: int, function: int) -> bool:
        if a == self.address or a in (BROADCAST_ANSWER, BROADCAST_SILENT):
            return True
        if a == SELECTED:
            return self.selected or ("answers_253_unselected" in self.defects
                                     and function == REQ_UD2)
        return a == 0 and "answers_address_0" in self.defects

    def _dispatch(self, frame: Frame, function: int) -> Answer | None:
        if function == SND_NKE and frame.ci is None:
            self._reset_link()
            self.selected = False
            return Answer(bytes((ACK,)))
        if function in (REQ_UD2, REQ_UD1) and frame.ci is None:
            return self._request(frame.c, function)
        if function == SND_UD and frame.ci is not None:
            return self._snd_ud(frame)
        return None

    def _reset_link(self) -> None:
        self.last_fcb = None
        self.last_answer = None
        if "nke_keeps_readout" not in self.defects:
            self.next_page = 0

    # REQ_UD1 / REQ_UD2 and the FCB (docs/mbus-facts.md "Link-layer behaviour")

    def _request(self, c: int, function: int) -> Answer:
        fcb = bool(c & FCB) if c & FCV else None
        repeat = (fcb is not None and fcb == self.last_fcb and self.last_answer is not None
                  and self.last_answer[0] == function)
        if repeat and "rebuilds_fcb_repeat" not in self.defects:
            assert self.last_answer is not None
            return Answer(self.last_answer[1])
        if repeat and function == REQ_UD2:  # the defect: the same page, built anew
            self.next_page = (self.next_page - 1) % self.meter.pages
        data = self._new_answer(function)
        self.last_answer = (function, data)
        self.last_fcb = fcb
        return Answer(data)

    def _new_answer(self, function: int) -> bytes:
        c = RSP_UD
        if self.meter.alarm is not None or "acd_without_alarm" in self.defects:
            c |= ACD
        if function == REQ_UD1:
            if self.meter.alarm is None:
                return bytes((ACK,))
            return long_frame(c, self.address, CI_ALARM, bytes((self.meter.alarm,)))
        page = self.next_page
        self.next_page = (page + 1) % self.meter.pages
        data = self.meter.telegram(page, count="access_number_frozen" not in self.defects)
        return long_frame(c, self.address, CI_VARIABLE, data)

    # SND_UD

    def _snd_ud(self, frame: Frame) -> Answer | None:
        ci, data = frame.ci, frame.data
        ack = bytes((ACK,))
        if ci in BAUD_BY_CI and not data:
            baud = BAUD_BY_CI[ci]
            if baud not in self.bauds:
                return None  # an unsupported rate is not acknowledged
            return Answer(ack, then_baud=baud)
        if ci == CI_DATA_SEND:
            if len(data) == 3 and data[:2] == b"\x01\x7a":
                if data[2] > ADDRESS_MAX:
                    return None
                self.address = data[2]
                self.last_answer = None  # its A field names the old address
            return Answer(ack)
        if ci == CI_APPLICATION_RESET:
            if len(data) > 1:
                return None
            self.next_page = 0
            return Answer(ack)
        if ci in (CI_SELECTION, CI_DESELECTION_56):
            return None  # selections go to 253
        return Answer(ack)

    # secondary addressing (docs/mbus-facts.md "Secondary selection")

    def _selection(self, frame: Frame) -> Answer | None:
        if frame.ci == CI_DESELECTION_56:
            self.selected = False
            return None
        data = frame.data
        if len(data) not in (8, 14) or (len(data) == 14 and data[8:10] != b"\x0c\x78"):
            return None
        self.selected = self._matches(data)
        return Answer(bytes((ACK,))) if self.selected else None

    def _matches(self, mask: bytes) -> bool:
        ident = self.meter.identity
        if not _bcd_matches(mask[0:4], bcd(ident.id, 8)):
            return False
        manufacturer = int.from_bytes(mask[4:6], "little")
        if manufacturer not in (0xFFFF, ident.manufacturer):
            return False
        if (mask[6] not in (0xFF, ident.version)
                and "ignores_version_in_selection" not in self.defects):
            return False
        if mask[7] not in (0xFF, ident.medium):
            return False
        if len(mask) == 14 and "ignores_fabrication" not in self.defects:
            fab = self.meter.fabrication
            if fab is None:
                return _bcd_matches(mask[10:14], b"\xff\xff\xff\xff")
            return _bcd_matches(mask[10:14], bcd(fab, 8))
        return True


def _bcd_matches(mask: bytes, value: bytes) -> bool:
    """Nibble by nibble: F in the mask matches any digit."""
    for m, v in zip(mask, value, strict=True):
        for shift in (0, 4):
            nibble = (m >> shift) & 0x0F
            if nibble != 0x0F and nibble != (v >> shift) & 0x0F:
                return False
    return True


# --- the serial line ---------------------------------------------------------------------------


class Line:
    """The tty: raw, 8N1 or 8E1 (INPCK|PARMRK: a bad character arrives as FF 00 b)."""

    def __init__(self, path: str, baud: int, parity: str) -> None:
        self.path = path
        self.parity = parity == "even"
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise SystemExit(f"mbus_slave: {path}: cannot open ({exc.strerror})") from None
        if not os.isatty(self.fd):
            os.close(self.fd)
            raise SystemExit(f"mbus_slave: {path}: not a terminal (give a tty or a pty)")
        self._mark = 0
        self.set_baud(baud)

    def set_baud(self, baud: int) -> None:
        try:
            tty.setraw(self.fd)
            attrs = termios.tcgetattr(self.fd)
            speed = getattr(termios, f"B{baud}")
            attrs[4] = attrs[5] = speed
            attrs[2] &= ~(termios.PARENB | termios.PARODD | termios.CSTOPB | termios.CRTSCTS)
            attrs[2] |= termios.CS8 | termios.CLOCAL | termios.CREAD
            attrs[0] &= ~(termios.IGNPAR | termios.ISTRIP | termios.INPCK | termios.PARMRK
                          | termios.IXON | termios.IXOFF)
            if self.parity:
                attrs[2] |= termios.PARENB
                attrs[0] |= termios.INPCK | termios.PARMRK
            attrs[6][termios.VMIN] = 0
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        except termios.error as exc:
            raise SystemExit(f"mbus_slave: {self.path}: cannot set {baud} Bd: {exc}") from None

    def read(self, timeout: float) -> list[tuple[int, bool]]:
        """Received characters (value, bad) within ``timeout`` seconds."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        try:
            data = os.read(self.fd, 512)
        except BlockingIOError:
            return []
        out: list[tuple[int, bool]] = []
        for byte in data:
            if not self.parity:
                out.append((byte, False))
            elif self._mark == 0:
                if byte == 0xFF:
                    self._mark = 1
                else:
                    out.append((byte, False))
            elif self._mark == 1:
                self._mark = 2 if byte == 0 else 0
                if byte == 0xFF:
                    out.append((0xFF, False))
            else:
                self._mark = 0
                out.append((byte, True))
        return out

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 5.0
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                n = 0
            view = view[n:]
            if view:
                if time.monotonic() > deadline:
                    raise SystemExit(f"mbus_slave: {self.path}: output blocked for 5 s")
                select.select([], [self.fd], [], 0.05)
        termios.tcdrain(self.fd)


# --- running it ----------------------------------------------------------------------------------


class Runner:
    """The main loop: read, frame, answer after the response delay, switch rates."""

    def __init__(self, line: Line, slave: Slave, delay: float | None, echo: bool,
                 verbose: bool, latency: float = 0.0) -> None:
        self.line = line
        self.slave = slave
        self.delay = delay
        self.echo = echo
        self.verbose = verbose
        self.reader = FrameReader(slave.baud, latency=latency,
                                  check_stop="no_stop_byte_check" not in slave.defects)
        self.pending: list[tuple[float, Answer]] = []
        self.echo_left = bytearray()
        self.echo_until = 0.0
        self.stopping = False

    def response_delay(self) -> float:
        if self.delay is not None:
            return self.delay
        return max(0.020, 2 * char_time(self.slave.baud))

    def run(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            timeout = min([0.2] + [due - now for due, _ in self.pending])
            try:
                chars = self.line.read(timeout)
            except InterruptedError:
                continue
            # characters read together arrived no faster than the line carries them: the
            # last one by now, each earlier one a character time before the next
            t = time.monotonic()
            step = char_time(self.slave.baud)
            for i, (value, bad) in enumerate(chars):
                self._take(value, bad, t - (len(chars) - 1 - i) * step)
            while self.pending and self.pending[0][0] <= time.monotonic():
                _, answer = self.pending.pop(0)
                self._send(answer)

    def _take(self, value: int, bad: bool, t: float) -> None:
        if self.echo_left and t <= self.echo_until:
            if value == self.echo_left[0] and not bad:
                del self.echo_left[0]
                return
            self.echo_left.clear()  # a differing echo: someone else was on the bus
        frame = self.reader.feed(value, t, bad=bad)
        for why in self.reader.rejected:
            print(f"{t:.4f} frame rejected: {why}", file=sys.stderr, flush=True)
        self.reader.rejected.clear()
        if frame is None:
            return
        answer = self.slave.receive(frame)
        if self.verbose:
            what = "-" if answer is None else answer.data.hex(" ")
            print(f"{t:.4f} got C={frame.c:02X} A={frame.a} CI="
                  f"{'-' if frame.ci is None else f'{frame.ci:02X}'} -> {what}", file=sys.stderr)
        if answer is not None:
            self.pending.append((t + self.response_delay(), answer))

    def _send(self, answer: Answer) -> None:
        baud = self.slave.baud
        self.line.write(answer.data)
        if self.echo:
            self.echo_left = bytearray(answer.data)
            self.echo_until = time.monotonic() + 2 * len(answer.data) * char_time(baud) + 0.05
        if answer.then_baud is not None:
            # the acknowledgement leaves at the old rate, the UART switches after it
            time.sleep(2 * len(answer.data) * char_time(baud))
            self.slave.baud = answer.then_baud
            self.line.set_baud(answer.then_baud)
            self.reader.set_baud(answer.then_baud)
            if self.verbose:
                print(f"now at {answer.then_baud} Bd", file=sys.stderr)


def _bauds(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of baud rates") from None
    bad = [r for r in rates if r not in BAUD_RATES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"{bad[0]} is not an M-Bus rate (allowed: {', '.join(map(str, BAUD_RATES))})")
    return rates


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not {low}..{high}")
        return value
    return parse


def _secondary(text: str) -> Identity:
    try:
        return parse_secondary(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _defect(text: str) -> str:
    if text not in DEFECTS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a defect (allowed: "
                                         f"{', '.join(DEFECTS)})")
    return text


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not seconds") from None
    if not 0.0 <= value <= 10.0:
        raise argparse.ArgumentTypeError(f"{value} is not 0..10 s")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mbus_slave.py", description=__doc__.split("\n\n")[0])
    p.add_argument("tty", nargs="?", help="the serial line (a tty or pty)")
    p.add_argument("--baud", type=int, default=None, help="rate at start (default: 2400, or "
                   "the lowest of --bauds if 2400 is not one)")
    p.add_argument("--bauds", type=_bauds, default=(300, 2400, 9600),
                   help="supported rates, comma list (default 300,2400,9600)")
    p.add_argument("--parity", choices=("none", "even"), default="none",
                   help="none: 8N1 (a pty has no parity bit, default); even: 8E1 (a real UART)")
    p.add_argument("--address", type=_int_range(0, ADDRESS_MAX), default=1)
    p.add_argument("--secondary", type=_secondary, default=parse_secondary("12345678 4304 01 04"),
                   help='16 hex digits: ID, manufacturer in wire order, version, medium '
                        '(default "12345678 4304 01 04": ABC, version 1, heat)')
    p.add_argument("--fabrication", type=_int_range(0, 99_999_999), default=None,
                   help="fabrication number (enhanced selection)")
    p.add_argument("--no-fabrication-record", action="store_true",
                   help="do not report the fabrication number as a record (VIF 78)")
    p.add_argument("--pages", type=_int_range(1, 16), default=3,
                   help="telegrams per readout (default 3)")
    p.add_argument("--alarm", type=_int_range(0, 255), default=None,
                   help="an alarm byte: REQ_UD1 answers CI 71, RSP_UD carries ACD")
    p.add_argument("--delay", type=_delay, default=None,
                   help="seconds from the request to the answer (default 22 bit times, >= 20 ms)")
    p.add_argument("--read-latency", type=_delay, default=0.0,
                   help="seconds the line may stall inside a frame (a pty fed in real time): "
                        "after 33 bit times of idle a start character begins a new frame, "
                        "another one continues the partial frame within this (default 0)")
    p.add_argument("--echo", action="store_true",
                   help="the line echoes what the slave sends (TSS721A): drop the echo")
    p.add_argument("--defect", type=_defect, action="append", default=[],
                   help="seed a defect (repeatable; --list-defects)")
    p.add_argument("--list-defects", action="store_true", help="list the defects and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per frame on stderr")
    args = p.parse_args(argv)
    if args.list_defects:
        return args
    if args.tty is None:
        p.error("the tty is required")
    if args.baud is None:
        args.baud = 2400 if 2400 in args.bauds else args.bauds[0]
    if args.baud not in args.bauds:
        p.error(f"--baud {args.baud}: not one of --bauds ({', '.join(map(str, args.bauds))})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_defects:
        for name, what in DEFECTS.items():
            print(f"{name}: {what}")
        return 0
    meter = Meter(args.secondary, args.fabrication, not args.no_fabrication_record, args.pages,
                  args.alarm)
    slave = Slave(args.address, meter, args.bauds, args.baud, frozenset(args.defect))
    line = Line(args.tty, args.baud, args.parity)
    runner = Runner(line, slave, args.delay, args.echo, args.verbose, args.read_latency)

    def stop(signum: int, _frame: object) -> None:
        runner.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    defects = f", defects: {', '.join(args.defect)}" if args.defect else ""
    print(f"mbus_slave: {args.tty} at {args.baud} Bd ({'8E1' if line.parity else '8N1'}), "
          f"address {args.address}, secondary {args.secondary.id:08d}{defects}",
          file=sys.stderr, flush=True)
    try:
        runner.run()
    except OSError as exc:
        print(f"mbus_slave: {args.tty}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

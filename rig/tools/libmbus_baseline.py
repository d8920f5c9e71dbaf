"""libmbus's scan algorithms, reimplemented from their description, as the benchmarks' baseline.

Facts (libmbus 0.9, ``mbus-serial-scan``, ``mbus-serial-scan-secondary``,
``mbus_scan_2nd_address_range``, ``mbus_probe_secondary_address``, ``mbus_serial_recv_frame``;
docs/mbus-facts.md "What peers get wrong"):

- The tty is read with VMIN=0 and a fixed VTIME per baud rate (300: 1.3 s, 600: 0.8 s,
  1200: 0.5 s, 2400 and 4800: 0.3 s, 9600 and up: 0.2 s). A receive gives up after three
  reads that returned nothing, so "nothing answered" costs 3 x VTIME (0.9 s at 2400 Bd) no
  matter what the standard's response window is.
- Parity errors are not looked at (INPCK off): only the frame checks catch a garbled answer.
- After every answer it "purges": it receives again until a receive times out, and reports a
  collision if anything came. So every answer costs another 3 x VTIME.
- Primary scan: SND_NKE to 0..250, ``max_search_retry`` retries on silence (the tool's -r,
  default 0). An E5 followed by silence is "a device": two slaves whose E5s merge cleanly
  are reported as one.
- Secondary scan: SND_NKE to 253 and to 255 (each followed by a purge), then recursion over
  the 16 mask positions trying only the digits 0-9 at a wildcard position (the hex digits
  A-F of manufacturer, version and medium are never tried), a probe being a selection
  retried ``max_search_retry`` (default 1) times on silence; an E5 is followed by REQ_UD2 to
  253 to learn the address; a collision narrows the next position, except at the last
  position, where it is dropped.

The port and clock are the rig's (``BusPort``, ``Clock``): run on the simulated bus it
costs exactly the bus time the real tool would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hardware.clock import Clock
from hardware.port import BusPort
from protocol.errors import FrameError
from protocol.fields import ADDRESS_SELECTED, BROADCAST_NO_ANSWER, CI, PRIMARY_MAX, Function
from protocol.frames import LongFrame, ShortFrame, SingleChar, decode, encode, frame_length
from protocol.identity import SecondaryAddress

VTIME_S: dict[int, float] = {
    300: 1.3, 600: 0.8, 1200: 0.5, 2400: 0.3, 4800: 0.3, 9600: 0.2, 19200: 0.2, 38400: 0.2,
}
"""libmbus's ``mbus_serial_set_baudrate``: VTIME (in seconds) per baud rate."""
EMPTY_READS_BEFORE_TIMEOUT = 3
"""``mbus_serial_recv_frame`` aborts after three reads that returned nothing."""
SEARCH_RETRIES = 1
"""``handle->max_search_retry`` of a serial context."""
WILDCARD_DIGITS = range(10)
"""libmbus tries only 0-9 at a wildcard mask position."""


class Recv(Enum):
    OK = "ok"
    TIMEOUT = "timeout"
    INVALID = "invalid"


class Probe(Enum):
    NOTHING = "nothing"
    SINGLE = "single"
    COLLISION = "collision"


@dataclass
class BaselineResult:
    """What the baseline reported, and what it cost."""

    found: list[str] = field(default_factory=list)
    """Primary scan: "address N"; secondary scan: the 16-digit secondary addresses."""
    collisions: list[str] = field(default_factory=list)
    probes: int = 0
    """Requests sent: SND_NKEs (primary scan); selections plus REQ_UD2s (secondary scan)."""
    bus_time: float = 0.0


class LibmbusMaster:
    """The part of libmbus's serial master the scans use, over a rig ``BusPort``."""

    def __init__(self, port: BusPort, clock: Clock, *, retries: int = SEARCH_RETRIES) -> None:
        self.port = port
        self.clock = clock
        self.max_search_retry = retries
        self.vtime = VTIME_S[port.baud]
        self.requests = 0
        self.selections = 0
        self.reads = 0

    # --- wire ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.requests += 1
        self.port.write(data)

    def _read_one(self) -> int | None:
        """One ``read()`` with VMIN=0: a byte, or None after VTIME of silence.

        Parity and framing flags are ignored, as libmbus leaves INPCK off.
        """
        ch = self.port.read_char(self.clock.now() + self.vtime)
        return None if ch is None else ch.value

    def recv_frame(self) -> tuple[Recv, bytes]:
        buff = bytearray()
        timeouts = 0
        remaining = 1
        while remaining > 0:
            value = self._read_one()
            if value is None:
                timeouts += 1
                if timeouts >= EMPTY_READS_BEFORE_TIMEOUT:
                    break
            else:
                buff.append(value)
            remaining = _parse(bytes(buff))
        if not buff:
            return Recv.TIMEOUT, b""
        if remaining != 0:
            return Recv.INVALID, bytes(buff)
        return Recv.OK, bytes(buff)

    def purge(self) -> bool:
        """Receive until a receive times out; True if anything came."""
        received = False
        while self.recv_frame()[0] is not Recv.TIMEOUT:
            received = True
        return received

    # --- requests ------------------------------------------------------------------------

    def ping(self, address: int, *, purge: bool = False) -> None:
        self.send(encode(ShortFrame(int(Function.SND_NKE), address)))
        if purge:
            self.purge()

    def select(self, mask: str) -> Probe:
        self.selections += 1
        self.send(encode(LongFrame(int(Function.SND_UD), ADDRESS_SELECTED, int(CI.SELECTION),
                                   mask_bytes(mask))))
        result, data = self.recv_frame()
        if result is Recv.TIMEOUT:
            return Probe.NOTHING
        if result is Recv.INVALID:
            self.purge()
            return Probe.COLLISION
        if data == b"\xe5":
            return Probe.COLLISION if self.purge() else Probe.SINGLE
        return Probe.NOTHING

    def probe_secondary(self, mask: str) -> tuple[Probe, str | None]:
        """``mbus_probe_secondary_address``: select, and on one E5 ask who it is."""
        result = Probe.NOTHING
        for _ in range(self.max_search_retry + 1):
            result = self.select(mask)
            if result is Probe.SINGLE:
                self.reads += 1
                self.send(encode(ShortFrame(int(Function.REQ_UD2), ADDRESS_SELECTED)))
                got, data = self.recv_frame()
                if got is Recv.TIMEOUT:
                    return Probe.NOTHING, None
                if got is Recv.INVALID:
                    self.purge()
                    return Probe.COLLISION, None
                if self.purge():
                    return Probe.COLLISION, None
                frame = decode(data)
                if isinstance(frame, LongFrame) and len(frame.data) >= 8:
                    return Probe.SINGLE, str(SecondaryAddress.from_bytes(frame.data[:8]))
                return Probe.NOTHING, None
            if result is Probe.COLLISION:
                break
        return result, None


def _parse(buff: bytes) -> int:
    """``mbus_parse``: bytes still needed (> 0), 0 for a whole valid frame, -1 for an error."""
    if not buff:
        return 1
    try:
        total = frame_length(buff[0], buff[1] if len(buff) > 1 else None)
    except FrameError:
        return -1
    if total is None:
        return 4 - len(buff) if len(buff) < 4 else 1
    if len(buff) < total:
        return total - len(buff)
    try:
        decode(buff[:total])
    except FrameError:
        return -1
    return 0


def mask_bytes(mask: str) -> bytes:
    """The 8 selection bytes of libmbus's 16-digit mask string.

    libmbus writes the ID most significant digit first (the BCD bytes reversed) and the
    manufacturer, version and medium bytes in wire order (KAM is ``2D2C``).
    """
    return bytes.fromhex(mask[0:8])[::-1] + bytes.fromhex(mask[8:16])


def scan_primary(port: BusPort, clock: Clock, *, retries: int = 0,
                 addresses: range = range(0, PRIMARY_MAX + 1)) -> BaselineResult:
    """``mbus-serial-scan``: SND_NKE to every address; E5 then silence = one device."""
    master = LibmbusMaster(port, clock, retries=retries)
    result = BaselineResult()
    start = clock.now()
    for address in addresses:
        got, data = Recv.TIMEOUT, b""
        for _ in range(master.max_search_retry + 1):
            master.ping(address)
            got, data = master.recv_frame()
            if got is not Recv.TIMEOUT:
                break
        if got is Recv.TIMEOUT:
            continue
        if got is Recv.INVALID:
            master.purge()
            result.collisions.append(f"address {address}")
            continue
        if isinstance(decode(data), SingleChar):
            if master.purge():
                result.collisions.append(f"address {address}")
                continue
            result.found.append(f"address {address}")
    result.probes = master.requests
    result.bus_time = clock.now() - start
    return result


def scan_secondary(port: BusPort, clock: Clock, *, mask: str = "F" * 16,
                   retries: int = SEARCH_RETRIES) -> BaselineResult:
    """``mbus-serial-scan-secondary``: init the slaves, then ``mbus_scan_2nd_address_range``."""
    master = LibmbusMaster(port, clock, retries=retries)
    result = BaselineResult()
    start = clock.now()
    master.ping(ADDRESS_SELECTED, purge=True)
    master.ping(BROADCAST_NO_ANSWER, purge=True)

    def scan_range(pos: int, addr_mask: str) -> None:
        if not 0 <= pos < 16:
            return  # a collision at the last position ends here: those slaves are dropped
        wildcard = addr_mask[pos] in "fF"
        if not wildcard and pos < 15:
            scan_range(pos + 1, addr_mask)
            return
        digits = WILDCARD_DIGITS if wildcard else [int(addr_mask[pos], 16)]
        for digit in digits:
            mask = addr_mask[:pos] + f"{digit:X}" + addr_mask[pos + 1:]
            found, address = master.probe_secondary(mask)
            if found is Probe.SINGLE and address is not None:
                result.found.append(address)
            elif found is Probe.COLLISION:
                if pos == 15:
                    result.collisions.append(mask)
                scan_range(pos + 1, mask)

    scan_range(0, mask.upper())
    result.probes = master.selections + master.reads
    result.bus_time = clock.now() - start
    return result

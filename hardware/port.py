"""The bus port contract: what the master instrument (rig/) needs from a wire.

Implemented by ``hardware.serial_port.SerialBusPort`` over any pyserial port (a PL011 UART,
a USB master, ``socket://`` to a TCP gateway, or the simulated bus's ``mbussim://`` URL).
Received characters carry their receive time (on the rig's clock) and parity/framing flags.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from protocol.chars import RxChar, WireBytes


@runtime_checkable
class BusPort(Protocol):
    @property
    def baud(self) -> int: ...

    def set_baud(self, baud: int) -> None:
        """Drain what is being sent, then change the rate."""
        ...

    def write(self, data: bytes | WireBytes) -> float:
        """Send ``data`` and wait until its last stop bit has left; return that time. A
        ``protocol.frame_faults.GappedWire`` is sent with its pause inside."""
        ...

    def read_char(self, deadline: float) -> RxChar | None:
        """The next received character, or None once the clock reaches ``deadline`` with
        nothing received (one already received is returned also after the deadline)."""
        ...

    def reset_input(self) -> None:
        """Drop everything received and not read yet."""
        ...

    def close(self) -> None: ...

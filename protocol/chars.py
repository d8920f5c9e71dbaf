"""Characters as they arrive off the wire, and as a fault scenario sends them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RxChar:
    """One received character.

    ``time`` is when the receiver finished it (its stop-bit sample), in the clock's seconds.
    ``parity_error``/``framing_error`` are the UART's flags (PARMRK on a tty; the bit-level
    model on the simulated bus). A flagged character's ``value`` is what was sampled.
    """

    value: int
    time: float = 0.0
    parity_error: bool = False
    framing_error: bool = False

    @property
    def ok(self) -> bool:
        return not (self.parity_error or self.framing_error)


@dataclass(frozen=True, slots=True)
class WireBytes:
    """Bytes to transmit, some of them deliberately sent with wrong (odd) parity.

    Plain ``bytes`` are the normal case; this exists so fault scenarios can put a parity
    error on a chosen character. ``bad_parity`` holds indexes into ``data``.
    """

    data: bytes
    bad_parity: frozenset[int] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.data)


def as_wire(data: bytes | WireBytes) -> WireBytes:
    """Normalise plain bytes to WireBytes."""
    return data if isinstance(data, WireBytes) else WireBytes(bytes(data))


def even_parity_bit(value: int) -> int:
    """The 8E1 parity bit for ``value``: makes the count of ones (data + parity) even."""
    return bin(value & 0xFF).count("1") & 1

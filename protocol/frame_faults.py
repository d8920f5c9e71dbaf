"""Deliberately faulty frames for conformance scenarios (EN 13757-2 frame checks).

``build_faulty(frame, fault, **params)`` starts from a well-formed frame (a ``Frame`` or its
bytes) and breaks exactly one thing. Every result is ``WireBytes`` (bytes plus the indexes
to send with wrong parity). A gap inside the frame is a ``GappedWire``: a ``WireBytes``
subclass that also says after which byte to pause and for how long (the idle line between
that byte's stop bit and the next start bit). The rig's bus port sends it
(``hardware.serial_port.SerialBusPort``): exact to bus time on the simulated bus, on a UART
by waiting on the clock from the first part's last stop bit. A pyserial port written to
directly sends the bytes without the pause.

| fault | params (defaults) | result |
|---|---|---|
| BAD_CHECKSUM | ``delta=1`` | CS + delta |
| BAD_STOP | ``value=0x00`` | stop byte replaced |
| L_MISMATCH | ``l2=L1+1`` | second L differs (long/control frames) |
| L_OUT_OF_RANGE | ``length=2`` | both L set to ``length`` (< 3), rest unchanged |
| TRUNCATED | ``n=len-1`` | only the first ``n`` bytes |
| PARITY | ``index=1`` | byte ``index`` sent with odd parity |
| GARBAGE_BEFORE | ``garbage=b"\\x00\\xff"`` | garbage, then the frame |
| GAP | ``after=2``, ``pause=0.1`` | pause ``pause`` s after byte ``after`` (1-based count) |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .chars import WireBytes
from .frames import LONG_START, STOP, Frame, encode

_FRAME_CHECKS_NEED_BODY = "a single character has no checksum, L or stop byte"


class FrameFault(Enum):
    BAD_CHECKSUM = "bad_checksum"
    BAD_STOP = "bad_stop"
    L_MISMATCH = "l_mismatch"
    L_OUT_OF_RANGE = "l_out_of_range"
    TRUNCATED = "truncated"
    PARITY = "parity"
    GARBAGE_BEFORE = "garbage_before"
    GAP = "gap"


_PARAMS: dict[FrameFault, frozenset[str]] = {
    FrameFault.BAD_CHECKSUM: frozenset({"delta"}),
    FrameFault.BAD_STOP: frozenset({"value"}),
    FrameFault.L_MISMATCH: frozenset({"l2"}),
    FrameFault.L_OUT_OF_RANGE: frozenset({"length"}),
    FrameFault.TRUNCATED: frozenset({"n"}),
    FrameFault.PARITY: frozenset({"index"}),
    FrameFault.GARBAGE_BEFORE: frozenset({"garbage"}),
    FrameFault.GAP: frozenset({"after", "pause"}),
}


@dataclass(frozen=True, slots=True)
class GappedWire(WireBytes):
    """``data`` sent as ``data[:after]``, a pause of ``pause`` seconds, then the rest."""

    after: int = 0
    pause: float = 0.0

    @property
    def parts(self) -> tuple[WireBytes, WireBytes]:
        """The two halves, with their bad-parity indexes renumbered."""
        first = WireBytes(self.data[: self.after],
                          frozenset(i for i in self.bad_parity if i < self.after))
        second = WireBytes(self.data[self.after :],
                           frozenset(i - self.after for i in self.bad_parity if i >= self.after))
        return first, second


def build_faulty(frame: Frame | bytes, fault: FrameFault | str, **params: object) -> WireBytes:
    """``frame`` with one fault applied (see the module table); ValueError on bad params."""
    raw = bytearray(frame if isinstance(frame, bytes | bytearray) else encode(frame))
    kind = FrameFault(fault)
    unknown = set(params) - _PARAMS[kind]
    if unknown:
        allowed = ", ".join(sorted(_PARAMS[kind])) or "none"
        raise ValueError(f"{kind.value}: unknown parameter(s) {', '.join(sorted(unknown))} "
                         f"(allowed: {allowed})")
    if not raw:
        raise ValueError("no frame bytes to break")
    if kind is FrameFault.TRUNCATED:
        n = _int(params, "n", len(raw) - 1)
        if not 0 <= n < len(raw):
            raise ValueError(f"truncated: n={n} must be 0..{len(raw) - 1}")
        return WireBytes(bytes(raw[:n]))
    if kind is FrameFault.PARITY:
        index = _int(params, "index", min(1, len(raw) - 1))
        if not 0 <= index < len(raw):
            raise ValueError(f"parity: index={index} must be 0..{len(raw) - 1}")
        return WireBytes(bytes(raw), frozenset({index}))
    if kind is FrameFault.GARBAGE_BEFORE:
        garbage = params.get("garbage", b"\x00\xff")
        if not isinstance(garbage, bytes | bytearray):
            raise ValueError("garbage_before: garbage must be bytes")
        return WireBytes(bytes(garbage) + bytes(raw))
    if kind is FrameFault.GAP:
        after = _int(params, "after", min(2, len(raw) - 1))
        pause = params.get("pause", 0.1)
        if not 0 < after < len(raw):
            raise ValueError(f"gap: after={after} must be 1..{len(raw) - 1}")
        if not isinstance(pause, int | float) or pause < 0:
            raise ValueError(f"gap: pause={pause!r} must be seconds >= 0")
        return GappedWire(bytes(raw), after=after, pause=float(pause))
    if len(raw) < 5:
        raise ValueError(f"{kind.value}: {_FRAME_CHECKS_NEED_BODY}")
    if kind is FrameFault.BAD_CHECKSUM:
        delta = _int(params, "delta", 1)
        if delta % 256 == 0:
            raise ValueError("bad_checksum: delta must not be a multiple of 256")
        raw[-2] = (raw[-2] + delta) & 0xFF
    elif kind is FrameFault.BAD_STOP:
        value = _int(params, "value", 0x00)
        if value == STOP or not 0 <= value <= 0xFF:
            raise ValueError(f"bad_stop: value={value} must be a byte other than 0x16")
        raw[-1] = value
    else:
        if raw[0] != LONG_START:
            raise ValueError(f"{kind.value}: only long and control frames carry L")
        if kind is FrameFault.L_MISMATCH:
            l2 = _int(params, "l2", (raw[1] + 1) & 0xFF)
            if l2 == raw[1] or not 0 <= l2 <= 0xFF:
                raise ValueError(f"l_mismatch: l2={l2} must be a byte other than L1={raw[1]}")
            raw[2] = l2
        else:
            length = _int(params, "length", 2)
            if not 0 <= length < 3:
                raise ValueError(f"l_out_of_range: length={length} must be 0..2")
            raw[1] = raw[2] = length
    return WireBytes(bytes(raw))


def _int(params: dict[str, object], name: str, default: int) -> int:
    value = params.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"parameter {name}={value!r} must be an integer")
    return value

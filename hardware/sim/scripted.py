"""A scripted slave device for exercising the simulated bus without the emulated meter.

It collects received characters into frames (by start byte and length), drops its own echo,
and answers each complete frame with whatever ``answer(request_bytes)`` returns, after
``delay`` seconds. It knows nothing of M-Bus semantics: tests script the replies.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol import frames
from protocol.chars import RxChar, WireBytes
from protocol.errors import FrameError

from .bus import SlaveEndpoint

Answer = Callable[[bytes], bytes | WireBytes | None]


class ScriptedSlave:
    """Answer complete frames heard on ``endpoint`` with ``answer(raw)`` after ``delay`` s."""

    def __init__(self, endpoint: SlaveEndpoint, answer: Answer, delay: float = 0.010) -> None:
        self.endpoint = endpoint
        self.answer = answer
        self.delay = delay
        self.heard: list[RxChar] = []
        """Every character received, echo included."""
        self.requests: list[bytes] = []
        self.power_events: list[tuple[float, bool]] = []
        self._buf = bytearray()
        endpoint.on_receive = self._on_char
        endpoint.on_power = self._on_power

    def _on_char(self, ch: RxChar) -> None:
        self.heard.append(ch)
        if ch.time <= self.endpoint.busy_until:
            return  # the TSS721A echo of our own answer
        if not ch.ok:
            self._buf.clear()
            return
        self._buf.append(ch.value)
        try:
            length = frames.frame_length(self._buf[0], self._buf[1] if len(self._buf) > 1 else None)
        except FrameError:
            self._buf.clear()
            return
        if length is not None and len(self._buf) >= length:
            raw = bytes(self._buf)
            self._buf.clear()
            self.requests.append(raw)
            reply = self.answer(raw)
            if reply is not None:
                self.endpoint.transmit(reply, at=ch.time + self.delay)

    def _on_power(self, powered: bool) -> None:
        self.power_events.append((self.endpoint.bus.sim.now(), powered))
        self._buf.clear()

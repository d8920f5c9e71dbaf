"""The bus levels of the simulated bus over a stretch of time, for reports (a ``.vcd`` dump).

A :class:`LevelRecorder` keeps every record put on the bus's two channels (docs/mbus-facts.md
"Where this project departs from the gathered facts": the master's voltage modulation
``down``, the slaves' current modulation ``up``) since its last :meth:`LevelRecorder.restart`,
and turns them into waveforms (:class:`hardware.waveform.Waveform`): the noiseless line
level (1 mark, 0 space; any sender's space wins), as an oscilloscope on the bus would show
it. Noise is not in them: the simulated noise flips receivers' samples, not the line.
"""

from __future__ import annotations

from collections import deque

from hardware.waveform import Waveform
from protocol.errors import HardwareError

from .bus import SimBus
from .uart import Channel, Record

RECORD_LIMIT = 50_000
"""Records kept per channel (the oldest go first): a long scenario stays bounded in memory
(50 000 characters are 229 s of continuous bus at 2400 Bd)."""


class _ChannelLog:
    """The records one channel received since the last restart (bounded)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.records: deque[Record] = deque(maxlen=RECORD_LIMIT)
        channel.listeners.append(self.records.append)

    def restart(self, now: float) -> None:
        """Forget the past, keeping what is still on the line (a character under way, an
        open fault segment)."""
        self.records.clear()
        self.records.extend(self.channel.chars_from(now))
        self.records.extend(s for s in self.channel.segments if s.cut > now)

    def kept_since(self, start: float) -> bool:
        """Nothing on the line at or after ``start`` was dropped for want of room."""
        full = len(self.records) == self.records.maxlen
        return not full or self.records[0].t0 <= start

    def close(self) -> None:
        if self.records.append in self.channel.listeners:
            self.channel.listeners.remove(self.records.append)


def _line(name: str, records: list[Record], start: float, end: float) -> Waveform:
    """The AND of ``records``: space wherever any of them holds space."""
    runs = (run for rec in records for run in rec.runs())
    return Waveform.from_intervals(name, runs, start, end, inside=0)


class LevelRecorder:
    """Records the levels of ``bus``'s master voltage and slave current channels."""

    MASTER_VOLTAGE = "master_voltage"
    SLAVE_CURRENT = "slave_current"

    def __init__(self, bus: SimBus) -> None:
        self.bus = bus
        self._down = _ChannelLog(bus.down)
        self._up = _ChannelLog(bus.up)

    def restart(self) -> None:
        """Start a new recording now (a new scenario)."""
        with self.bus.sim.lock:
            now = self.bus.sim.now()
            self._down.restart(now)
            self._up.restart(now)

    def levels(self, start: float, end: float) -> tuple[Waveform, Waveform]:
        """The master voltage (bus voltage: what the master sends) and the slave current
        (bus current: what the slaves and the collision sink send) over [start, end]."""
        if end <= start:
            raise ValueError(f"level window [{start}, {end}] is empty")
        with self.bus.sim.lock:
            if not (self._down.kept_since(start) and self._up.kept_since(start)):
                raise HardwareError(f"the bus levels at {start:.6f} s are no longer kept "
                                    f"(the last {RECORD_LIMIT} characters per channel are)")
            down = list(self._down.records)
            up = list(self._up.records)
        return (_line(self.MASTER_VOLTAGE, down, start, end),
                _line(self.SLAVE_CURRENT, up, start, end))

    def close(self) -> None:
        self._down.close()
        self._up.close()

"""A digital waveform: one line's level (1 or 0) over a stretch of time, as a logic analyser
records it. The simulated bus's level recorder (hardware/sim/levels.py) produces them;
reports write them out as a value-change dump."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Waveform:
    """``name``'s level over [start, end]: ``initial`` at ``start``, then each
    ``(time, level)`` change in time order (only real changes)."""

    name: str
    start: float
    end: float
    initial: int
    edges: tuple[tuple[float, int], ...]

    def level_at(self, t: float) -> int:
        level = self.initial
        for time, new in self.edges:
            if time > t:
                break
            level = new
        return level

    @classmethod
    def from_intervals(cls, name: str, intervals: Iterable[tuple[float, float]], start: float,
                       end: float, *, inside: int) -> Waveform:
        """Level ``inside`` during the union of ``intervals`` [a, b), the other level
        elsewhere, over [start, end]."""
        runs = sorted((max(a, start), min(b, end)) for a, b in intervals
                      if b > start and a < end and b > a)
        merged: list[list[float]] = []
        for a, b in runs:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        outside = 1 - inside
        initial = inside if merged and merged[0][0] <= start else outside
        edges: list[tuple[float, int]] = []
        for a, b in merged:
            if a > start:
                edges.append((a, inside))
            if b < end:
                edges.append((b, outside))
        return cls(name, start, end, initial, tuple(edges))

"""The dashboard's recent history: one point per sample interval, bounded by the time it covers."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["History", "Point"]


@dataclass(frozen=True, slots=True)
class Point:
    """One sample: sequence number, clock seconds, and value per series (None = unknown)."""

    seq: int
    t: float
    values: Mapping[str, float | None]

    def as_json(self) -> list[object]:
        """``[seq, t, {series: value}]`` for the page."""
        return [self.seq, round(self.t, 1), dict(self.values)]


class History:
    """Samples of a few series, at most ``span_s / interval_s`` of them (oldest dropped first)."""

    def __init__(self, span_s: float, interval_s: float) -> None:
        """Keep ``span_s`` seconds at one point per ``interval_s``."""
        self.interval_s = interval_s
        self.points: deque[Point] = deque(maxlen=max(2, round(span_s / interval_s) + 1))
        self.seq = 0

    def add(self, t: float, values: Mapping[str, float | None]) -> Point:
        """Append a sample taken at clock time ``t``."""
        self.seq += 1
        p = Point(self.seq, t, dict(values))
        self.points.append(p)
        return p

    def since(self, seq: int) -> list[Point]:
        """Points newer than sequence number ``seq``."""
        return [p for p in self.points if p.seq > seq]

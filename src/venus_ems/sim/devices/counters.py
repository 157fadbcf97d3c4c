"""Per-minute energy as Shelly reports it (``by_minute``, gen1 ``counters``) from a Wh counter.

The emulator samples the cumulative counter whenever it answers. The energy at each whole-minute
boundary is interpolated linearly between the samples around it, which is exact while the power
was constant between two samples. Minutes before the first sample count as 0.
"""

from __future__ import annotations

import math

__all__ = ["MinuteEnergy"]


class MinuteEnergy:
    """Energy of the last three whole minutes from samples of a cumulative Wh counter."""

    def __init__(self) -> None:
        """No samples yet."""
        self._last: tuple[float, float] | None = None
        self._at_boundary: dict[int, float] = {}

    def sample(self, unix_s: float, energy_wh: float) -> None:
        """Record counter value ``energy_wh`` at unix time ``unix_s`` (samples in time order)."""
        last = self._last
        if last is not None and unix_s > last[0]:
            t0, e0 = last
            first = math.floor(t0 / 60) + 1
            last_b = math.floor(unix_s / 60)
            for minute in range(max(first, last_b - 4), last_b + 1):
                b = minute * 60.0
                self._at_boundary[minute] = e0 + (energy_wh - e0) * (b - t0) / (unix_s - t0)
            for old in [m for m in self._at_boundary if m < last_b - 4]:
                del self._at_boundary[old]
        if last is None and unix_s % 60 == 0:
            self._at_boundary[math.floor(unix_s / 60)] = energy_wh
        if last is None or unix_s >= last[0]:
            self._last = (unix_s, energy_wh)

    def minute_ts(self, unix_s: float) -> int:
        """Unix time of the start of the current minute."""
        return math.floor(unix_s / 60) * 60

    def last_minutes_wh(self, unix_s: float) -> tuple[float, float, float]:
        """Wh in the three whole minutes before ``minute_ts`` (index 0 = most recent)."""
        current = math.floor(unix_s / 60)
        out = []
        for i in range(3):
            end = self._at_boundary.get(current - i)
            start = self._at_boundary.get(current - i - 1)
            out.append(max(end - start, 0.0) if end is not None and start is not None else 0.0)
        return (out[0], out[1], out[2])

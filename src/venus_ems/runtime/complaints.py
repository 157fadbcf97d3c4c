"""Reports about rejected input, limited in rate so that a flood cannot flood the log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock

__all__ = ["COMPLAIN_EVERY_S", "Complaints"]

COMPLAIN_EVERY_S = 60.0
"""Default window: at most one report per key per minute."""


@dataclass(slots=True)
class _Window:
    last: float
    suppressed: int = 0


class Complaints:
    """Reports rejected input at most once per ``every_s`` (clock time) per key, with a count.

    A key separates independent sources (one per setting, say); keys must come from a fixed
    set, never from the input itself, so that memory stays bounded.
    """

    def __init__(
        self, clock: Clock, report: Callable[[str], None], every_s: float = COMPLAIN_EVERY_S
    ) -> None:
        """``report(text)`` is called for each line that is let through."""
        self._clock = clock
        self._report = report
        self._every_s = every_s
        self._windows: dict[str, _Window] = {}
        self.total = 0

    @property
    def suppressed(self) -> int:
        """Rejections not reported yet (all keys)."""
        return sum(w.suppressed for w in self._windows.values())

    def reject(self, text: str, key: str = "") -> None:
        """Count one rejection; report it unless ``key`` was reported less than ``every_s`` ago."""
        self.total += 1
        now = self._clock.monotonic()
        window = self._windows.get(key)
        if window is not None and now - window.last < self._every_s:
            window.suppressed += 1
            return
        if window is not None and window.suppressed:
            text += f" ({window.suppressed} more rejected since the last report)"
        self._report(text)
        self._windows[key] = _Window(now)

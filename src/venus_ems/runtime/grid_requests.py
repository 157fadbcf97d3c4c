"""Grid-target requests: other features ask ESS control (the one writer) to move its target.

``[no_battery_to_ev]`` asks for ``+car draw`` W so the grid, not the house battery, feeds the
car. A request expires at ``until`` (monotonic s) unless renewed, so a feature that dies or
stops renewing cannot leave the target moved; ESS control adds the sum of live requests to its
grid target. W, + = more import.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_SHIFT_W", "GridRequest", "GridRequests"]

MAX_SHIFT_W = 50_000.0
"""No request moves the target by more than this (W); a larger one is refused."""


@dataclass(frozen=True)
class GridRequest:
    """One feature's request: shift the grid target by ``shift_w`` W until ``until``."""

    owner: str
    shift_w: float
    until: float
    reason: str = ""


class GridRequests:
    """One per daemon; pure bookkeeping, the clock is passed in."""

    def __init__(self) -> None:
        """No requests."""
        self._live: dict[str, GridRequest] = {}
        self._listeners: list[Callable[[], None]] = []

    def request(self, owner: str, shift_w: float, *, until: float, reason: str = "") -> None:
        """Ask for ``shift_w`` W more import until ``until``; ValueError if not finite/too big."""
        if not math.isfinite(shift_w) or abs(shift_w) > MAX_SHIFT_W or not math.isfinite(until):
            raise ValueError(f"grid request {shift_w!r} W until {until!r} refused")
        old = self._live.get(owner)
        self._live[owner] = GridRequest(owner, shift_w, until, reason)
        if old is None or old.shift_w != shift_w:
            self._changed()

    def release(self, owner: str) -> None:
        """Withdraw ``owner``'s request at once (no-op if it has none)."""
        if self._live.pop(owner, None) is not None:
            self._changed()

    def live(self, now: float) -> list[GridRequest]:
        """The requests in force at ``now`` (expired ones are dropped)."""
        for owner in [o for o, r in self._live.items() if r.until <= now]:
            del self._live[owner]
        return list(self._live.values())

    def shift_w(self, now: float) -> float:
        """Sum of the live requests, W (0 when none)."""
        return sum(r.shift_w for r in self.live(now))

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when a request appears, changes value or is released."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            cb()

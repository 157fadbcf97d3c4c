"""The consumer board: how switched consumers meet the surplus distributor in one process.

A consumer feature (``[surplus]`` consumers, ``[water_heater]``, ``[ev_charger]``) *joins* the
board with a :class:`ConsumerSpec` and *reports* its measured draw; the distributor (the
``[surplus]`` feature, when it runs) reads every consumer and *grants* each an allowance.
A consumer follows its allowance while the distributor is active and the grant is fresh; when
no distributor is active (or it stands down, e.g. for Victron's Opportunity Loads) the consumer
decides alone (standalone mode). Powers in W, + = drawn from the site.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ConsumerBoard", "ConsumerHandle", "ConsumerSpec", "Grant"]


@dataclass(frozen=True)
class ConsumerSpec:
    """What the distributor needs to know about a consumer (W, s; lower priority = served first).

    ``levels_w``: the powers it can run at, ascending, starting at 0 (stepped consumer, e.g.
    a heater 0, 500 … 3500 W); ``None`` for a continuous one that runs at 0 or anywhere in
    ``[min_w, max_w]`` in ``step_w`` steps (an EV charger: 6 A x phases … 16 A x phases).
    ``priority_shift``: added to the priority per step granted (es-ESS PriorityShift: lets
    consumers of near priorities take turns).
    Raises ValueError when inconsistent.
    """

    name: str
    priority: int = 50
    priority_shift: float = 0.0
    levels_w: tuple[float, ...] | None = None
    min_w: float = 0.0
    max_w: float = 0.0
    step_w: float = 0.0
    min_on_s: float = 0.0
    min_off_s: float = 0.0
    ignore_reservation: bool = False

    def __post_init__(self) -> None:
        """Check the levels and bounds (ValueError)."""
        if not self.name:
            raise ValueError("a consumer needs a name")
        if self.levels_w is not None:
            lv = self.levels_w
            if not lv or lv[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(lv)):
                raise ValueError(f"{self.name}: levels_w must start at 0 and rise: {lv}")
            if not all(math.isfinite(w) for w in lv):
                raise ValueError(f"{self.name}: levels_w must be finite")
        elif not (0.0 <= self.min_w <= self.max_w and math.isfinite(self.max_w)):
            raise ValueError(f"{self.name}: need 0 <= min_w <= max_w")
        if self.step_w < 0 or self.min_on_s < 0 or self.min_off_s < 0 or self.priority_shift < 0:
            raise ValueError(f"{self.name}: step and times must be >= 0")

    @property
    def top_w(self) -> float:
        """The most it can draw, W."""
        return self.levels_w[-1] if self.levels_w is not None else self.max_w


@dataclass(frozen=True)
class Grant:
    """An allowance from the distributor: run at up to ``power_w`` (0 = off), granted at ``at``.

    ``valid_s``: how long the distributor vouches for it (its next grant is due well within
    that); a consumer follows it up to the longer of this and its own maximum age (s).
    """

    power_w: float
    at: float
    reason: str = ""
    valid_s: float = 0.0


class ConsumerHandle:
    """A consumer's seat on the board (returned by :meth:`ConsumerBoard.join`)."""

    def __init__(self, board: ConsumerBoard, spec: ConsumerSpec) -> None:
        """Use :meth:`ConsumerBoard.join`."""
        self.board = board
        self.spec = spec
        self.draw_w: float | None = None
        self.ready = True
        self.reported_at: float | None = None
        self.grant: Grant | None = None
        self._listeners: list[Callable[[], None]] = []

    def report(self, draw_w: float | None, now: float, *, ready: bool = True) -> None:
        """The consumer's measured draw (W, None = unknown) and whether it can take power now."""
        if draw_w is not None and not math.isfinite(draw_w):
            draw_w = None
        self.draw_w, self.ready, self.reported_at = draw_w, ready, now
        self.board._changed()

    def allowance(self, now: float, *, max_age_s: float) -> Grant | None:
        """The grant to follow now; None when no distributor is active or the grant is stale."""
        g = self.grant
        if not self.board.distributor_active or g is None or now - g.at > max(max_age_s, g.valid_s):
            return None
        return g

    def on_grant(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (no arguments, must not raise) when a new grant arrives."""
        self._listeners.append(callback)

    def leave(self) -> None:
        """Leave the board (the feature stops)."""
        self.board._leave(self)

    def _granted(self, grant: Grant) -> None:
        self.grant = grant
        self._notify()

    def _notify(self) -> None:
        for cb in list(self._listeners):
            cb()


class ConsumerBoard:
    """One per daemon: consumers join, the distributor grants (see the module doc)."""

    def __init__(self) -> None:
        """An empty board with no distributor."""
        self._seats: dict[str, ConsumerHandle] = {}
        self.distributor: str | None = None
        self._listeners: list[Callable[[], None]] = []

    @property
    def distributor_active(self) -> bool:
        """Whether a distributor currently grants allowances."""
        return self.distributor is not None

    def join(self, spec: ConsumerSpec) -> ConsumerHandle:
        """Take a seat; ValueError when the name is taken."""
        if spec.name in self._seats:
            raise ValueError(f"consumer {spec.name!r} is already on the board")
        seat = ConsumerHandle(self, spec)
        self._seats[spec.name] = seat
        self._changed()
        return seat

    def consumers(self) -> list[ConsumerHandle]:
        """The seated consumers, in joining order."""
        return list(self._seats.values())

    def activate(self, distributor: str) -> None:
        """A distributor starts granting; ValueError if another one does."""
        if self.distributor not in (None, distributor):
            raise ValueError(f"{self.distributor!r} already distributes the surplus")
        self.distributor = distributor

    def deactivate(self, distributor: str) -> None:
        """The distributor stops (or stands down): consumers fall back to standalone."""
        if self.distributor == distributor:
            self.distributor = None
            for seat in self._seats.values():
                seat.grant = None
                seat._notify()

    def grant(
        self, name: str, power_w: float, now: float, reason: str = "", *, valid_s: float = 0.0
    ) -> None:
        """Grant ``name`` up to ``power_w`` W for ``valid_s`` s (KeyError: unknown consumer)."""
        if not math.isfinite(power_w) or power_w < 0:
            raise ValueError(f"grant must be a finite power >= 0 W, got {power_w!r}")
        if not math.isfinite(valid_s) or valid_s < 0:
            raise ValueError(f"grant validity must be a finite time >= 0 s, got {valid_s!r}")
        self._seats[name]._granted(Grant(power_w, now, reason, valid_s))

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when a consumer joins, leaves or reports (for the distributor)."""
        self._listeners.append(callback)

    def _leave(self, seat: ConsumerHandle) -> None:
        if self._seats.get(seat.spec.name) is seat:
            del self._seats[seat.spec.name]
            self._changed()

    def _changed(self) -> None:
        for cb in list(self._listeners):
            cb()

"""Operation modes of an S2 OMBC resource manager, built from a consumer's power levels.

One mode per level (0 W = "Off"), a transition between every pair of modes, and two timers
that carry the consumer's minimum run and rest times the way Victron's own RMs do
(venus-platform.md §1.5): leaving Off *starts* MinRun and is *blocked by* MinRest; entering
Off starts MinRest and is blocked by MinRun. :class:`OmbcTimers` keeps the same timers on the
RM side, so an instruction that breaks them is refused even if the CEM sent it. Powers in W
(+ = drawn), times in s on the caller's monotonic clock. Ids are stable UUIDs per resource.
"""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass

__all__ = [
    "MIN_REST",
    "MIN_RUN",
    "OmbcMode",
    "OmbcPlan",
    "OmbcTimer",
    "OmbcTimers",
    "OmbcTransition",
]

MIN_RUN = "MinRun"
MIN_REST = "MinRest"
_NS = uuid.UUID("5b0f3c52-6f1e-4a8e-9d43-0c6e2f7a1d90")  # venus-ems OMBC ids


@dataclass(frozen=True)
class OmbcMode:
    """One operation mode: a fixed power level."""

    id: str
    label: str
    power_w: float


@dataclass(frozen=True)
class OmbcTimer:
    """A timer the CEM must respect (duration in s)."""

    id: str
    label: str
    duration_s: float


@dataclass(frozen=True)
class OmbcTransition:
    """A permitted mode change, with the timers it starts and the timers that block it."""

    id: str
    from_id: str
    to_id: str
    start_timers: tuple[str, ...]
    blocking_timers: tuple[str, ...]


@dataclass(frozen=True)
class OmbcPlan:
    """Modes, transitions and timers of one resource (the OMBC.SystemDescription content)."""

    modes: tuple[OmbcMode, ...]
    transitions: tuple[OmbcTransition, ...]
    timers: tuple[OmbcTimer, ...]

    @classmethod
    def for_levels(
        cls,
        resource: str,
        levels_w: tuple[float, ...],
        *,
        min_on_s: float = 0.0,
        min_off_s: float = 0.0,
    ) -> OmbcPlan:
        """Plan for levels ascending from 0 W; ValueError if they are not, or times are < 0."""
        if not levels_w or levels_w[0] != 0.0:
            raise ValueError(f"levels must start at 0 W: {levels_w}")
        if any(b <= a for a, b in itertools.pairwise(levels_w)):
            raise ValueError(f"levels must rise: {levels_w}")
        if not all(math.isfinite(w) for w in levels_w):
            raise ValueError("levels must be finite")
        if not (math.isfinite(min_on_s) and math.isfinite(min_off_s)):
            raise ValueError("times must be finite")
        if min_on_s < 0 or min_off_s < 0:
            raise ValueError("times must be >= 0 s")

        def uid(kind: str, key: str) -> str:
            return str(uuid.uuid5(_NS, f"{resource}/{kind}/{key}"))

        modes = tuple(
            OmbcMode(uid("mode", f"{w:g}"), "Off" if w == 0 else f"{w:g} W", float(w))
            for w in levels_w
        )
        run, rest = uid("timer", MIN_RUN), uid("timer", MIN_REST)
        timers = tuple(
            OmbcTimer(tid, label, s)
            for tid, label, s in ((run, MIN_RUN, min_on_s), (rest, MIN_REST, min_off_s))
            if s > 0
        )
        have = {t.id for t in timers}
        off = modes[0].id
        transitions = []
        for a, b in itertools.permutations(modes, 2):
            start: tuple[str, ...]
            block: tuple[str, ...]
            if a.id == off:
                start, block = (run,), (rest,)
            elif b.id == off:
                start, block = (rest,), (run,)
            else:
                start, block = (), ()
            transitions.append(
                OmbcTransition(
                    uid("transition", f"{a.power_w:g}->{b.power_w:g}"),
                    a.id,
                    b.id,
                    tuple(t for t in start if t in have),
                    tuple(t for t in block if t in have),
                )
            )
        return cls(modes, tuple(transitions), timers)

    @property
    def off(self) -> OmbcMode:
        """The 0 W mode (the safe state)."""
        return self.modes[0]

    def mode(self, mode_id: str) -> OmbcMode | None:
        """The mode with this id, or None."""
        return next((m for m in self.modes if m.id == mode_id), None)

    def mode_at(self, power_w: float) -> OmbcMode:
        """The highest mode not above ``power_w`` (Off below the first step)."""
        best = self.modes[0]
        for m in self.modes:
            if m.power_w <= power_w + 1e-9:
                best = m
        return best

    def transition(self, from_id: str, to_id: str) -> OmbcTransition | None:
        """The transition between two modes, or None."""
        return next(
            (t for t in self.transitions if t.from_id == from_id and t.to_id == to_id), None
        )


class OmbcTimers:
    """Running timers of one resource (RM or CEM side): when they were started."""

    def __init__(self, plan: OmbcPlan) -> None:
        """No timer running."""
        self.plan = plan
        self._until: dict[str, float] = {}

    def blocked_by(self, from_id: str, to_id: str, now: float) -> str | None:
        """Label of a running timer that blocks the change, "no transition", or None if allowed."""
        if from_id == to_id:
            return None
        t = self.plan.transition(from_id, to_id)
        if t is None:
            return "no transition"
        for tid in t.blocking_timers:
            if self._until.get(tid, -math.inf) > now:
                return next(x.label for x in self.plan.timers if x.id == tid)
        return None

    def switched(self, from_id: str, to_id: str, now: float) -> None:
        """Record a completed change at ``now``: start the transition's timers."""
        t = self.plan.transition(from_id, to_id)
        if t is None:
            return
        for tid in t.start_timers:
            timer = next(x for x in self.plan.timers if x.id == tid)
            self._until[tid] = now + timer.duration_s

    def remaining_s(self, label: str, now: float) -> float:
        """Seconds left on the timer called ``label`` (0 if not running)."""
        for x in self.plan.timers:
            if x.label == label:
                return max(0.0, self._until.get(x.id, -math.inf) - now)
        return 0.0

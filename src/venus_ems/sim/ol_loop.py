"""A model of Victron's Opportunity Loads control loop, from its documented behaviour.

venus-platform.md §1.7 (the public prototype): every loop (5 s) the resource managers are
visited in priority order; each takes the most expensive *reachable* mode (not blocked by an
OMBC timer) that fits in what is left, else its cheapest reachable one. Loads marked
``primary`` (above ``battery`` in the priority list) come before the battery reservation;
the others only get what remains after it. At most one change is committed per loop
(decreases first, lowest priority first; then increases, highest priority first), and none
while an earlier change is unconfirmed. Single-phase simplification: one surplus figure.
Used by the simulated CEM (:mod:`venus_ems.sim.venus.opportunity_loads`) and bench/surplus.py.
Powers in W; ``surplus_w`` already includes what the managed loads draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..control.ombc import OmbcMode, OmbcPlan, OmbcTimers

__all__ = ["OlLoad", "OlLoop", "ol_choice"]


@dataclass
class OlLoad:
    """One resource manager as the CEM sees it (lower ``priority`` = served first)."""

    name: str
    plan: OmbcPlan
    priority: int = 50
    primary: bool = False
    mode: OmbcMode | None = None  # confirmed by the RM's last Status
    pending: OmbcMode | None = None  # instructed, not yet confirmed
    sends: int = 0  # times the pending instruction was sent
    timers: OmbcTimers = field(init=False)

    def __post_init__(self) -> None:
        """Start Off with no timer running."""
        self.timers = OmbcTimers(self.plan)
        if self.mode is None:
            self.mode = self.plan.off

    def confirmed(self, mode: OmbcMode, now: float) -> None:
        """The RM reports ``mode`` active: start the transition's timers."""
        current = self.mode or self.plan.off
        if mode.id != current.id:
            self.timers.switched(current.id, mode.id, now)
        self.mode = mode
        if self.pending is not None and self.pending.id == mode.id:
            self.pending, self.sends = None, 0

    def reachable(self, now: float) -> list[OmbcMode]:
        """Modes it may go to now (its current one included), cheapest first."""
        current = self.mode or self.plan.off
        return [
            m
            for m in self.plan.modes
            if m.id == current.id or self.timers.blocked_by(current.id, m.id, now) is None
        ]


def ol_choice(load: OlLoad, budget_w: float, now: float) -> OmbcMode:
    """The most expensive reachable mode within ``budget_w``, else the cheapest reachable."""
    modes = load.reachable(now)
    fitting = [m for m in modes if m.power_w <= budget_w + 1e-9]
    return fitting[-1] if fitting else modes[0]


class OlLoop:
    """The allocation and commit rule of one CEM loop (see the module doc)."""

    def __init__(self, loads: list[OlLoad]) -> None:
        """Loads in any order; sorted by priority here."""
        self.loads = sorted(loads, key=lambda x: x.priority)

    def targets(self, surplus_w: float, reservation_w: float, now: float) -> dict[str, OmbcMode]:
        """The mode each load should run at now."""
        left = surplus_w
        out: dict[str, OmbcMode] = {}
        for load in (x for x in self.loads if x.primary):
            out[load.name] = ol_choice(load, left if left > 50.0 else 0.0, now)
            left -= out[load.name].power_w
        left -= reservation_w
        for load in (x for x in self.loads if not x.primary):
            out[load.name] = ol_choice(load, left, now)
            left -= out[load.name].power_w
        return out

    def step(
        self, surplus_w: float, reservation_w: float, now: float
    ) -> tuple[OlLoad, OmbcMode] | None:
        """The one change to instruct this loop (re-sends a pending one), or None."""
        pending = next((x for x in self.loads if x.pending is not None), None)
        if pending is not None and pending.pending is not None:
            return pending, pending.pending
        want = self.targets(surplus_w, reservation_w, now)
        downs = [x for x in reversed(self.loads) if want[x.name].power_w < _power(x)]
        ups = [x for x in self.loads if want[x.name].power_w > _power(x)]
        for load in downs + ups:
            load.pending, load.sends = want[load.name], 0
            return load, want[load.name]
        return None


def _power(load: OlLoad) -> float:
    return (load.mode or load.plan.off).power_w

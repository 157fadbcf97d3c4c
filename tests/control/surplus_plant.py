"""A tiny plant for the surplus core: PV surplus, consumers following their grant, a slow meter.

Each consumer draws its grant (a stepped one its level) from the moment it was granted and
reports that draw at once; the grid meter shows ``sum(draw) - surplus`` as it was ``lag_s``
ago (a slow meter: the case feed-forward is for). The battery absorbs nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from venus_ems.control.surplus import Distribution, Load, LoadMemory, Site, SurplusSettings, decide


@dataclass
class SurplusPlant:
    loads: list[Load]
    settings: SurplusSettings = field(default_factory=SurplusSettings)
    surplus: Callable[[float], float] = lambda t: 0.0
    lag_s: float = 0.0
    battery_w: float = 0.0
    soc: float | None = 50.0
    memory: dict[str, LoadMemory] = field(default_factory=dict)
    draws: dict[str, float] = field(default_factory=dict)
    history: deque[tuple[float, float]] = field(default_factory=deque)
    rows: list[tuple[float, Distribution]] = field(default_factory=list)

    def grid_at(self, t: float) -> float:
        """The grid meter's reading at ``t``: the site as it was ``lag_s`` ago (W, + import)."""
        self.history.append((t, sum(self.draws.values()) - self.surplus(t) - self.battery_w))
        while len(self.history) > 1 and self.history[1][0] <= t - self.lag_s:
            self.history.popleft()
        return self.history[0][1]

    def step(self, t: float) -> Distribution:
        """One decision at ``t``; the consumers follow it at once."""
        grid = self.grid_at(t)
        loads = [
            replace(ld, draw_w=self.draws.get(ld.name, 0.0), reported_at=t) for ld in self.loads
        ]
        site = Site(grid, self.battery_w, self.soc, None, t)
        d = decide(site, loads, self.memory, self.settings, t)
        self.memory = dict(d.memory)
        self.draws = {n: a.power_w for n, a in d.allocations.items()}
        self.rows.append((t, d))
        return d

    def run(self, until: float, dt: float = 5.0, start: float = 0.0) -> list[dict[str, float]]:
        """Decide every ``dt`` s from ``start`` to ``until`` (inclusive); the grants per row."""
        out = []
        t = start
        while t <= until + 1e-9:
            d = self.step(t)
            out.append({n: a.power_w for n, a in d.allocations.items()})
            t += dt
        return out

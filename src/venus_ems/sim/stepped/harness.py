"""A discrete-time harness: one controller against the simulated physics, stepped.

Reusable by every controller that acts on the site (ESS grid control, output limiter,
micro-inverters...). Each step of ``dt`` seconds:

1. writes whose dead time is over reach the physics (the actuator path: command -> effect),
2. the scenario feeds its inputs and the site advances ``dt``,
3. observers (KPIs) see the site,
4. the controller is called with the site: on every new meter sample (what a real controller
   sees: the meter view with its noise and quantisation), or on every step if it asks for it
   (an oracle that knows the load exactly). It answers with writes, each with its own delay.

A write is a plain function ``write(site)`` using the site's write API (the same calls the
simulated D-Bus services make).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..physics import Site
from ..scenarios import ScenarioDriver, get_scenario

__all__ = [
    "Combined",
    "Controller",
    "DelayLine",
    "Delayed",
    "Observer",
    "Run",
    "Write",
    "drive",
    "run",
]

Write = Callable[[Site], None]
"""An action on the site, e.g. ``lambda s: s.set_hub4_setpoint_override(-200.0)``."""


@dataclass(frozen=True)
class Delayed:
    """A write that reaches the physics ``delay_s`` after it was sent."""

    delay_s: float
    write: Write


class Controller(Protocol):
    """Anything that reads the site and sends delayed writes."""

    name: str

    @property
    def every_step(self) -> bool:
        """True: called every step with exact values (oracles); False: on meter samples only."""
        ...

    def setup(self, site: Site) -> None:
        """Prepare the site before the first step (ESS mode, start values)."""
        ...

    def __call__(self, site: Site, t: float) -> Sequence[Delayed]:
        """Decide at time ``t`` (s); return the writes to send."""
        ...


class Observer(Protocol):
    """Receives the site after every step (KPIs, recorders)."""

    def observe(self, site: Site, dt: float) -> None:
        """Account for the step that just ended."""
        ...


@dataclass
class DelayLine:
    """Writes in flight, applied in send order once due."""

    queue: list[tuple[float, int, Write]] = field(default_factory=list)
    sent: int = 0
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def send(self, now: float, delayed: Delayed) -> None:
        """Queue one write."""
        heapq.heappush(self.queue, (now + delayed.delay_s, next(self._seq), delayed.write))
        self.sent += 1

    def deliver(self, site: Site) -> None:
        """Apply every write due at the site's time."""
        while self.queue and self.queue[0][0] <= site.time + 1e-9:
            _, _, write = heapq.heappop(self.queue)
            write(site)


@dataclass(frozen=True)
class Run:
    """What to simulate: a scenario slice at a step size."""

    scenario: str
    start_s: float = 0.0
    duration_s: float = 86400.0
    dt: float = 1.0


def drive(
    site: Site,
    advance: Callable[[float], object],
    controller: Controller | None,
    observers: Sequence[Observer],
    steps: int,
    dt: float,
) -> Site:
    """The step loop: deliver due writes, advance, observe, decide."""
    if controller is not None:
        controller.setup(site)
    line = DelayLine()
    for _ in range(steps):
        line.deliver(site)
        advance(dt)
        for obs in observers:
            obs.observe(site, dt)
        if controller is not None and (controller.every_step or site.meter.updated):
            for delayed in controller(site, site.time):
                line.send(site.time, delayed)
    return site


def run(
    spec: Run,
    controller: Controller | None,
    observers: Sequence[Observer] = (),
    *,
    prepare: Callable[[Site], None] | None = None,
) -> Site:
    """Run one controller over one scenario slice; returns the final site.

    The site first runs on its own (the GX's ESS loop, mode 1) up to ``spec.start_s``.
    """
    driver = ScenarioDriver(get_scenario(spec.scenario))
    site = driver.site
    if prepare is not None:
        prepare(site)
    while site.time + spec.dt <= spec.start_s + 1e-9:
        driver.step(spec.dt)
    steps = round(spec.duration_s / spec.dt)
    return drive(site, driver.step, controller, observers, steps, spec.dt)


@dataclass
class Combined:
    """Several controllers on one site (e.g. ESS grid control plus the output limiter)."""

    parts: Sequence[Controller]
    name: str = "combined"

    @property
    def every_step(self) -> bool:
        """Called every step if any part wants it; each part still sees only its own cadence."""
        return any(p.every_step for p in self.parts)

    def setup(self, site: Site) -> None:
        """Set up every part."""
        for p in self.parts:
            p.setup(site)

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        """Writes of every part that is due."""
        out: list[Delayed] = []
        for p in self.parts:
            if p.every_step or site.meter.updated:
                out.extend(p(site, t))
        return out

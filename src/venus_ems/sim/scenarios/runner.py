"""Drive a :class:`Site` through a scenario: stepped (benchmarks) or on a clock (demo)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..physics import Site, SiteState
from .catalog import DAY_S, Scenario, get_scenario

if TYPE_CHECKING:
    from ...clock import Clock

__all__ = [
    "Controller",
    "RunResult",
    "ScenarioDriver",
    "iter_scenario",
    "run_clocked",
    "run_scenario",
]

Controller = Callable[[Site, float], None]
"""Called as ``controller(site, t)`` between steps; acts through the site's write API."""


class ScenarioDriver:
    """Feeds a scenario's inputs (load, PV, EV sessions) into a site, one step at a time."""

    def __init__(self, scenario: Scenario | str, site: Site | None = None) -> None:
        """Build the site from the scenario's parameters unless one is given."""
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.site = site if site is not None else Site(self.scenario.site)
        if site is None:
            for path, value in self.scenario.ess_settings:
                self.site.set_ess_setting(path, value)
        self.series = self.scenario.series()
        self._plugged: set[int] = set()
        self._done: set[int] = set()

    def feed(self) -> None:
        """Set the inputs for the second the site is in (scenario time wraps daily)."""
        site = self.site
        t = site.time
        i = int(t) % DAY_S
        s = self.series
        site.set_inputs([a[i] for a in s.load_w], s.pv_dc_w[i], s.pv_ac_w[i])
        if site.ev is None:
            return
        day_t = t % DAY_S
        for k, sess in enumerate(s.ev_sessions):
            if k not in self._plugged and sess.arrival_s <= day_t < sess.departure_s:
                self._plugged.add(k)
                if sess.car is not None:
                    site.ev_plug_in_car(sess.car)
                else:
                    site.ev_plug_in(sess.energy_kwh, sess.taper)
            elif k in self._plugged and k not in self._done and day_t >= sess.departure_s:
                self._done.add(k)
                site.ev_unplug()

    def step(self, dt: float) -> None:
        """Feed, then advance ``dt`` s."""
        self.feed()
        self.site.step(dt)


def iter_scenario(
    scenario: Scenario | str,
    dt: float = 1.0,
    *,
    duration_s: float = DAY_S,
    site: Site | None = None,
) -> Iterator[Site]:
    """Yield the live site after each step; write to it between steps to control it."""
    driver = ScenarioDriver(scenario, site)
    steps = round(duration_s / dt)
    for _ in range(steps):
        driver.step(dt)
        yield driver.site


@dataclass
class RunResult:
    """Recorded snapshots and the final state of one run."""

    scenario: str
    dt: float
    states: list[SiteState] = field(default_factory=list)
    final: SiteState | None = None
    max_residual_w: float = 0.0


def run_scenario(
    name: str | Scenario,
    dt: float = 1.0,
    *,
    duration_s: float = DAY_S,
    controller: Controller | None = None,
    control_period_s: float = 1.0,
    record_every_s: float | None = 60.0,
    site: Site | None = None,
) -> RunResult:
    """Run stepped at ``dt``; control every ``control_period_s``; record each ``record_every_s``."""
    driver = ScenarioDriver(name, site)
    s = driver.site
    result = RunResult(driver.scenario.name, dt)
    steps = round(duration_s / dt)
    next_control = 0.0
    next_record = record_every_s or 0.0
    for _ in range(steps):
        if controller is not None and s.time + 1e-9 >= next_control:
            controller(s, s.time)
            next_control += control_period_s
        driver.step(dt)
        r = abs(s.flows.residual_w)
        result.max_residual_w = max(result.max_residual_w, r)
        if record_every_s is not None and s.time + 1e-9 >= next_record:
            result.states.append(s.state())
            next_record += record_every_s
    result.final = s.state()
    return result


async def run_clocked(
    driver: ScenarioDriver,
    clock: Clock,
    *,
    dt: float = 1.0,
    until_s: float | None = None,
    on_step: Callable[[Site], None] | None = None,
) -> None:
    """Keep the site in step with ``clock`` (real, scaled or stepped), ``dt`` s per step."""
    t0 = clock.monotonic() - driver.site.time
    while until_s is None or driver.site.time < until_s:
        lag = clock.monotonic() - t0 - driver.site.time
        if lag >= dt:
            # Catch up in whole steps after a stall, but never more than a minute at once.
            for _ in range(min(int(lag / dt), round(60 / dt))):
                driver.step(dt)
                if on_step is not None:
                    on_step(driver.site)
        else:
            await clock.sleep(dt - lag)

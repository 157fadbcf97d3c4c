"""The references of the micro-inverter benchmark, each as a harness controller.

* :class:`SeedB` — hkaest/dbus-opendtu-DC-load's loop (reference seeds-small.md §B.6-B.8), with
  its shipped settings: every 4 s, a grid estimate that follows export and drops at once and
  rising consumption as ``(3·old + new)/4``; a residual of ``estimate - ZeroPoint (25 W)``
  walked over the inverters while above 10 W; each step ``new% = floor((old% + add)/2)·2``
  (2 % steps, at least 2 %), at most one limit change per loop, and a change is only sent when
  the DTU already reports the limit sent before (else it waits a loop). ``old%`` is the limit
  the DTU reports. Its upper limit is set to 100 % (shipped: 90 %) so that both have the same
  capacity (a matched operating point).
* :class:`OnBatteryStyle` — OpenDTU-OnBattery's Dynamic Power Limiter as documented
  (reference peers.md §1): recompute only once no command is pending, inverter data newer
  than the last command has arrived and a meter sample at least 2 s newer than that data; the
  new total is the inverters' reported AC output + grid - target; one inverter is changed per
  step (the one that can contribute most); no update inside the hysteresis (25 W, its docs).
* :class:`LookAhead` — a look-ahead reference: it knows the house load exactly, each inverter's
  dead time in advance, and every second commands each inverter its share (in proportion to
  its maximum) of the future load minus the aim, so the command lands when that load is
  there. Same minimum, maximum and ramp, but limits in exact W (no whole-percent steps). It
  removes the reaction delay and the quantisation, not the physics; it is not a bound on
  export alone (exporting less is possible by importing more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from control_harness import Delayed

from micro_harness import NETWORK_S, DtuView, Link
from venus_ems.sim.physics import Site
from venus_ems.sim.scenarios import Scenario, get_scenario


def _limit(serial: str, pct: float):
    return lambda site: site.set_micro_limit(serial, pct, relative=True)


@dataclass
class SeedB:
    """Seed B's control loop (module docstring)."""

    name: str = "seed B"
    aim_w: float = 25.0
    cap_w: float | None = None
    period_s: float = 4.0
    min_pct: int = 2
    max_pct: int = 100
    steps_pct: int = 2
    accuracy_w: float = 10.0
    consume_filter: int = 3
    drop_w: float = 150.0
    every_step: bool = False
    estimate: float = 0.0
    last_limit: dict[str, float] = field(default_factory=dict)
    next_at: float = 0.0
    commands: int = 0
    dtu: DtuView = field(default_factory=DtuView)

    def setup(self, site: Site) -> None:
        """Nothing to prepare."""

    def _filter(self, m: float) -> None:
        if m < -self.accuracy_w or self.estimate - m > self.drop_w:
            self.estimate = m  # feedInFilterFactor 0: follow at once
        else:
            f = self.consume_filter
            self.estimate = int((self.estimate * f + m) / (f + 1))

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        if t + 1e-9 < self.next_at:
            return []
        self.next_at = t + self.period_s
        reading = site.meter.reading()
        if reading is None:
            return []
        self._filter(sum(reading))
        offset = -self.aim_w
        residual = self.estimate + offset
        budget = self.cap_w if self.cap_w is not None else math.inf
        out: list[Delayed] = []
        for serial, mi in site.micros.items():
            if abs(residual) <= self.accuracy_w:
                break
            old = mi.limit_relative  # what the DTU reports
            max_power = mi.params.max_power_w
            actual = old * max_power / 100.0
            add = min(residual, budget - actual)
            new = math.floor((old + add * 100.0 / max_power) / self.steps_pct) * self.steps_pct
            new = min(max(new, self.min_pct), self.max_pct)
            if new != old:
                if self.last_limit.get(serial) != old:
                    self.last_limit[serial] = old  # wait one loop for the DTU to show it
                    break
                out.append(Delayed(NETWORK_S, _limit(serial, int(new))))
                self.commands += 1
                self.last_limit[serial] = new
                residual -= (new - old) * max_power / 100.0
                self.estimate = residual - offset  # feed-forward
                break
            budget -= new * max_power / 100.0
        return out


@dataclass
class OnBatteryStyle:
    """OpenDTU-OnBattery's limiter, as documented (module docstring)."""

    name: str = "OnBattery-style"
    aim_w: float = 25.0
    cap_w: float | None = None
    hysteresis_w: float = 25.0
    min_pct: int = 3
    every_step: bool = False
    dtu: DtuView = field(default_factory=DtuView)
    link: Link = field(default_factory=Link)
    last_command_at: float = -math.inf
    first_after: dict[str, float] = field(default_factory=dict)

    def setup(self, site: Site) -> None:
        """Nothing to prepare."""

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        self.dtu.update(site)
        out = self.link.step(site, t)
        if self.link.inflight:
            return out  # waiting for a command to complete
        polled = [self.dtu.polled.get(s) for s in site.micros]
        for serial, p in zip(site.micros, polled, strict=True):
            if p is not None and p.at > self.last_command_at:
                self.first_after.setdefault(serial, p.at)
        if len(self.first_after) < len(site.micros):
            return out  # waiting for inverter data newer than the last command
        if site.meter.sample_time < max(self.first_after.values()) + 2.0:
            return out  # waiting for a meter sample newer than that data
        reading = site.meter.reading()
        if reading is None:
            return out
        outputs = {s: p.ac_w for s, p in zip(site.micros, polled, strict=True) if p is not None}
        target = sum(outputs.values()) + sum(reading) - self.aim_w
        top = sum(m.params.max_power_w for m in site.micros.values())
        if self.cap_w is not None:
            top = min(top, self.cap_w)
        target = min(max(target, 0.0), top)
        delta = target - sum(outputs.values())
        if abs(delta) < self.hysteresis_w:
            return out

        def room(serial: str) -> float:
            mi = site.micros[serial]
            limit = mi.limit_relative * mi.params.max_power_w / 100.0
            lo = self.min_pct * mi.params.max_power_w / 100.0
            return mi.params.max_power_w - limit if delta > 0 else limit - lo

        serial = max(site.micros, key=room)
        mi = site.micros[serial]
        limit = mi.limit_relative * mi.params.max_power_w / 100.0
        wanted = limit + (min(delta, room(serial)) if delta > 0 else max(delta, -room(serial)))
        pct = min(max(math.floor(wanted * 100.0 / mi.params.max_power_w), self.min_pct), 100)
        if pct != round(mi.limit_relative):
            self.link.want(serial, pct)
            self.last_command_at = t
            self.first_after.clear()
            out += self.link.step(site, t)
        return out


@dataclass
class LookAhead:
    """Perfect foresight of each inverter's dead time (module docstring)."""

    scenario: Scenario | str
    name: str = "look-ahead"
    aim_w: float = 25.0
    cap_w: float | None = None
    min_pct: int = 3
    every_step: bool = True
    commands: int = 0
    _load: list[float] = field(default_factory=list)

    def setup(self, site: Site) -> None:
        """Read the scenario's house load (the future this reference knows)."""
        sc = get_scenario(self.scenario) if isinstance(self.scenario, str) else self.scenario
        series = sc.series()
        n = len(series.load_w[0])
        self._load = [sum(phase[i] for phase in series.load_w) for i in range(n)]

    def _load_at(self, t: float) -> float:
        return self._load[int(t) % len(self._load)]

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        outputs = sum(m.power_w for m in site.micros.values())
        demand_now = sum(site.grid_w) + outputs  # everything but the inverters, now
        top = sum(m.params.max_power_w for m in site.micros.values())
        cap = top if self.cap_w is None else min(top, self.cap_w)
        out: list[Delayed] = []
        for serial, mi in site.micros.items():
            p = mi.params
            ahead = t + p.dead_time_s
            future = demand_now + self._load_at(ahead) - self._load_at(t)
            share = min(max(future - self.aim_w, 0.0), cap) * p.max_power_w / top
            pct = min(max(share * 100.0 / p.max_power_w, float(self.min_pct)), 100.0)
            out.append(Delayed(0.0, _limit(serial, pct)))
            self.commands += 1
        return out

"""One simulated day, stepped at 1 s as fast as the CPU goes: per-minute series and the KPIs.

The site runs the scenario from midnight (on its own, Victron's ESS loop) up to the start, then
the configuration's controllers act on it (:mod:`.adapters`) while a recorder keeps per-minute
means of every quantity the report plots and the KPIs of ``venus_ems.sim.stepped`` (the same
maths as ``bench/control.py``) are accumulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ...clock import cpu_seconds
from ...runtime.config import Config
from ..physics import Site
from ..scenarios import ScenarioDriver, get_scenario
from ..scenarios.catalog import DAY_S
from ..stepped import Combined, Controller, GridKpis, drive
from .adapters import plan

__all__ = ["DayResult", "Kpi", "Recorder", "simulate_day"]

_H = 3600.0
Progress = Callable[[float], None]
"""Called with the fraction done (0..1) every few simulated minutes."""


@dataclass(frozen=True)
class Kpi:
    """One line of the KPI table: name, value (None = not applicable), unit, digits, hint."""

    name: str
    value: float | None
    unit: str
    digits: int = 1
    better: str = ""  # "lower", "higher" or "" (no direction)


@dataclass
class DayResult:
    """What one configuration did on one day."""

    label: str
    scenario: str
    description: str
    start_s: float
    duration_s: float
    minutes: list[float]
    series: dict[str, list[float | None]]
    kpis: list[Kpi]
    notes: list[str]
    simulated: list[str]
    phases: int
    aim_w: float | None
    cpu_s: float = 0.0


@dataclass
class Recorder:
    """Observer: per-minute means of the plotted quantities, energies, switchings.

    Every step adds one vector of values (W, %, in the order of ``keys``) to the minute's sums;
    energies are the sums of the per-step values, so they are exact, not means of means.
    """

    period_s: float = 60.0
    progress: Progress | None = None
    start_s: float = 0.0
    duration_s: float = DAY_S
    minutes: list[float] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    switchings: int = 0
    soc_min: float = 100.0
    soc_max: float = 0.0
    keys: tuple[str, ...] = ()
    _totals: list[float] = field(default_factory=list)
    _acc: list[float] = field(default_factory=list)
    _n: float = 0.0
    _states: tuple[bool, ...] | None = None
    _next_progress: float = 0.0

    def _keys(self, site: Site) -> tuple[str, ...]:
        keys = [f"grid_l{i}_w" for i in range(1, site.phases + 1)]
        keys += ["grid_w", "import_w", "export_w", "battery_w", "charged_w", "discharged_w"]
        keys += ["soc_pct", "load_w", "setpoint_w", "pv_w"]
        if site.solar is not None:
            keys += ["pv_dc_w", "curtailed_dc_w"]
        if site.pv_inverter is not None:
            keys += ["pv_ac_w", "curtailed_ac_w"]
        if site.micros:
            keys.append("micro_w")
        if site.ev is not None:
            keys.append("ev_w")
        if site.heater is not None:
            keys.append("heater_w")
        keys += [f"relay:{name}_w" for name in site.relays]
        return tuple(keys)

    def observe(self, site: Site, dt: float) -> None:
        """Account for the step that just ended."""
        if not self.keys:
            self.keys = self._keys(site)
            self._acc = [0.0] * len(self.keys)
            self._totals = [0.0] * len(self.keys)
        grid = site.grid_w
        total = sum(grid)
        bat = site.battery
        soc = bat.soc
        self.soc_min, self.soc_max = min(self.soc_min, soc), max(self.soc_max, soc)
        ess = site.ess
        setpoint = sum(ess.vebus.setpoints_w) if ess.settings.hub4_mode == 3 else ess.setpoint_w()
        pw = bat.power_w
        v = [*grid, total, max(total, 0.0), max(-total, 0.0), pw, max(pw, 0.0), max(-pw, 0.0)]
        v += (soc, sum(site.load_in_w) + sum(site.load_out_w), setpoint, 0.0)
        pv = 0.0
        solar = site.solar
        if solar is not None:  # battery side, as the GX and VRM count the MPPT's yield
            could = solar.available_w * solar.params.efficiency
            pv += solar.output_w
            v += (solar.output_w, max(could - solar.output_w, 0.0))
        inv = site.pv_inverter
        if inv is not None:
            pv += inv.power_w
            could = min(inv.available_w, inv.params.rated_power_w)
            v += (inv.power_w, max(could - inv.power_w, 0.0))
        v[len(grid) + 9] = pv
        states: list[bool] = []
        if site.micros:
            v.append(sum(m.power_w for m in site.micros.values()))
            states += (m.on for m in site.micros.values())
        if site.ev is not None:
            v.append(site.ev.power_w)
            states.append(site.ev.power_w > 0.0)
        if site.heater is not None:
            v.append(site.heater.power_w)
            states.append(site.heater.power_w > 0.0)
        for relay in site.relays.values():
            v.append(relay.power_w)
            states.append(relay.on)
        now = tuple(states)
        if self._states is not None and now != self._states:
            self.switchings += sum(a != b for a, b in zip(now, self._states, strict=True))
        self._states = now
        self._acc = [a + b * dt for a, b in zip(self._acc, v, strict=True)]
        self._n += dt
        if self._n >= self.period_s - 1e-9:
            self.flush(site.time)

    def flush(self, t: float) -> None:
        """Close the current period (also a last, partial one) at simulated time ``t``."""
        if self._n <= 0.0:
            return
        for key, acc in zip(self.keys, self._acc, strict=True):
            self.series.setdefault(key, []).append(acc / self._n)
        self._totals = [a + b for a, b in zip(self._totals, self._acc, strict=True)]
        self.minutes.append(t / 60.0)
        self._acc, self._n = [0.0] * len(self.keys), 0.0
        if self.progress is not None and t >= self._next_progress:
            self._next_progress = t + 600.0
            done = (t - self.start_s) / self.duration_s if self.duration_s else 1.0
            self.progress(min(max(done, 0.0), 1.0))

    def energy_wh(self, key: str) -> float:
        """Energy of a recorded power (Wh), over the whole run (0 if not recorded)."""
        if key not in self.keys:
            return 0.0
        return self._totals[self.keys.index(key)] / _H


def _kpis(rec: Recorder, grid: GridKpis, aim: float | None, commands: int) -> list[Kpi]:
    e = rec.energy_wh
    pv, exp, imp, cons = (e(k) for k in ("pv_w", "export_w", "import_w", "load_w"))
    curtailed = e("curtailed_dc_w") + e("curtailed_ac_w")
    _, p90, _ = grid.settle_stats()
    tracked = aim is not None and grid.reachable_s > 0
    return [
        Kpi("grid import", imp / 1000, "kWh", 2, "lower"),
        Kpi("grid export", exp / 1000, "kWh", 2, "lower"),
        Kpi("PV produced", pv / 1000, "kWh", 2, "higher"),
        Kpi("PV not harvested", curtailed / 1000, "kWh", 2, "lower"),
        Kpi("self-consumption", 100 * (pv - exp) / pv if pv > 0 else None, "%", 1, "higher"),
        Kpi("self-sufficiency", 100 * (cons - imp) / cons if cons > 0 else None, "%", 1, "higher"),
        Kpi("battery charged", e("charged_w") / 1000, "kWh", 2),
        Kpi("battery discharged", e("discharged_w") / 1000, "kWh", 2),
        Kpi("SoC lowest", rec.soc_min, "%", 1),
        Kpi("SoC highest", rec.soc_max, "%", 1),
        Kpi(
            "tracking error |grid - aim|",
            grid.mean_abs_error_w if tracked else None,
            "W",
            1,
            "lower",
        ),
        Kpi(
            "time outside aim ± 50 W",
            grid.outside_band_s / 60 if tracked else None,
            "min",
            0,
            "lower",
        ),
        Kpi("settle time p90", p90 if tracked and grid.settle_times else None, "s", 0, "lower"),
        Kpi(
            "avoidable import",
            grid.avoidable_import_wh / 1000 if tracked else None,
            "kWh",
            2,
            "lower",
        ),
        Kpi("setpoint commands", float(commands), "", 0, "lower"),
        Kpi("consumer switchings", float(rec.switchings), "", 0, "lower"),
        Kpi(
            "moved against ESS rules",
            (grid.below_floor_wh + grid.beyond_dvcc_wh) / 1000,
            "kWh",
            2,
            "lower",
        ),
    ]


def simulate_day(
    scenario: str,
    config: Config | None,
    *,
    label: str = "",
    start_s: float = 0.0,
    duration_s: float = DAY_S,
    progress: Progress | None = None,
) -> DayResult:
    """Run ``config``'s controllers on ``scenario`` from ``start_s`` for ``duration_s`` (1 s steps).

    Raises KeyError for an unknown scenario and ValueError when a feature does not fit the site.
    """
    cpu0 = cpu_seconds()
    sc = get_scenario(scenario)
    driver = ScenarioDriver(sc)
    site = driver.site
    while site.time + 1.0 <= start_s + 1e-9:  # the morning on its own, as the GX runs it
        driver.step(1.0)
    the_plan = plan(config, site)
    ctl: Controller | None = None
    if len(the_plan.controllers) == 1:
        ctl = the_plan.controllers[0]
    elif the_plan.controllers:
        ctl = Combined(the_plan.controllers)
    rec = Recorder(progress=progress, start_s=start_s, duration_s=duration_s)
    grid = GridKpis(the_plan.aim_w if the_plan.aim_w is not None else 0.0)
    drive(site, driver.step, ctl, [rec, grid], round(duration_s), 1.0)
    rec.flush(site.time)
    commands = sum(getattr(getattr(c, "sender", None), "commands", 0) for c in the_plan.controllers)
    if progress is not None:
        progress(1.0)
    return DayResult(
        label=label,
        scenario=sc.name,
        description=sc.description,
        start_s=start_s,
        duration_s=duration_s,
        minutes=rec.minutes,
        series=rec.series,
        kpis=_kpis(rec, grid, the_plan.aim_w, commands),
        notes=the_plan.notes,
        simulated=the_plan.simulated,
        phases=site.phases,
        aim_w=the_plan.aim_w,
        cpu_s=cpu_seconds() - cpu0,
    )

"""The control benchmark's synthetic checks: constant loads, load steps, the output limiter.

Constant loads run on a bare three-phase site (no PV, battery 60 %, DCL 300 A so 3 kW per
phase stays inside the battery's limits); the load steps on the summer-sunny site at night.
"""

from __future__ import annotations

import itertools
from array import array

from control_refs import LookAheadBound, SeedB, StockEss
from venus_ems.control import EssMethod, LimiterSettings
from venus_ems.features.ess_control import ess_settings, tunables_for
from venus_ems.features.output_limiter import DEAD_TIME_S as LIMITER_DEAD_TIME_S
from venus_ems.runtime.config import EssControlConfig
from venus_ems.sim.physics import BatteryParams, MultiParams, Site, SiteParams
from venus_ems.sim.scenarios import ScenarioSeries, get_scenario
from venus_ems.sim.stepped import (
    Combined,
    CoreController,
    LimiterController,
    LimiterKpis,
    Run,
    drive,
    run,
)

FEATURE = EssControlConfig(enabled=True)  # [ess_control] defaults: zero export, dead time 2 s
CONSTANT_LOADS_W = (50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 3000.0)
Controller = CoreController | StockEss | SeedB | LookAheadBound


def core_settings(method: EssMethod, phases: int, target_w: float = 0.0, kind: str = "zero_export"):
    """What the ess_control feature runs with its default configuration, aimed at ``target_w``."""
    config = FEATURE.model_copy(
        update={
            "method": method.value,
            "allow_mode3": True,
            "target_w": target_w,
            "grid_target": kind,
        }
    )
    return ess_settings(config, {t.name: t.default for t in tunables_for(config)}, phases)


def make(
    kind: str,
    method: EssMethod,
    aim_w: float,
    dead_time_s: float,
    phases: int,
    series: ScenarioSeries | None = None,
    *,
    fixed: bool = False,
) -> Controller:
    """A controller by kind: ours | stock | stock0 | seedb | bound.

    Ours aims with zero export (which never aims below its 25 W dead band) unless ``fixed``:
    then the fixed target ``aim_w`` (how the sweep reaches aims below 25 W).
    """
    if kind == "ours":
        grid_kind = "fixed" if fixed else "zero_export"
        settings = core_settings(method, phases, aim_w, grid_kind)
        return CoreController("ours", settings, dead_time_s)
    if kind in ("stock", "stock0"):
        return StockEss(kind, aim_w, limited=kind == "stock0")
    if kind == "seedb":
        return SeedB("seed B", aim_w, dead_time_s)
    assert series is not None
    return LookAheadBound("bound", aim_w, dead_time_s, series)


def label(kind: str, method: EssMethod) -> str:
    names = {
        "stock": "stock ESS",
        "stock0": "stock ESS 0 W",
        "seedb": "seed B (m3)",
        "bound": "bound (m3)",
    }
    if kind in names:
        return names[kind]
    return f"ours ({'mode 3' if method is EssMethod.MODE3 else 'override'})"


class _Recorder:
    def __init__(self) -> None:
        self.grid: list[tuple[float, float]] = []

    def observe(self, site: Site, dt: float) -> None:
        self.grid.append((site.time, sum(site.grid_w)))


def reversals(history: list[tuple[float, float]], after_s: float = 0.0) -> tuple[int, int]:
    """(commands, direction reversals) of a command history (t s, total W) after ``after_s``."""
    hist = [(t, w) for t, w in history if t > after_s]
    deltas = [b - a for (_, a), (_, b) in itertools.pairwise(hist) if b != a]
    return len(hist), sum(1 for a, b in itertools.pairwise(deltas) if a * b < 0)


def bare_site(phases: int = 3) -> Site:
    return Site(
        SiteParams(
            battery=BatteryParams(initial_soc=60.0, max_discharge_current_a=300.0),
            multi=MultiParams(phases=phases),
            seed=7,
        )
    )


def synthetic(kind, method, loads, seconds, dead_time_s, *, site=None, aim_w=0.0):
    """Piecewise-constant AC-out loads (t, W per phase); returns (controller, grid series)."""
    site = site if site is not None else bare_site()
    ctl = make(kind, method, aim_w, dead_time_s, site.phases, _constant_series(site, loads))
    rec = _Recorder()

    def advance(dt: float) -> None:
        w = loads[0][1]
        for at, value in loads:
            if site.time >= at:
                w = value
        site.set_inputs(w)
        site.step(dt)

    drive(site, advance, ctl, [rec], seconds, 1.0)
    return ctl, rec.grid


def _constant_series(site: Site, loads) -> ScenarioSeries:
    """The inputs as a day series, so the bound can look ahead (no PV)."""
    cols = []
    for p in range(site.phases):
        col = array("d", [loads[0][1][p]]) * DAY_S
        for at, value in loads[1:]:
            col[int(at) :] = array("d", [value[p]]) * (DAY_S - int(at))
        cols.append(col)
    zero = array("d", [0.0]) * DAY_S
    return ScenarioSeries(tuple(cols), zero, zero, ())


DAY_S = 86400


def constant_load(dead_time_s: float) -> list[str]:
    """Commands and reversals per constant load (W per phase, L1..L3 = w, 0.8 w, 1.2 w)."""
    kinds = (
        ("ours", EssMethod.MODE3),
        ("ours", EssMethod.HUB4_OVERRIDE),
        ("seedb", EssMethod.MODE3),
    )
    out = [
        "",
        "Constant load, L1..L3 = w / 0.8 w / 1.2 w on AC-out, no PV, 600 s; counted after 60 s;"
        " commands / reversals / mean grid W:",
        f"{'W per phase':<12}" + "".join(f"{label(k, m):>22}" for k, m in kinds),
    ]
    for w in CONSTANT_LOADS_W:
        cells = []
        for kind, method in kinds:
            ctl, grid = synthetic(kind, method, [(0.0, [w, 0.8 * w, 1.2 * w])], 600, dead_time_s)
            n, rev = reversals(ctl.sender.history, 60.0)
            late = [g for t, g in grid if t > 60]
            cells.append(f"{n:>5} / {rev:>3} / {sum(late) / len(late):>6.0f}")
        out.append(f"{w:<12.0f}" + "".join(f"{c:>22}" for c in cells))
    out.append("  target: zero reversals for ours at every load (mode 3 and override)")
    return out


def step_table(dead_time_s: float) -> list[str]:
    """Grid W after a +1 kW step (AC-out, split over the phases) at 60 s and back at 120 s."""
    base = [600.0, 500.0, 700.0]
    high = [w + 1000.0 / 3 for w in base]
    loads = [(0.0, base), (60.0, high), (120.0, base)]
    kinds = (
        ("ours", EssMethod.MODE3),
        ("ours", EssMethod.HUB4_OVERRIDE),
        ("stock", EssMethod.HUB4_OVERRIDE),
        ("seedb", EssMethod.MODE3),
        ("bound", EssMethod.MODE3),
    )
    series, settle = {}, {}
    for kind, method in kinds:
        aim = 50.0 if kind == "stock" else 25.0
        _, grid = synthetic(
            kind, method, loads, 180, dead_time_s, aim_w=aim if kind != "ours" else 0.0
        )
        g = dict(grid)
        name = label(kind, method)
        series[name] = g
        settle[name] = [_settle(g, at, aim) for at in (60, 120)]
    names = list(series)
    out = [
        "",
        "1 kW load steps: grid W after +1 kW at 60 s and -1 kW at 120 s (aim 25 W, stock 50 W):",
    ]
    out.append(f"{'t s':>6}" + "".join(f"{n:>16}" for n in names))
    for t in (*range(60, 70), 75, 90, *range(120, 130), 135, 150):
        out.append(
            f"{t:>6}" + "".join(f"{series[n].get(float(t), float('nan')):>16.0f}" for n in names)
        )
    out.append(
        f"{'settle s':>6}" + "".join(f"{f'{settle[n][0]} / {settle[n][1]}':>16}" for n in names)
    )
    out.append("  settle: s until |grid - aim| <= 100 W for 3 s (up / down); target < 5 s")
    return out


def _settle(g: dict[float, float], at: int, aim: float) -> int:
    for t in range(at, at + 60):
        if all(abs(g.get(float(t + k), 1e9) - aim) <= 100.0 for k in range(3)):
            return t - at
    return 60


def limiter_section(quick: bool, dead_time_s: float) -> list[str]:
    """EV day: zero export (override) plus the limiter capping the Multi's inverter output."""
    limit = 5000.0
    settings = LimiterSettings(
        limit_w=limit,
        phases=get_scenario("ev-charging").site.multi.phases,
        max_step_w=500.0,
        dead_time_s=LIMITER_DEAD_TIME_S,
        meter_interval_s=1.0,
        release_after_s=30.0,
    )
    start, dur = (10 * 3600.0, 3 * 3600.0) if quick else (9 * 3600.0, 6 * 3600.0)
    out = [
        "",
        f"Output limiter: ev-charging {start / 3600:.0f}:00 +{dur / 3600:.0f} h, zero export "
        f"(override) + cap {limit:.0f} W on the Multi's inverter output (MaxDischargePower):",
        f"{'':<22}{'max out W':>10}{'s > cap':>9}{'Wh > cap':>9}{'longest > cap+step s':>22}"
        f"{'cmds':>6}",
    ]
    for with_limiter in (False, True):
        phases = get_scenario("ev-charging").site.multi.phases
        ess = CoreController("ours", core_settings(EssMethod.HUB4_OVERRIDE, phases), dead_time_s)
        lim = LimiterController("limiter", settings, dead_time_s)
        ctl = Combined([ess, lim]) if with_limiter else ess
        k = LimiterKpis(limit, settings.max_step_w)
        run(Run("ev-charging", start, dur), ctl, [k])
        name = "with limiter" if with_limiter else "without limiter"
        cmds = lim.sender.commands if with_limiter else 0
        out.append(
            f"{name:<22}{k.max_output_w:>10.0f}{k.seconds_above_limit:>9.0f}"
            f"{k.energy_above_wh:>9.1f}{k.longest_over_step_s:>22.0f}{cmds:>6}"
        )
    out.append(
        f"  target: never more than one step ({settings.max_step_w:.0f} W) above the cap for "
        f"longer than the effect delay ({settings.effect_delay_s:.0f} s)"
    )
    return out

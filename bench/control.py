"""Control benchmark: our ESS core, a naive baseline and an oracle bound on the same days.

Usage: python bench/control.py [--quick] [--scenario NAME ...] [--dead-time S] [--jobs N]
                               [--markdown]

Every controller runs on the simulated physics (venus_ems.sim.stepped), stepped at 1 s,
with a dead time between each command and its effect and the grid meter's own noise and
quantisation as the controllers' input. Per scenario it prints exported Wh, imported and
avoidable imported Wh, mean |grid - aim|, seconds outside ±50 W, settle time after load
steps, commands sent, and energy moved against the ESS rules; then the ratios of ours to the
baseline and to the oracle. Then: constant load (oscillation), a load-step table, and the
Multi output limiter on the EV day. ``--quick`` runs 10:00-14:00 instead of whole days.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool

from control_refs import BaselineController, OracleController
from venus_ems.control import EssMethod, EssSettings, LimiterSettings
from venus_ems.control.baseline import BaselineSettings
from venus_ems.control.grid_target import target_band
from venus_ems.features.ess_control import ess_settings, tunables_for
from venus_ems.features.output_limiter import DEAD_TIME_S as LIMITER_DEAD_TIME_S
from venus_ems.runtime.config import EssControlConfig
from venus_ems.sim.physics import Site
from venus_ems.sim.scenarios import get_scenario, list_scenarios
from venus_ems.sim.stepped import (
    Combined,
    CoreController,
    GridKpis,
    LimiterController,
    LimiterKpis,
    Run,
    drive,
    run,
)

DAY = 86400.0
FEATURE = EssControlConfig(enabled=True)  # [ess_control] defaults: zero export, dead time 2 s
AIM = target_band(
    ess_settings(FEATURE, {t.name: t.default for t in tunables_for(FEATURE)}, 1).grid_target, None
).aim_w
BASELINE_PERIOD_S = 2.0  # seed A's minimal loop; seed B runs every 4 s


@dataclass(frozen=True)
class Job:
    scenario: str
    kind: str  # ours | baseline | oracle
    method: EssMethod
    start_s: float
    duration_s: float
    dead_time_s: float

    @property
    def label(self) -> str:
        if self.kind == "oracle":
            return "oracle (mode 3)"
        return f"{self.kind} ({'mode 3' if self.method is EssMethod.MODE3 else 'override'})"


def core_settings(method: EssMethod, phases: int) -> EssSettings:
    """Exactly what the ess_control feature runs with its default configuration."""
    config = FEATURE.model_copy(update={"method": method.value, "allow_mode3": True})
    return ess_settings(config, {t.name: t.default for t in tunables_for(config)}, phases)


def make_controller(
    job: Job, phases: int
) -> CoreController | BaselineController | OracleController:
    if job.kind == "ours":
        return CoreController(job.label, core_settings(job.method, phases), job.dead_time_s)
    if job.kind == "baseline":
        s = BaselineSettings(
            method=job.method, phases=phases, target_w=AIM, gain=1.0, period_s=BASELINE_PERIOD_S
        )
        return BaselineController(job.label, s, job.dead_time_s)
    return OracleController(job.label, AIM, job.dead_time_s)


def run_job(job: Job) -> dict[str, float | str]:
    phases = get_scenario(job.scenario).site.multi.phases
    ctl = make_controller(job, phases)
    k = GridKpis(AIM)
    t0 = time.process_time()
    run(Run(job.scenario, job.start_s, job.duration_s), ctl, [k])
    mean, p90, events = k.settle_stats()
    return {
        "scenario": job.scenario,
        "label": job.label,
        "kind": job.kind,
        "method": job.method.value,
        "export_wh": k.export_wh,
        "import_wh": k.import_wh,
        "avoidable_wh": k.avoidable_import_wh,
        "mae_w": k.mean_abs_error_w,
        "outside_s": k.outside_band_s,
        "reachable_s": k.reachable_s,
        "settle_mean_s": mean,
        "settle_p90_s": p90,
        "settle_n": events,
        "commands": ctl.sender.commands,
        "refreshes": ctl.sender.refreshes,
        "limits_wh": k.below_floor_wh + k.beyond_dvcc_wh,
        "cpu_s": time.process_time() - t0,
    }


HEADER = (
    f"{'controller':<20}{'export':>8}{'import':>8}{'avoid.':>8}{'|g-aim|':>8}"
    f"{'>±50W':>8}{'settle':>12}{'cmds':>7}{'refresh':>8}{'limits':>8}"
)
UNITS = (
    f"{'':<20}{'Wh':>8}{'Wh':>8}{'imp Wh':>8}{'W':>8}{'s':>8}{'mean/p90 s':>12}"
    f"{'':>7}{'':>8}{'Wh':>8}"
)


def row(r: dict[str, float | str]) -> str:
    settle = f"{r['settle_mean_s']:.1f}/{r['settle_p90_s']:.0f}"
    return (
        f"{r['label']!s:<20}{r['export_wh']:>8.1f}{r['import_wh']:>8.1f}{r['avoidable_wh']:>8.1f}"
        f"{r['mae_w']:>8.1f}{r['outside_s']:>8.0f}{settle:>12}{r['commands']:>7}"
        f"{r['refreshes']:>8}{r['limits_wh']:>8.1f}"
    )


def md_row(r: dict[str, float | str]) -> str:
    return (
        f"| {r['label']} | {r['export_wh']:.1f} | {r['import_wh']:.1f} | {r['avoidable_wh']:.1f} "
        f"| {r['mae_w']:.1f} | {r['outside_s']:.0f} | {r['settle_mean_s']:.1f} / "
        f"{r['settle_p90_s']:.0f} ({r['settle_n']}) | {r['commands']} | {r['limits_wh']:.1f} |"
    )


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else ("0.00" if a <= 0 else "inf")


# --------------------------------------------------------------------------- constant load


class _Recorder:
    def __init__(self) -> None:
        self.grid: list[tuple[float, float]] = []

    def observe(self, site: Site, dt: float) -> None:
        self.grid.append((site.time, sum(site.grid_w)))


def synthetic(
    job_kind: str,
    method: EssMethod,
    loads: list[tuple[float, list[float]]],
    seconds: int,
    dead_time_s: float,
):
    """Constant DC PV, piecewise-constant AC-out loads; returns (controller, grid series)."""
    sc = get_scenario("summer-sunny")
    site = Site(sc.site)
    job = Job("summer-sunny", job_kind, method, 0.0, seconds, dead_time_s)
    ctl = make_controller(job, site.phases)
    rec = _Recorder()

    def advance(dt: float) -> None:
        w = loads[0][1]
        for at, value in loads:
            if site.time >= at:
                w = value
        site.set_inputs(w, pv_dc_w=1500.0)
        site.step(dt)

    drive(site, advance, ctl, [rec], seconds, 1.0)
    return ctl, rec.grid


def constant_load(dead_time_s: float) -> list[str]:
    out = ["", "Constant load (L1..L3 600/500/700 W, DC PV 1500 W), 600 s; counted after 60 s:"]
    out.append(f"{'controller':<20}{'commands':>9}{'reversals':>10}{'grid p-p W':>11}{'mean W':>8}")
    for kind, method in (
        ("ours", EssMethod.MODE3),
        ("ours", EssMethod.HUB4_OVERRIDE),
        ("baseline", EssMethod.MODE3),
        ("baseline", EssMethod.HUB4_OVERRIDE),
        ("oracle", EssMethod.MODE3),
    ):
        ctl, grid = synthetic(kind, method, [(0.0, [600.0, 500.0, 700.0])], 600, dead_time_s)
        hist = [(t, w) for t, w in ctl.sender.history if t > 60]
        deltas = [b - a for (_, a), (_, b) in itertools.pairwise(hist)]
        reversals = sum(1 for a, b in itertools.pairwise(deltas) if a * b < 0)
        late = [w for t, w in grid if t > 60]
        label = Job("", kind, method, 0, 0, 0).label
        out.append(
            f"{label:<20}{len(hist):>9}{reversals:>10}{max(late) - min(late):>11.0f}"
            f"{sum(late) / len(late):>8.1f}"
        )
    return out


def step_table(dead_time_s: float) -> list[str]:
    """Grid power after a +1500 W load step at 60 s and a -1500 W step at 120 s."""
    base, high = [600.0, 500.0, 700.0], [1100.0, 1000.0, 1200.0]
    loads = [(0.0, base), (60.0, high), (120.0, base)]
    series = {}
    for kind, method in (
        ("ours", EssMethod.MODE3),
        ("ours", EssMethod.HUB4_OVERRIDE),
        ("baseline", EssMethod.MODE3),
        ("oracle", EssMethod.MODE3),
    ):
        _, grid = synthetic(kind, method, loads, 180, dead_time_s)
        series[Job("", kind, method, 0, 0, 0).label] = dict(grid)
    out = ["", "Load steps: grid W (aim 25 W) after +1500 W at 60 s and -1500 W at 120 s:"]
    names = list(series)
    out.append(f"{'t s':>6}" + "".join(f"{n:>20}" for n in names))
    for t in (*range(60, 76, 1), 80, 90, *range(120, 136, 1), 140, 150):
        out.append(
            f"{t:>6}" + "".join(f"{series[n].get(float(t), float('nan')):>20.0f}" for n in names)
        )
    return out


# --------------------------------------------------------------------------- output limiter


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


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10:00-14:00 instead of whole days")
    ap.add_argument("--scenario", action="append", choices=list_scenarios())
    ap.add_argument("--dead-time", type=float, default=1.0, help="command -> effect delay (s)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--markdown", action="store_true", help="also print the tables as markdown")
    args = ap.parse_args()
    names = args.scenario or list_scenarios()
    start, dur = (10 * 3600.0, 4 * 3600.0) if args.quick else (0.0, DAY)
    d = args.dead_time
    jobs = [
        Job(n, kind, method, start, dur, d)
        for n in names
        for kind, method in (
            ("ours", EssMethod.MODE3),
            ("baseline", EssMethod.MODE3),
            ("ours", EssMethod.HUB4_OVERRIDE),
            ("baseline", EssMethod.HUB4_OVERRIDE),
            ("oracle", EssMethod.MODE3),
        )
    ]
    t0 = time.perf_counter()
    print(f"venus-ems control benchmark — {' '.join(sys.argv[1:]) or '(full days)'}")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; dead time {d:g} s, meter 1 Hz (noise 5 W, 1 W "
        f"steps), zero export aim {AIM:g} W, baseline P every {BASELINE_PERIOD_S:g} s"
    )
    with Pool(args.jobs) as pool:
        results = pool.map(run_job, jobs)
    md: list[str] = []
    for n in names:
        rs = [r for r in results if r["scenario"] == n]
        span = "whole day" if not args.quick else "10:00-14:00"
        print(f"\n== {n} ({span})")
        print(HEADER)
        print(UNITS)
        for r in rs:
            print(row(r))
        by = {(r["kind"], r["method"]): r for r in rs}
        oracle = by[("oracle", "mode3")]
        for method in ("mode3", "hub4_override"):
            ours, base = by[("ours", method)], by[("baseline", method)]
            print(
                f"  {method}: export ours/baseline {ratio(ours['export_wh'], base['export_wh'])}"
                f" (target <= 0.25), ours/oracle {ratio(ours['export_wh'], oracle['export_wh'])}"
                f" (target <= 2); avoidable import ours/baseline "
                f"{ratio(ours['avoidable_wh'], base['avoidable_wh'])}"
            )
        md.append(f"\n**{n}** ({span})\n")
        md.append(
            "| controller | export Wh | import Wh | avoidable import Wh | mean abs(grid - aim) W "
            "| s outside ±50 W | settle mean / p90 s (events) | commands | limits Wh |"
        )
        md.append("|---|---|---|---|---|---|---|---|---|")
        md.extend(md_row(r) for r in rs)
    for line in (*constant_load(d), *step_table(d), *limiter_section(args.quick, d)):
        print(line)
    cpu = sum(float(r["cpu_s"]) for r in results)
    wall = time.perf_counter() - t0
    print(f"\nwall {wall:.0f} s, scenario runs {cpu:.0f} CPU s on {args.jobs} jobs")
    if args.markdown:
        print("\n".join(md))


if __name__ == "__main__":
    main()

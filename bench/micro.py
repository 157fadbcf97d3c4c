"""Micro-inverter benchmark: our core against seed B, an OnBattery-style limiter, a look-ahead.

Usage: python bench/micro.py [--quick] [--jobs N] [--markdown] [--no-daemon]

Whole days of real household load (UCI, 1-min data made 1 s) on the simulated physics, stepped
at 1 s, with 1, 2 and 3 battery-fed Hoymiles of mixed dead times (HM-800 5 s; HM-600 3 s +
HM-1500 18 s; all three), the Multi passing the grid through, a battery big enough that no
controller ever reaches a stop threshold, no total cap. Every controller sees what the daemon
would (bench/micro_harness.py: the meter view at 1 Hz with noise, a DTU polling each inverter
every 5 s, commands acknowledged after ~3 s and acting after each inverter's dead time):

* ours: :func:`venus_ems.control.micro.decide` with the ``[micro_inverter_control]`` defaults;
* seed B: hkaest/dbus-opendtu-DC-load's loop (4 s, 3:1 moving average on rising load, one
  inverter changed per loop), bench/micro_refs.py;
* OnBattery-style: OpenDTU-OnBattery's Dynamic Power Limiter as documented (waits for fresh
  inverter data and a newer meter sample, one inverter per step);
* look-ahead: knows the load and each inverter's dead time in advance (a reference for what the
  reaction delay costs; see micro_refs.py for what it does and does not bound).

KPIs (true grid power, + = import): export Wh; import Wh; *coverable import* Wh: import above
the 25 W aim the inverters had room for at that second; limit commands (per hour); reversals
of the commanded total at constant load. Then the targets of issue 12, and (unless
``--no-daemon``) the daemon's CPU with 3 inverters at 1 Hz (bench/micro_daemon.py).
``--quick`` runs 16:00-22:00 instead of whole days.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from control_harness import drive

from micro_harness import MicroKpis, OursController
from micro_refs import LookAhead, OnBatteryStyle, SeedB
from venus_ems.control.micro_model import MicroSettings
from venus_ems.devices.opendtu.parse import inverter_family
from venus_ems.features.micro_inputs import core_settings
from venus_ems.features.micro_inverter import tunables_for
from venus_ems.runtime.config import MicroInverterControlConfig
from venus_ems.sim.physics import AC_IN, BatteryParams
from venus_ems.sim.scenarios import Scenario, ScenarioDriver, get_scenario, hoymiles

AIM_W = 25.0
DAY = 86400.0
DAYS = {
    "March": "load_uci_2009-03-18.csv",
    "June": "load_uci_2007-06-25.csv",
    "February": "load_uci_2009-02-12.csv",
}
HM600 = hoymiles("HM-600", "114184020001", position=AC_IN)
HM1500 = hoymiles("HM-1500", "116184020002", position=AC_IN)
HM800 = hoymiles("HM-800", "114184020003", position=AC_IN)
CONFIGS = {1: (HM800,), 2: (HM600, HM1500), 3: (HM600, HM800, HM1500)}
KINDS = ("ours", "seed B", "OnBattery-style", "look-ahead")


def scenario(day: str, n: int) -> Scenario:
    """The day's load on the micro-inverters site with ``n`` inverters and a large battery."""
    base = get_scenario("micro-inverters")
    site = replace(
        base.site,
        micro_inverters=CONFIGS[n],
        battery=BatteryParams(capacity_ah=1000.0, initial_soc=80.0),
    )
    return replace(base, name=f"micro-{day}-{n}", load_file=DAYS[day], site=site)


def feature_settings(sc: Scenario) -> MicroSettings:
    """Exactly what ``[micro_inverter_control]`` runs with by default (no total cap here)."""
    invs = [{"serial": m.serial} for m in sc.site.micro_inverters]
    config = MicroInverterControlConfig(inverters=invs, total_cap_w=None)  # type: ignore[arg-type]
    values = {t.name: t.default for t in tunables_for(config)}
    plates = {m.serial: m.max_power_w for m in sc.site.micro_inverters}
    models = {m.serial: inverter_family(m.serial)[0] for m in sc.site.micro_inverters}
    return core_settings(config, values, plates, models)


@dataclass(frozen=True)
class Job:
    day: str
    n: int
    kind: str
    start_s: float
    duration_s: float


def controller(job: Job, sc: Scenario):
    if job.kind == "ours":
        return OursController("ours", feature_settings(sc))
    if job.kind == "seed B":
        return SeedB()
    if job.kind == "OnBattery-style":
        return OnBatteryStyle()
    return LookAhead(sc)


def run_job(job: Job) -> dict[str, float | str | int]:
    sc = scenario(job.day, job.n)
    driver = ScenarioDriver(sc)
    while driver.site.time + 1 <= job.start_s:
        driver.step(1.0)
    ctl = controller(job, sc)
    kpis = MicroKpis(AIM_W, sum(m.max_power_w for m in sc.site.micro_inverters))
    t0 = time.process_time()
    drive(driver.site, driver.step, ctl, [kpis], round(job.duration_s), 1.0)
    commands = sum(m.commands for m in driver.site.micros.values())
    return {
        "day": job.day,
        "n": job.n,
        "kind": job.kind,
        "export": kpis.export_wh,
        "import": kpis.import_wh,
        "coverable": kpis.coverable_wh,
        "micro": kpis.micro_wh,
        "commands": commands,
        "per_h": commands / (job.duration_s / 3600.0),
        "cpu": time.process_time() - t0,
    }


# --------------------------------------------------------------------------- constant load


def constant_load(n: int, kind: str, load_w: float = 700.0, seconds: int = 900) -> tuple[int, int]:
    """(commands after the first 120 s, reversals of the commanded total) at a constant load."""
    sc = scenario("March", n)
    driver = ScenarioDriver(sc)
    site = driver.site
    job = Job("March", n, kind, 0.0, seconds)
    ctl = controller(job, sc)
    history: list[tuple[float, float]] = []

    def advance(dt: float) -> None:
        site.set_inputs([load_w], pv_dc_w=0.0)
        site.step(dt)
        total = sum(m.limit_w for m in site.micros.values())
        if not history or history[-1][1] != total:
            history.append((site.time, total))

    drive(site, advance, ctl, [], seconds, 1.0)
    late = [(t, w) for t, w in history if t > 120]
    deltas = [b - a for (_, a), (_, b) in itertools.pairwise(late)]
    reversals = sum(1 for a, b in itertools.pairwise(deltas) if a * b < 0)
    return len(late), reversals


# --------------------------------------------------------------------------- output


HEADER = f"{'controller':<17}{'export':>8}{'import':>9}{'coverable':>10}{'commands':>9}{'per h':>7}"
UNITS = f"{'':<17}{'Wh':>8}{'Wh':>9}{'import Wh':>10}{'':>9}{'':>7}"


def row(r: dict) -> str:
    return (
        f"{r['kind']!s:<17}{r['export']:>8.1f}{r['import']:>9.1f}{r['coverable']:>10.1f}"
        f"{r['commands']:>10}{r['per_h']:>8.1f}"
    )


def md_row(r: dict) -> str:
    return (
        f"| {r['kind']} | {r['export']:.1f} | {r['import']:.1f} | {r['coverable']:.1f} "
        f"| {r['commands']} | {r['per_h']:.1f} |"
    )


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (0.0 if a <= 0 else float("inf"))


def targets(results: list[dict]) -> list[str]:
    """Issue 12's targets per day and inverter count."""
    out = [
        "",
        "Targets (ours vs seed B and the look-ahead, per day and number of inverters):",
        f"{'day / inverters':<16}{'coverable':>11}{'export':>16}{'vs look-ahead':>15}"
        f"{'commands/h':>14}",
        f"{'':<16}{'<= 50 % B':>11}{'<= B':>16}{'<= 1.5x':>15}{'<= 50 % B':>14}",
    ]
    met = {"import": 0, "export": 0, "bound": 0, "commands": 0}
    cases = 0
    for (day, n), rows in itertools.groupby(results, key=lambda r: (r["day"], r["n"])):
        by = {r["kind"]: r for r in rows}
        ours, seed, look = by["ours"], by["seed B"], by["look-ahead"]
        cases += 1
        imp = ratio(ours["coverable"], seed["coverable"])
        exp_ok = ours["export"] <= seed["export"]
        bound = ratio(ours["export"], look["export"])
        cmd = ratio(ours["per_h"], seed["per_h"])
        met["import"] += imp <= 0.5 and exp_ok
        met["export"] += exp_ok
        met["bound"] += bound <= 1.5
        met["commands"] += cmd <= 0.5
        out.append(
            f"{day + ' / ' + str(n):<16}{imp:>10.0%} "
            f"{ours['export']:>6.0f}/{seed['export']:<6.0f}Wh {bound:>12.1f}x {cmd:>12.0%}"
        )
    out.append(
        f"met in {met['import']}/{cases} (import at no more export), {met['export']}/{cases} "
        f"(export <= seed B), {met['bound']}/{cases} (export <= 1.5x look-ahead), "
        f"{met['commands']}/{cases} (commands)"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="16:00-22:00 instead of whole days")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--no-daemon", action="store_true", help="skip the daemon CPU measurement")
    ap.add_argument("--days", nargs="*", default=list(DAYS))
    a = ap.parse_args()
    start, duration = (16 * 3600.0, 6 * 3600.0) if a.quick else (0.0, DAY)
    jobs = [
        Job(day, n, kind, start, duration)
        for day in a.days
        for n in sorted(CONFIGS)
        for kind in KINDS
    ]
    print(
        f"# bench/micro.py on {platform.node()} ({platform.processor() or platform.machine()}), "
        f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}; "
        f"{'16:00-22:00' if a.quick else 'whole days'}, {len(jobs)} runs on {a.jobs} processes"
    )
    t0 = time.monotonic()
    with Pool(a.jobs) as pool:
        results = pool.map(run_job, jobs)
    cpu = sum(float(r["cpu"]) for r in results)
    for (day, n), rows in itertools.groupby(results, key=lambda r: (r["day"], r["n"])):
        names = " + ".join(m.name for m in CONFIGS[n])
        if a.markdown:
            print(f"\n**{day}, {names}**\n")
            print("| controller | export Wh | import Wh | coverable import Wh | commands | per h |")
            print("|---|---|---|---|---|---|")
            print("\n".join(md_row(r) for r in rows))
        else:
            print(f"\n{day}, {names}:")
            print(HEADER)
            print(UNITS)
            print("\n".join(row(r) for r in rows))
    print("\n".join(targets(results)))
    print("\nConstant load 700 W, 900 s (counted after 120 s): commands, reversals")
    constant = {
        (n, kind): constant_load(n, kind)
        for n in sorted(CONFIGS)
        for kind in ("ours", "seed B", "OnBattery-style")
    }
    for (n, kind), (count, rev) in constant.items():
        print(f"  {n} inverter(s) {kind:<16} {count:>4} commands {rev:>4} reversals")
    ours_rev = sum(rev for (_, kind), (_, rev) in constant.items() if kind == "ours")
    print(f"target: zero reversals at constant load -> {'met' if ours_rev == 0 else 'NOT met'}")
    print(f"\ncontrol runs: {time.monotonic() - t0:.0f} s wall, {cpu:.0f} CPU s")
    if not a.no_daemon:
        from micro_daemon import report, run  # noqa: PLC0415

        print("\nDaemon CPU (bench/micro_daemon.py, 60 s after 15 s warm-up):")
        print("\n".join(report(run(60.0, 15.0))))


if __name__ == "__main__":
    main()

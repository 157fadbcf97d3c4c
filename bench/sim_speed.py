"""How fast the site model runs: simulated seconds per CPU second for a full day at dt = 1 s.

Usage: python bench/sim_speed.py [--dt 1.0] [--scenario NAME ...]

For each scenario it prints CPU seconds for one simulated day, simulated s per CPU s, that
speed as a multiple of real time, and µs per step. The baseline row runs the same day with the
same input feed but without stepping the physics, so the physics' own cost is the difference.
"""

from __future__ import annotations

import argparse
import time

from venus_ems.sim.scenarios import ScenarioDriver, get_scenario, list_scenarios

DAY = 86400.0


def run(name: str, dt: float, physics: bool) -> float:
    sc = get_scenario(name)
    sc.series()  # build (and cache) the 1-s inputs outside the timed part
    driver = ScenarioDriver(sc)
    steps = round(DAY / dt)
    site = driver.site
    t0 = time.process_time()
    if physics:
        for _ in range(steps):
            driver.step(dt)
    else:
        for _ in range(steps):
            driver.feed()
            site.time += dt
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dt", type=float, default=1.0)
    ap.add_argument("--scenario", action="append", choices=list_scenarios())
    args = ap.parse_args()
    names = args.scenario or list_scenarios()
    print(f"one simulated day at dt = {args.dt} s ({round(DAY / args.dt)} steps)")
    print(f"{'scenario':<20}{'CPU s':>8}{'sim s/CPU s':>14}{'x real time':>13}{'us/step':>9}")
    for name in names:
        base = run(name, args.dt, physics=False)
        cpu = run(name, args.dt, physics=True)
        steps = DAY / args.dt
        print(f"{name:<20}{cpu:>8.2f}{DAY / cpu:>14.0f}{DAY / cpu:>13.0f}{cpu / steps * 1e6:>9.1f}")
        print(f"{'  baseline (feed)':<20}{base:>8.2f}{'':>14}{'':>13}{base / steps * 1e6:>9.1f}")
        own = cpu - base
        print(f"{'  physics only':<20}{own:>8.2f}{'':>14}{'':>13}{own / steps * 1e6:>9.1f}")


if __name__ == "__main__":
    main()

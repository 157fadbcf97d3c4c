"""How long ``venus-ems sim --report`` takes for a whole day, beside the physics alone.

Usage: python bench/report_speed.py [--scenario NAME ...] [--config FILE]

Per scenario, in one run: the physics stepped through the day with its inputs and nothing else
(the floor: what any stepped report costs), then the whole report (the ESS feature's core at
its defaults, recorder, KPIs, HTML with SVG) as the CLI makes it; wall and CPU seconds and the
ratio. Then ``--compare`` of two configurations (two processes). The issue's budget: a whole-day
report in under 30 s wall on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from venus_ems.runtime.config import parse_config
from venus_ems.sim.report import make_report
from venus_ems.sim.scenarios import ScenarioDriver, get_scenario, list_scenarios

DAY = 86400
ESS = "schema_version = 1\n[ess_control]\nenabled = true\n"
CAP = ESS + 'grid_target = "export_cap"\nexport_cap_w = 800.0\ntarget_w = -800.0\n'


def physics_only(name: str) -> tuple[float, float]:
    get_scenario(name).series()  # inputs built and cached outside the timed part, as below
    driver = ScenarioDriver(name)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(DAY):
        driver.step(1.0)
    return time.perf_counter() - w0, time.process_time() - c0


def report(name: str, configs: list, out: str) -> tuple[float, float, int]:
    get_scenario(name).series()
    w0, c0 = time.perf_counter(), time.process_time()
    page = make_report(name, configs, out)
    return time.perf_counter() - w0, time.process_time() - c0, page.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append", choices=list_scenarios())
    ap.add_argument("--config", help="config for the single report (default: ess_control on)")
    args = ap.parse_args()
    text = Path(args.config).read_text() if args.config else ESS
    ess = parse_config(text)[0]
    cap = parse_config(CAP)[0]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'scenario':<20}{'physics s':>10}{'report s':>10}{'CPU s':>8}{'ratio':>7}{'HTML KB':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenario or list_scenarios():
            base_wall, _ = physics_only(name)
            wall, cpu, size = report(name, [("ess_control", ess, "config")], tmp)
            print(
                f"{name:<20}{base_wall:>10.1f}{wall:>10.1f}{cpu:>8.1f}"
                f"{wall / base_wall:>7.2f}{size / 1024:>9.0f}"
            )
        name = (args.scenario or ["summer-sunny"])[0]
        wall, cpu, size = report(name, [("A", ess, "a"), ("B", cap, "b")], tmp)
        print(
            f"--compare on {name}: {wall:.1f} s wall ({cpu:.1f} CPU s in this process), "
            f"{size / 1024:.0f} KB"
        )


if __name__ == "__main__":
    main()

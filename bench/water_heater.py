"""Water heater benchmark: our core against dbus_water_heater (seed C) and its successor.

Usage: python bench/water_heater.py [--scenario NAME ...] [--markdown]

Whole days (1 s steps) of real household load and PV (the simulator's scenarios, PV taken as AC
at 96 % for DC PV) with a 200 l tank heated by a 3.5 kW rod in 500 W steps, drawn off by the EU
tapping cycle "M" (sim/physics/tank.py), starting at 45 °C at midnight. No battery: what the rod
does not take is exported, so "from surplus" is exact: the rod's power minus the grid import it
causes each second (min(rod, import)). Every controller sees the true grid power once a second
and the tank temperature; its step acts one second later, the seed's two seconds later (it
writes the heartbeat before the coils, so the firmware latches the previous pattern first:
seeds-small.md C.4). All heat to 60 °C:

* ours: :func:`venus_ems.control.water_heater.decide` with the ``[water_heater]`` defaults;
* seed C (dbus_water_heater as implemented, C.4): step = the surplus seen at the grid meter
  (its own draw not added back) floored to 500 W, every second, no switch interval, off at or
  above the target with no hysteresis;
* successor (dbus-pvboiler, C.5): (export - 200 W) + its own power, a decrease at once, an
  increase of up to 500 W after 6 s since the last switch, more after 60 s;
* ours + daily 60 °C: ours with the daily minimum (``daily_min_c = 60``, 17:00-20:00): what
  the legionella guard costs in grid energy on a day without enough sun (winter).

KPIs: rod kWh, the share from surplus, kWh from the grid, switchings (SSR pattern changes) per
day, tank minimum and maximum °C, hot water not delivered (kWh). Then the targets of issue 14.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from venus_ems.control.water_heater import (
    HeaterInputs,
    HeaterSettings,
    HeaterState,
    decide,
    step_at_most,
)
from venus_ems.runtime.config.water_heater import WaterHeaterConfig
from venus_ems.sim.physics import Tank, TankParams
from venus_ems.sim.scenarios import get_scenario

STEPS = tuple(500.0 * i for i in range(8))
TARGET_C = 60.0
DAY = 86400

Controller = Callable[[int, float, float, float], float]
"""(second, grid W + import, rod W now, tank °C) -> step W."""


def ours(guard_c: float | None = None) -> tuple[Controller, int]:
    """Our core with the configuration defaults; returns the controller and a lag of 1 s."""
    cfg = WaterHeaterConfig()
    s = HeaterSettings(
        levels_w=STEPS,
        margin_w=cfg.margin_w,
        up_delay_s=cfg.up_delay_s,
        down_delay_s=cfg.down_delay_s,
        min_switch_interval_s=cfg.min_switch_interval_s,
        settle_s=cfg.settle_s,
        target_c=TARGET_C,
        hysteresis_k=cfg.hysteresis_k,
        max_c=cfg.max_c,
        guard_c=guard_c,
    )
    state = HeaterState()

    def step(t: int, grid: float, rod: float, temp: float) -> float:
        nonlocal state
        inp = HeaterInputs(
            "auto", temp, grid_w=grid, grid_at=float(t), draw_w=rod, time_of_day_s=float(t)
        )
        d = decide(inp, state, s, float(t))
        state = d.next_state
        return d.level_w

    return step, 1


def seed() -> tuple[Controller, int]:
    """dbus_water_heater's loop as implemented (seeds-small.md C.4)."""

    def step(_t: int, grid: float, _rod: float, temp: float) -> float:
        if temp >= TARGET_C:
            return 0.0
        surplus = -grid
        return min(max(math.floor(surplus / 500.0) * 500.0, 0.0), 3500.0)

    return step, 2


def successor() -> tuple[Controller, int]:
    """dbus-pvboiler's rate-limited law (seeds-small.md C.5)."""
    last_switch = -1e9
    level = 0.0

    def step(t: int, grid: float, rod: float, temp: float) -> float:
        nonlocal last_switch, level
        target = step_at_most(STEPS, -grid - 200.0 + rod)
        if (
            target < level
            or (target - level <= 500.0 and t - last_switch >= 6)
            or (target > level and t - last_switch >= 60)
        ):
            new = target
        else:
            new = level
        if temp >= TARGET_C:
            new = 0.0
        if new != level:
            level, last_switch = new, t
        return level

    return step, 1


@dataclass
class Result:
    name: str
    rod_kwh: float = 0.0
    grid_kwh: float = 0.0
    switches: int = 0
    t_min: float = math.inf
    t_max: float = -math.inf
    unmet_kwh: float = 0.0

    @property
    def surplus_share(self) -> float:
        return 1.0 - self.grid_kwh / self.rod_kwh if self.rod_kwh else 1.0


def run_day(scenario: str, name: str, make: Callable[[], tuple[Controller, int]]) -> Result:
    """One day of ``scenario`` with one controller."""
    series = get_scenario(scenario).series()
    load = [sum(p) for p in zip(*series.load_w, strict=True)]
    pv = [0.96 * d + a for d, a in zip(series.pv_dc_w, series.pv_ac_w, strict=True)]
    tank = Tank(TankParams(initial_c=45.0))
    control, lag = make()
    pending: list[float] = [0.0] * lag  # commands on their way to the SSRs
    res = Result(name)
    rod = 0.0
    patterns = 0.0
    for t in range(DAY):
        base = load[t] - pv[t]
        applied = pending.pop(0)
        if applied != patterns:
            res.switches += 1
            patterns = applied
        tank.set_elements([bool(int(applied) // 500 & b) for b in (1, 2, 4)])
        rod = tank.step(float(t), 1.0)
        grid = base + rod
        res.rod_kwh += rod / 3.6e6
        res.grid_kwh += min(rod, max(grid, 0.0)) / 3.6e6
        temp = tank.temperature_c
        res.t_min, res.t_max = min(res.t_min, temp), max(res.t_max, temp)
        pending.append(control(t, grid, rod, temp))
    res.unmet_kwh = tank.unmet_kwh
    return res


CONTROLLERS: dict[str, Callable[[], tuple[Controller, int]]] = {
    "ours": ours,
    "seed C": seed,
    "successor": successor,
    "ours + daily 60 °C": lambda: ours(guard_c=60.0),
}


def table(scenario: str, results: list[Result], markdown: bool) -> str:
    head = ("controller", "rod kWh", "from surplus", "grid kWh", "switch/day", "tank °C", "unmet")
    rows = [
        (
            r.name,
            f"{r.rod_kwh:.2f}",
            f"{100 * r.surplus_share:.1f} %",
            f"{r.grid_kwh:.3f}",
            str(r.switches),
            f"{r.t_min:.1f}-{r.t_max:.1f}",
            f"{r.unmet_kwh:.2f}",
        )
        for r in results
    ]
    if markdown:
        lines = [f"**{scenario}**", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([scenario, fmt.format(*head), *(fmt.format(*r) for r in rows)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append", help="default: summer-sunny, cloudy, winter")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    scenarios = args.scenario or ["summer-sunny", "cloudy-transients", "winter"]
    print(
        f"{datetime.now(timezone.utc).date()} {platform.node()} {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    verdicts = []
    for sc in scenarios:
        t0 = time.perf_counter()
        results = [run_day(sc, name, make) for name, make in CONTROLLERS.items()]
        print(table(sc, results, args.markdown))
        print(f"({time.perf_counter() - t0:.1f} s)\n")
        mine, base = results[0], results[1]
        ratio = mine.switches / base.switches if base.switches else math.inf
        print(f"{sc}: switchings ours/seed = {mine.switches}/{base.switches} = {ratio:.4f}")
        if sc == "summer-sunny":
            verdicts.append(("from surplus >= 95 %", mine.surplus_share >= 0.95))
        verdicts.append((f"{sc}: switchings <= 1/20 of the seed's", ratio <= 0.05))
        hottest = max(r.t_max for r in (results[0], results[3]))
        verdicts.append((f"{sc}: ours never above max_c 75 °C", hottest < 75.0))
    print()
    for what, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")


if __name__ == "__main__":
    main()

"""The control benchmark harness: delay line, KPIs, and the cores' step responses on the
simulated physics (time-series tables), constant-load steadiness, baseline and oracle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

import control
from venus_ems.control import EssMethod
from venus_ems.sim.physics import Site
from venus_ems.sim.scenarios import get_scenario
from venus_ems.sim.stepped import (
    Delayed,
    DelayLine,
    FloorLatch,
    GridKpis,
    LimiterKpis,
    Run,
    conversion_window,
    drive,
    run,
)

AIM = control.AIM
STEPS = [
    (0.0, [600.0, 500.0, 700.0]),
    (60.0, [1100.0, 1000.0, 1200.0]),
    (120.0, [600.0, 500.0, 700.0]),
]


def response(kind: str, method: EssMethod) -> dict[float, float]:
    _, grid = control.synthetic(kind, method, STEPS, 180, dead_time_s=1.0)
    return dict(grid)


# (t s, lowest W, highest W): +1500 W on AC-out at 60 s, -1500 W at 120 s; aim 25 W
MODE3_TABLE = [
    (60, -30, 80),
    (61, 700, 850),  # the Multi keeps its AC-in at the setpoint: only its lag shows
    (63, 150, 300),
    (66, -30, 80),
    (90, -30, 80),
    (121, -850, -700),
    (123, -250, -100),
    (126, -60, 60),
    (150, -30, 80),
]
OVERRIDE_TABLE = [
    (60, -30, 80),
    (61, 1450, 1600),  # hub4control sees the step at the next meter sample
    (63, 300, 500),
    (67, -30, 120),
    (90, -30, 80),
    (121, -1600, -1450),
    (123, -500, -300),
    (127, -120, 30),
    (150, -30, 80),
]


@pytest.mark.parametrize(
    ("method", "table"), [(EssMethod.MODE3, MODE3_TABLE), (EssMethod.HUB4_OVERRIDE, OVERRIDE_TABLE)]
)
def test_step_response_of_our_core(method, table):
    grid = response("ours", method)
    for t, lo, hi in table:
        assert lo <= grid[float(t)] <= hi, (t, grid[float(t)])
    # settled in the band until the next step, no overshoot into export on the rise
    assert all(-30 <= grid[float(t)] <= 90 for t in range(70, 120))
    assert min(grid[float(t)] for t in range(60, 120)) > -40


def test_the_oracle_is_no_worse_than_our_core_after_a_step():
    ours, oracle = response("ours", EssMethod.MODE3), response("oracle", EssMethod.MODE3)
    err = {
        n: sum(abs(g[float(t)] - AIM) for t in range(60, 180))
        for n, g in (("o", ours), ("x", oracle))
    }
    assert err["x"] <= err["o"] * 1.05


def test_constant_load_zero_oscillation():
    lines = control.constant_load(1.0)
    rows = {line[:20].strip(): line[20:].split() for line in lines[3:]}
    for name in ("ours (mode 3)", "ours (override)"):
        commands, reversals, p2p, _ = rows[name]
        assert int(commands) <= 2, rows[name]
        assert int(reversals) == 0, rows[name]
        assert float(p2p) < 60, rows[name]
    # the naive baseline keeps moving at constant load: the check can fail
    assert int(rows["baseline (mode 3)"][1]) > 20


def test_delay_line_applies_writes_once_due():
    site = Site(get_scenario("winter").site)
    line = DelayLine()
    line.send(0.0, Delayed(2.0, lambda s: s.set_hub4_setpoint_override(-300.0)))
    line.send(0.0, Delayed(1.0, lambda s: s.set_hub4_setpoint_override(100.0)))
    seen = []
    for _ in range(3):
        line.deliver(site)
        seen.append(site.ess.overrides.setpoint_w)
        site.step(1.0)
    assert seen == [None, 100.0, -300.0]
    assert line.sent == 2


class Export500:
    """Holds the grid at -500 W through the hub4 override (ESS mode 1 does the rest)."""

    name = "export"
    every_step = False

    def setup(self, site: Site) -> None:
        site.set_hub4_setpoint_override(-500.0)

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        return []


def test_kpis_count_energy_and_time_outside_the_band():
    site = Site(get_scenario("winter").site)
    site.battery.set_soc(80.0)
    k = GridKpis(aim_w=0.0)

    def advance(dt: float) -> None:
        site.set_inputs([800.0], pv_dc_w=0.0)
        site.step(dt)

    drive(site, advance, Export500(), [k], 600, 1.0)
    assert k.export_wh == pytest.approx(500 * 600 / 3600, rel=0.05)
    assert k.import_wh < 1.0
    assert k.reachable_s == pytest.approx(600, abs=1)  # it could have stopped exporting
    assert k.outside_band_s >= 590
    assert k.mean_abs_error_w == pytest.approx(500, rel=0.05)
    assert k.below_floor_wh == 0.0


def test_conversion_window_respects_the_floor_and_dvcc():
    site = Site(get_scenario("winter").site)
    site.battery.set_soc(50.0)
    lo, hi = conversion_window(site, FloorLatch().update(site))
    assert -4000.0 <= lo < -3000.0  # the inverter rating binds first
    assert 0 < hi <= 3600.0
    site.battery.set_soc(site.ess.active_soc_limit())
    lo, _ = conversion_window(site, FloorLatch().update(site))
    assert lo == 0.0  # at the floor: no discharge (no DC PV at this hour)


def test_a_scenario_slice_with_the_limiter_kpis():
    phases = get_scenario("ev-charging").site.multi.phases
    ess = control.CoreController(
        "ours", control.core_settings(EssMethod.HUB4_OVERRIDE, phases), 1.0
    )
    k = LimiterKpis(5000.0, 500.0)
    site = run(Run("ev-charging", 10.5 * 3600, 60), ess, [k])
    assert site.time == pytest.approx(10.5 * 3600 + 60)
    assert k.max_output_w > 7000  # no limiter: the car is carried by the Multi
    assert k.longest_over_step_s >= 50

"""Closed-loop properties of the grid target against the tiny plant (dead time, lag, noise).

* steady state never exports more than the cap (up to the meter noise the core cannot see);
* a constant load settles with a bounded number of commands and then stays quiet;
* in mode 3 (the Multi does exactly what it is told) the battery never goes beyond DCL,
  CCL or the SoC floor because of a command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from control_plant import Plant, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venus_ems.control import (
    ActuationState,
    ActuatorSettings,
    EssMethod,
    GridControlSettings,
    GridTargetSettings,
)
from venus_ems.control.grid_target import decide

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    method: EssMethod
    phases: int
    cap_w: float
    target_w: float
    dead_band_w: float
    noise_w: float
    plant_dead_s: float
    tau_s: float
    acin_load_w: tuple[float, ...]
    out_load_w: tuple[float, ...]
    later_acin_w: tuple[float, ...]

    def plant(self) -> Plant:
        return Plant(
            method=self.method,
            phases=self.phases,
            dead_time_s=self.plant_dead_s,
            tau_s=self.tau_s,
            noise_w=self.noise_w,
            acin_load_w=list(self.acin_load_w),
            out_load_w=list(self.out_load_w),
            ccl_a=200.0,
            dcl_a=200.0,
        )

    def settings(self) -> GridControlSettings:
        kind = "zero_export" if self.cap_w == 0 else "export_cap"
        target = max(self.target_w, -self.cap_w)
        if kind == "zero_export":
            target = max(target, 0.0)
        return GridControlSettings(
            ActuatorSettings(
                method=self.method,
                phases=self.phases,
                # the core's dead time covers the plant's dead time and its lag (4 tau: 98 %)
                dead_time_s=self.plant_dead_s + 4 * self.tau_s,
                meter_interval_s=1.0,
                tracking_tolerance_w=150.0,
            ),
            GridTargetSettings(
                kind=kind,  # type: ignore[arg-type]
                cap_w=None if kind == "zero_export" else self.cap_w,
                target_w=target,
                dead_band_w=self.dead_band_w,
            ),
        )


@st.composite
def cases(draw: st.DrawFn, method: EssMethod | None = None) -> Case:
    method = method or draw(st.sampled_from(list(EssMethod)))
    phases = draw(st.sampled_from([1, 3]))
    dead_band = draw(st.floats(15, 80))
    loads = st.tuples(*[st.floats(-1800, 1800)] * phases)
    return Case(
        method=method,
        phases=phases,
        cap_w=draw(st.sampled_from([0.0, 0.0, 300.0, 800.0, 2500.0])),
        target_w=draw(st.floats(-500, 300)),
        dead_band_w=dead_band,
        # the meter noise stays inside half the dead band (the documented assumption)
        noise_w=draw(st.floats(0, dead_band / 2 - 5)),
        plant_dead_s=draw(st.floats(0, 3)),
        tau_s=draw(st.floats(0.1, 1.5)),
        acin_load_w=draw(loads),
        out_load_w=draw(st.tuples(*[st.floats(0, 500)] * phases)),
        later_acin_w=draw(loads),
    )


def _run(case: Case, seconds: float, change_at: float | None = None):
    plant = case.plant()

    def on_step(p: Plant) -> None:
        if change_at is not None and abs(p.t - change_at) < 1e-9:
            p.acin_load_w = list(case.later_acin_w)

    _, decisions = run(plant, decide, ActuationState(), case.settings(), seconds, on_step=on_step)
    return plant, decisions


@FAST
@given(cases())
def test_steady_state_never_exports_beyond_the_cap(case: Case) -> None:
    plant, _ = _run(case, 160.0, change_at=60.0)
    settled = [g for t, g in plant.grid_log if t >= 130.0]
    floor = -case.cap_w
    worst = min(settled)
    # the core sees the grid only through the noisy meter: allow the noise and rounding
    assert worst >= floor - case.noise_w - 2 * case.phases, (worst, floor, case)


@FAST
@given(cases())
def test_constant_load_settles_with_a_bounded_number_of_commands(case: Case) -> None:
    plant, _ = _run(case, 200.0)
    target = case.settings().target
    initial_error = abs(sum(case.acin_load_w) + sum(case.out_load_w) - target.target_w)
    step = target.max_increase_w or math.inf
    bound = math.ceil(initial_error / step) + 4
    assert len(plant.commands) <= bound, (len(plant.commands), bound, plant.commands)
    late = [t for t, _ in plant.commands if t > 100.0]
    assert late == [], plant.commands


@st.composite
def limited_cases(draw: st.DrawFn) -> tuple[Case, float, float, float]:
    case = draw(cases(method=EssMethod.MODE3))
    return case, draw(st.floats(0, 40)), draw(st.floats(0, 40)), draw(st.floats(0, 3000))


@FAST
@given(limited_cases(), st.booleans())
def test_mode3_commands_never_push_the_battery_beyond_its_limits(
    limited: tuple[Case, float, float, float], at_floor: bool
) -> None:
    case, dcl_a, ccl_a, dc_pv_w = limited
    plant = case.plant()
    plant.dcl_a, plant.ccl_a, plant.dc_pv_w = dcl_a, ccl_a, dc_pv_w
    if at_floor:
        plant.soc_pct = plant.soc_floor_pct - 0.5
    dis = 0.0 if at_floor else dcl_a * plant.voltage_v
    chg = ccl_a * plant.voltage_v
    start = plant.battery_w  # DC PV alone may already exceed CCL: the core must not add to it
    run(plant, decide, ActuationState(), case.settings(), 90.0)
    tol = 2.0 * case.phases + 1.0
    for _, p in plant.battery_log:
        assert p >= min(-dis, start) - tol, (p, -dis, case)
        assert p <= max(chg, start) + tol, (p, chg, case)

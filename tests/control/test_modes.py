"""ESS modes: inverter power, battery current, SoC target with hysteresis, run-time switching."""

from __future__ import annotations

from dataclasses import replace

import pytest
from control_plant import Plant, run

from venus_ems.control import (
    ActuatorSettings,
    BatterySample,
    EssInputs,
    EssMethod,
    EssMode,
    EssSettings,
    EssState,
    GridSample,
    MultiSample,
    SetGridSetpoint,
    SetPhaseSetpoints,
    SocPhase,
    SocTargetSettings,
)
from venus_ems.control.modes import decide

ACT3 = ActuatorSettings(method=EssMethod.MODE3, dead_time_s=2.0, meter_interval_s=1.0)
OVR = ActuatorSettings(method=EssMethod.HUB4_OVERRIDE, dead_time_s=2.0, meter_interval_s=1.0)


def readings(
    t: float,
    *,
    grid: float = 0.0,
    acin: float = 0.0,
    out: float = 0.0,
    battery_w: float | None = None,
    soc: float = 50.0,
    ccl_a: float = 100.0,
) -> EssInputs:
    return EssInputs(
        grid=GridSample((grid,), t),
        battery=BatterySample(
            measured_at=t,
            soc_pct=soc,
            voltage_v=50.0,
            power_w=acin - out if battery_w is None else battery_w,
            ccl_a=ccl_a,
            dcl_a=100.0,
            allow_charge=True,
            allow_discharge=True,
            active_soc_limit_pct=10.0,
        ),
        multi=MultiSample(t, (acin,), (out,)),
    )


def total(cmds: tuple[object, ...]) -> float | None:
    if not cmds:
        return None
    (cmd,) = cmds
    assert isinstance(cmd, SetGridSetpoint | SetPhaseSetpoints)
    return cmd.total_w


def test_first_decision_enters_the_requested_mode() -> None:
    s = EssSettings(mode=EssMode.INVERTER_POWER, actuator=ACT3, inverter_power_w=0.0)
    d = decide(readings(0.0, acin=500, out=500), EssState(), s, 0.0)
    assert d.next_state.mode is EssMode.INVERTER_POWER
    assert d.next_state.mode_entered_at == 0.0
    assert "mode_changed" in d.codes()


def test_mode_switch_waits_for_the_minimum_interval() -> None:
    s = EssSettings(mode=EssMode.GRID_TARGET, actuator=ACT3, min_mode_interval_s=30.0)
    state = decide(readings(0.0, grid=25), EssState(), s, 0.0).next_state
    wanted = replace(s, mode=EssMode.BATTERY_CURRENT)
    d = decide(readings(10.0, grid=25), state, wanted, 10.0)
    assert d.next_state.mode is EssMode.GRID_TARGET
    assert "mode_pending" in d.codes()
    assert "switching to battery_current in 20 s" in d.text
    d = decide(readings(30.0, grid=25), d.next_state, wanted, 30.0)
    assert d.next_state.mode is EssMode.BATTERY_CURRENT
    assert d.next_state.mode_entered_at == 30.0
    assert "mode grid_target -> battery_current" in d.text


@pytest.mark.parametrize(
    ("act", "grid", "expect"),
    [
        # mode 3: AC-in = AC-out load - inverter power
        (ACT3, 800.0, -500.0),
        # override: hub4control shifts the grid by the change in conversion
        (OVR, 800.0, -200.0),
    ],
)
def test_inverter_power(act: ActuatorSettings, grid: float, expect: float) -> None:
    s = EssSettings(mode=EssMode.INVERTER_POWER, actuator=act, inverter_power_w=1000.0)
    d = decide(readings(0.0, grid=grid, acin=500, out=500), EssState(), s, 0.0)
    assert total(d.commands) == expect
    assert "inverter_power" in d.codes()
    # once reached, it holds (inside the power dead band)
    d2 = decide(readings(5.0, grid=grid - 1000, acin=-500, out=500), d.next_state, s, 5.0)
    assert d2.held
    assert "in_band" in d2.codes()


def test_battery_current_is_capped_by_ccl() -> None:
    s = EssSettings(mode=EssMode.BATTERY_CURRENT, actuator=ACT3, battery_current_a=20.0)
    d = decide(readings(0.0, acin=200, battery_w=200.0, ccl_a=10.0), EssState(), s, 0.0)
    # 20 A x 50 V = 1000 W wanted, CCL 10 A = 500 W: raise by at most 0.92 x 300 W
    assert total(d.commands) == 200 + 276
    assert {"battery_current", "ccl"} <= d.codes()


def test_battery_current_without_a_battery_reading_goes_safe() -> None:
    act = replace(ACT3, safe_setpoint_w=0.0)
    s = EssSettings(mode=EssMode.BATTERY_CURRENT, actuator=act, battery_current_a=20.0)
    inputs = replace(readings(0.0, acin=300), battery=None)
    d = decide(inputs, EssState(), s, 0.0)
    assert total(d.commands) == 0.0
    assert {"missing", "safe_setpoint"} <= d.codes()


SOC = EssSettings(
    mode=EssMode.SOC_TARGET,
    actuator=ACT3,
    soc_target=SocTargetSettings(
        target_pct=50.0, hysteresis_pct=2.0, charge_power_w=1000.0, discharge_power_w=800.0
    ),
)

# time, SoC, battery power before, expected command (AC-in, no AC-out load), phase after
SOC_TABLE = [
    (0.0, 40.0, 0.0, 1000.0, SocPhase.CHARGING),
    (5.0, 49.0, 1000.0, None, SocPhase.CHARGING),
    (10.0, 50.0, 1000.0, 0.0, SocPhase.IDLE),
    (15.0, 51.5, 0.0, None, SocPhase.IDLE),
    (20.0, 48.5, 0.0, None, SocPhase.IDLE),
    (25.0, 52.5, 0.0, -800.0, SocPhase.DISCHARGING),
    (30.0, 51.0, -800.0, None, SocPhase.DISCHARGING),
    (35.0, 50.0, -800.0, 0.0, SocPhase.IDLE),
    (40.0, 47.9, 0.0, 1000.0, SocPhase.CHARGING),
]


def test_soc_target_with_hysteresis() -> None:
    state = EssState()
    for t, soc, battery_w, expect, phase in SOC_TABLE:
        d = decide(readings(t, acin=battery_w, soc=soc), state, SOC, t)
        assert total(d.commands) == expect, (t, d.text)
        assert d.next_state.soc_phase is phase, (t, d.text)
        assert "soc_target" in d.codes()
        state = d.next_state


def test_switching_mode_resets_the_soc_cycle() -> None:
    state = decide(readings(0.0, soc=40.0), EssState(), SOC, 0.0).next_state
    assert state.soc_phase is SocPhase.CHARGING
    other = replace(SOC, mode=EssMode.GRID_TARGET, min_mode_interval_s=0.0)
    state = decide(readings(5.0, soc=40.0, grid=25), state, other, 5.0).next_state
    assert state.soc_phase is SocPhase.IDLE
    assert state.mode is EssMode.GRID_TARGET


@pytest.mark.parametrize("method", list(EssMethod))
def test_inverter_power_closed_loop_settles(method: EssMethod) -> None:
    plant = Plant(method=method, acin_load_w=[300.0], out_load_w=[700.0], noise_w=10.0)
    act = replace(ACT3, method=method, dead_time_s=3.0)
    s = EssSettings(mode=EssMode.INVERTER_POWER, actuator=act, inverter_power_w=1500.0)
    run(plant, decide, EssState(), s, 60.0)
    assert plant.conv_w[0] == pytest.approx(-1500.0, abs=s.power_dead_band_w + 15)
    assert len(plant.commands) <= 3

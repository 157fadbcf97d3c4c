"""Micro-inverter core, time-series tables: what it commands, second by second, and why."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from micro_plant import Plant

from venus_ems.control import BatterySample, GridSample
from venus_ems.control.commands import SetInverterLimit
from venus_ems.control.micro import decide
from venus_ems.control.micro_battery import BatteryRules
from venus_ems.control.micro_model import (
    InverterSample,
    InverterSettings,
    InverterState,
    MicroInputs,
    MicroSettings,
    MicroState,
)
from venus_ems.control.reasons import ReasonCode

FAST, SLOW = "114100000001", "116100000002"
HM600 = InverterSettings(FAST, max_power_w=600.0, dead_time_s=4.0, learn_dead_time=False)
HM1500 = InverterSettings(SLOW, max_power_w=1500.0, dead_time_s=19.0, learn_dead_time=False)


def settings(*invs: InverterSettings, **kw) -> MicroSettings:
    kw.setdefault("total_cap_w", None)
    kw.setdefault("up_delay_s", 2.0)
    return MicroSettings(inverters=invs or (HM600,), **kw)


def codes(decision) -> set[ReasonCode]:
    return {r.code for r in decision.reasons}


def limits(decision) -> dict[str, float]:
    return {c.serial: c.w for c in decision.commands if isinstance(c, SetInverterLimit)}


def settled_plant(*invs, load=300.0, **kw) -> Plant:
    """A plant whose core has bootstrapped and settled (60 s at a constant load)."""
    dead = {i.serial: i.dead_time_s - 1.0 for i in invs}
    plant = Plant.of(settings(*invs, **kw), dead, load_w=load)
    plant.run(60)
    return plant


# --- start, safe state -------------------------------------------------------------------------


def test_first_decision_puts_every_inverter_at_its_safe_limit():
    plant = Plant.of(settings(HM600, HM1500), {FAST: 3.0, SLOW: 18.0})
    d = decide(plant.inputs(), MicroState(), plant.settings, 0.0)
    assert limits(d) == {FAST: 18.0, SLOW: 45.0}  # 3 % of 600 and of 1500 W
    assert all(c.resend for c in d.commands)  # clears what a killed process left
    assert ReasonCode.BOOTSTRAP in codes(d)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"grid": None}, "no grid reading"),
        ({"grid": GridSample((100.0,), 90.0)}, "grid reading stale (10.0 s old)"),
        ({"dtu_at": None}, "no DTU reading"),
        ({"dtu_at": 60.0}, "DTU reading stale (40.0 s old)"),
        ({"battery": None}, "no battery reading"),
        ({"hold_off": "Victron ESS (mode 1) holds the grid"}, "Victron ESS (mode 1)"),
    ],
)
def test_missing_stale_or_owned_inputs_put_everything_safe(change, reason):
    plant = settled_plant(HM600, HM1500, load=900.0)
    assert plant.state.of(FAST).commanded_pct != 3
    inputs = replace(plant.inputs(), **change)
    d = decide(inputs, plant.state, plant.settings, 100.0)
    assert limits(d) == {FAST: 18.0, SLOW: 45.0}
    assert reason in d.text
    assert ReasonCode.SAFE_SETPOINT in codes(d)
    assert d.next_state.safe
    again = decide(inputs, d.next_state, plant.settings, 101.0)
    assert again.commands == ()  # written once


def test_back_from_the_safe_state_it_regulates_again():
    plant = settled_plant(HM600, load=400.0)
    plant.state = decide(
        replace(plant.inputs(), grid=None), plant.state, plant.settings, plant.now
    ).next_state
    plant.run(30)
    assert 0.0 <= plant.grid_w <= 40.0
    assert not plant.state.safe


# --- regulation --------------------------------------------------------------------------------


def test_load_step_table():
    plant = settled_plant(HM600, load=300.0)
    assert plant.grid_w == 24.0  # 46 % of 600 W = 276 W
    start = len(plant.log)
    plant.load_w = 500.0
    rows = []
    for _ in range(10):
        plant.run(1)
        t = round(plant.now) - 60
        rows.append((t, round(plant.grid_w), [w for _, _, w in plant.log[start:]]))
    # t (s after the step) -> grid W, commands so far: the import waits up_delay (2 s), then one
    # command of (224 + 276 - 25) W rounded to 79 %; the inverter needs its dead time (3 s).
    assert rows[0] == (1, 224, [])
    assert rows[1] == (2, 224, [])
    assert rows[2] == (3, 224, [474.0])
    assert rows[4] == (5, 224, [474.0])
    assert rows[5] == (6, 26, [474.0])
    assert rows[9] == (10, 26, [474.0])  # no second command


def test_a_drop_is_followed_at_once():
    plant = settled_plant(HM600, load=500.0)
    start = len(plant.log)
    plant.load_w = 200.0
    plant.run(1)
    assert [w for _, _, w in plant.log[start:]] == [174.0]
    plant.run(10)
    assert plant.grid_w == pytest.approx(26.0, abs=1.0)


def test_inside_the_band_it_holds():
    plant = settled_plant(HM600, load=300.0)
    start = len(plant.log)
    for load in (310.0, 290.0, 312.0, 301.0):  # grid moves within 0..40 W
        plant.load_w = load
        plant.run(20)
    assert plant.log[start:] == []
    later = replace(plant.inputs(), grid=GridSample((plant.grid_w,), plant.now + 1))
    d = decide(later, plant.state, plant.settings, plant.now + 1)
    assert ReasonCode.IN_BAND in codes(d)
    assert d.commands == ()


def test_a_short_peak_is_not_chased():
    plant = settled_plant(HM600, load=300.0)
    start = len(plant.log)
    plant.load_w = 2300.0  # a kettle for 2 s
    plant.run(1)
    plant.load_w = 300.0
    plant.run(20)
    assert plant.log[start:] == []


def test_a_pending_raise_is_not_doubled():
    plant = settled_plant(HM600, HM1500, load=900.0)  # the fast one is at its maximum
    plant.load_w = 1400.0
    plant.run(14)  # the slow one is raised after its longer wait (2 s x 19/4)
    raised = [(t, s, w) for t, s, w in plant.log if t > 60]
    assert [s for _, s, _ in raised] == [SLOW]
    plant.run(10)  # still in its dead time: the grid still shows the import, nothing more
    assert [(t, s, w) for t, s, w in plant.log if t > 60] == raised
    plant.run(20)
    assert 0 <= plant.grid_w <= 40


def test_export_during_a_slow_inverters_dead_time_is_cut_at_once():
    plant = settled_plant(HM600, HM1500, load=900.0)
    plant.load_w = 1400.0
    plant.run(14)
    ((raised_at, serial, _),) = [(t, s, w) for t, s, w in plant.log if t > 60]
    assert serial == SLOW
    plant.load_w = 400.0  # during the slow one's dead time: export is certain
    plant.run(1)
    cut = [(s, w) for t, s, w in plant.log if t > raised_at]
    assert {s for s, _ in cut} == {FAST, SLOW}  # the settled one, then the pending one again
    assert sum(plant.invs[s].cfg.watts(plant.state.of(s).commanded_pct) for s in plant.invs) <= 400


def test_the_slow_inverter_waits_for_longer_imports():
    plant = settled_plant(HM600, HM1500, load=900.0)  # the fast one is at its maximum
    assert plant.state.of(FAST).commanded_pct == 100
    start = len(plant.log)
    plant.load_w = 1100.0
    plant.run(8)
    assert plant.log[start:] == []  # 2 s x 18/3 = 12 s for the slow one
    plant.run(6)
    assert [s for _, s, _ in plant.log[start:]] == [SLOW]


def test_priority_raises_first_and_cuts_last():
    hi = replace(HM600, serial="114100000009", priority=5)
    plant = settled_plant(HM600, hi, load=200.0)
    start = len(plant.log)
    plant.load_w = 600.0
    plant.run(10)
    assert [s for _, s, _ in plant.log[start:]] == [hi.serial]
    start = len(plant.log)
    plant.load_w = 100.0
    plant.run(10)
    assert [s for _, s, _ in plant.log[start:]] == [hi.serial]  # the low one is at its minimum


def test_equal_inverters_take_turns():
    a, b = HM600, replace(HM600, serial="114100000009")
    s = settings(a, b, rotate_s=100.0)
    plant = Plant.of(s, {a.serial: 3.0, b.serial: 3.0}, load_w=300.0)
    plant.run(60)
    first = plant.log[-1][1]
    plant.run(100)
    start = len(plant.log)
    plant.load_w = 500.0
    plant.run(10)
    assert plant.log[start][1] != first


# --- bounds ------------------------------------------------------------------------------------


def in_force(plant: Plant, state: MicroState) -> float:
    return sum(plant.invs[s].cfg.watts(state.of(s).commanded_pct or 0) for s in plant.invs)


def test_total_cap_bounds_every_command_and_a_lower_cap_acts_at_once():
    plant = settled_plant(HM600, HM1500, load=2000.0, total_cap_w=800.0)
    assert sum(i.output_w for i in plant.invs.values()) <= 800.0
    lower = replace(plant.settings, total_cap_w=500.0)
    d = decide(plant.inputs(), plant.state, lower, plant.now)  # same reading: no new sample
    assert d.commands
    assert in_force(plant, d.next_state) <= 500.0
    assert ReasonCode.TOTAL_CAP in codes(d)


def test_pv_fed_output_counts_against_the_cap():
    plant = settled_plant(HM600, load=1000.0, total_cap_w=800.0)
    inputs = replace(plant.inputs(), grid=GridSample((plant.grid_w,), plant.now + 1), other_w=500.0)
    d = decide(inputs, plant.state, plant.settings, plant.now + 1)
    assert limits(d)[FAST] <= 300.0


def test_dcl_budget():
    plant = settled_plant(HM600, load=1000.0)
    assert plant.invs[FAST].output_w == 600.0
    draw = 600.0 / 0.95  # the battery gives exactly what the inverter draws
    battery = BatterySample(plant.now, soc_pct=60, voltage_v=50.0, power_w=-draw, dcl_a=6.0)
    d = decide(replace(plant.inputs(), battery=battery), plant.state, plant.settings, plant.now)
    # 6 A x 50 V x 0.95 = 285 W, at once and rounded down: 47 % of 600 W
    assert limits(d) == {FAST: 282.0}
    assert "BMS discharge limit allows 285 W" in d.text


# --- battery -----------------------------------------------------------------------------------


def test_stop_and_start_with_hysteresis():
    rules = BatteryRules(stop_soc_pct=20.0, start_soc_pct=25.0)
    plant = settled_plant(HM600, load=500.0, battery=rules)
    rows = []
    for soc in (30, 20, 22, 24, 25, 30):
        plant.soc = soc
        plant.run(10)
        rows.append((soc, plant.invs[FAST].output_w))
    assert rows == [(30, 474.0), (20, 18.0), (22, 18.0), (24, 18.0), (25, 474.0), (30, 474.0)]


def test_bms_forbids_discharge():
    plant = settled_plant(HM600, load=500.0)
    battery = BatterySample(plant.now, soc_pct=80, voltage_v=52.0, allow_discharge=False)
    d = decide(replace(plant.inputs(), battery=battery), plant.state, plant.settings, plant.now)
    assert limits(d) == {FAST: 18.0}
    assert "BMS does not allow discharge" in d.text


def test_voltage_thresholds():
    rules = BatteryRules(
        stop_soc_pct=None, start_soc_pct=None, stop_voltage_v=48.0, start_voltage_v=50.0
    )
    plant = settled_plant(HM600, load=500.0, battery=rules)
    low = BatterySample(plant.now, soc_pct=50, voltage_v=47.9)
    d = decide(replace(plant.inputs(), battery=low), plant.state, plant.settings, plant.now)
    assert limits(d) == {FAST: 18.0}
    mid = replace(low, voltage_v=49.0)
    d2 = decide(replace(plant.inputs(), battery=mid), d.next_state, plant.settings, plant.now + 1)
    assert "stopped" in d2.text
    assert limits(d2) == {}


def test_full_battery_runs_at_maximum():
    rules = BatteryRules(full_soc_pct=95.0)
    plant = settled_plant(HM600, load=100.0, battery=rules)
    battery = plant.state.battery
    full = replace(battery, floating=replace(battery.floating, value=110.0))
    plant.state = replace(plant.state, battery=full)
    plant.soc = 97.0
    plant.run(10)
    assert plant.invs[FAST].output_w == 600.0
    assert plant.grid_w < 0  # exporting what the full battery can spare (within the caps)
    plant.soc = 92.0  # below full - hysteresis
    plant.run(10)
    assert plant.grid_w >= 0


# --- failures ----------------------------------------------------------------------------------


def test_unreachable_inverter_gets_no_commands():
    plant = settled_plant(HM600, HM1500, load=300.0)
    plant.invs[SLOW].reachable = False
    start = len(plant.log)
    plant.load_w = 800.0
    plant.run(10)
    assert {s for _, s, _ in plant.log[start:]} == {FAST}
    d = decide(plant.inputs(), plant.state, plant.settings, plant.now + 1)
    assert f"{SLOW}: unreachable" in d.text


def test_a_lost_limit_is_sent_again():
    plant = settled_plant(HM600, load=300.0)
    plant.invs[FAST].limit_pct = 100.0  # the inverter restarted at its persistent limit
    d = decide(plant.inputs(), plant.state, plant.settings, plant.now + 1)
    (cmd,) = d.commands
    assert cmd.resend
    assert cmd.w == pytest.approx(plant.invs[FAST].cfg.watts(46))
    assert ReasonCode.LIMIT_LOST in codes(d)


def test_repeated_failures_restart_the_inverter_once_per_backoff():
    plant = settled_plant(HM600, load=300.0, restart_settle_s=30.0, restart_backoff_s=600.0)
    plant.invs[FAST].failures = 3
    plant.run(1)
    assert plant.restarts == [FAST]
    plant.run(100)
    assert plant.restarts == [FAST]  # still failing, but not again within 600 s
    state = plant.state.of(FAST)
    assert state.restarted_at is not None
    plant.invs[FAST].failures = 0
    plant.run(40)  # after restart_settle_s: the safe limit first, then regulation
    bootstrap = [w for t, s, w in plant.log if t > state.restarted_at]
    assert bootstrap[0] == 18.0


def test_a_saturated_inverter_is_not_raised():
    plant = settled_plant(HM600, HM1500, load=300.0)
    inputs = plant.inputs()
    fast = replace(inputs.inverters[0], ac_power_w=100.0, data_at=plant.now)  # DC-limited
    plant.load_w = 700.0
    grid = GridSample((plant.grid_w,), plant.now + 20)
    inputs = replace(inputs, inverters=(fast, inputs.inverters[1]), grid=grid)
    state = plant.state
    for t in range(20):
        d = decide(
            replace(inputs, grid=GridSample((plant.grid_w,), plant.now + t)),
            state,
            plant.settings,
            plant.now + t,
        )
        state = d.next_state
        assert FAST not in limits(d)


def test_the_dead_time_is_learnt_from_the_dtu():
    cfg = replace(HM600, learn_dead_time=True, dead_time_s=10.0)
    st = InverterState(commanded_pct=50, commanded_at=100.0, from_pct=10)
    sample = InverterSample(
        FAST, True, data_at=104.0, ac_power_w=300.0, confirmed_pct=50, confirmed_at=102.0
    )
    inputs = MicroInputs(
        GridSample((25.0,), 105.0),
        BatterySample(105.0, soc_pct=50, voltage_v=50),
        (sample,),
        dtu_at=105.0,
    )
    state = MicroState(inverters=((FAST, st),))
    d = decide(inputs, state, MicroSettings(inverters=(cfg,)), 105.0)
    learnt = d.next_state.of(FAST)
    assert learnt.applied_at == 104.0
    assert learnt.dead_s == 5.0  # 4 s seen, never below half the configured 10 s


def test_settings_refuse_inconsistent_values():
    with pytest.raises(ValueError, match="min_pct"):
        InverterSettings(FAST, max_power_w=600, max_w=10, min_pct=3)
    with pytest.raises(ValueError, match="unique"):
        MicroSettings(inverters=(HM600, HM600))
    with pytest.raises(ValueError, match="start_soc_pct"):
        BatteryRules(stop_soc_pct=30, start_soc_pct=20)
    assert math.isinf(InverterState().commanded_at)

"""Micro-inverter core, hypothesis properties: bounds, safe state, no export-raising, stability."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from micro_plant import Plant

from venus_ems.control import BatterySample, GridSample
from venus_ems.control.commands import RestartInverter, SetInverterLimit
from venus_ems.control.micro import decide
from venus_ems.control.micro_battery import BatteryRules, BatteryState, FloatingMax, battery_gate
from venus_ems.control.micro_model import (
    InverterSample,
    InverterSettings,
    InverterState,
    MicroInputs,
    MicroSettings,
    MicroState,
)

SERIALS = ("114100000001", "116100000002", "112100000003")

inverter_settings = st.builds(
    lambda i, power, frac, mn, prio, dead: InverterSettings(
        SERIALS[i],
        max_power_w=power,
        max_w=power * frac,
        min_pct=mn,
        priority=prio,
        dead_time_s=dead,
    ),
    st.integers(0, 2),
    st.sampled_from([300.0, 600.0, 800.0, 1500.0]),
    st.floats(0.5, 1.0),
    st.integers(1, 10),
    st.integers(-2, 2),
    st.floats(1.0, 30.0),
)


@st.composite
def micro_settings(draw) -> MicroSettings:
    invs = draw(st.lists(inverter_settings, min_size=1, max_size=3, unique_by=lambda i: i.serial))
    return MicroSettings(
        inverters=tuple(invs),
        target_w=draw(st.floats(0, 100)),
        down_band_w=draw(st.floats(0, 50)),
        up_band_w=draw(st.floats(0, 50)),
        up_delay_s=draw(st.floats(0, 5)),
        total_cap_w=draw(st.none() | st.floats(100, 3000)),
        max_increase_w=draw(st.none() | st.floats(10, 1000)),
    )


@st.composite
def situation(draw):
    """Settings, a state with limits in force, and one set of fresh readings at t = 100 s."""
    s = draw(micro_settings())
    now = 100.0
    states, samples = [], []
    for inv in s.inverters:
        pct = draw(st.integers(inv.min_pct, inv.max_pct))
        at = draw(st.floats(0, now))
        states.append(
            (inv.serial, InverterState(commanded_pct=pct, commanded_at=at, from_pct=inv.min_pct))
        )
        confirmed = draw(st.booleans())
        samples.append(
            InverterSample(
                inv.serial,
                reachable=draw(st.booleans()) or True,
                data_at=draw(st.floats(0, now)),
                ac_power_w=draw(st.none() | st.floats(0, inv.max_power_w)),
                limit_pct=float(pct),
                limit_state="Ok",
                confirmed_pct=pct if confirmed else None,
                confirmed_at=at + 1 if confirmed else None,
                write_failures=draw(st.integers(0, 1)),
            )
        )
    inputs = MicroInputs(
        grid=GridSample((draw(st.floats(-3000, 3000)),), now - draw(st.floats(0, 1))),
        battery=BatterySample(now, soc_pct=draw(st.floats(0, 100)), voltage_v=50.0),
        inverters=tuple(samples),
        dtu_at=now,
        other_w=draw(st.none() | st.floats(0, 500)),
        other_max_w=500.0,
    )
    state = MicroState(inverters=tuple(states), grid_used_at=draw(st.none() | st.floats(0, 98)))
    return s, state, inputs, now


def commanded_w(s: MicroSettings, state: MicroState) -> dict[str, float]:
    out = {}
    for inv in s.inverters:
        pct = state.of(inv.serial).commanded_pct
        out[inv.serial] = inv.watts(inv.safe if pct is None else pct)
    return out


@settings(max_examples=400, deadline=None)
@given(situation())
def test_every_limit_is_a_whole_percent_within_the_inverters_bounds(case):
    s, state, inputs, now = case
    d = decide(inputs, state, s, now)
    for cmd in d.commands:
        if isinstance(cmd, SetInverterLimit):
            inv = s.inverter(cmd.serial)
            pct = cmd.w / inv.step_w
            assert abs(pct - round(pct)) < 1e-9
            assert inv.min_pct <= round(pct) <= inv.max_pct


@settings(max_examples=400, deadline=None)
@given(situation())
def test_the_cap_bounds_what_is_commanded(case):
    s, state, inputs, now = case
    d = decide(inputs, state, s, now)
    if s.total_cap_w is None or d.next_state.safe:
        return
    before = sum(commanded_w(s, state).values())
    after = sum(commanded_w(s, d.next_state).values())
    mins = sum(i.watts(i.min_pct) for i in s.inverters)
    others = inputs.other_max_w if inputs.other_w is None else inputs.other_w
    bound = max(s.total_cap_w - others, mins)
    assert after <= max(bound, before) + 1e-6  # nothing is ever raised beyond the cap
    if all(x.reachable and x.write_failures == 0 for x in inputs.inverters):
        assert after <= bound + 1e-6  # and a total above it comes down at once


@settings(max_examples=300, deadline=None)
@given(situation(), st.sampled_from(["grid", "dtu", "battery", "owner"]))
def test_without_trustworthy_inputs_everything_goes_to_its_safe_limit(case, gone):
    s, state, inputs, now = case
    change = {
        "grid": {"grid": None},
        "dtu": {"dtu_at": now - s.dtu_stale_after_s - 1},
        "battery": {"battery": None},
        "owner": {"hold_off": "ess_control holds the grid"},
    }[gone]
    d = decide(replace(inputs, **change), state, s, now)
    assert d.next_state.safe
    for inv in s.inverters:
        assert d.next_state.of(inv.serial).commanded_pct == inv.safe
    for cmd in d.commands:
        assert isinstance(cmd, SetInverterLimit)
        assert cmd.w == s.inverter(cmd.serial).watts(s.inverter(cmd.serial).safe)


@settings(max_examples=400, deadline=None)
@given(situation())
def test_no_raise_while_the_grid_exports(case):
    s, state, inputs, now = case
    assert inputs.grid is not None
    if inputs.grid.total_w >= s.target_w - s.down_band_w:
        return
    d = decide(inputs, state, s, now)
    before, after = commanded_w(s, state), commanded_w(s, d.next_state)
    if not any(x.code.value in ("bootstrap", "limit_lost", "battery_full") for x in d.reasons):
        assert sum(after.values()) <= sum(before.values()) + 1e-6


@settings(max_examples=200, deadline=None)
@given(situation())
def test_decisions_replay(case):
    s, state, inputs, now = case
    assert decide(inputs, state, s, now) == decide(inputs, state, s, now)


@settings(max_examples=60, deadline=None)
@given(
    micro_settings(),
    st.floats(50, 2500),
    st.dictionaries(st.sampled_from(SERIALS), st.floats(1.0, 20.0)),
)
def test_at_constant_load_it_settles_and_stays_without_reversals(s, load, dead):
    s = replace(s, total_cap_w=None, max_increase_w=None, down_band_w=max(s.down_band_w, 20.0))
    s = replace(s, up_band_w=max(s.up_band_w, 20.0))
    deadtimes = {
        i.serial: min(dead.get(i.serial, i.dead_time_s), i.dead_time_s) for i in s.inverters
    }
    plant = Plant.of(s, deadtimes, load_w=load)
    plant.run(300)
    settled = len(plant.log)
    plant.run(300)
    assert len(plant.log) == settled, plant.log[settled:]  # no command, so no reversal
    lo = sum(i.watts(i.min_pct) for i in s.inverters)
    hi = sum(i.watts(i.max_pct) for i in s.inverters)
    if lo + s.target_w + s.up_band_w < load < hi:  # the aim is reachable
        assert s.target_w - s.down_band_w <= plant.grid_w <= s.target_w + s.up_band_w


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=200))
def test_floating_max_stays_in_range_and_jumps_to_full(socs):
    fm = FloatingMax()
    for soc in socs:
        before = fm.value
        fm = fm.update(soc)
        assert 74.0 <= fm.value <= 110.0
        assert fm.value >= before - 1.0  # falls slowly: 1 % per peak at most
    full = FloatingMax().update(97).update(99).update(98)
    assert full.value == 110.0
    higher = FloatingMax(80.0).update(85).update(90).update(89)  # a peak at 90: half the gap
    assert higher.value == 85.0
    lower = FloatingMax(90.0).update(70).update(80).update(79)  # a peak below: 1 % less
    assert lower.value == 89.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=100))
def test_discharge_hysteresis(socs):
    rules = BatteryRules(stop_soc_pct=20.0, start_soc_pct=30.0)
    state = BatteryState()
    for soc in socs:
        was = state.discharging
        v = battery_gate(BatterySample(0.0, soc_pct=soc, voltage_v=50), None, rules, state, 0.0)
        if soc <= 20.0 or (was is False and soc < 30.0):
            assert not v.allowed
        else:
            assert v.allowed
        state = v.next_state


def test_restart_is_a_command_for_the_feature_not_an_output():
    inv = InverterSettings(SERIALS[0], max_power_w=600)
    s = MicroSettings(inverters=(inv,), total_cap_w=None)
    state = MicroState(inverters=((inv.serial, InverterState(commanded_pct=50)),))
    failing = InverterSample(inv.serial, True, 99.0, 300.0, write_failures=3)
    inputs = MicroInputs(
        GridSample((25.0,), 100.0),
        BatterySample(100.0, soc_pct=50, voltage_v=50),
        (failing,),
        100.0,
    )
    d = decide(inputs, state, s, 100.0)
    assert d.commands == (RestartInverter(inv.serial),)

"""Surplus EV charging core: time-series tables (second by second) and hypothesis properties."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.control.ev_surplus import (
    ChargerCommand,
    EvState,
    SurplusInputs,
    SurplusSettings,
    decide,
    min_power_w,
)

FAST = SurplusSettings(
    start_delay_s=10,
    stop_delay_s=20,
    up_delay_s=30,
    down_delay_s=30,
    min_on_off_s=60,
    min_phase_switch_s=120,
)
V3 = (230.0, 230.0, 230.0)


def run(profile, st0=None, s=FAST, **kw):
    """Run the core 1 s at a time over ``[(seconds, available W), ...]``; list of commands."""
    state, out, t = st0 or EvState(), [], 0.0
    for seconds, watts in profile:
        for _ in range(int(seconds)):
            d = decide(SurplusInputs(watts, V3, **kw), state, s, t)
            state = d.next_state
            out.append((t, d.command))
            t += 1.0
    return out, state


def test_time_series_start_up_down_stop():
    # (s, W): nothing, 2 kW, 6 kW (3-phase), 2 kW, nothing
    cmds, state = run([(20, 0), (60, 2000), (200, 6000), (200, 2000), (200, 0)])
    at = dict(cmds)
    assert at[5.0] == ChargerCommand("off", 6, 1)  # no surplus: paused
    assert at[29.0].force == "off"  # 2 kW for 9 s: still waiting (start_delay 10 s)
    assert at[31.0] == ChargerCommand("on", 8, 1)  # 2000 / 230 = 8.7 -> 8 A (never above)
    assert at[90.0] == ChargerCommand("on", 16, 1)  # 6 kW but up_delay 30 s not over: 16 A max
    assert at[115.0] == ChargerCommand("on", 8, 3)  # switched: 6000 / 690 = 8.7 -> 8 A x 3
    # 2 kW again at 280 s: after down_delay 30 s and the cooldown (120 s since 110 s): 1 phase
    assert at[300.0] == ChargerCommand("on", 6, 3)  # waiting for down_delay: minimum on 3
    assert at[315.0] == ChargerCommand("on", 8, 1)
    assert at[500.0].force == "off"  # stop after 20 s without surplus
    assert state.phase_switches == 2
    assert state.starts == 1


def test_cooldown_keeps_minimum_current_before_a_stop():
    cmds, state = run([(40, 2000), (40, 0)])
    at = dict(cmds)
    started = next(t for t, c in cmds if c.force == "on")
    assert started == 10.0
    # surplus gone at 40 s; stop_delay 20 s reached at 60 s but the on/off cooldown runs to 70 s
    assert at[65.0] == ChargerCommand("on", 6, 1)
    assert at[69.0].force == "on"
    assert at[70.0].force == "off"  # 60 s after the start at 10 s
    assert state.starts == 1


def test_unknown_surplus_pauses_at_once():
    _, state = run([(40, 3000)])
    assert state.on
    d = decide(SurplusInputs(None, V3), state, FAST, 41.0)
    assert d.command.force == "off"
    assert not d.next_state.on
    assert "unknown" in d.reasons[0]


def test_a_one_phase_car_on_three_phases_is_sized_on_its_one_phase():
    s = FAST
    state = EvState(on=True, phases=3, last_on_off_at=0.0, last_phase_switch_at=0.0)
    inputs = SurplusInputs(
        3000.0, V3, currents_a=(10.0, 0.0, 0.0), phases_selected=3, charging=True
    )
    d = decide(inputs, state, s, 5.0)
    assert d.command.amps == 13  # 3000 / 230, not 3000 / 690
    assert min_power_w(s, inputs, 3) == pytest.approx(6 * 230)


def test_real_voltages_size_the_current():
    state = EvState(on=True, phases=1, last_on_off_at=0.0)
    d = decide(SurplusInputs(2000.0, (250.0, 250.0, 250.0)), state, FAST, 1.0)
    assert d.command.amps == 8  # 2000 / 250
    d = decide(SurplusInputs(2000.0, (208.0, None, None)), state, FAST, 1.0)
    assert d.command.amps == 9  # 2000 / 208 = 9.6


def test_fixed_three_phase_charger():
    s = SurplusSettings(can_switch_phases=False, start_delay_s=0, min_on_off_s=0)
    d = decide(SurplusInputs(2000.0, V3), EvState(), s, 0.0)
    assert d.command.force == "off"  # 2 kW < 6 A x 3 phases
    d = decide(SurplusInputs(5000.0, V3), EvState(), s, 0.0)
    assert d.command == ChargerCommand("on", 7, 3)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        SurplusSettings(min_current_a=20, max_current_a=16)
    with pytest.raises(ValueError):
        SurplusSettings(max_phases=2)
    with pytest.raises(ValueError):
        SurplusSettings(min_on_off_s=-1)


profiles = st.lists(
    st.tuples(st.integers(1, 400), st.floats(-2000, 15000, allow_nan=False)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(profiles)
def test_properties_bounds_cooldowns_and_surplus(profile):
    cmds, state = run(profile)
    switches, on_off = [], []
    prev = None
    for t, c in cmds:
        assert FAST.min_current_a <= c.amps <= FAST.max_current_a
        assert c.phases in (1, 3)
        if prev is not None and c.phases != prev.phases:
            switches.append(t)
        if prev is not None and c.force != prev.force:
            on_off.append(t)
        prev = c
    assert all(b - a >= FAST.min_phase_switch_s for a, b in itertools.pairwise(switches))
    assert all(b - a >= FAST.min_on_off_s for a, b in itertools.pairwise(on_off))
    assert state.phase_switches == len(switches)
    # above the minimum the car never draws more than the surplus
    t = 0.0
    watts_at = {}
    for seconds, watts in profile:
        for _ in range(seconds):
            watts_at[t] = watts
            t += 1
    for t, c in cmds:
        n = c.phases or 1
        draw = c.amps * 230.0 * n
        if c.force == "on" and c.amps > FAST.min_current_a:
            assert draw <= watts_at[t] + 1e-6


@settings(max_examples=100, deadline=None)
@given(st.floats(1380 * 1.1 + 1, 20000), st.integers(0, 3))
def test_property_steady_surplus_is_used_within_one_amp_step(watts, extra):
    cmds, _ = run([(600 + extra, watts)])
    c = cmds[-1][1]
    n = c.phases or 1
    draw = c.amps * 230 * n
    cap = FAST.max_current_a * 230 * 3
    assert c.force == "on"
    assert min(watts, cap) - draw < 230 * n + 1e-6 or watts < 6 * 690 * 1.1
    assert not math.isnan(draw)

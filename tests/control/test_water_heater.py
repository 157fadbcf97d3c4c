"""Stepped water heater core: hard limits, own draw, delays, thermostat, daily minimum, grants."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.control.water_heater import (
    HeaterInputs,
    HeaterSettings,
    HeaterState,
    decide,
    in_window,
    step_at_most,
)

S = HeaterSettings()
LEVELS = S.levels_w


@dataclass
class Plant:
    """PV export before the heater, the heater's step (after one second), a tank, 1 s steps."""

    surplus: list[float]
    settings: HeaterSettings = S
    temp: float = 40.0
    state: HeaterState = field(default_factory=HeaterState)
    level: float = 0.0
    log: list[tuple[int, float, float, str]] = field(default_factory=list)

    def run(self, mode: str = "auto", **kw: object) -> list[tuple[int, float, float, str]]:
        for t, free in enumerate(self.surplus):
            grid = self.level - free
            inp = HeaterInputs(
                mode,  # type: ignore[arg-type]
                self.temp,
                grid_w=grid,
                grid_at=float(t),
                draw_w=self.level,
                **kw,  # type: ignore[arg-type]
            )
            d = decide(inp, self.state, self.settings, float(t))
            self.state = d.next_state
            self.log.append((t, grid, d.level_w, d.reason))
            self.level = d.level_w  # takes effect for the next meter reading
            self.temp += self.level * 1.0 / (200 * 4186.0)
        return self.log


def levels(log: list[tuple[int, float, float, str]]) -> list[float]:
    return [row[2] for row in log]


def switches(log: list[tuple[int, float, float, str]]) -> int:
    lv = levels(log)
    return sum(1 for a, b in itertools.pairwise(lv) if a != b)


# ---------------------------------------------------------------- time-series tables


def test_constant_surplus_steps_up_once_and_stays():
    """2300 W spare: after the up delay 2000 W (2300 - margin covers it), then never again."""
    log = Plant([2300.0] * 600).run()
    lv = levels(log)
    assert lv[:30] == [0.0] * 30  # up_delay_s
    assert lv[30] == 2000.0
    assert set(lv[30:]) == {2000.0}
    assert switches(log) == 1


def test_own_draw_is_counted_no_limit_cycle():
    """The seed's defect: with the heater on the grid shows less export; ours keeps the step."""
    log = Plant([1600.0] * 900).run()
    assert switches(log) == 1
    assert levels(log)[-1] == 1500.0
    assert all(row[1] <= 0 for row in log[40:])  # never importing once at 1500 W


def test_table_cloud_goes_down_after_the_down_delay_and_up_after_interval():
    """Time series: sun 3000, cloud (400 W) for 60 s, sun again."""
    profile = [3000.0] * 200 + [400.0] * 60 + [3000.0] * 200
    lv = levels(Plant(profile).run())
    table = [(0, 0.0), (29, 0.0), (30, 2500.0), (199, 2500.0), (205, 2500.0), (210, 0.0)]
    # the down step comes down_delay_s after the cloud: 2500 W is first not covered at t=200
    for t, want in table:
        assert lv[t] == want, (t, lv[t])
    # the cloud allows 0 W only (400 - 100 margin < 500); back up once the sun has been back
    # up_delay_s long and min_switch_interval_s since the last switch
    up = next(t for t in range(261, 460) if lv[t] > 0)
    assert up >= 260 + S.up_delay_s
    assert up - 210 >= S.min_switch_interval_s
    assert lv[up] == 2500.0


def test_a_discharging_battery_is_no_surplus():
    """An ESS holding the grid at 0 W feeds the heater from the battery: that is a deficit."""
    st0 = HeaterState(level_w=1500.0, switched_at=0.0)
    inp = HeaterInputs("auto", 40.0, grid_w=0.0, grid_at=100.0, draw_w=1500.0, battery_w=-1500.0)
    d = decide(inp, st0, S, 100.0)
    assert d.reason == "surplus 0 W"
    d = decide(inp, d.next_state, S, 100.0 + S.down_delay_s)
    assert d.level_w == 0.0
    charging = HeaterInputs("auto", 40.0, grid_w=0.0, grid_at=200.0, draw_w=1500.0, battery_w=900)
    assert decide(charging, st0, S, 200.0).level_w == 1500.0


def test_short_dips_within_the_down_delay_keep_the_step():
    profile = [2700.0] * 100 + ([2700.0] * 20 + [1000.0] * 5) * 20
    log = Plant(profile).run()
    assert switches(log) == 1


@pytest.mark.parametrize(
    ("temps", "want"),
    [
        ([50.0, 59.9, 60.0, 58.0, 56.1], [1, 1, 0, 0, 0]),  # stops at target, waits for 56
        ([60.0, 57.0, 56.0, 55.0], [0, 0, 1, 1]),  # resumes at target - hysteresis
    ],
)
def test_thermostat_hysteresis_in_mode_on(temps, want):
    state = HeaterState()
    got = []
    for i, t in enumerate(temps):
        d = decide(HeaterInputs("on", t), state, S, float(i))
        state = d.next_state
        got.append(int(d.level_w > 0))
    assert got == want


def test_hard_limits_win_over_every_mode():
    for mode in ("auto", "on"):
        for kw in ({"boost": True}, {"grant_w": 3500.0}, {}):
            inp = HeaterInputs(mode, 75.0, grid_w=-5000.0, grid_at=0.0, **kw)  # type: ignore[arg-type]
            assert decide(inp, HeaterState(level_w=3500.0), S, 0.0).level_w == 0.0
            inp = HeaterInputs(mode, None, grid_w=-5000.0, grid_at=0.0, **kw)  # type: ignore[arg-type]
            assert decide(inp, HeaterState(level_w=3500.0), S, 0.0).level_w == 0.0
    d = decide(HeaterInputs("auto", 40.0, forced=True), HeaterState(level_w=500.0), S, 0.0)
    assert (d.level_w, d.reason.startswith("FORCE ON")) == (0.0, True)


def test_stale_or_missing_grid_is_off_at_once_in_auto():
    st0 = HeaterState(level_w=2000.0, switched_at=0.0)
    stale = HeaterInputs("auto", 40.0, grid_w=-3000.0, grid_at=100.0, draw_w=2000.0)
    assert decide(stale, st0, S, 106.0).level_w == 0.0
    assert "stale" in decide(stale, st0, S, 106.0).reason
    assert decide(HeaterInputs("auto", 40.0), st0, S, 106.0).level_w == 0.0
    # mode on does not need the grid
    assert decide(HeaterInputs("on", 40.0), st0, S, 106.0).level_w == 3500.0


def test_boost_heats_from_grid_in_mode_off_and_auto():
    for mode in ("off", "auto"):
        d = decide(HeaterInputs(mode, 40.0, boost=True), HeaterState(), S, 0.0)  # type: ignore[arg-type]
        assert (d.level_w, d.source) == (3500.0, "grid")


def test_daily_minimum_heats_in_its_window_until_reached_then_not_again_that_day():
    s = HeaterSettings(guard_c=60.0, guard_start_s=17 * 3600.0, guard_end_s=19 * 3600.0)
    state = HeaterState()
    cold = HeaterInputs("auto", 45.0, grid_w=500.0, grid_at=0.0, day=1, time_of_day_s=16 * 3600)
    assert decide(cold, state, s, 0.0).level_w == 0.0  # before the window, no surplus
    inside = HeaterInputs("auto", 45.0, grid_w=500.0, grid_at=1.0, day=1, time_of_day_s=61200)
    d = decide(inside, state, s, 1.0)
    assert (d.level_w, d.source) == (3500.0, "grid")
    assert "daily minimum" in d.reason
    hot = HeaterInputs("auto", 60.0, grid_w=500.0, grid_at=2.0, day=1, time_of_day_s=61300)
    d = decide(hot, d.next_state, s, 2.0)
    assert d.level_w == 0.0
    assert d.next_state.guard_met_day == 1
    cooled = HeaterInputs("auto", 50.0, grid_w=500.0, grid_at=3.0, day=1, time_of_day_s=61400)
    assert decide(cooled, d.next_state, s, 3.0).level_w == 0.0  # met today
    next_day = HeaterInputs("auto", 50.0, grid_w=500.0, grid_at=4.0, day=2, time_of_day_s=61400)
    assert decide(next_day, d.next_state, s, 4.0).level_w == 3500.0
    # reached earlier in the day with surplus: no grid heating in the window
    sunny = decide(HeaterInputs("auto", 61.0, day=3, time_of_day_s=43200), HeaterState(), s, 5)
    later = HeaterInputs("auto", 55.0, grid_w=500.0, grid_at=6.0, day=3, time_of_day_s=61400)
    assert decide(later, sunny.next_state, s, 6.0).level_w == 0.0


def test_a_grant_is_followed_to_the_highest_step_below_it():
    for grant, want in ((0.0, 0.0), (499.0, 0.0), (1700.0, 1500.0), (9000.0, 3500.0)):
        d = decide(HeaterInputs("auto", 40.0, grant_w=grant), HeaterState(), S, 0.0)
        assert (d.level_w, d.source) == (want, "grant")
    d = decide(HeaterInputs("auto", 61.0, grant_w=3500.0), HeaterState(), S, 0.0)
    assert d.level_w == 0.0  # the thermostat still applies


def test_windows_and_steps():
    assert in_window(3600.0, 0.0, 7200.0)
    assert not in_window(7200.0, 0.0, 7200.0)
    assert in_window(23 * 3600.0, 22 * 3600.0, 2 * 3600.0)
    assert in_window(3600.0, 22 * 3600.0, 2 * 3600.0)
    assert not in_window(12 * 3600.0, 22 * 3600.0, 2 * 3600.0)
    assert step_at_most(LEVELS, float("nan")) == 0.0
    assert step_at_most(LEVELS, 1999.9) == 1500.0


@pytest.mark.parametrize(
    "kw",
    [
        {"levels_w": (500.0, 1000.0)},
        {"levels_w": (0.0, 1000.0, 500.0)},
        {"target_c": 80.0, "max_c": 75.0},
        {"guard_c": 80.0},
        {"on_w": 700.0},
        {"margin_w": -1.0},
        {"guard_start_s": 90000.0},
    ],
)
def test_inconsistent_settings_are_refused(kw):
    with pytest.raises(ValueError):
        HeaterSettings(**kw)


# ---------------------------------------------------------------- properties

finite = st.floats(-20000, 20000, allow_nan=False)
temps = st.one_of(st.none(), st.floats(-10, 100, allow_nan=False), st.just(float("nan")))
inputs = st.builds(
    HeaterInputs,
    mode=st.sampled_from(["off", "auto", "on"]),
    temperature_c=temps,
    grid_w=st.one_of(st.none(), finite, st.just(float("inf"))),
    grid_at=st.one_of(st.none(), st.floats(0, 2000, allow_nan=False)),
    draw_w=st.one_of(st.none(), st.sampled_from(LEVELS)),
    grant_w=st.one_of(st.none(), st.floats(0, 10000, allow_nan=False)),
    forced=st.booleans(),
    boost=st.booleans(),
    day=st.integers(0, 3),
    time_of_day_s=st.floats(0, 86399, allow_nan=False),
)
GS = HeaterSettings(guard_c=55.0)


@given(st.lists(inputs, min_size=1, max_size=40), st.floats(0.1, 20))
def test_every_decision_is_a_step_and_respects_the_hard_limits(seq, dt):
    state = HeaterState()
    for i, inp in enumerate(seq):
        now = 1000.0 + i * dt
        d = decide(inp, state, GS, now)
        state = d.next_state
        assert d.level_w in LEVELS
        assert state.level_w == d.level_w
        t = inp.temperature_c
        if t is None or t != t or t >= GS.max_c or inp.forced:
            assert d.level_w == 0.0
        if inp.mode == "off" and not inp.boost:
            assert d.level_w == 0.0
        if t is not None and t == t and t >= GS.target_c:
            assert d.level_w == 0.0 or "daily minimum" in d.reason
        if inp.grant_w is not None and d.source == "grant":
            assert d.level_w <= inp.grant_w


@given(st.lists(st.tuples(st.integers(1, 120), finite.filter(lambda x: x > -1000)), max_size=30))
def test_standalone_switches_are_spaced_and_never_step_up_into_import(segments):
    """Any surplus profile: a step up only after min_switch_interval_s; up means export."""
    profile = [w for n, w in segments for _ in range(n)] or [0.0]
    plant = Plant(profile)
    log = plant.run()
    lv = levels(log)
    last_switch = None
    for t in range(1, len(lv)):
        if lv[t] > lv[t - 1]:
            if last_switch is not None:
                assert t - last_switch >= S.min_switch_interval_s
            # the step it goes to was covered (with the margin) at that moment
            assert profile[t] - S.margin_w >= lv[t]
        if lv[t] != lv[t - 1]:
            last_switch = t
    assert switches(log) <= 2 * len(segments) + 1

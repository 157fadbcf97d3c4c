"""OMBC plans from power levels: modes, transitions, and timers that carry min run/rest times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.control.ombc import MIN_REST, MIN_RUN, OmbcPlan, OmbcTimers
from venus_ems.sim.ol_loop import OlLoad, OlLoop

LEVELS = (0.0, 1000.0, 2000.0, 3000.0)


def test_plan_has_one_mode_per_level_and_every_transition():
    plan = OmbcPlan.for_levels("heater", LEVELS, min_on_s=60, min_off_s=120)
    assert [m.power_w for m in plan.modes] == list(LEVELS)
    assert plan.off.label == "Off"
    assert len(plan.transitions) == 4 * 3
    assert {t.label: t.duration_s for t in plan.timers} == {MIN_RUN: 60, MIN_REST: 120}
    on = plan.transition(plan.off.id, plan.modes[2].id)
    assert on is not None
    run = next(t.id for t in plan.timers if t.label == MIN_RUN)
    rest = next(t.id for t in plan.timers if t.label == MIN_REST)
    assert (on.start_timers, on.blocking_timers) == ((run,), (rest,))
    off = plan.transition(plan.modes[3].id, plan.off.id)
    assert off is not None
    assert (off.start_timers, off.blocking_timers) == ((rest,), (run,))
    step = plan.transition(plan.modes[1].id, plan.modes[3].id)
    assert step is not None
    assert (step.start_timers, step.blocking_timers) == ((), ())


def test_ids_are_stable_per_resource():
    a = OmbcPlan.for_levels("heater", LEVELS)
    assert a == OmbcPlan.for_levels("heater", LEVELS)
    assert a.off.id != OmbcPlan.for_levels("other", LEVELS).off.id


def test_zero_times_mean_no_timers():
    plan = OmbcPlan.for_levels("relay", (0.0, 500.0))
    assert plan.timers == ()
    assert all(t.blocking_timers == () for t in plan.transitions)


@pytest.mark.parametrize(
    ("levels", "kw"),
    [
        ((), {}),
        ((100.0,), {}),
        ((0.0, 500.0, 500.0), {}),
        ((0.0, float("inf")), {}),
        ((0.0, 500.0), {"min_on_s": -1}),
        ((0.0, 500.0), {"min_off_s": float("nan")}),
    ],
)
def test_bad_levels_or_times_are_refused(levels, kw):
    with pytest.raises(ValueError):
        OmbcPlan.for_levels("x", levels, **kw)


def test_timers_block_as_victron_labels_them():
    plan = OmbcPlan.for_levels("heater", LEVELS, min_on_s=60, min_off_s=120)
    timers = OmbcTimers(plan)
    off, on = plan.off.id, plan.modes[1].id
    assert timers.blocked_by(off, on, 0.0) is None
    timers.switched(off, on, 0.0)
    assert timers.blocked_by(on, off, 59.0) == MIN_RUN
    assert timers.blocked_by(on, plan.modes[3].id, 1.0) is None  # steps between on-modes
    assert timers.blocked_by(on, off, 60.0) is None
    timers.switched(on, off, 60.0)
    assert timers.blocked_by(off, on, 179.0) == MIN_REST
    assert timers.remaining_s(MIN_REST, 170.0) == pytest.approx(10.0)
    assert timers.blocked_by(off, on, 180.0) is None


@given(
    surplus=st.lists(st.floats(-3000, 6000), min_size=1, max_size=120),
    min_on=st.integers(0, 60),
    min_off=st.integers(0, 60),
)
def test_the_ol_loop_never_breaks_a_timer_and_changes_one_load_per_loop(surplus, min_on, min_off):
    loads = [
        OlLoad(name, OmbcPlan.for_levels(name, levels, min_on_s=min_on, min_off_s=min_off), prio)
        for name, levels, prio in (("a", LEVELS, 1), ("b", (0.0, 800.0), 2))
    ]
    loop = OlLoop(loads)
    last_on: dict[str, float] = {}
    last_off: dict[str, float] = {"a": -1e9, "b": -1e9}
    for i, s in enumerate(surplus):
        now = 5.0 * i
        drawn = sum((x.mode or x.plan.off).power_w for x in loads)
        decision = loop.step(s + drawn, 0.0, now)
        if decision is None:
            continue
        load, mode = decision
        was = (load.mode or load.plan.off).power_w
        if was == 0 and mode.power_w > 0:
            assert now - last_off[load.name] >= min_off
            last_on[load.name] = now
        if was > 0 and mode.power_w == 0:
            assert now - last_on[load.name] >= min_on
            last_off[load.name] = now
        load.confirmed(mode, now)  # the RM confirms at once
        assert sum(x.pending is not None for x in loads) == 0

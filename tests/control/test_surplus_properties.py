"""Surplus core, hypothesis properties: budget, valid levels, min on/off times, no flapping."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from surplus_plant import SurplusPlant

from venus_ems.control.surplus import (
    Load,
    LoadMemory,
    ReservationCurve,
    Site,
    SurplusSettings,
    decide,
)

NAMES = ("a", "b", "c", "d")
NOW = 10_000.0


@st.composite
def loads(draw):
    n = draw(st.integers(1, 4))
    out = []
    for name in NAMES[:n]:
        common = {
            "priority": draw(st.integers(0, 100)),
            "priority_shift": draw(st.sampled_from([0.0, 0.0, 1.0, 5.0])),
            "min_on_s": draw(st.sampled_from([0.0, 30.0, 120.0])),
            "min_off_s": draw(st.sampled_from([0.0, 30.0, 120.0])),
            "ignore_reservation": draw(st.booleans()),
            "reported_at": NOW,
        }
        kind = draw(st.sampled_from(["stepped", "continuous", "any"]))
        if kind == "stepped":
            steps = draw(st.lists(st.sampled_from([100.0, 500.0, 1000.0, 2000.0]), min_size=1))
            levels = [0.0]
            for s in steps[:4]:
                levels.append(levels[-1] + s)
            out.append(Load(name, levels_w=tuple(levels), **common))
        else:
            mx = draw(st.sampled_from([1500.0, 3680.0, 11000.0]))
            mn = draw(st.sampled_from([0.0, 230.0, 1380.0]))
            step = 0.0 if kind == "any" else draw(st.sampled_from([50.0, 230.0, 690.0]))
            out.append(Load(name, min_w=mn, max_w=mx, step_w=step, **common))
    return out


reservations = st.sampled_from(
    [
        ReservationCurve(),
        ReservationCurve.constant(1000.0),
        ReservationCurve(((20.0, 3000.0), (90.0, 0.0))),
    ]
)


def valid(ld: Load, w: float) -> bool:
    if w == 0:
        return True
    if ld.levels_w is not None:
        return w in ld.levels_w
    return ld.min_w - 1e-6 <= w <= ld.max_w + 1e-6


@settings(max_examples=200, deadline=None)
@given(loads(), reservations, st.floats(-5000, 5000), st.floats(-3000, 3000), st.floats(0, 100))
def test_fresh_allocation_stays_within_surplus_and_reservation(lds, curve, grid, batt, soc):
    # borrowing only keeps what runs: a fresh start never borrows
    s = SurplusSettings(reservation=curve, hysteresis_w=150.0, borrow_s=300.0)
    d = decide(Site(grid, batt, soc, None, NOW), lds, None, s, NOW)
    o, r = d.surplus_w, d.reservation_w
    assert o is not None
    assert o >= 0
    assert r >= 0
    total = sum(a.power_w for a in d.allocations.values())
    guarded = sum(d.allocations[ld.name].power_w for ld in lds if not ld.ignore_reservation)
    assert total <= o + 2e-3  # o is rounded to mW
    assert guarded <= max(0.0, o - r) + 2e-3
    assert all(valid(ld, d.allocations[ld.name].power_w) for ld in lds)
    assert all(d.allocations[ld.name].power_w <= ld.top_w for ld in lds)


@settings(max_examples=200, deadline=None)
@given(loads(), reservations, st.floats(-5000, 5000), st.lists(st.floats(0, 12000), min_size=4))
def test_with_history_only_hysteresis_and_holds_go_beyond_the_surplus(lds, curve, grid, prev):
    s = SurplusSettings(reservation=curve, hysteresis_w=150.0, settle_s=10.0)
    # previous grants long ago (no min on, no settle): only the hysteresis may add
    mem = {
        ld.name: LoadMemory(p, NOW - 1000, NOW - 1000 if p else None, None if p else NOW - 1000)
        for ld, p in zip(lds, prev, strict=False)
    }
    d = decide(Site(grid, 0.0, 50.0, None, NOW), lds, mem, s, NOW)
    total = sum(a.power_w for a in d.allocations.values())
    assert d.surplus_w is not None
    assert total <= d.surplus_w + 150.0 * len(lds) + 1e-6


@settings(max_examples=40, deadline=None)
@given(
    loads(),
    reservations,
    st.lists(st.floats(0, 8000), min_size=5, max_size=40),
    st.sampled_from([0.0, 4.0, 8.0]),
    st.sampled_from([0.0, 60.0, 300.0]),
)
def test_min_on_and_min_off_times_are_never_violated(lds, curve, suns, lag, borrow):
    s = SurplusSettings(reservation=curve, settle_s=10.0, borrow_s=borrow)
    plant = SurplusPlant(lds, s, lambda t: suns[int(t // 30) % len(suns)], lag_s=lag)
    plant.run(30.0 * len(suns), dt=5.0)
    for ld in lds:
        last_on = last_off = None
        on = False
        for t, d in plant.rows:
            now_on = d.allocations[ld.name].power_w > 0
            if now_on and not on:
                assert last_off is None or t - last_off >= ld.min_off_s
                last_on = t
            elif on and not now_on:
                assert last_on is None or t - last_on >= ld.min_on_s
                last_off = t
            on = now_on


@settings(max_examples=50, deadline=None)
@given(
    loads(),
    reservations,
    st.floats(0, 12000),
    st.floats(0, 100),
    st.sampled_from([0.0, 4.0]),
    st.sampled_from([0.0, 300.0]),
)
def test_a_constant_surplus_never_makes_anything_flap(lds, curve, sun, soc, lag, borrow):
    s = SurplusSettings(reservation=curve, settle_s=10.0, hysteresis_w=100.0, borrow_s=borrow)
    plant = SurplusPlant(lds, s, lambda t: sun, lag_s=lag, soc=soc)
    rows = plant.run(400, dt=5.0)
    # after every min on/off time has passed the grants never change again
    assert all(r == rows[-1] for r in rows[250 // 5 :])


@settings(max_examples=100, deadline=None)
@given(loads(), st.floats(-5000, 5000))
def test_stale_or_missing_grid_gives_everyone_zero(lds, grid):
    mem = {ld.name: LoadMemory(ld.top_w, NOW - 1, NOW - 1, None, 0.0) for ld in lds}
    for site in (Site(None, 0.0, 50.0, None, NOW), Site(grid, 0.0, 50.0, None, NOW - 60)):
        d = decide(site, lds, mem, SurplusSettings(), NOW)
        assert all(a.power_w == 0 for a in d.allocations.values())
        assert d.stale


@settings(max_examples=100, deadline=None)
@given(loads(), st.floats(0, 8000))
def test_not_ready_consumers_never_get_anything(lds, export):
    lds = [replace(ld, ready=False) if i % 2 else ld for i, ld in enumerate(lds)]
    d = decide(Site(-export, 0.0, 50.0, None, NOW), lds, None, SurplusSettings(), NOW)
    assert all(d.allocations[ld.name].power_w == 0 for ld in lds if not ld.ready)


@settings(max_examples=200, deadline=None)
@given(
    loads(),
    reservations,
    st.floats(-5000, 5000),
    st.lists(st.floats(0, 12000), min_size=4),
    st.sampled_from([None, NOW - 100, NOW - 400]),
)
def test_borrowing_only_keeps_never_imports_and_ends_after_borrow_s(lds, curve, grid, prev, since):
    s = SurplusSettings(reservation=curve, hysteresis_w=0.0, settle_s=10.0, borrow_s=300.0)
    mem = {
        ld.name: LoadMemory(p, NOW - 1000, NOW - 1000 if p else None, None, 0.0, since)
        for ld, p in zip(lds, prev, strict=False)
    }
    d = decide(Site(grid, 0.0, 50.0, None, NOW), lds, mem, s, NOW)
    assert d.surplus_w is not None
    total = sum(a.power_w for a in d.allocations.values())
    assert total <= d.surplus_w + 1e-6  # the reservation is lent, the grid never
    for ld in lds:
        a, m = d.allocations[ld.name], d.memory[ld.name]
        before = mem[ld.name].granted_w if ld.name in mem else 0.0
        if m.borrowing_since is not None:
            assert not ld.ignore_reservation
            assert 0 < a.power_w <= before + 1e-6  # it only keeps, never starts or grows
            assert NOW - m.borrowing_since < 300.0  # and only for borrow_s in a row

"""Surplus core, worked examples and time-series tables: who gets what, decision by decision."""

from __future__ import annotations

import pytest
from surplus_plant import SurplusPlant

from venus_ems.control.surplus import (
    Load,
    LoadMemory,
    ReservationCurve,
    Site,
    SurplusSettings,
    decide,
)

NOW = 1000.0


def site(export_w: float, *, battery_w: float = 0.0, soc: float | None = 50.0, pv=None) -> Site:
    return Site(-export_w, battery_w, soc, pv, NOW)


def load(name: str, **kw) -> Load:
    kw.setdefault("reported_at", NOW)
    return Load(name, **kw)


def grants(d) -> dict[str, float]:
    return {n: a.power_w for n, a in d.allocations.items()}


FLAT = SurplusSettings(hysteresis_w=0.0)


# --- the allocation (es-ESS's worked examples, its bugs fixed) ---------------------------------


def test_es_ess_own_example_priority_then_steps_with_reservation():
    a = load("A", priority=10, min_w=0, max_w=1500, step_w=500)
    b = load("B", priority=20, min_w=0, max_w=2000, step_w=1000)
    s = SurplusSettings(reservation=ReservationCurve.constant(1000), hysteresis_w=0)
    d = decide(site(4000), [a, b], None, s, NOW)
    assert grants(d) == {"A": 1500.0, "B": 1000.0}
    assert (d.surplus_w, d.reservation_w, d.assigned_w, d.remaining_w) == (4000, 1000, 2500, 1500)


@pytest.mark.parametrize(
    ("surplus", "ev", "heater"),
    [
        (1364, 0, 1000),  # the EV's minimum does not fit, the heater's first step does
        (1365, 1365, 0),  # exact fit is used (es-ESS compared strictly)
        (2365, 2365, 0),  # EV 1365 + 4 x 250 (priority 35 → 39 by shift 1)
        (3365, 2365, 1000),  # at 40 the heater (40, fewer grants) goes before the EV (40)
        (3364, 3115, 0),  # the heater's 1000 does not fit, the EV takes 250-steps instead
        (99999, 11000, 3000),  # both full, nobody overshoots
    ],
)
def test_readme_example_priority_shift_interleaves(surplus, ev, heater):
    loads = [
        load("ev", priority=35, priority_shift=1, min_w=1365, max_w=11000, step_w=250),
        load("heater", priority=40, priority_shift=5, levels_w=(0, 1000, 2000, 3000)),
    ]
    assert grants(decide(site(surplus), loads, None, FLAT, NOW)) == {"ev": ev, "heater": heater}


def test_equal_priorities_without_shift_fill_the_first_one_first():
    loads = [load(n, max_w=2000, step_w=500) for n in "ab"]
    assert grants(decide(site(2500), loads, None, FLAT, NOW)) == {"a": 2000, "b": 500}


def test_equal_priorities_with_shift_take_turns():
    loads = [load(n, max_w=2000, step_w=500, priority_shift=1) for n in "ab"]
    assert grants(decide(site(2500), loads, None, FLAT, NOW)) == {"a": 1500, "b": 1000}


def test_ignore_reservation_may_use_the_reserved_watts_the_others_may_not():
    s = SurplusSettings(reservation=ReservationCurve.constant(1500), hysteresis_w=0)
    loads = [load("pump", priority=10, levels_w=(0, 1000)), load("heater", levels_w=(0, 800))]
    assert grants(decide(site(2000), loads, None, s, NOW)) == {"pump": 0, "heater": 0}
    loads[1] = load("heater", levels_w=(0, 800), ignore_reservation=True)
    d = decide(site(2000), loads, None, s, NOW)
    assert grants(d) == {"pump": 0, "heater": 800}
    assert d.allocations["pump"].reason == "not enough surplus above the battery reservation"


def test_continuous_any_amount_takes_what_is_left_above_its_minimum():
    loads = [load("ev", min_w=1400, max_w=11000), load("lamp", priority=1, levels_w=(0, 100))]
    assert grants(decide(site(2000), loads, None, FLAT, NOW)) == {"ev": 1900, "lamp": 100}
    assert grants(decide(site(1450), loads, None, FLAT, NOW)) == {"ev": 0, "lamp": 100}


def test_surplus_counts_export_battery_charge_and_our_own_draw_capped_by_pv():
    loads = [load("a", levels_w=(0, 2000), draw_w=2000)]
    d = decide(Site(100.0, 1500.0, 50.0, None, NOW), loads, None, FLAT, NOW)
    assert d.surplus_w == 3400  # import 100, battery charging 1500, our load 2000
    d = decide(Site(-500.0, 3000.0, 50.0, 1000.0, NOW), loads, None, FLAT, NOW)
    assert d.surplus_w == 1000  # grid-charging the battery is not surplus: PV caps it


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ready": False}, "not ready"),
        ({"reported_at": None}, "request expired"),
        ({"reported_at": NOW - 121}, "request expired"),
    ],
)
def test_not_ready_or_expired_consumers_get_nothing_and_are_not_counted(change, reason):
    loads = [load("a", levels_w=(0, 1000), draw_w=1000, **change)]
    d = decide(site(0), loads, None, FLAT, NOW)
    assert grants(d) == {"a": 0}
    assert d.allocations["a"].reason == reason
    assert d.surplus_w == 0


@pytest.mark.parametrize(
    ("grid", "at", "reason"),
    [(None, NOW, "no grid reading"), (-5000.0, NOW - 16, "grid reading stale (16 s old)")],
)
def test_missing_or_stale_grid_puts_everyone_off_even_held_ones(grid, at, reason):
    mem = {"a": LoadMemory(1000.0, NOW - 1, NOW - 1, None, 0.0)}
    loads = [load("a", levels_w=(0, 1000), min_on_s=600)]
    d = decide(Site(grid, 0.0, 50.0, None, at), loads, mem, FLAT, NOW)
    assert grants(d) == {"a": 0}
    assert d.stale == reason
    assert d.surplus_w is None
    assert d.memory["a"].off_at == NOW


# --- the reservation curve ----------------------------------------------------------------------


def test_es_ess_reservation_formula_sampled():
    curve = ReservationCurve.from_function(lambda soc: 5750 / (min(soc, 99) - 100) + 5750 + 250)
    assert curve.at(0) == pytest.approx(5942.5)
    assert curve.at(99) == pytest.approx(250)
    assert curve.at(100) == pytest.approx(250)
    assert curve.at(None) == curve.at(0)  # unknown SoC: the largest reservation


def test_linear_formula_and_interpolation():
    curve = ReservationCurve(((20.0, 3000.0), (90.0, 0.0)))
    assert [curve.at(s) for s in (0, 20, 55, 90, 100)] == [3000, 3000, 1500, 0, 0]


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda soc: 1 / (soc / 8) * 5000 + 1000, "fails at SoC 0 %"),
        (lambda soc: 50 * soc, "must not rise with SoC"),
        (lambda soc: float("inf"), "gives inf at SoC 0 %"),
        (lambda soc: "x", "not a number"),
    ],
)
def test_bad_formulas_are_rejected_with_the_reason(fn, message):
    with pytest.raises(ValueError, match=message):
        ReservationCurve.from_function(fn)


def test_negative_values_clamp_to_zero():
    assert ReservationCurve.from_function(lambda soc: 1000 - 20 * soc).at(100) == 0


# --- time series ----------------------------------------------------------------------------------

A = Load("A", priority=10, levels_w=(0.0, 2000.0), min_on_s=60, min_off_s=30)
B = Load("B", priority=20, levels_w=(0.0, 1000.0), min_on_s=60, min_off_s=30)


def test_slow_meter_two_consumers_never_share_the_same_watts():
    # 2000 W surplus, a meter up to 10 s late, consumers that report their draw at once
    plant = SurplusPlant([A, B], SurplusSettings(settle_s=15), lambda t: 2000.0, lag_s=8)
    rows = plant.run(60)
    assert all(r == {"A": 2000, "B": 0} for r in rows)


def test_without_feed_forward_the_slow_meter_would_double_count():
    plant = SurplusPlant([A, B], SurplusSettings(settle_s=0), lambda t: 2000.0, lag_s=8)
    rows = plant.run(20)
    assert rows[1] == {"A": 2000, "B": 1000}  # the naive rule: A's draw plus the stale export


def test_cloud_min_on_hysteresis_and_min_off_table():
    def sun(t: float) -> float:
        return 3200.0 if t < 100 else (2950.0 if t < 200 else (500.0 if t < 300 else 3200.0))

    plant = SurplusPlant([A, B], SurplusSettings(hysteresis_w=100, settle_s=10), sun)
    rows = plant.run(400)
    table = {
        int(t): (d.allocations["A"].power_w, d.allocations["B"].power_w) for t, d in plant.rows
    }
    reasons = {int(t): d.allocations["B"].reason for t, d in plant.rows}
    assert table[0] == (2000, 1000)  # both fit
    assert table[5] == (2000, 1000)
    assert reasons[5] == "settling"
    assert table[10] == (2000, 1000)
    assert reasons[10] == "min on"
    assert table[150] == (2000, 1000)  # 50 W short: hysteresis keeps both
    assert table[200] == (0, 0)  # cloud: both off (on long enough)
    assert reasons[205] == "min off (25 s left)"
    assert table[300] == (2000, 1000)  # sun back
    assert all(r in ({"A": 2000, "B": 1000}, {"A": 0, "B": 0}) for r in rows)


def test_hysteresis_only_keeps_a_running_consumer_it_does_not_start_one():
    plant = SurplusPlant([A, B], SurplusSettings(hysteresis_w=100), lambda t: 2950.0)
    assert plant.run(120)[-1] == {"A": 2000, "B": 0}


# --- the battery as a buffer (borrow_s) ---------------------------------------------------------
def test_a_dip_below_the_reservation_is_bridged_for_borrow_s_then_the_consumer_goes():
    # 1000 W reserved; 3200 W surplus fits A (2000) + 1000; at t=100 it dips to 2500 W:
    # only 1500 W above the reservation, but the whole surplus still covers A
    def sun(t: float) -> float:
        return 3200.0 if t < 100 else 2500.0

    s = SurplusSettings(
        reservation=ReservationCurve.constant(1000.0), hysteresis_w=0, settle_s=10, borrow_s=60
    )
    plant = SurplusPlant([A], s, sun)
    plant.run(300)
    table = {int(t): d.allocations["A"] for t, d in plant.rows}
    assert table[95].power_w == 2000
    assert table[95].reason in ("surplus", "min on")
    assert table[100].power_w == 2000
    assert table[100].reason == "kept from the battery reservation"
    assert table[155].power_w == 2000  # 55 s borrowed
    assert table[160].power_w == 0  # 60 s: the buffer is used up
    assert table[300].power_w == 0  # it does not start again from the reservation


def test_borrowing_never_goes_beyond_the_whole_surplus():
    s = SurplusSettings(
        reservation=ReservationCurve.constant(1000.0), hysteresis_w=0, settle_s=10, borrow_s=600
    )
    plant = SurplusPlant([A], s, lambda t: 3200.0 if t < 100 else 1900.0)
    plant.run(200)
    assert {int(t): d.allocations["A"].power_w for t, d in plant.rows}[100] == 0


def test_without_borrow_s_a_dip_below_the_reservation_ends_the_consumer():
    s = SurplusSettings(reservation=ReservationCurve.constant(1000.0), hysteresis_w=0, settle_s=10)
    plant = SurplusPlant([A], s, lambda t: 3200.0 if t < 100 else 2500.0)
    plant.run(200)
    assert {int(t): d.allocations["A"].power_w for t, d in plant.rows}[100] == 0


def test_ignore_reservation_consumers_have_nothing_to_borrow():
    ign = Load("I", priority=10, levels_w=(0.0, 2000.0), ignore_reservation=True)
    s = SurplusSettings(
        reservation=ReservationCurve.constant(1000.0), hysteresis_w=0, settle_s=0, borrow_s=600
    )
    mem = {"I": LoadMemory(2000.0, NOW - 500, NOW - 500, None, 2000.0)}
    d = decide(site(-100.0), [load("I", **_kw(ign), draw_w=2000.0)], mem, s, NOW)
    assert d.allocations["I"].power_w == 0  # 1900 W < 2000 W: the grid is never borrowed
    assert d.memory["I"].borrowing_since is None


def _kw(ld: Load) -> dict:
    return {
        "priority": ld.priority,
        "levels_w": ld.levels_w,
        "ignore_reservation": ld.ignore_reservation,
    }

"""No-battery-to-EV shift and charge-current reducer cores: tables and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.control.charge_reducer import (
    ReducerInputs,
    ReducerSettings,
    SocFormula,
    next_shift_w,
)
from venus_ems.control.no_bat_to_ev import CarShiftInputs, car_shift_w, total_w

# --- no battery to EV ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("car", "cons", "pv", "shift"),
    [
        (11000.0, 11500.0, 0.0, 11000.0),  # night: the whole car from the grid
        (11000.0, 11500.0, 3000.0, 8500.0),  # PV covers the house, the rest of the car from grid
        (2000.0, 2500.0, 4000.0, 0.0),  # surplus covers everything: no shift
        (2000.0, 2500.0, 1000.0, 1500.0),  # house 500 from PV, car 1500 grid + 500 PV
        (50.0, 550.0, 0.0, None),  # car below 100 W: not charging, release
        (None, 550.0, 0.0, None),  # car unknown (stale): release
        (3000.0, None, 0.0, None),
        (3000.0, 3500.0, None, None),
    ],
)
def test_car_shift_table(car, cons, pv, shift):
    assert car_shift_w(CarShiftInputs(car, cons, pv)) == shift


def test_off_grid_releases():
    assert car_shift_w(CarShiftInputs(3000.0, 3500.0, 0.0, grid_present=False)) is None


def test_single_phase_sums_skip_missing_phases():
    assert total_w([500.0, None, None]) == 500.0
    assert total_w([None, None]) is None
    assert total_w([float("nan"), 3.0]) == 3.0


power = st.floats(0, 30000, allow_nan=False)


@settings(max_examples=300)
@given(power, power, power)
def test_property_battery_never_feeds_the_car(car, house, pv):
    """With the shift, the battery covers at most the house's deficit, never the car."""
    cons = house + car
    shift = car_shift_w(CarShiftInputs(car, cons, pv)) or 0.0
    assert 0.0 <= shift <= car
    battery_discharge = max(cons - pv - shift, 0.0)  # ESS holds grid at target + shift
    idle = car if car < 100.0 else 0.0  # below 100 W the car is not charging
    assert battery_discharge <= max(house - pv, 0.0) + idle + 1e-6
    # and no more import than needed: grid never covers PV that would otherwise charge
    assert shift <= max(cons - pv, 0.0) + 1e-6


# --- charge-current reducer ---------------------------------------------------------------------


def test_formula_is_checked():
    f = SocFormula("max(100 - soc, 30)")
    assert f.limit_a(20) == 80
    assert f.limit_a(90) == 30
    for bad in ("", "soc - 200", "__import__('os')", "soc < 5", "open('x')", "'a'", "1/0"):
        with pytest.raises(ValueError):
            SocFormula(bad)
    with pytest.raises(ValueError):
        SocFormula("x" * 300)


def test_reducer_time_series():
    """Battery at 80 A, limit 30 A at SoC 90: export grows until the excess is gone."""
    f, s = SocFormula("max(100 - soc, 30)"), ReducerSettings(gain=0.5, max_export_w=5000)
    shift, current, table = 0.0, 80.0, []
    for _ in range(20):
        shift = next_shift_w(ReducerInputs(current, 50.0, 90.0), shift, f, s)
        assert shift is not None
        current = 80.0 + shift / 50.0  # every W exported is a W less into the battery
        table.append((round(shift), round(current, 1)))
    assert table[0] == (-1250, 55.0)
    assert table[-1][1] == pytest.approx(30.0, abs=1.0)
    # PV drops: the battery takes 10 A only, the shift relaxes back to 0
    for _ in range(30):
        shift = next_shift_w(ReducerInputs(10.0, 50.0, 90.0), shift, f, s)
    assert shift == 0.0
    assert next_shift_w(ReducerInputs(None, 50.0, 90.0), -500.0, f, s) is None


@settings(max_examples=200)
@given(
    st.floats(-300, 300, allow_nan=False),
    st.floats(10, 60),
    st.floats(0, 100),
    st.floats(-5000, 0),
)
def test_property_shift_only_reduces_and_is_bounded(current, volts, soc, shift):
    f, s = SocFormula("max(100 - soc, 30)"), ReducerSettings()
    new = next_shift_w(ReducerInputs(current, volts, soc), shift, f, s)
    assert new is not None
    assert -s.max_export_w <= new <= 0.0
    if current <= f.limit_a(soc):
        assert new >= shift  # below the limit it never exports more

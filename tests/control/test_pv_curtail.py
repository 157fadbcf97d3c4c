"""PV curtailment core: when to limit, by how much, when to let go; safe on bad readings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.control.pv_curtail import (
    CurtailInputs,
    CurtailSettings,
    CurtailState,
    charge_room_w,
    decide,
)

S = CurtailSettings(aim_w=25.0, band_w=50.0, effect_delay_s=4.0, stale_after_s=10.0)


def x(t: float, grid: float, pv: float, room: float | None, top: float = 3000.0):
    return CurtailInputs(grid, t, pv, top, room)


def test_time_series_full_battery_then_room_again():
    """t s, grid W, PV W, room W -> limit W in force afterwards (None = released)."""
    rows = [
        (1, 30.0, 2000.0, 0.0, None),  # at the aim: nothing to do
        (2, -800.0, 2000.0, 0.0, 1175.0),  # export the battery cannot take: limit at once
        (3, -300.0, 1500.0, 0.0, 1175.0),  # within the effect delay: hold
        (6, 20.0, 1175.0, 0.0, 1175.0),  # at the aim: in band
        (7, 200.0, 1175.0, 0.0, 1350.0),  # the house draws more: the limit follows up
        (12, 25.0, 1350.0, 2000.0, None),  # the battery has room: released (reaches MaxPower)
    ]
    state = CurtailState()
    for t, grid, pv, room, want in rows:
        d = decide(x(t, grid, pv, room), state, S, t)
        state = d.next_state
        assert d.limit_w == want, (t, d)


def test_export_the_multi_can_still_take_is_left_to_the_ess_loop():
    d = decide(x(1, -800.0, 2000.0, 900.0), CurtailState(), S, 1)
    assert d.limit_w is None


def test_clouds_release_a_limit_that_no_longer_binds():
    state = CurtailState(limit_w=1500.0, sent_at=0.0, used_at=0.0)
    d = decide(x(10, 600.0, 400.0, 0.0), state, S, 10)
    assert d.limit_w is None
    assert "no longer binds" in d.reason


@pytest.mark.parametrize(
    "inputs",
    [
        CurtailInputs(None, None, 1000.0, 3000.0, 0.0),
        CurtailInputs(-500.0, 1.0, None, 3000.0, 0.0),
        CurtailInputs(-500.0, 1.0, 1000.0, None, 0.0),
        CurtailInputs(-500.0, -20.0, 1000.0, 3000.0, 0.0),  # stale
        CurtailInputs(float("nan"), 1.0, 1000.0, 3000.0, 0.0),
    ],
)
def test_missing_stale_or_bad_readings_release(inputs):
    d = decide(inputs, CurtailState(limit_w=800.0, sent_at=0.0), S, 1.0)
    assert d.limit_w is None
    assert "released" in d.reason


def test_settings_are_checked():
    with pytest.raises(ValueError, match="band_w"):
        CurtailSettings(band_w=0.0)
    with pytest.raises(ValueError, match="aim_w"):
        CurtailSettings(aim_w=math.inf)


def test_charge_room():
    assert charge_room_w(None, 100.0, 0.0, 9000.0, 0.9) is None
    assert charge_room_w(2000.0, 2500.0, 0.0, 9000.0, 0.9) == 0.0  # DC PV fills CCL: none
    assert charge_room_w(2000.0, 1100.0, 0.0, 9000.0, 0.9) == pytest.approx(1000.0)
    assert charge_room_w(9000.0, 0.0, 8500.0, 9000.0, 0.9) == 500.0  # charger rating


@given(
    grid=st.floats(-20_000, 20_000),
    pv=st.floats(0, 10_000),
    room=st.one_of(st.none(), st.floats(0, 20_000)),
    limit=st.one_of(st.none(), st.floats(0, 10_000)),
    top=st.floats(1, 10_000),
)
def test_properties(grid, pv, room, limit, top):
    if limit is not None:
        limit = min(limit, 0.99 * top)  # a limit in force is below MaxPower
    state = CurtailState(limit_w=limit, sent_at=0.0, used_at=0.0)
    d = decide(x(10, grid, pv, room, top), state, S, 10)
    if d.limit_w is not None:
        assert 0.0 <= d.limit_w < top  # never negative, never a limit at MaxPower
    if limit is None and grid >= S.aim_w - S.band_w:
        assert d.limit_w is None  # no export beyond the band: nothing is ever limited
    if limit is not None and d.limit_w is not None and grid > S.aim_w + S.band_w:
        assert d.limit_w >= min(limit, pv)  # importing: the limit never goes down

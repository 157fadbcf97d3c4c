"""The dead band and aim sized to the Multi's low-power error; feed-forward of AC-in producers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_grid_target_tables import Row, inputs_for

from venus_ems.control import (
    ActuationState,
    ActuatorSettings,
    EssMethod,
    GridControlSettings,
    GridTargetSettings,
)
from venus_ems.control.ess import make_view
from venus_ems.control.grid_target import decide
from venus_ems.control.noise import multi_noise_w, noise_band

NOISY = ActuatorSettings(
    method=EssMethod.MODE3,
    phases=1,
    dead_time_s=1.0,
    low_power_error_w=100.0,
    meter_noise_w=5.0,
)
SETTINGS = GridControlSettings(NOISY, GridTargetSettings())


def view_at(conv_w: float, grid_w: float = 25.0, settings: ActuatorSettings = NOISY):
    row = Row(t=10.0, grid=grid_w, expect=None, acin=conv_w + 200.0, out=200.0)
    state = ActuationState(command_w=(conv_w + 200.0,), sent_at=0.0)
    return make_view(inputs_for(row), state, settings, 10.0)


@pytest.mark.parametrize(
    ("conv_w", "lo", "hi"),
    [(0.0, 99.0, 101.0), (-100.0, 50.0, 53.0), (-1000.0, 5.0, 5.1), (2000.0, 5.0, 5.1)],
)
def test_error_is_large_only_at_low_power(conv_w, lo, hi):
    # MultiPlus: 10 W -> +/-100 W, 100 W -> +/-50 %; at high power only the meter's 5 W remain
    assert lo <= multi_noise_w(view_at(conv_w)) <= hi


def test_aim_rises_only_where_the_error_is_large():
    low, nb_low = noise_band(view_at(-60.0), GridTargetSettings(), 25.0, 25.0)
    high, nb_high = noise_band(view_at(-2000.0), GridTargetSettings(), 25.0, 25.0)
    assert high.dead_band_w == 25.0  # configured band at high power
    assert nb_high.band_w == 25.0
    assert low.dead_band_w > 25.0  # the aim keeps one error off zero export
    assert nb_low.band_w == pytest.approx(3 * nb_low.noise_w)
    assert nb_low.slack_w == pytest.approx(nb_low.band_w - low.dead_band_w)


def test_off_by_default_in_the_core():
    plain = replace(NOISY, low_power_error_w=0.0, meter_noise_w=0.0)
    assert multi_noise_w(view_at(0.0, settings=plain)) == 0.0


@given(st.floats(-80.0, 80.0))
def test_an_error_the_noise_explains_is_not_chased(offset):
    """At 100 W of conversion the error is +/-50 W: one reading up to 80 W off is held."""
    row = Row(t=10.0, grid=25.0 + offset, expect=None, acin=-100.0 + 200.0, out=200.0)
    state = ActuationState(command_w=(100.0,), sent_at=0.0, last_sample_at=9.0)
    d = decide(inputs_for(row), state, SETTINGS, 10.0)
    assert d.commands == ()


def test_a_persistent_error_is_acted_on_after_the_confirmation():
    state = ActuationState(command_w=(100.0,), sent_at=0.0, last_sample_at=9.0)
    acted = []
    for t in range(10, 16):
        row = Row(t=float(t), grid=150.0, expect=None, acin=100.0, out=200.0)
        d = decide(inputs_for(row), state, SETTINGS, float(t))
        state = d.next_state
        acted.append(bool(d.commands))
    assert acted[0] is False  # one reading off the band: could be noise
    assert any(acted[1:5])  # still off after the confirmation time: acted on


def test_ac_in_producers_are_fed_forward_within_the_dead_time():
    base = Row(t=10.0, grid=25.0, expect=None, acin=1200.0, out=200.0)
    state = ActuationState(command_w=(1200.0,), sent_at=9.5, producers_w=1000.0)
    inputs = replace(inputs_for(base), acin_producers_w=1600.0)  # the PV rose by 600 W
    d = decide(inputs, state, SETTINGS, 10.0)
    (cmd,) = d.commands
    assert cmd.total_w == 1800.0  # the Multi takes the 600 W before the grid shows them
    assert d.next_state.producers_w == 1600.0
    small = replace(inputs_for(base), acin_producers_w=1030.0)
    assert decide(small, state, SETTINGS, 10.0).commands == ()

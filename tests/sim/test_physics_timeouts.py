"""Victron's own timeouts in the physics: they run on simulated time at every step, whatever the
meter does (a controller that died takes its meter with it; the Multi does not wait for one)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.sim.physics import (
    AC_IN,
    MeterParams,
    MultiParams,
    PvInverterParams,
    Site,
    SiteParams,
)


def make_site(phases: int = 1, **multi) -> Site:
    site = Site(
        SiteParams(
            multi=MultiParams(phases=phases, low_power_error_w=0.0, **multi),
            meter=MeterParams(noise_w=0.0, quantisation_w=0.0),
            pv_inverter=PvInverterParams(rated_power_w=3000.0, position=AC_IN, phase=1),
        )
    )
    site.set_inputs([400.0] * phases, pv_ac_w=2500.0)
    return site


def run(site: Site, seconds: float, dt: float = 1.0) -> None:
    for _ in range(round(seconds / dt)):
        site.step(dt)


# --- mode 3 -------------------------------------------------------------------------------


@pytest.mark.parametrize("meter", ["internal-off", "external-silent"])
def test_mode3_falls_back_60_s_after_the_last_write_without_any_meter_sample(meter):
    """The 140 s bug: the setpoint expired only when a meter sample arrived."""
    site = make_site()
    site.set_ess_setting("hub4_mode", 3)
    if meter == "internal-off":
        site.set_meter_connected(False)
    else:
        site.feed_external_meter([0.0])  # one sample, then the meter's process dies
    site.set_vebus_setpoint(1, -1500.0)  # export 1.5 kW at AC-in
    written_at = site.time
    # seconds after the last write -> passthrough, AC-in W (window). A step applies the timeout
    # as of its start, so with 1 s steps the fallback shows at the end of the step after 60 s.
    table = {
        10: (False, (-1510.0, -1490.0)),
        60: (False, (-1510.0, -1490.0)),
        62: (True, None),
        80: (True, (419.0, 421.0)),  # passthrough: AC-out load (400) and idle (20) from AC-in
    }
    for t, (passthrough, window) in sorted(table.items()):
        run(site, written_at + t - site.time)
        s = site.state()
        assert s.ess.mode3_passthrough == (passthrough,), t
        if window is not None:
            lo, hi = window
            assert lo <= s.multi.acin_w[0] <= hi, (t, s.multi.acin_w)


@settings(max_examples=60, deadline=None)
@given(
    phases=st.integers(1, 3),
    timeout=st.floats(5.0, 90.0),
    dt=st.sampled_from([0.1, 0.25, 0.5, 1.0]),
    writes=st.lists(st.tuples(st.integers(1, 3), st.floats(0.0, 200.0)), max_size=6),
    meter_period=st.sampled_from([1.0, 7.0, 1000.0]),
)
def test_mode3_passthrough_is_exactly_the_timeout_since_each_phase_was_written(
    phases, timeout, dt, writes, meter_period
):
    site = Site(
        SiteParams(
            multi=MultiParams(phases=phases, mode3_timeout_s=timeout, low_power_error_w=0.0),
            meter=MeterParams(update_period_s=meter_period, noise_w=0.0),
        )
    )
    site.set_ess_setting("hub4_mode", 3)
    site.set_inputs([300.0] * phases)
    last = [None] * phases
    for phase, at in sorted(writes, key=lambda w: w[1]):
        if phase > phases:
            continue
        run(site, at - site.time, dt) if at > site.time else None
        site.set_vebus_setpoint(phase, 500.0)
        last[phase - 1] = site.time
    end = site.time + timeout + 5.0
    while site.time < end:
        site.step(dt)
        s = site.state()
        # the step that started at time - dt applied the timeout as of its start
        at = site.time - dt
        expected = tuple(w is None or at - w > timeout for w in last)
        assert s.ess.mode3_passthrough == expected, (at, last)


# --- hub4 overrides ------------------------------------------------------------------------


def test_hub4_overrides_have_no_timeout_by_default():
    """hub4control's timeout is undocumented: the simulator assumes the worst, none."""
    site = make_site()
    site.set_hub4_setpoint_override(-800.0)
    site.set_hub4_max_discharge_override(250.0)
    site.set_hub4_force_charge(1)
    site.set_hub4_feed_in_excess(2)
    site.set_meter_connected(False)
    run(site, 3600)
    o = site.state().ess.overrides
    assert (o.setpoint_w, o.max_discharge_power_w, o.force_charge, o.feed_in_excess) == (
        -800.0,
        250.0,
        1,
        2,
    )


@pytest.mark.parametrize("dt", [0.5, 1.0])
def test_hub4_overrides_expire_one_by_one_when_a_timeout_is_modelled(dt):
    site = make_site(hub4_override_timeout_s=30.0)
    site.set_meter_connected(False)  # no sample involved
    site.set_hub4_setpoint_override(-800.0)
    run(site, 10, dt)
    site.set_hub4_max_discharge_override(250.0)
    run(site, 19, dt)
    assert site.state().ess.overrides.setpoint_w == -800.0  # 29 s
    run(site, 2, dt)
    o = site.state().ess.overrides
    assert o.setpoint_w is None  # 31 s after its write: back to the setting
    assert o.max_discharge_power_w == 250.0  # written 21 s ago
    site.set_hub4_max_discharge_override(250.0)  # a rewrite restarts its timeout
    run(site, 29, dt)
    assert site.state().ess.overrides.max_discharge_power_w == 250.0
    run(site, 2, dt)
    assert site.state().ess.overrides.max_discharge_power_w == -1.0


def test_a_restarted_hub4_starts_from_the_defaults():
    site = make_site()
    site.set_hub4_setpoint_override(-800.0)
    site.set_hub4_max_discharge_override(250.0)
    site.restart_hub4()
    o = site.state().ess.overrides
    assert (o.setpoint_w, o.max_discharge_power_w, o.force_charge, o.feed_in_excess) == (
        None,
        -1.0,
        0,
        0,
    )


# --- pvinverter /Ac/PowerLimit ----------------------------------------------------------------


@pytest.mark.parametrize("dt", [0.2, 1.0])
def test_pv_power_limit_is_released_60_s_after_the_last_write(dt):
    site = make_site()
    site.set_meter_connected(False)
    site.set_pv_inverter_limit(1000.0)
    written_at = site.time
    run(site, 59.0, dt)
    s = site.state()
    assert s.pv_inverter.power_limit_w == 1000.0
    assert s.pv_inverter.power_w == pytest.approx(1000.0, abs=1)
    run(site, written_at + 61.0 - site.time, dt)
    s = site.state()
    assert s.pv_inverter.power_limit_w is None  # dbus-fronius: back to MaxPower
    run(site, 20, dt)
    assert site.state().pv_inverter.power_w == pytest.approx(2500.0, abs=5)

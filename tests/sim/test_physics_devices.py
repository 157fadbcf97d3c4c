"""Micro-inverters (dead time, ramp), EV charger, heater, relays, grid meter, bad input."""

from __future__ import annotations

import math
import statistics

import pytest

from venus_ems.errors import ConfigError
from venus_ems.sim.physics import (
    LIMIT_FAILURE,
    LIMIT_OK,
    LIMIT_PENDING,
    BatteryParams,
    EvChargerParams,
    HeaterParams,
    MeterParams,
    MicroInverterParams,
    MultiParams,
    RelayParams,
    Site,
    SiteParams,
)

SERIAL = "114190000001"


def micro_site(dead=8.0, ramp=100.0, **kw) -> Site:
    return Site(
        SiteParams(
            multi=MultiParams(phases=1, low_power_error_w=0.0),
            meter=MeterParams(noise_w=0.0),
            micro_inverters=(
                MicroInverterParams(
                    serial=SERIAL, max_power_w=800, dead_time_s=dead, ramp_w_per_s=ramp
                ),
            ),
            **kw,
        )
    )


def test_micro_limit_applies_after_dead_time_then_ramps():
    site = micro_site()
    site.set_inputs([0.0])
    site.set_micro_limit(SERIAL, 500)
    rows = []
    for _ in range(16):
        site.step(1.0)
        m = site.state().micro_inverters[0]
        rows.append((round(site.time), round(m.ac_power_w), m.limit_set_status))
    # t(s) -> AC W, limit status: nothing for the dead time, then 100 W/s up to the limit.
    expected = {
        1: (0, LIMIT_PENDING),
        7: (0, LIMIT_PENDING),
        9: (100, LIMIT_OK),
        10: (200, LIMIT_OK),
    }
    expected |= {12: (400, LIMIT_OK), 13: (500, LIMIT_OK), 16: (500, LIMIT_OK)}
    got = {t: (w, st) for t, w, st in rows}
    for t, want in expected.items():
        assert got[t] == want, rows
    m = site.state().micro_inverters[0]
    assert m.limit_absolute_w == 500
    assert m.limit_relative_pct == pytest.approx(62.5)
    assert m.dc_power_w == pytest.approx(500 / 0.95)
    assert m.producing
    assert m.reachable
    assert m.ac_current_a == pytest.approx(500 / m.ac_voltage_v)


def test_micro_relative_limit_ramp_down_and_off():
    site = micro_site(dead=3.0, ramp=200.0)
    site.set_inputs([0.0])
    site.set_micro_limit(SERIAL, 100, relative=True)
    for _ in range(10):
        site.step(1.0)
    assert site.micros[SERIAL].power_w == 800
    site.set_micro_limit(SERIAL, 25, relative=True)
    powers = []
    for _ in range(8):
        site.step(1.0)
        powers.append(site.micros[SERIAL].power_w)
    assert powers[:2] == [800, 800]
    assert powers[3:6] == [600, 400, 200]
    site.set_micro_power(SERIAL, False)
    for _ in range(5):
        site.step(1.0)
    m = site.state().micro_inverters[0]
    assert not m.on
    assert m.ac_power_w == 0.0
    assert not m.producing


def test_micro_unreachable_fails_the_command_and_keeps_producing():
    site = micro_site(dead=3.0)
    site.set_inputs([0.0])
    site.set_micro_limit(SERIAL, 300)
    for _ in range(10):
        site.step(1.0)
    site.set_micro_reachable(SERIAL, False)
    site.set_micro_limit(SERIAL, 0)
    for _ in range(5):
        site.step(1.0)
    m = site.state().micro_inverters[0]
    assert m.limit_set_status == LIMIT_FAILURE
    assert m.ac_power_w == 300
    assert m.limit_absolute_w == 300


def test_micro_dead_time_jitter_is_seeded():
    def first_power_time(seed):
        params = MicroInverterParams(serial=SERIAL, dead_time_s=5, dead_time_jitter_s=10)
        site = Site(SiteParams(multi=MultiParams(phases=1), micro_inverters=(params,), seed=seed))
        site.set_inputs([0.0])
        site.set_micro_limit(SERIAL, 100)
        while site.micros[SERIAL].power_w == 0:
            site.step(1.0)
        return site.time

    times = [first_power_time(s) for s in range(6)]
    assert times == [first_power_time(s) for s in range(6)]
    assert all(6 <= t <= 16 for t in times)
    assert len(set(times)) > 1


def test_micro_draws_from_the_battery_and_stops_when_empty():
    site = micro_site(dead=3.0, ramp=1000.0, battery=BatteryParams(capacity_ah=0.5, initial_soc=20))
    site.set_ess_setting("hub4_mode", 3)  # Multi passthrough: nothing else touches the battery
    site.set_inputs([0.0])
    site.set_micro_limit(SERIAL, 800)
    site.set_battery_fault(dcl_a=5.0)
    for _ in range(200):
        site.step(1.0)
    s = site.state()
    assert s.battery.soc < 0.01
    assert s.micro_inverters[0].ac_power_w < 5.0
    # nothing clamps battery-fed inverters to the DCL: the controller must; the site counts it
    assert s.battery.dcl_exceeded_s > 5


def ev_site(**kw) -> Site:
    return Site(SiteParams(multi=MultiParams(phases=3), ev_charger=EvChargerParams(**kw)))


def test_ev_phase_switch_pauses_then_charges_on_three_phases():
    site = ev_site(initial_phases=1, initial_current_a=10, phase_switch_pause_s=30)
    site.set_inputs([0.0, 0.0, 0.0])
    site.ev_plug_in(20.0)
    for _ in range(5):
        site.step(1.0)
    s = site.state().ev_charger
    assert s.status == 2
    assert s.power_w == pytest.approx(2300)
    assert s.phase_w[1] == 0
    site.set_ev_phases(3)
    site.step(1.0)
    assert site.state().ev_charger.status == 22  # switching to 3 phases (gui-v2: 22 to 3, 23 to 1)
    assert site.ev.power_w == 0
    for _ in range(35):
        site.step(1.0)
    s = site.state().ev_charger
    assert s.phases == 3
    assert s.power_w == pytest.approx(6900)
    assert s.phase_w == pytest.approx((2300, 2300, 2300))
    site.set_ev_current(40)  # clamped to the charger maximum
    site.step(1.0)
    assert site.ev.current_setpoint_a == 16


def test_ev_stops_at_the_requested_energy_and_follows_the_car_taper():
    site = ev_site(ramp_time_s=0)
    site.set_inputs([0.0, 0.0, 0.0])
    site.ev_plug_in(0.5, taper=((0.0, 11000.0), (0.25, 1000.0)))
    powers = []
    while site.ev.status(site.time) != 3 and site.time < 3600:
        site.step(1.0)
        powers.append(site.ev.power_w)
    assert site.ev.session_kwh == pytest.approx(0.5, abs=1e-9)
    assert max(powers) == 11000
    assert 1000 in powers
    site.set_ev_enabled(False)
    site.ev_unplug()
    site.step(1.0)
    assert site.state().ev_charger.status == 0


def test_heater_levels_thermostat_and_relay():
    site = Site(
        SiteParams(
            multi=MultiParams(phases=1),
            heater=HeaterParams(tank_litres=10, initial_temperature_c=80, thermostat_c=85),
            relays=(RelayParams("pump", 600),),
        )
    )
    site.set_inputs([0.0])
    assert site.set_heater_power(1600) == 1500
    site.set_relay("pump", True)
    site.step(1.0)
    s = site.state()
    assert s.heater.coils == (True, True, False)
    assert s.heater.power_w == 1500
    assert s.relays[0].power_w == 600
    assert s.consumption_w[0] == pytest.approx(2100)
    for _ in range(300):
        site.step(1.0)
    s = site.state()
    assert s.heater.thermostat_open
    assert s.heater.power_w == 0
    assert 80 < s.heater.temperature_c < 86


def test_meter_updates_at_1_hz_with_noise_and_quantisation():
    site = Site(
        SiteParams(
            multi=MultiParams(phases=1, low_power_error_w=0.0),
            meter=MeterParams(noise_w=20.0, quantisation_w=10.0),
            seed=7,
        )
    )
    site.set_ess_setting("hub4_mode", 3)
    site.set_inputs([1000.0])
    readings, times = [], []
    for _ in range(2000):
        site.step(0.25)
        readings.append(site.state().grid.meter_w[0])
        times.append(site.meter.sample_time)
    assert len(set(times)) in (500, 501)  # one sample per second at dt = 0.25
    assert all(r % 10 == 0 for r in readings)
    samples = readings[::4]
    assert statistics.mean(samples) == pytest.approx(1020, abs=3)
    assert 15 < statistics.pstdev(samples) < 25
    assert site.state().grid.true_w[0] == pytest.approx(1020)
    assert site.state().grid.forward_kwh[0] == pytest.approx(1020 * 500 / 3.6e6)


def test_same_seed_same_run_different_seed_different_noise():
    def trace(seed):
        site = Site(SiteParams(multi=MultiParams(phases=1), seed=seed))
        site.set_inputs([700.0])
        return [(site.step(1.0), site.meter.reading_w[0])[1] for _ in range(50)]

    assert trace(1) == trace(1)
    assert trace(1) != trace(2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.set_ess_setting("hub4_mode", 5), "hub4_mode"),
        (lambda s: s.set_ess_setting("/Settings/CGwacs/MaxFeedInPower", -5), "-1"),
        (lambda s: s.set_ess_setting("minimum_soc_limit", 120), "0..100"),
        (lambda s: s.set_ess_setting("nope", 1), "unknown"),
        (lambda s: s.set_ess_setting("ac_power_setpoint_w", math.nan), "finite"),
        (lambda s: s.set_hub4_setpoint_override("100"), "finite"),
        (lambda s: s.set_hub4_feed_in_excess(3), "FeedInExcess"),
        (lambda s: s.set_vebus_setpoint(2, 100), "phase"),
        (lambda s: s.set_vebus_mode(7), "mode"),
        (lambda s: s.set_micro_limit("999", 100), "serial"),
        (lambda s: s.set_micro_limit(SERIAL, 150, relative=True), "relative"),
        (lambda s: s.set_micro_limit(SERIAL, -1), "0..2250"),
        (lambda s: s.set_relay("x", True), "relay"),
        (lambda s: s.set_ev_current(10), "EV"),
        (lambda s: s.set_inputs([1.0, 2.0]), "values"),
        (lambda s: s.set_inputs([math.nan]), ">= 0"),
        (lambda s: s.set_inputs([10.0], pv_dc_w=-1), ">= 0"),
        (lambda s: s.step(2.0), "dt"),
        (lambda s: s.step(0.0), "dt"),
    ],
)
def test_bad_writes_raise_and_change_nothing(call, match):
    site = micro_site()
    site.set_inputs([300.0])
    site.step(1.0)
    before = site.state()
    with pytest.raises(ValueError, match=match):
        call(site)
    assert site.state() == before


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MicroInverterParams(serial="1", dead_time_s=30), "dead_time_s"),
        (lambda: MicroInverterParams(serial="a-b"), "serial"),
        (lambda: BatteryParams(capacity_ah=0), "capacity_ah"),
        (lambda: MultiParams(phases=4), "phases"),
        (lambda: MeterParams(quantisation_w=1e-300), "quantisation_w"),
        (
            lambda: SiteParams(
                multi=MultiParams(phases=1), relays=(RelayParams("r", 10, phase=3),)
            ),
            "exceeds",
        ),
        (
            lambda: SiteParams(
                micro_inverters=(MicroInverterParams(serial="1"), MicroInverterParams(serial="1"))
            ),
            "unique",
        ),
    ],
)
def test_bad_parameters_raise_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()

"""EV physics: the charger's per-phase load, the car's battery and taper, sessions from data."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venus_ems.errors import ConfigError
from venus_ems.sim.physics import (
    AC_IN,
    AC_OUT,
    Car,
    EvChargerParams,
    MultiParams,
    Site,
    SiteParams,
)
from venus_ems.sim.physics.ev import EvCharger
from venus_ems.sim.scenarios import get_scenario, iter_scenario

V = 230.0


def site_with(phases=3, **kw) -> Site:
    return Site(SiteParams(multi=MultiParams(phases=phases), ev_charger=EvChargerParams(**kw)))


def run(site: Site, seconds: float, dt: float = 1.0) -> None:
    for _ in range(round(seconds / dt)):
        site.step(dt)


@pytest.mark.parametrize(
    ("car_phases", "charger_phase", "expected"),
    [
        (1, 2, (0, 1, 0)),  # a single-phase car loads the charger's L1: site L2
        (2, 3, (1, 0, 1)),  # a 2-phase car from L3: L3 then L1
        (3, 1, (1, 1, 1)),
    ],
)
def test_the_car_loads_only_its_phases_from_the_chargers_l1(car_phases, charger_phase, expected):
    site = site_with(phase=charger_phase, ramp_time_s=0, initial_current_a=10)
    site.set_inputs([0.0, 0.0, 0.0])
    site.ev_plug_in_car(Car(phases=car_phases))
    run(site, 3)
    ev = site.state().ev_charger
    assert ev.phase_w == pytest.approx(tuple(e * 10 * V for e in expected))
    assert ev.power_w == pytest.approx(car_phases * 10 * V)
    assert ev.phases_in_use == car_phases
    assert ev.phase_current_a == pytest.approx(
        tuple(10.0 if k < car_phases else 0 for k in range(3))
    )


def test_on_ac_in_the_load_bypasses_the_multi():
    out, inn = (site_with(position=p, ramp_time_s=0) for p in (AC_OUT, AC_IN))
    for site in (out, inn):
        site.set_inputs([0.0, 0.0, 0.0])
        site.set_ess_setting("hub4_mode", 3)  # mode 3 with no setpoints: passthrough
        site.ev_plug_in_car(Car())
        run(site, 5)
    assert sum(inn.load_in_w) == pytest.approx(3 * 16 * V)
    assert sum(inn.load_out_w) == 0
    assert sum(out.load_out_w) == pytest.approx(3 * 16 * V)
    assert sum(out.state().multi.acout_w) == pytest.approx(3 * 16 * V)
    assert sum(inn.state().multi.acout_w) == pytest.approx(0, abs=1e-9)


def test_acceptance_tapers_near_full_then_the_car_stops():
    site = site_with(ramp_time_s=0)
    site.set_inputs([0.0, 0.0, 0.0])
    site.ev_plug_in_car(Car(capacity_kwh=20, soc_pct=85, taper_start_pct=90, efficiency=1.0))
    currents, socs = [], []
    while site.state().ev_charger.status != 3 and site.time < 4 * 3600:
        run(site, 10)
        ev = site.state().ev_charger
        currents.append(ev.phase_current_a[0])
        socs.append(ev.car_soc_pct)
    assert max(currents) == pytest.approx(16)  # below 90 %: the charger's offer
    tail = [a for a, s in zip(currents, socs, strict=True) if s > 90.5]
    assert tail == sorted(tail, reverse=True)  # falling off as the battery fills
    assert tail[-1] == 0  # complete: nothing more
    assert 0 < [a for a in tail if a > 0][-1] < 2  # the car stopped near its 1 A stop current
    assert 99 < socs[-1] <= 100
    assert site.state().ev_charger.power_w == 0


def test_a_session_stops_at_the_target_soc():
    site = site_with(ramp_time_s=0)
    site.set_inputs([0.0, 0.0, 0.0])
    site.ev_plug_in_car(Car(capacity_kwh=10, soc_pct=50, target_soc_pct=60, efficiency=0.9))
    run(site, 3600)
    ev = site.state().ev_charger
    assert ev.status == 3
    assert ev.car_soc_pct == pytest.approx(60)
    assert ev.session_kwh == pytest.approx(1.0 / 0.9)  # 1 kWh into the car through 90 %


def test_car_parameters_are_checked():
    for bad in ({"phases": 4}, {"soc_pct": 101}, {"capacity_kwh": 0}, {"efficiency": 0},
                {"target_soc_pct": 0}, {"profile": ((0.0, -1.0),)}):  # fmt: skip
        with pytest.raises(ConfigError):
            Car(**bad)


cars = st.builds(
    Car,
    capacity_kwh=st.floats(1, 100),
    soc_pct=st.floats(0, 100),
    target_soc_pct=st.floats(1, 100),
    phases=st.sampled_from([1, 2, 3]),
    max_current_a=st.floats(1, 32),
    taper_start_pct=st.floats(0, 100),
    stop_current_a=st.floats(0, 3),
    efficiency=st.floats(0.5, 1),
    profile=st.lists(st.tuples(st.floats(0, 5), st.floats(0, 11000)), max_size=3).map(
        lambda p: tuple(sorted(p))
    ),
)
commands = st.one_of(
    st.tuples(st.just("current"), st.floats(0, 40)),
    st.tuples(st.just("phases"), st.sampled_from([1, 3])),
    st.tuples(st.just("enabled"), st.booleans()),
    st.tuples(st.just("plug"), cars),
    st.tuples(st.just("unplug"), st.none()),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phases=st.sampled_from([1, 3]),
    charger=st.builds(
        EvChargerParams,
        phase=st.just(1) | st.integers(1, 3),
        position=st.sampled_from([AC_OUT, AC_IN]),
        phase_switch_pause_s=st.floats(0, 60),
        ramp_time_s=st.floats(0, 5),
        initial_phases=st.sampled_from([1, 3]),
    ),
    car=cars,
    dt=st.sampled_from([0.25, 1.0]),
    script=st.lists(st.tuples(commands, st.integers(1, 40)), min_size=1, max_size=8),
)
def test_ev_physics_keeps_the_books(phases, charger, car, dt, script):
    if charger.phase > phases:
        charger = EvChargerParams(**{**charger.__dict__, "phase": 1})
    site = Site(SiteParams(multi=MultiParams(phases=phases), ev_charger=charger))
    site.set_inputs([300.0] * phases, pv_dc_w=2000.0)
    site.ev_plug_in_car(car)
    ev: EvCharger = site.ev
    for (kind, arg), steps in script:
        if kind == "current":
            site.set_ev_current(arg)
        elif kind == "phases":
            site.set_ev_phases(arg)
        elif kind == "enabled":
            site.set_ev_enabled(arg)
        elif kind == "plug":
            site.ev_plug_in_car(arg)
        else:
            site.ev_unplug()
        for _ in range(steps):
            before = (ev.session_kwh, ev.car_energy_kwh, ev.car_soc_pct)
            flows = site.step(dt)
            assert abs(flows.residual_w) < 1e-6 * max(1.0, flows.loads_w)
            state = site.state().ev_charger
            assert sum(state.phase_w) == pytest.approx(ev.power_w, abs=1e-6)
            assert min(state.phase_w) >= 0
            n = ev.phases_in_use
            assert ev.power_w <= ev.current_setpoint_a * V * n + 1e-6
            assert max(state.phase_current_a) <= ev.params.max_current_a + 1e-9
            if ev.car is None or not ev.enabled or ev.switching(site.time - dt):
                assert ev.power_w == 0
            else:
                assert max(state.phase_current_a) <= ev.car.max_current_a + 1e-9
            delivered = ev.session_kwh - before[0]
            assert delivered == pytest.approx(ev.power_w * dt / 3.6e6, abs=1e-12)
            if ev.car is not None and before[2] is not None:
                gained = ev.car_energy_kwh - before[1]
                assert gained == pytest.approx(delivered * ev.car.efficiency, abs=1e-9)
                target = max(ev.car.target_soc_pct, before[2])
                assert ev.car_soc_pct <= target + 1e-6


def test_the_scenario_session_replays_the_data_in_a_car():
    sc = get_scenario("ev-charging")
    (session,) = sc.series().ev_sessions
    car = session.car
    assert car is not None
    assert (car.capacity_kwh, car.phases) == (75.0, 3)
    assert car.profile == session.taper  # the data's power against energy delivered
    # arrives at the SoC from which the session's energy fills it to its target
    stored = session.energy_kwh * car.efficiency
    assert car.soc_pct + stored / car.capacity_kwh * 100 == pytest.approx(car.target_soc_pct)
    powers = {}
    for site in iter_scenario(sc, dt=1.0, duration_s=19 * 3600):
        if site.time % 900 == 0:
            powers[site.time] = site.ev.power_w
    ev = site.state().ev_charger
    assert ev.status == 0  # left at 18:00
    assert ev.total_kwh == pytest.approx(session.energy_kwh, rel=1e-3)  # uncontrolled = data
    assert max(powers.values()) == pytest.approx(11000)
    assert powers[session.arrival_s - 900] == 0

"""Scenarios: every one loads, energies equal the committed data, sub-minute models, runners."""

from __future__ import annotations

import itertools
import random

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.clock import SteppedClock, wait_idle
from venus_ems.errors import ConfigError
from venus_ems.sim.scenarios import (
    ScenarioDriver,
    get_scenario,
    iter_scenario,
    list_scenarios,
    read_data,
    run_clocked,
    run_scenario,
)
from venus_ems.sim.scenarios.catalog import _series
from venus_ems.sim.scenarios.data import parse_data
from venus_ems.sim.scenarios.upsample import coarse_to_minutes, load_to_seconds, pv_to_seconds

REQUIRED = {"summer-sunny", "cloudy-transients", "winter", "ev-charging", "ac-coupled-clouds"}


def test_the_four_required_scenarios_exist():
    assert set(list_scenarios()) >= REQUIRED


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(ConfigError, match="summer-sunny"):
        get_scenario("monsoon")


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_series_energies_equal_the_data(name):
    sc = get_scenario(name)
    load, pv, ev = sc.data()
    series = sc.series()
    e = series.energy_kwh()
    assert e["load"] == pytest.approx(load.energy_kwh("active_w"), abs=1e-6)
    assert e["pv_dc"] + e["pv_ac"] == pytest.approx(pv.energy_kwh("ac_w") * sc.pv_scale, abs=1e-6)
    assert e["pv_dc"] == pytest.approx((e["pv_dc"] + e["pv_ac"]) * sc.pv_dc_share, abs=1e-6)
    if ev is not None:
        assert e["ev"] == pytest.approx(ev.energy_kwh("ev_w"), abs=1e-9)
    # plausible days for a house with PV
    assert 10 < e["load"] < 40
    assert 2 < e["pv_dc"] + e["pv_ac"] < 40
    assert len(series.pv_dc_w) == 86400
    assert all(len(a) == 86400 for a in series.load_w)
    assert min(min(a) for a in series.load_w) >= 0
    assert max(series.pv_dc_w[: 4 * 3600]) == 0  # night


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_minute_mean_of_the_load_is_the_data(name):
    sc = get_scenario(name)
    load, _, _ = sc.data()
    series = sc.series()
    total = [sum(a[i] for a in series.load_w) for i in range(86400)]
    for minute, want in enumerate(load.columns["active_w"]):
        assert sum(total[minute * 60 : minute * 60 + 60]) / 60 == pytest.approx(want, abs=1e-6)


def test_series_are_deterministic():
    sc = get_scenario("cloudy-transients")
    fresh = _series.__wrapped__(sc)
    assert fresh == sc.series()


def test_data_files_name_source_and_licence():
    for sc in (get_scenario(n) for n in list_scenarios()):
        for f in sc.data():
            if f is not None:
                assert "Source:" in f.header
                assert "icence" in f.header


def test_ev_sessions_replay_the_data_profile():
    sessions = get_scenario("ev-charging").series().ev_sessions
    assert len(sessions) == 1
    s = sessions[0]
    assert s.arrival_s == 10 * 3600
    assert s.energy_kwh == pytest.approx(20.3385, abs=1e-3)
    assert s.taper[0] == (0.0, 11000.0)


def test_uncontrolled_ev_day_delivers_the_data_energy_and_drains_the_battery():
    result = run_scenario("ev-charging", 1.0, record_every_s=900)
    final = result.final
    assert final.ev_charger.total_kwh == pytest.approx(20.3385, abs=0.01)
    assert final.energy.consumption_kwh == pytest.approx(19.264 + 20.3385, abs=0.02)
    # without a controller the house battery feeds the car (feature C4 exists to stop this)
    assert final.battery.soc == pytest.approx(final.ess.active_soc_limit, abs=1.0)
    charging = [s for s in result.states if s.ev_charger.status == 2]
    assert charging
    assert all(s.ev_charger.power_w <= 11040 for s in charging)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("# step_s: 60\na,b\n1,2\n", "not one day"),
        ("# step_s: 43200\na,b\n1,2\n3\n", "expected 2 values"),
        ("# step_s: 43200\na\n1\nx\n", "not a number"),
        ("# only a header\n", "no data rows"),
    ],
)
def test_malformed_data_is_rejected_with_file_and_line(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_data("bad.csv", text)


def test_missing_data_file():
    with pytest.raises(ConfigError, match="not found"):
        read_data("nope.csv")


@given(st.lists(st.floats(0, 5000), min_size=1, max_size=30), st.integers(0, 99))
def test_load_upsampling_keeps_minute_means_and_is_non_negative(minutes, seed):
    out = load_to_seconds(minutes, random.Random(seed))
    assert len(out) == 60 * len(minutes)
    assert min(out) >= 0
    for i, m in enumerate(minutes):
        assert sum(out[i * 60 : i * 60 + 60]) / 60 == pytest.approx(m, abs=1e-6)


@given(st.lists(st.floats(0, 5000), min_size=1, max_size=30), st.integers(0, 99))
def test_pv_upsampling_keeps_minute_means_and_is_non_negative(minutes, seed):
    out = pv_to_seconds(minutes, random.Random(seed))
    assert min(out) >= 0
    for i, m in enumerate(minutes):
        assert sum(out[i * 60 : i * 60 + 60]) / 60 == pytest.approx(m, abs=1e-6)


@given(st.lists(st.floats(0, 5000), min_size=1, max_size=20))
def test_coarse_to_minutes_keeps_the_coarse_means(values):
    out = coarse_to_minutes(values, 900)
    assert len(out) == 15 * len(values)
    for i, v in enumerate(values):
        assert sum(out[i * 15 : i * 15 + 15]) / 15 == pytest.approx(v, abs=1e-6)


def test_switching_edge_second_is_inferred_from_the_mean():
    out = load_to_seconds([100.0, 600.0, 1100.0], random.Random(0), noise_w=0.0)
    mid = list(out[60:120])
    assert mid[:30] == pytest.approx([100.0] * 30)
    assert mid[30:] == pytest.approx([1100.0] * 30)


def test_cloud_edge_becomes_a_short_ramp():
    out = pv_to_seconds([4000.0, 2500.0, 1000.0], random.Random(0), flicker=0.0)
    mid = list(out[60:120])
    assert mid[0] == pytest.approx(4000.0, rel=0.02)
    assert mid[-1] == pytest.approx(1000.0, rel=0.02)
    steps = [a - b for a, b in itertools.pairwise(mid) if a - b > 1]
    assert 4 <= len(steps) <= 8  # a ramp of about ramp_s seconds, not a 1-s jump


def test_a_controller_acts_between_steps():
    calls = []

    def controller(site, t):
        calls.append(t)
        site.set_ess_setting("hub4_mode", 3)
        site.set_vebus_setpoint(1, -500.0)

    result = run_scenario(
        "winter", 1.0, duration_s=600, controller=controller, control_period_s=10.0
    )
    assert len(calls) == 60
    assert len(result.states) == 10
    assert result.final.multi.acin_w[0] == pytest.approx(-500.0, abs=5)
    assert result.max_residual_w < 1e-6


def test_iter_scenario_yields_the_live_site():
    times = []
    for site in iter_scenario("summer-sunny", 0.5, duration_s=5):
        times.append(site.time)
        site.set_ess_setting("ac_power_setpoint_w", 0)  # writes between steps
    assert times == pytest.approx([0.5 * k for k in range(1, 11)])


@pytest.mark.anyio
async def test_run_clocked_follows_a_stepped_clock():
    clock = SteppedClock()
    driver = ScenarioDriver("winter")
    seen = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_clocked(driver, clock, dt=1.0, until_s=30, on_step=seen.append))
        await wait_idle()  # the runner has taken its start time and sleeps
        for _ in range(30):
            await clock.advance(1.0)
        with anyio.fail_after(5):
            while driver.site.time < 30:
                await anyio.sleep(0.01)
    assert driver.site.time == pytest.approx(30.0)
    assert len(seen) == 30

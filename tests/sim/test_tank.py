"""The hot-water tank: energy balance, monotonic in heat, draw-offs, cut-out, the site and GX."""

from __future__ import annotations

import math

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.clock import SteppedClock
from venus_ems.devices import Connection
from venus_ems.devices.registry import open_device, open_session
from venus_ems.errors import ConfigError
from venus_ems.sim.control import fault_request
from venus_ems.sim.physics import (
    TAPPING_CYCLE_M,
    DrawOff,
    MultiParams,
    Site,
    SiteParams,
    Tank,
    TankParams,
)
from venus_ems.sim.run import running_site
from venus_ems.sim.scenarios import get_scenario, with_modbus_heater

J_PER_KWH = 3.6e6
heats = st.lists(st.floats(0.0, 3500.0), min_size=1, max_size=120)


def run(tank: Tank, heat_w: list[float], start_s: float = 7 * 3600.0) -> list[float]:
    temps = []
    for i, w in enumerate(heat_w):
        tank.step(start_s + i * 10.0, 10.0, heat_w=w)
        temps.append(tank.temperature_c)
    return temps


def test_the_tapping_cycle_m_is_5845_wh_in_23_draw_offs():
    assert len(TAPPING_CYCLE_M) == 23
    assert sum(d.energy_kwh for d in TAPPING_CYCLE_M) == pytest.approx(5.845)
    tank = Tank(TankParams(initial_c=60.0, loss_w_per_k=0.0, volume_l=300.0))
    for s in range(86400):
        tank.step(float(s), 1.0)
    assert tank.drawn_kwh == pytest.approx(5.845, rel=1e-9)
    assert tank.unmet_kwh == 0.0


@given(heats, st.floats(10.0, 80.0), st.floats(0.0, 3.0))
def test_energy_balance(heat_w, initial, scale):
    """C (T_end - T_start) = electric heat - losses - heat drawn, to rounding."""
    params = TankParams(initial_c=initial, draw_scale=scale, cutout_c=None)
    tank = Tank(params)
    run(tank, heat_w)
    stored = params.heat_capacity_j_per_k * (tank.temperature_c - initial) / J_PER_KWH
    balance = tank.electric_kwh - tank.loss_kwh - tank.drawn_kwh
    assert stored == pytest.approx(balance, abs=1e-9)
    assert tank.electric_kwh == pytest.approx(sum(heat_w) * 10.0 / J_PER_KWH)


@settings(max_examples=60)
@given(heats, st.data())
def test_temperature_is_monotonic_in_heat_input(heat_w, data):
    """More heat at every step never gives colder water at any step (draw-offs included)."""
    extra = data.draw(st.lists(st.floats(0.0, 2000.0), min_size=len(heat_w), max_size=len(heat_w)))
    params = TankParams(initial_c=20.0, draw_scale=4.0, cutout_c=None)
    low = run(Tank(params), heat_w)
    high = run(Tank(params), [w + x for w, x in zip(heat_w, extra, strict=True)])
    assert all(h >= lo - 1e-12 for h, lo in zip(high, low, strict=True))


def test_draw_offs_never_take_the_tank_below_cold_water():
    params = TankParams(initial_c=14.0, draw_scale=50.0, loss_w_per_k=0.0)
    tank = Tank(params)
    for s in range(7 * 3600, 8 * 3600):
        tank.step(float(s), 1.0)
        assert tank.temperature_c >= params.cold_water_c - 1e-9
    assert tank.unmet_kwh > 0  # the shower went cold: counted, not invented


def test_the_rods_limiter_opens_at_cutout_and_closes_5_k_below():
    tank = Tank(TankParams(initial_c=89.0, cutout_c=90.0, draw_offs=(), loss_w_per_k=5.0))
    tank.set_elements([True, True, True])
    seen = []
    for s in range(6 * 3600):
        seen.append(tank.step(float(s), 1.0))
        assert tank.temperature_c < 90.2
    assert 0.0 in seen
    assert 3500.0 in seen
    with pytest.raises(ValueError, match="3 stages"):
        tank.set_elements([True])


def test_bad_parameters_are_config_errors():
    for kwargs in (
        {"volume_l": 0},
        {"stage_powers_w": (500.0, -1.0)},
        {"draw_offs": (DrawOff(90000.0, 1.0),)},
        {"position": "dc"},
        {"draw_scale": math.nan},
    ):
        with pytest.raises(ConfigError):
            TankParams(**kwargs)


def test_the_rod_is_an_ac_out_load_in_the_site_balance():
    params = SiteParams(tank=TankParams(phase=2, draw_offs=()))
    site = Site(params)
    site.set_inputs([300.0, 300.0, 300.0])
    for _ in range(5):
        site.step(1.0)
    before = list(site.load_out_w)
    assert site.tank is not None
    site.tank.set_elements([False, False, True])
    for _ in range(30):
        flows = site.step(1.0)
        assert abs(flows.residual_w) < 1e-6
    assert site.load_out_w[1] == pytest.approx(before[1] + 2000.0)
    assert site.tank.electric_kwh == pytest.approx(2000.0 * 30 / J_PER_KWH)
    one_phase = MultiParams(phases=1)
    with pytest.raises(ConfigError, match=r"tank\.phase 3 exceeds"):
        SiteParams(multi=one_phase, tank=TankParams(phase=3))


def test_the_scenario_option_adds_a_tank_and_keeps_the_inputs():
    base = get_scenario("summer-sunny")
    sc = with_modbus_heater("summer-sunny")
    assert sc.site.tank == TankParams()
    assert base.site.tank is None
    assert sc.series().energy_kwh() == base.series().energy_kwh()


@pytest.mark.anyio
@pytest.mark.parametrize("heater", ["tcp", "rtu"])
async def test_the_simulated_gx_runs_the_heater_end_to_end(bus_address, heater):
    """running_site(heater=...): the driver switches the rod, the tank heats, faults reach it."""
    clock = SteppedClock()
    async with running_site(
        "summer-sunny", address=bus_address, clock=clock, start_s=12 * 3600, heater=heater
    ) as sim:
        assert sim.heater is not None
        tank = sim.gx.site.tank
        assert tank is not None
        host = sim.heater.rtu_path if heater == "rtu" else f"127.0.0.1:{sim.heater.port}"
        conn = Connection(host, 0.5)
        assert "Heizstab" in sim.describe()
        async with open_session("heizstab", conn) as session:
            rod = await open_device("heizstab", session, conn, clock=clock)
            t0 = tank.temperature_c
            reading = await rod.set_step(3500.0)
            assert reading.temperature_c == pytest.approx(t0, abs=0.01)
            for _ in range(60):
                await clock.advance(1.0)
            assert tank.power_w == 3500.0
            assert tank.temperature_c > t0 + 0.2  # 3.5 kW into 200 l for a minute: +0.25 K
            assert sim.gx.site.load_out_w[0] >= 3500.0
            status, shown = await fault_request(sim.control.url, "heater", "sensor")
            assert status == 200
            assert "force_on" in shown["modes"]
            assert (await rod.read()).temperature_c is None
            status, _ = await fault_request(sim.control.url, "heater", "ok")
            await rod.release()
            await anyio.lowlevel.checkpoint()
            assert tank.elements == (False, False, False)

"""DVCC in the simulator: the solar chargers charge first, the Multi only with what they leave."""

from __future__ import annotations

import pytest

from venus_ems.sim.physics import (
    AC_IN,
    BatteryParams,
    MeterParams,
    MultiParams,
    PvInverterParams,
    Site,
    SiteParams,
    SolarChargerParams,
)


def make_site(soc: float = 50.0) -> Site:
    params = SiteParams(
        battery=BatteryParams(initial_soc=soc, max_charge_current_a=40.0),
        multi=MultiParams(phases=1, low_power_error_w=0.0),
        meter=MeterParams(noise_w=0.0, quantisation_w=0.0),
        solar_charger=SolarChargerParams(),
        pv_inverter=PvInverterParams(rated_power_w=3000.0, phase=1, position=AC_IN),
    )
    site = Site(params)
    site.set_ess_setting("/Settings/CGwacs/Hub4Mode", 3)
    return site


def settle(site: Site, seconds: int = 30) -> None:
    for _ in range(seconds):
        site.set_vebus_setpoint(1, 3000.0)  # AC-in W, + = the Multi takes power
        site.step(1.0)


@pytest.mark.parametrize("dc_pv_w", [0.0, 1000.0, 1800.0, 4000.0])
def test_mode3_charging_gets_only_what_the_mppts_leave_under_ccl(dc_pv_w):
    site = make_site()
    site.set_inputs([200.0], pv_dc_w=dc_pv_w, pv_ac_w=3000.0)
    settle(site)  # the Multi is told to take 3000 W from AC-in (AC PV exporting otherwise)
    ccl_w = site.battery.charge_limit_w()
    assert site.solar is not None
    mppt = site.solar.output_w
    multi_dc = site.multi.dc_total()
    pot = site.solar.potential_out_w(site.battery.voltage_v)
    assert mppt == pytest.approx(min(pot, ccl_w), rel=0.01)  # the MPPTs are never pushed back
    assert multi_dc <= max(ccl_w - pot, 0.0) + 0.01 * ccl_w
    assert site.battery.power_w <= 1.01 * ccl_w
    # what nothing can absorb is exported: AC PV is only limited by /Ac/PowerLimit
    assert site.grid_w[0] < 0

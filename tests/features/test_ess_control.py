"""ESS grid control end to end on the simulated GX over D-Bus: override, mode 3, guards.

The day is the EV scenario at 10:30: an 11 kW car on AC-out and the house, carried by the
battery through the Multi (well above the Multi's low-power inaccuracy).
"""

from __future__ import annotations

import statistics

import pytest
from test_ess_control_support import HUB4, SETTINGS, running

from venus_ems.features.ess_control import EssControl
from venus_ems.runtime.config import EssControlConfig

pytestmark = pytest.mark.anyio
EV_DAY = {"scenario": "ev-charging", "start_s": 10.5 * 3600}


def feature(**kw) -> EssControl:
    return EssControl(EssControlConfig(enabled=True, **kw))


async def test_zero_export_through_the_hub4_override(bus_address):
    async with running(bus_address, [("ess_control", feature())], **EV_DAY) as site:
        ess = site.gx.site.ess
        took = await site.until(lambda: ess.overrides.setpoint_w is not None, 5)
        assert took <= 3
        assert ess.overrides.setpoint_w == 25.0  # zero export: the aim clears the dead band
        await site.run(30)
        late = site.grid_since(site.gx.site.time - 20)
        assert -40 < statistics.mean(late) < 90
        assert min(late) > -150
        assert site.status("/Outputs/ess_grid_setpoint/Owner") == "ess_control"
        assert site.status("/Features/ess_control/Decision").startswith("grid setpoint +")
        # nothing persisted was touched: the ESS settings are the GX's own
        assert ess.settings.ac_power_setpoint_w == 50.0
        assert ess.settings.hub4_mode == 1
    assert ess.overrides.setpoint_w is None  # stopped: override released, ESS uses its setting


async def test_a_fixed_export_target_is_held(bus_address):
    f = feature(grid_target="fixed", target_w=-400.0)
    async with running(bus_address, [("ess_control", f)], **EV_DAY) as site:
        await site.run(30)
        late = site.grid_since(site.gx.site.time - 15)
        assert -480 < statistics.mean(late) < -320


async def test_export_at_most_n_watts(bus_address):
    f = feature(grid_target="export_cap", export_cap_w=300.0, target_w=-300.0)
    async with running(bus_address, [("ess_control", f)], **EV_DAY) as site:
        await site.run(30)
        late = site.grid_since(site.gx.site.time - 20)
        assert -300 < statistics.mean(late) < -200  # aim -275 W: the band stays inside the cap
        assert min(late) > -340
        assert "export cap 300 W" in site.status("/Features/ess_control/Reasons")


async def test_mode3_setpoints_are_refreshed_and_hold_the_target(bus_address):
    f = feature(method="mode3", allow_mode3=True, mode3_refresh_s=5.0)
    settings = {"/Settings/CGwacs/Hub4Mode": 3}
    async with running(bus_address, [("ess_control", f)], settings=settings, **EV_DAY) as site:
        vebus = site.gx.site.ess.vebus
        await site.run(90)  # longer than the Multi's 60 s setpoint timeout
        assert not any(site.gx.site.ess.passthrough)
        now = site.gx.site.time
        assert all(now - at <= 6.0 for at in vebus.written_at), vebus.written_at
        late = site.grid_since(now - 30)
        assert -30 < statistics.mean(late) < 90
        assert site.status("/Outputs/ess_phase_setpoints/Owner") == "ess_control"
        assert "AC-in setpoints" in site.status("/Features/ess_control/Decision")
        assert site.gx.site.ess.settings.hub4_mode == 3
    assert vebus.setpoints_w == [0.0, 0.0, 0.0]  # stopped: safe_setpoint_w split per phase


async def test_mode3_is_refused_while_the_gx_is_not_in_mode3(bus_address):
    f = feature(method="mode3", allow_mode3=True)
    async with running(bus_address, [("ess_control", f)], **EV_DAY) as site:
        await site.run(10)
        assert site.gx.site.ess.vebus.written_at == [-1e18] * 3  # never written
        assert site.gx.site.ess.settings.hub4_mode == 1  # and never switched for the user
        assert site.status("/Features/ess_control/Decision") == "holding off"
        assert "Hub4Mode 3" in site.status("/Features/ess_control/Reasons")


async def test_dynamic_ess_is_not_fought(bus_address):
    async with running(
        bus_address, [("ess_control", feature(safe_setpoint_w=80.0))], **EV_DAY
    ) as site:
        ess = site.gx.site.ess
        await site.until(lambda: ess.overrides.setpoint_w == 25.0, 5)
        assert await site.mon.set_value(SETTINGS, "/Settings/DynamicEss/Mode", 1) == 0
        await site.run(3)
        assert site.status("/Features/ess_control/Decision") == "holding off"
        assert "Dynamic ESS" in site.status("/Features/ess_control/Reasons")
        assert site.status("/Outputs/ess_grid_setpoint/Owner") in (None, "")
        # DESS writes the override now; we never write it again while it runs
        assert await site.mon.set_value(HUB4, "/Overrides/Setpoint", -700.0) == 0
        await site.run(10)
        assert ess.overrides.setpoint_w == -700.0
        assert await site.mon.set_value(SETTINGS, "/Settings/DynamicEss/Mode", 0) == 0
        await site.until(lambda: ess.overrides.setpoint_w == 25.0, 10)

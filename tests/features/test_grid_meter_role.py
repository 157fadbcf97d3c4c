"""M1's role: the user switches the Shelly grid meter to another role, as on a Victron meter."""

from __future__ import annotations

import pytest
from test_grid_meter import grid, host, meter
from test_grid_meter_harness import running, until

from venus_ems.clock import SteppedClock
from venus_ems.features.grid_meter import service_name
from venus_ems.sim.devices import pro_3em

pytestmark = pytest.mark.anyio
GRID = service_name("house")
ACLOAD = "com.victronenergy.acload.venusems_house"
RECORD = "/Settings/Devices/venusems_grid_house"


async def test_role_change_republishes_the_meter_and_survives_a_restart(bus_address, tmp_path):
    clock = SteppedClock()
    source = meter(clock)
    settings = tmp_path / "settings.json"
    async with (
        pro_3em(source, clock=clock) as emu,
        running(grid(emu), GRID, bus_address, clock, tmp_path, settings=settings) as run,
    ):
        assert run.settings is not None
        instance = run.get("/DeviceInstance")
        assert await run.mon.set_value(GRID, "/Role", "acload") == 0
        await until(lambda: run.mon.service(ACLOAD) is not None)
        assert run.mon.service(GRID) is None
        assert run.settings.get(f"{RECORD}/ClassAndVrmInstance") == f"acload:{instance}"
        assert run.mon.get(ACLOAD, "/IsGenericEnergyMeter") == 1
        assert run.mon.get(ACLOAD, "/Position") == 0
        assert run.mon.get(ACLOAD, "/Mgmt/Connection") == f"HTTP {host(emu)}"
        # the feature goes on measuring under the new name
        run.name = ACLOAD
        source.set_power(0, 2000.0)
        await run.step(clock)
        assert run.get("/Ac/L1/Power") == 2000.0
        assert await run.mon.set_value(ACLOAD, "/Position", 1) == 0
        await until(lambda: run.settings.get(f"{RECORD}/Position") == 1)
    async with (
        pro_3em(meter(clock), clock=clock) as emu,
        running(grid(emu), ACLOAD, bus_address, clock, tmp_path, settings=settings) as run,
    ):
        assert run.get("/Role") == "acload"
        assert run.get("/Position") == 1
        assert run.get("/DeviceInstance") == instance
        assert run.mon.service(GRID) is None

"""The simulated GX on a real dbus-daemon: services, writes into the physics, external meter."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import anyio
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.sim.run import running_site
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from waiting import BusWatch, bus_watch

pytestmark = pytest.mark.anyio
SYSTEM = "com.victronenergy.system"
VEBUS = "com.victronenergy.vebus.ttyS4"
SETTINGS = "com.victronenergy.settings"
HUB4 = "com.victronenergy.hub4"
CLIENT = Path(__file__).parents[1] / "venus" / "velib_client.py"


async def run_for(clock: SteppedClock, seconds: float, bus: BusWatch) -> None:
    """Advance simulated time; the GX steps and publishes each second, the monitor reads it."""
    for _ in range(int(seconds)):
        await clock.advance(1.0)
        await bus.settle()


def grid_total(mon) -> float:
    return sum(mon.get_float(SYSTEM, f"/Ac/Grid/L{p}/Power") or 0.0 for p in (1, 2, 3))


@pytest.fixture
async def gx_site(bus_address):
    clock = SteppedClock()
    gx = SimulatedGx("summer-sunny", address=bus_address, clock=clock, start_s=10 * 3600)
    async with anyio.create_task_group() as tg, bus_watch(bus_address) as bus:
        await tg.start(gx.run)
        async with open_monitor(bus_address) as mon:
            yield gx, clock, mon, bus
        tg.cancel_scope.cancel()


async def test_services_of_a_gx_as_velib_sees_them(gx_site, bus_address):
    _gx, clock, _mon, bus = gx_site
    await run_for(clock, 2, bus)
    res = await anyio.run_process(
        ["/usr/bin/python3", str(CLIENT), bus_address, "--all"], check=False
    )
    assert res.returncode == 0, res.stderr.decode()
    scan = json.loads(res.stdout)
    assert set(scan) >= {
        SYSTEM,
        VEBUS,
        SETTINGS,
        HUB4,
        "com.victronenergy.battery.socketcan_can1",
        "com.victronenergy.solarcharger.ttyS5",
        "com.victronenergy.grid.cgwacs_ttyUSB0_mb1",
    }
    for name, items in scan.items():
        if name != SETTINGS:
            assert items["/DeviceInstance"][0] == "Int32", name
            assert items["/Connected"][1] == 1, name
            assert items["/Mgmt/ProcessName"][0] == "String", name
    system = scan[SYSTEM]
    assert system["/VebusService"][1] == VEBUS
    assert system["/Dc/Battery/Soc"][0] == "Double"
    assert 0 <= system["/Dc/Battery/Soc"][1] <= 100
    assert system["/ActiveBatteryService"][1] == "com.victronenergy.battery/512"
    assert system["/Dc/System/Power"][0] == "Array[i]"  # no dcsystem: invalid, not 0
    assert scan[VEBUS]["/Hub4/AssistantId"][1] == 5
    assert scan[SETTINGS]["/Settings/CGwacs/Hub4Mode"][1] == 1
    # systemcalc's grid values are the GX meter's, the battery its BMS's
    grid = scan["com.victronenergy.grid.cgwacs_ttyUSB0_mb1"]
    assert system["/Ac/Grid/L1/Power"][1] == grid["/Ac/L1/Power"][1]
    assert (
        scan["com.victronenergy.battery.socketcan_can1"]["/Soc"][1] == system["/Dc/Battery/Soc"][1]
    )


async def test_grid_setpoint_setting_and_hub4_override_reach_the_physics(gx_site):
    gx, clock, mon, bus = gx_site
    assert await mon.set_value(SETTINGS, "/Settings/CGwacs/AcPowerSetPoint", 300) == 0
    await run_for(clock, 20, bus)
    assert gx.site.ess_settings().ac_power_setpoint_w == 300.0
    assert abs(grid_total(mon) - 300) < 80
    assert await mon.set_value(HUB4, "/Overrides/Setpoint", -800) == 0
    await run_for(clock, 20, bus)
    assert abs(grid_total(mon) + 800) < 80
    assert await mon.set_value(HUB4, "/Overrides/Setpoint", None) == 0  # release
    await run_for(clock, 20, bus)
    assert abs(grid_total(mon) - 300) < 80


async def test_bad_writes_are_refused_and_change_nothing(gx_site):
    gx, clock, mon, bus = gx_site
    assert await mon.set_value(SETTINGS, "/Settings/CGwacs/Hub4Mode", 7) == -1
    assert await mon.set_value(SETTINGS, "/Settings/CGwacs/MaxFeedInPower", "lots") == -1
    assert await mon.set_value(VEBUS, "/Mode", 9) == 2  # the Multi refuses it
    assert await mon.set_value(HUB4, "/Overrides/ForceCharge", 5) == 2
    assert await mon.set_value(HUB4, "/Overrides/Setpoint", "x") == 3
    assert await mon.set_value(VEBUS, "/Hub4/L1/AcPowerSetpoint", "x") == 2
    await run_for(clock, 2, bus)
    s = gx.site.ess_settings()
    assert (s.hub4_mode, s.max_feed_in_power_w) == (1, -1.0)
    assert mon.get(VEBUS, "/Mode") == 3
    assert gx.site.ess.overrides.setpoint_w is None
    assert gx.site.ess.overrides.force_charge == 0


async def test_mode3_setpoints_are_not_echoed_and_fall_back_after_60_s(gx_site):
    gx, clock, mon, bus = gx_site
    assert await mon.set_value(SETTINGS, "/Settings/CGwacs/Hub4Mode", 3) == 0
    await run_for(clock, 2, bus)
    assert mon.get(SYSTEM, "/SystemState/State") == 0xFC  # external control
    changes = []
    mon.on_change(lambda ch: changes.extend(p for (s, p) in ch if p.endswith("AcPowerSetpoint")))
    for _ in range(4):  # refreshed every 10 s: the battery charges 2 kW from the grid
        for p in (1, 2, 3):
            assert await mon.set_value(VEBUS, f"/Hub4/L{p}/AcPowerSetpoint", 1500.0) == 0
        await run_for(clock, 10, bus)
        assert mon.get_float(VEBUS, "/Dc/0/Power") > 2000
    assert changes == []  # like mk2-dbus: never echoed
    assert mon.get(VEBUS, "/Hub4/L1/AcPowerSetpoint") == 0.0
    await run_for(clock, 65, bus)  # no refresh: passthrough, no battery power through the Multi
    assert all(gx.state.ess.mode3_passthrough)
    assert abs(mon.get_float(VEBUS, "/Dc/0/Power")) < 100


async def test_external_meter_is_followed_like_systemcalc(bus_address):
    clock = SteppedClock()
    gx = SimulatedGx(
        "summer-sunny", address=bus_address, clock=clock, start_s=10 * 3600, external_meter=True
    )
    meter = Service(
        "com.victronenergy.grid.test_meter",
        identity=Identity("test meter"),
        device_instance=10,
        address=bus_address,
    )
    for p in (1, 2, 3):
        meter.add_path(f"/Ac/L{p}/Power", None, PathSpec("d"))
    async with anyio.create_task_group() as tg, bus_watch(bus_address) as bus:
        await tg.start(gx.run)
        async with open_monitor(bus_address) as mon:
            assert gx.services.grid is None
            assert mon.services("com.victronenergy.grid") == []
            await run_for(clock, 2, bus)
            assert mon.get(SYSTEM, "/Ac/Grid/L1/Power") is None  # no meter at all
            async with meter:
                for _ in range(30):  # the external meter measures the true grid each second
                    meter.update(
                        {f"/Ac/L{p}/Power": gx.site.meter.true_w[p - 1] for p in (1, 2, 3)}
                    )
                    await bus.settle()  # the GX has the reading before it steps
                    await clock.advance(1.0)
                await bus.settle()
                assert mon.get(SYSTEM, "/Ac/Grid/L2/Power") == meter["/Ac/L2/Power"]
                assert abs(sum(gx.site.meter.true_w) - 50) < 80  # the ESS loop regulates on it
            await run_for(clock, 3, bus)
            assert mon.get(SYSTEM, "/Ac/Grid/L1/Power") is None  # meter gone: invalid, not 0
            assert gx.site.ess.meter_missing
        tg.cancel_scope.cancel()


async def test_emulators_measure_and_command_the_physics(bus_address):
    clock = SteppedClock()
    async with (
        running_site("summer-sunny", address=bus_address, clock=clock, start_s=9 * 3600) as sim,
        aiohttp.ClientSession() as http,
    ):
        await clock.advance(2.0)
        async with http.get(f"{sim.shelly.url}/rpc/EM.GetStatus?id=0") as r:
            em = await r.json()
        true = sim.gx.site.meter.true_w
        assert em["a_act_power"] == pytest.approx(true[0], abs=1)
        assert em["total_act_power"] == pytest.approx(sum(true), abs=2)
        assert sim.opendtu is not None
        serial = next(iter(sim.gx.site.micros))
        body = json.dumps({"serial": serial, "limit_type": 0, "limit_value": 100})
        async with http.post(
            f"{sim.opendtu.url}/api/limit/config",
            data={"data": body},
            headers={"Authorization": aiohttp.encode_basic_auth("admin", "openDTU42")},
        ) as r:
            assert (await r.json())["type"] == "success"
        for _ in range(40):
            await clock.advance(1.0)
        async with http.get(f"{sim.opendtu.url}/api/livedata/status?inv={serial}") as r:
            live = await r.json()
        inv = live["inverters"][0]
        assert inv["limit_absolute"] == pytest.approx(100, abs=1)
        assert sim.gx.site.micros[serial].power_w <= 101


async def test_switched_loads_sit_behind_their_own_shellys(bus_address):
    clock = SteppedClock()
    async with (
        running_site("surplus-three", address=bus_address, clock=clock) as sim,
        aiohttp.ClientSession() as http,
    ):
        assert set(sim.relays) == {"pool-pump", "heater", "dryer"}
        assert "Shelly Plus 1PM switching heater" in sim.describe()
        await clock.advance(2.0)
        load_before = sum(sim.gx.site.acout_w)
        url = sim.relays["heater"].url
        async with http.get(f"{url}/rpc/Switch.Set?id=0&on=true") as r:
            assert r.status == 200
        assert sim.gx.site.relays["heater"].on
        await clock.advance(2.0)
        async with http.get(f"{url}/rpc/Switch.GetStatus?id=0") as r:
            status = await r.json()
        assert status["output"] is True
        assert status["apower"] == pytest.approx(2000.0)
        assert sum(sim.gx.site.acout_w) == pytest.approx(load_before + 2000.0, abs=400.0)
        macs = {e.identity.mac for e in sim.relays.values()}
        assert len(macs) == 3

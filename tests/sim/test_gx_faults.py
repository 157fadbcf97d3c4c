"""Fault knobs of the simulated GX on a real dbus-daemon: a service restarting as a new process,
a process that stops answering, mode-3 writes lost on the way, and Victron's own timeouts as a
D-Bus client sees them."""

from __future__ import annotations

import anyio
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.errors import BusError
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import open_monitor
from waiting import until

pytestmark = pytest.mark.anyio
VEBUS = "com.victronenergy.vebus.ttyS4"
HUB4 = "com.victronenergy.hub4"
PV = "com.victronenergy.pvinverter.pv_sim"
SETTINGS = "com.victronenergy.settings"


async def run_for(clock: SteppedClock, seconds: float) -> None:
    for _ in range(int(seconds)):
        await clock.advance(1.0)
    await anyio.sleep(0.05)


@pytest.fixture
async def gx(bus_address):
    clock = SteppedClock()
    gx = SimulatedGx("cloudy-transients", address=bus_address, clock=clock, start_s=12 * 3600)
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with open_monitor(bus_address) as mon:
            yield gx, clock, mon
        tg.cancel_scope.cancel()


async def test_a_restarted_hub4_has_a_new_owner_and_the_default_overrides(gx):
    gx, _clock, mon = gx
    assert await mon.set_value(HUB4, "/Overrides/Setpoint", -800) == 0
    assert await mon.set_value(HUB4, "/Overrides/MaxDischargePower", 250) == 0
    await until(lambda: mon.get(HUB4, "/Overrides/MaxDischargePower") == 250)
    owner = mon.service(HUB4).owner
    gone = anyio.Event()
    mon.on_service(lambda name, state: gone.set() if name == HUB4 and state is None else None)
    await gx.restart_service("hub4", down_s=0.1)
    assert gone.is_set()  # it really left the bus
    await until(lambda: mon.service(HUB4) is not None and mon.service(HUB4).owner != owner)
    assert mon.get(HUB4, "/Overrides/Setpoint") is None
    assert mon.get(HUB4, "/Overrides/MaxDischargePower") == -1
    o = gx.site.ess.overrides
    assert (o.setpoint_w, o.max_discharge_power_w) == (None, -1.0)


async def test_a_restarted_vebus_keeps_the_multi_on_its_setpoints_until_they_time_out(gx):
    gx, clock, mon = gx
    assert await mon.set_value(SETTINGS, "/Settings/CGwacs/Hub4Mode", 3) == 0
    await run_for(clock, 1)
    for p in (1, 2, 3):
        assert await mon.set_value(VEBUS, f"/Hub4/L{p}/AcPowerSetpoint", 1000.0) == 0
    owner = mon.service(VEBUS).owner
    await gx.restart_service("vebus")
    await until(lambda: mon.service(VEBUS) is not None and mon.service(VEBUS).owner != owner)
    await run_for(clock, 30)
    assert not any(gx.state.ess.mode3_passthrough)
    await run_for(clock, 32)
    assert all(gx.state.ess.mode3_passthrough)


async def test_an_unanswered_write_times_out_and_changes_nothing(gx):
    gx, _clock, mon = gx
    gx.services.unanswered.add("hub4")
    with pytest.raises(BusError, match="no reply"):
        await mon.set_value(HUB4, "/Overrides/Setpoint", -800, timeout=0.3)
    assert gx.site.ess.overrides.setpoint_w is None
    assert mon.get(HUB4, "/Overrides/Setpoint") is None
    gx.services.unanswered.clear()
    assert await mon.set_value(HUB4, "/Overrides/Setpoint", -800) == 0
    assert gx.site.ess.overrides.setpoint_w == -800.0


async def test_lost_mode3_writes_are_answered_but_the_multi_falls_back(gx):
    gx, clock, mon = gx
    assert await mon.set_value(SETTINGS, "/Settings/CGwacs/Hub4Mode", 3) == 0
    for p in (1, 2, 3):
        assert await mon.set_value(VEBUS, f"/Hub4/L{p}/AcPowerSetpoint", 1000.0) == 0
    await run_for(clock, 30)
    gx.services.lost_mode3_writes = True
    for _ in range(4):  # the controller keeps refreshing; nothing reaches the Multi
        for p in (1, 2, 3):
            assert await mon.set_value(VEBUS, f"/Hub4/L{p}/AcPowerSetpoint", 1000.0) == 0
        await run_for(clock, 10)
    assert all(gx.state.ess.mode3_passthrough)
    with pytest.raises(ValueError, match="no heater"):
        await gx.restart_service("heater")


async def test_pv_power_limit_reads_max_power_again_after_60_s(gx):
    gx, clock, mon = gx
    rated = mon.get_float(PV, "/Ac/MaxPower")
    assert mon.get_float(PV, "/Ac/PowerLimit") == rated  # limiting supported, no limit
    assert await mon.set_value(PV, "/Ac/PowerLimit", 500.0) == 0
    await run_for(clock, 2)
    assert mon.get_float(PV, "/Ac/PowerLimit") == 500.0
    await run_for(clock, 57)
    assert mon.get_float(PV, "/Ac/PowerLimit") == 500.0
    await run_for(clock, 3)
    assert mon.get_float(PV, "/Ac/PowerLimit") == rated
    assert gx.state.pv_inverter.power_limit_w is None

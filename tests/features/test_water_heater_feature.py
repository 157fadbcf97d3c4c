"""[water_heater] end to end on the simulated GX over real Modbus (TCP, RTU over TCP, RTU pty).

The daemon runs in process on a stepped clock; the heating rod is the Heizstab emulator wired
to the site's tank (an AC-out load in the energy balance). Surplus: the battery is full and DC
PV may feed in, so the site exports about 3.4 kW at noon.
"""

from __future__ import annotations

import json

import anyio
import pytest
from heater_support import ACLOAD, SENSOR, heater_site

from venus_ems import daemon
from venus_ems.runtime.consumers import ConsumerBoard

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("transport", ["tcp", "rtu-over-tcp", "rtu"])
async def test_auto_heats_with_the_surplus_and_holds_its_step(bus_address, tmp_path, transport):
    async with heater_site(bus_address, tmp_path, transport=transport) as s:
        await s.until(lambda: s.rod_w > 0, 30)
        await s.run(8)
        step = s.rod_w
        assert step == 3000.0  # ~3.4 kW spare (with our own draw counted) - 100 W margin
        t0 = s.tank.temperature_c
        fw = s.sim.heater.firmware
        latches = fw.latches
        await s.run(60)
        assert s.rod_w == step  # no limit cycle: it does not see its own load as a deficit
        assert s.tank.temperature_c > t0
        assert fw.latches > latches  # the keep-alive renews the watchdog while we heat
        assert s.load("/Ac/Power") == step
        assert s.load("/Step") == step
        assert s.load("/Mode") == 1
        assert s.load("/Position") == 1  # AC output
        assert s.load("/Temperature") == pytest.approx(s.tank.temperature_c, abs=0.05)
        assert s.mon.get(SENSOR, "/Temperature") == pytest.approx(s.tank.temperature_c, abs=0.05)
        assert s.mon.get(SENSOR, "/TemperatureType") == 5
        assert s.load("/History/Switches") == 1
        assert s.load("/Ac/Energy/Forward") > 0
        assert s.load("/History/SurplusEnergy") > 0.9 * s.load("/Ac/Energy/Forward")


async def test_mode_from_the_gui_off_on_and_bad_writes(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path, full_battery=False) as s:
        await s.run(3)
        assert s.rod_w == 0.0  # no surplus: the battery takes it
        assert await s.mon.set_value(ACLOAD, "/Mode", 2) == 0  # on
        await s.until(lambda: s.rod_w == 3500.0, 10)
        assert s.load("/State") == 2  # heating from the grid
        for bad in (3, -1, "on", 1.5):
            assert await s.mon.set_value(ACLOAD, "/Mode", bad) != 0
        await s.run(2)
        assert s.load("/Mode") == 2
        assert s.rod_w == 3500.0
        assert await s.mon.set_value(ACLOAD, "/Mode", 0) == 0
        await s.until(lambda: s.rod_w == 0.0, 5)
        memory = json.loads((tmp_path / "state" / "water_heater.json").read_text())
        assert memory["mode"] == "off"


async def test_boost_until_a_time_then_back(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path, full_battery=False, extra='mode = "off"') as s:
        await s.run(2)
        assert await s.mon.set_value(ACLOAD, "/Boost/Minutes", 2000) != 0  # above boost_max_min
        assert await s.mon.set_value(ACLOAD, "/Boost/Minutes", 1) == 0
        await s.until(lambda: s.rod_w == 3500.0, 5)
        assert s.load("/Boost/Until") is not None
        await s.run(50)
        assert s.rod_w == 3500.0
        await s.until(lambda: s.rod_w == 0.0, 20)
        assert s.load("/Boost/Until") is None


async def test_target_and_hard_maximum(bus_address, tmp_path):
    extra = 'mode = "on"\ntarget_c = 60.0\nmax_c = 70.0\n'
    async with heater_site(bus_address, tmp_path, extra=extra, tank_c=59.9) as s:
        await s.until(lambda: s.rod_w == 3500.0, 10)
        await s.until(lambda: s.rod_w == 0.0, 400)  # 0.1 K at 3.5 kW into 200 l: ~25 s
        assert s.tank.temperature_c < 60.3
        assert s.load("/State") == 3
        s.tank.temperature_c = 75.0  # above the hard maximum, whatever the mode says
        await s.run(3)
        assert s.rod_w == 0.0


@pytest.mark.parametrize("fault", ["no_reply", "crc", "exception"])
async def test_bad_replies_switch_off_and_publish_invalid(bus_address, tmp_path, fault):
    extra = "temperature_stale_s = 4.0\n"
    async with heater_site(bus_address, tmp_path, transport="rtu", extra=extra) as s:
        await s.until(lambda: s.rod_w > 0, 30)
        await s.sim.heater.set_fault(fault)
        await s.until(lambda: s.load("/Temperature") is None, 15)
        assert s.mon.get(SENSOR, "/Temperature") is None  # invalid, never 0
        assert s.load("/ErrorCode") == 1
        assert s.load("/Ac/Power") is None
        assert s.status("Decision").endswith(": 0 W")
        # the rod itself is off once the (unreachable) device's watchdog runs out
        await s.run(300)
        assert s.rod_w == 0.0
        await s.sim.heater.set_fault("ok")
        await s.until(lambda: s.load("/ErrorCode") == 0, 15)
        await s.until(lambda: s.rod_w > 0, 60)  # and it comes back


async def test_an_expired_watchdog_is_reported_and_the_step_written_again(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path, transport="rtu") as s:
        await s.until(lambda: s.rod_w > 0, 30)
        step = s.rod_w
        await s.sim.heater.set_fault("watchdog")  # tripped, and heartbeats no longer latch
        assert s.rod_w == 0.0
        await s.until(lambda: s.load("/ErrorCode") == 3, 40)  # read back, written, refused
        assert "commanded" in s.load("/StateText") or "commanded" in str(s.status("Reasons"))
        await s.sim.heater.set_fault("ok")
        await s.until(lambda: s.rod_w == step, 30)  # written again (the retry)
        await s.until(lambda: s.load("/ErrorCode") == 0, 20)


async def test_sensor_error_and_force_on(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path) as s:
        await s.until(lambda: s.rod_w > 0, 30)
        await s.sim.heater.set_fault("sensor")  # 85.00 °C means no reading
        await s.until(lambda: s.rod_w == 0.0, 5)
        assert s.load("/Temperature") is None
        assert s.load("/ErrorCode") == 2
        await s.sim.heater.set_fault("force_on")
        await s.run(3)
        assert s.rod_w == 3500.0  # the switch at the device: reported, not fought
        assert s.load("/StateText").startswith("FORCE ON")
        await s.sim.heater.set_fault("ok")
        await s.until(lambda: s.rod_w == 0.0, 5)


async def test_stale_grid_reading_switches_off(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path) as s:
        await s.until(lambda: s.rod_w > 0, 30)
        s.sim.gx.site.set_meter_connected(False)
        await s.until(lambda: s.rod_w == 0.0, 15)
        assert "grid" in s.load("/StateText")


async def test_stop_writes_off_once_and_leaves_the_watchdog_to_expire(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path) as s:
        await s.until(lambda: s.rod_w > 0, 30)
        fw = s.sim.heater.firmware
        clock = s.clock
    # the daemon is cancelled (as on SIGTERM): 0 W written, then no more heartbeats
    assert s.rod_w == 0.0
    held = fw.holding
    assert not fw.tripped
    for _ in range(31):
        await clock.advance(10.0)
        fw.loop()  # the firmware's timer (the emulator has stopped with the site)
    await anyio.sleep(0.1)
    assert fw.holding == held  # nobody renewed it
    assert fw.tripped  # the firmware's own watchdog took over


async def test_a_grant_of_the_surplus_distributor_is_followed(bus_address, tmp_path, monkeypatch):
    board = ConsumerBoard()
    monkeypatch.setattr(daemon, "ConsumerBoard", lambda: board)
    night = 22 * 3600.0  # no PV: without the grant the heater would only empty the battery
    async with heater_site(bus_address, tmp_path, full_battery=False, start_s=night) as s:
        await s.run(2)
        (seat,) = board.consumers()
        assert seat.spec.levels_w == tuple(500.0 * i for i in range(8))
        board.activate("surplus")
        board.grant("water_heater", 1700.0, s.clock.monotonic())
        await s.until(lambda: s.rod_w == 1500.0, 5)
        await s.run(3)
        assert seat.draw_w == 1500.0  # reported back to the board
        assert seat.ready
        s.tank.temperature_c = 61.0  # target reached: it would take nothing now
        await s.until(lambda: s.rod_w == 0.0, 5)
        assert not seat.ready
        s.tank.temperature_c = 50.0
        await s.until(lambda: s.rod_w == 1500.0, 5)
        board.grant("water_heater", 1700.0, s.clock.monotonic())
        board.deactivate("surplus")  # standalone: the battery feeding it is no surplus
        await s.until(lambda: s.rod_w == 0.0, 20)


async def test_counters_and_the_gui_mode_survive_a_restart(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path) as s:
        await s.until(lambda: s.rod_w > 0, 30)
        await s.run(30)
        energy, switches = s.load("/Ac/Energy/Forward"), s.load("/History/Switches")
        assert energy > 0
        assert switches == 1
        assert await s.mon.set_value(ACLOAD, "/Mode", 2) == 0
        await s.run(2)
    saved = json.loads((tmp_path / "state" / "water_heater_counters.json").read_text())
    assert saved["counters"]["energy"] >= energy
    async with heater_site(bus_address, tmp_path) as s:
        await s.until(lambda: s.load("/Ac/Energy/Forward") is not None, 10)
        assert s.load("/Ac/Energy/Forward") >= energy  # never back
        assert s.load("/History/Switches") >= switches
        assert s.load("/Mode") == 2  # the mode chosen on the GX

"""The simulated GX with an EV charger serves a Wattpilot: the driver reads and drives the site."""

from __future__ import annotations

import aiohttp
import pytest

from venus_ems.clock import RealClock
from venus_ems.devices.base import Connection
from venus_ems.devices.registry import open_device
from venus_ems.errors import DeviceConnectionError
from venus_ems.sim.control import fault_request
from venus_ems.sim.run import running_site
from waiting import until

pytestmark = pytest.mark.anyio


async def test_the_driver_reads_and_drives_the_sites_ev(bus_address):
    clock = RealClock()
    async with (
        running_site("ev-charging", address=bus_address, clock=clock, start_s=10.5 * 3600) as sim,
        aiohttp.ClientSession() as http,
    ):
        wp = sim.wattpilot
        assert wp is not None
        assert "Fronius Wattpilot" in sim.describe()
        conn = Connection(wp.host, 2.0, password=wp.password)
        device = await open_device("wattpilot", http, conn, clock=clock)
        async with device:
            site = sim.gx.site
            r = await device.read_charger()
            assert r.car == "charging"  # the scenario's car arrived at 10:00
            r = await device.wait_reading(r.taken_at, 3)
            ev = site.state().ev_charger
            assert r.power_w == pytest.approx(ev.power_w, rel=0.05)
            assert sum(r.currents_a) == pytest.approx(sum(ev.phase_current_a), abs=0.5)

            await device.set_current(8)
            await device.set_phases(1)
            assert site.ev.current_setpoint_a == 8
            await until(lambda: site.state().ev_charger.status == 23, timeout=5)
            # after the 30 s pause the site carries 8 A on one phase (1 s = 1 s here: skip it)
            await device.set_force("off")
            # the car's 11 kW leave the AC output (the house draws a few hundred W)
            await until(lambda: sum(site.state().consumption_on_output_w) < 3000, timeout=5)
            assert site.ev.power_w == 0

            # the fault control reaches the charger too
            status, answer = await fault_request(sim.control.url, "wattpilot", "offline")
            assert (status, answer["mode"]) == (200, "offline")
            assert "drop" in answer["modes"]
            await until(lambda: not device.connected, timeout=5)
            with pytest.raises(DeviceConnectionError):
                await device.read_charger()
            status, answer = await fault_request(
                sim.control.url, "wattpilot", "slow_ack", {"ack_delay_s": 0.1}
            )
            assert (status, answer["ack_delay_s"]) == (200, 0.1)
            await until(lambda: device.connected, timeout=10)
            await device.set_force("neutral")
            await until(lambda: site.ev.enabled, timeout=5)
            status, answer = await fault_request(sim.control.url, "wattpilot", "explode")
            assert status == 400
            assert "not one of ok, offline, drop" in answer["error"]

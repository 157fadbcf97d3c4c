"""[water_heater] as an S2 OMBC resource manager driven by the simulated Opportunity Loads CEM.

Real dbus-daemon, the Heizstab emulator over Modbus TCP, the daemon in process on a stepped
clock; the CEM talks to ``/S2/0/Rm`` of the heater's acload.
"""

from __future__ import annotations

import anyio
import pytest
from heater_support import ACLOAD, heater_site

from venus_ems.sim.venus.opportunity_loads import SimOpportunityLoads

pytestmark = pytest.mark.anyio

TIMERS = "min_on_s = 10.0\nmin_off_s = 10.0\n"


async def test_cem_drives_the_steps_then_off_mode_and_disconnect_hand_back(bus_address, tmp_path):
    async with heater_site(bus_address, tmp_path, extra=TIMERS) as s:
        await s.until(lambda: s.load("/S2/0/Rm") == "Ready", 10)
        flows = s.sim.gx.site.flows
        cem = SimOpportunityLoads(
            bus_address,
            s.clock,
            lambda: flows.pv_ac_w + 0.925 * flows.pv_dc_w - flows.loads_w,
            keep_alive_s=10,
        )
        rm = cem.add_rm(ACLOAD)
        async with anyio.create_task_group() as tg:
            await tg.start(cem.run)
            await s.until(lambda: rm.connected and rm.load is not None, 30)
            assert s.load("/S2/0/Rm") == "CEM: ol"
            assert rm.details is not None
            assert [m.power_w for m in rm.load.plan.modes] == [500.0 * i for i in range(8)]

            def cem_step() -> float:
                mode = None if rm.load is None else rm.load.mode
                return 0.0 if mode is None else mode.power_w

            # the CEM steps it up from the surplus; the rod runs the step the CEM confirmed
            await s.until(lambda: cem_step() >= 1000.0 and s.rod_w == cem_step(), 180)
            assert "Opportunity Loads" in s.load("/StateText")
            assert s.load("/Step") == cem_step()
            await s.until(lambda: (rm.power_w or 0.0) == s.rod_w, 10)  # metered draw reported
            assert all(status == "OK" for _, status in rm.acks)

            # Off from the GUI: the feature decides alone, the RM is withdrawn
            assert await s.mon.set_value(ACLOAD, "/Mode", 0) == 0
            await s.until(lambda: s.load("/S2/0/Rm") is None and s.rod_w == 0.0, 10)
            await s.until(lambda: not rm.connected, 10)
            await s.run(5)
            assert s.rod_w == 0.0

            # Auto again: offered, the CEM comes back
            assert await s.mon.set_value(ACLOAD, "/Mode", 1) == 0
            await s.until(lambda: rm.connected and s.load("/S2/0/Rm") == "CEM: ol", 30)

            # the CEM disconnects: released, Ready again, the standalone surplus rule heats
            await cem.disconnect(ACLOAD)
            del cem.rms[ACLOAD]  # and does not come back
            await s.until(lambda: s.load("/S2/0/Rm") == "Ready", 10)
            await s.until(lambda: s.rod_w == 3000.0, 60)
            assert "Opportunity Loads" not in s.load("/StateText")
            tg.cancel_scope.cancel()


async def test_hard_maximum_refuses_the_cem_step(bus_address, tmp_path):
    extra = TIMERS + "target_c = 60.0\nmax_c = 70.0\n"
    async with heater_site(bus_address, tmp_path, extra=extra, tank_c=71.0) as s:
        await s.until(lambda: s.load("/S2/0/Rm") == "Ready", 10)
        cem = SimOpportunityLoads(bus_address, s.clock, lambda: -5000.0, keep_alive_s=10)
        rm = cem.add_rm(ACLOAD)
        async with anyio.create_task_group() as tg:
            await tg.start(cem.run)
            await s.until(lambda: rm.connected and rm.load is not None, 30)
            await s.until(lambda: rm.load is not None and rm.load.mode is not None, 10)
            load = rm.load
            assert load is not None
            statuses = rm.received.count("OMBC.Status")
            mid = cem.instruct(rm, load.plan.modes[3])  # 1500 W
            await s.until(lambda: rm.received.count("OMBC.Status") > statuses, 10)
            assert load.mode is not None
            assert load.mode.power_w == 0.0  # the Status names what really runs: Off
            assert s.rod_w == 0.0
            assert "hard maximum" in s.load("/StateText")
            assert (mid, "OK") in rm.acks  # accepted at once, then refused by the Status
            assert s.load("/S2/0/Rm") == "CEM: ol"  # refused, not withdrawn
            # the tank cools below the limit: the CEM's step now runs
            s.tank.temperature_c = 50.0
            await s.until(lambda: (s.load("/Temperature") or 99.0) < 55.0, 10)
            cem.instruct(rm, load.plan.modes[3])
            await s.until(lambda: s.rod_w == 1500.0, 20)
            assert load.mode.power_w == 1500.0
            tg.cancel_scope.cancel()
        # the CEM left the bus: keep-alive stops, the heater is released to its own rule
        await s.until(lambda: "Opportunity Loads" not in s.load("/StateText"), 40)

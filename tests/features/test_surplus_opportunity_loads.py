"""[surplus] stands down while Victron's Opportunity Loads runs, and takes over again after."""

from __future__ import annotations

import anyio
import pytest
from surplus_support import ACLOAD, relays, surplus_site

from venus_ems.control.opportunity_loads import STANDING_DOWN, opportunity_loads_hold
from venus_ems.sim.venus.opportunity_loads import SimOpportunityLoads
from venus_ems.venus import PathSpec, Service
from venus_ems.venus.s2 import OPPORTUNITY_LOADS

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("present", "state", "reason"),
    [
        (False, 1, None),
        (True, 0, None),
        (True, 4, None),
        (True, 1, STANDING_DOWN),
        (True, 2, f"{STANDING_DOWN} (sleep mode)"),
        (True, 3, f"{STANDING_DOWN} (off-grid pause)"),
        (True, 5, f"{STANDING_DOWN} (abnormal condition)"),
        (True, None, f"{STANDING_DOWN} (state unknown)"),
        (True, 9, f"{STANDING_DOWN} (state unknown)"),
        (True, "1", f"{STANDING_DOWN} (state unknown)"),
        (True, True, f"{STANDING_DOWN} (state unknown)"),
    ],
)
def test_hold_reason(present, state, reason):
    assert opportunity_loads_hold(present, state) == reason


async def test_distributor_stands_down_while_opportunity_loads_runs(bus_address):
    async with surplus_site(bus_address) as (site, feature):
        await site.until(lambda: any(relays(site).values()), 60)
        ol = Service(OPPORTUNITY_LOADS, identity=None, device_instance=0, address=bus_address)
        ol.add_path("/OperationalState", 1, PathSpec("i"))
        async with ol:
            await site.until(lambda: feature.held is not None, 10)
            assert feature.held == STANDING_DOWN
            # standalone switched consumers are off: nothing of ours competes with OL
            await site.until(lambda: not any(relays(site).values()), 10)
            await site.run(30)
            assert not any(relays(site).values())
            ol["/OperationalState"] = 0  # the user disabled OL: we distribute again
            await site.until(lambda: feature.held is None, 10)
            await site.until(lambda: any(relays(site).values()), 90)
            ol["/OperationalState"] = 2
            await site.until(lambda: feature.held == f"{STANDING_DOWN} (sleep mode)", 10)
        await site.until(lambda: feature.held is None, 10)  # OL's service left the bus


async def test_victron_cem_drives_our_consumers_while_we_stand_down(bus_address):
    async with surplus_site(bus_address) as (site, feature):
        await site.until(lambda: any(relays(site).values()), 60)
        phys = site.gx.site

        def surplus() -> float:  # what OL computes from systemcalc (it adds its RMs' draw)
            f = phys.flows
            return f.pv_ac_w + 0.925 * f.pv_dc_w - f.loads_w

        cem = SimOpportunityLoads(bus_address, site.clock, surplus, keep_alive_s=10)
        names = {n: f"{ACLOAD}{n}" for n in ("pool", "heater", "dryer")}
        for i, name in enumerate(names.values()):
            cem.add_rm(name, priority=i)
        async with anyio.create_task_group() as tg:
            await tg.start(cem.run)
            await site.until(lambda: feature.held == STANDING_DOWN, 10)
            await site.until(lambda: all(r.connected and r.load for r in cem.rms.values()), 30)
            for name in names.values():
                assert site.mon.get(name, "/S2/0/Rm") == "CEM: ol"
                assert site.mon.get(name, "/S2/0/Active") == 1
            # the CEM switches loads on from the surplus, within the OMBC timers
            await site.until(lambda: any(relays(site).values()), 120)
            driven = [r for r in cem.rms.values() if r.load and r.load.mode.power_w > 0]
            assert driven
            rm = driven[0]
            # the consumer's metered draw reaches the CEM at its next poll
            await site.until(lambda: (rm.power_w or 0.0) > 0, 10)
            assert all(status == "OK" for _, status in rm.acks)
            tg.cancel_scope.cancel()  # OL goes away: its service leaves the bus
        await site.until(lambda: feature.held is None, 10)
        await site.run(10)
        for name in names.values():  # our distributor is back: the RMs are withdrawn
            assert site.mon.get(name, "/S2/0/Rm") is None

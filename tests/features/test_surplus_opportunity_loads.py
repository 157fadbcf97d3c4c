"""[surplus] stands down while Victron's Opportunity Loads runs, and takes over again after."""

from __future__ import annotations

import pytest
from surplus_support import relays, surplus_site

from venus_ems.control.opportunity_loads import STANDING_DOWN, opportunity_loads_hold
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

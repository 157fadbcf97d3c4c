"""[surplus] end to end on the simulated GX: three loads behind real Shellys and HTTP."""

from __future__ import annotations

import pytest
from surplus_support import ACLOAD, relays, surplus_site

pytestmark = pytest.mark.anyio


async def test_three_consumers_by_priority_and_off_on_stop(bus_address):
    async with surplus_site(bus_address) as (site, feature):
        await site.until(lambda: relays(site)["pool-pump"], 30)
        await site.run(60)
        d = feature.last
        assert d is not None
        assert d.stale is None
        on = relays(site)
        # served in priority order: a lower priority never runs while a higher one waits
        order = ["pool-pump", "heater", "dryer"]
        first_off = next((i for i, n in enumerate(order) if not on[n]), len(order))
        assert all(not on[n] for n in order[first_off:]) or d.surplus_w > 3950
        granted = {n: a.power_w for n, a in d.allocations.items()}
        assert sum(granted.values()) <= d.surplus_w + 1e-6
        # every consumer is a proper acload service with its draw and allowance
        pool = ACLOAD + "pool"
        assert site.mon.get(pool, "/Ac/Power") == pytest.approx(750.0)
        assert site.mon.get(pool, "/Surplus/Allowance") == pytest.approx(750.0)
        assert site.mon.get(pool, "/State") == 1
        assert site.mon.get(ACLOAD + "dryer", "/CustomName") == "dryer"
        assert site.status("/Outputs/surplus_pool/Owner") == "surplus"
    assert not any(relays(site).values())  # stopped: every load back off (read back)


async def test_a_restart_switches_off_what_a_killed_run_left_on(bus_address):
    # at night there is no surplus: loads a killed run left on go off at once
    async with surplus_site(bus_address, start_s=1 * 3600, relays_on=("heater", "dryer")) as (
        site,
        _,
    ):
        took = await site.until(lambda: not any(relays(site).values()), 20)
        assert took <= 10

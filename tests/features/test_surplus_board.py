"""Other features' consumers on the shared board get their share like our own relays."""

from __future__ import annotations

import pytest
from surplus_support import relays, surplus_site

from venus_ems.runtime.consumers import ConsumerSpec

pytestmark = pytest.mark.anyio


class BoardConsumer:
    """A feature like [water_heater] (stepped) or [ev_charger] (continuous): follows its grant."""

    def __init__(self, spec: ConsumerSpec) -> None:
        self.name = f"test_{spec.name}"
        self.spec = spec
        self.running_w = 0.0
        self.grants: list[float] = []
        self.valid_s: list[float] = []

    async def run(self, ctx, *, task_status) -> None:
        seat = ctx.consumers.join(self.spec)
        task_status.started()
        try:
            while True:
                # not in the simulated physics: it draws nothing the meters could see
                seat.report(0.0, ctx.clock.monotonic())
                grant = seat.allowance(ctx.clock.monotonic(), max_age_s=30.0)
                self.running_w = 0.0 if grant is None else grant.power_w
                self.grants.append(self.running_w)
                if seat.grant is not None:
                    self.valid_s.append(seat.grant.valid_s)
                await ctx.clock.sleep(1.0)
        finally:
            seat.leave()


async def test_stepped_and_continuous_board_consumers_share_by_priority(bus_address):
    heater = BoardConsumer(ConsumerSpec("rod", priority=5, levels_w=(0.0, 500.0, 1000.0, 1500.0)))
    ev = BoardConsumer(ConsumerSpec("car", priority=15, min_w=1380.0, max_w=11000.0, step_w=230.0))
    others = [(heater.name, heater), (ev.name, ev)]
    async with surplus_site(bus_address, others=others) as (site, feature):
        await site.run(60)
        d = feature.last
        assert d is not None
        assert d.allocations["rod"].power_w == 1500.0  # priority 5: full first
        assert heater.running_w == 1500.0
        # the distributor vouches for three intervals (5 s here): a slow interval_s does not
        # make a consumer with a short own grant age fall back to standalone in between
        assert set(heater.valid_s) == {20.0}
        # ~3.6 kW surplus, 500 W reserved: rod 1500 (5), pool 750 (10); the car's minimum
        # 1380 (15) and the heater's 2000 (20) no longer fit
        assert 3200 < d.surplus_w < 4000
        assert d.allocations["pool"].power_w == 750.0
        assert relays(site) == {"pool-pump": True, "heater": False, "dryer": False}
        assert d.allocations["car"].power_w == 0.0
        assert sum(a.power_w for a in d.allocations.values()) <= d.surplus_w + 1e-6

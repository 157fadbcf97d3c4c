"""[surplus] safe states on the simulated GX: lost meter, a crashing feature, counters on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from surplus_support import ACLOAD, relays, surplus_site

from venus_ems.features.surplus import Surplus

pytestmark = pytest.mark.anyio


async def test_lost_grid_reading_switches_every_consumer_off_and_back(bus_address):
    async with surplus_site(bus_address) as (site, feature):
        await site.until(lambda: relays(site)["pool-pump"] and relays(site)["heater"], 30)
        site.gx.site.set_meter_connected(False)  # systemcalc's grid values turn invalid
        took = await site.until(lambda: not any(relays(site).values()), 15)
        assert took <= 8
        assert feature.last is not None
        assert feature.last.stale == "no grid reading"
        assert site.mon.get(ACLOAD + "pool", "/Surplus/Reason") == "no grid reading"
        site.gx.site.set_meter_connected(True)
        await site.until(lambda: relays(site)["pool-pump"], 60)  # after min off (30 s)


class Crashing(Surplus):
    """Raises once, after a few distributions: a bug inside the feature."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.steps = 0

    def distribute(self, ctx, tracker):
        self.steps += 1
        if self.steps == 6:
            raise RuntimeError("simulated bug")
        return super().distribute(ctx, tracker)


async def test_a_crash_puts_every_consumer_in_its_safe_state_until_restarted(
    bus_address, monkeypatch
):
    monkeypatch.setattr("surplus_support.Surplus", Crashing)
    async with surplus_site(bus_address) as (site, _):
        await site.until(lambda: relays(site)["pool-pump"], 20)
        took = await site.until(lambda: not any(relays(site).values()), 40)
        assert took <= 30
        assert site.status("/Features/surplus/State") == "backing_off"
        await site.until(lambda: relays(site)["pool-pump"], 60)  # restarted
        assert site.status("/Features/surplus/Restarts") == 1


async def test_safe_state_on_is_honoured_on_stop(bus_address):
    overrides = {"dryer": {"safe_state": "on", "priority": 1}}
    async with surplus_site(bus_address, overrides=overrides) as (site, _):
        await site.until(lambda: relays(site)["dryer"], 20)
    assert relays(site) == {"pool-pump": False, "heater": False, "dryer": True}


async def test_counters_are_kept_on_disk_across_runs(bus_address, tmp_path: Path):
    async with surplus_site(bus_address, state_dir=str(tmp_path)) as (site, feature):
        await site.until(lambda: relays(site)["pool-pump"], 20)
        await site.run(90)
        first = feature.runners["pool"].stats.runtime_total_s
        assert first >= 60
    doc = json.loads((tmp_path / "surplus" / "pool.json").read_text())
    assert doc["runtime_total_s"] == pytest.approx(first, abs=3)
    assert doc["energy_total_wh"] == pytest.approx(750 * first / 3600, rel=0.05)
    async with surplus_site(bus_address, state_dir=str(tmp_path)) as (site, feature):
        await site.run(5)
        assert feature.runners["pool"].stats.runtime_total_s >= first
        assert site.mon.get(ACLOAD + "pool", "/Surplus/RuntimeTotal") >= first


async def test_standing_down_leaves_the_board_and_switches_the_relays_off(bus_address):
    async with surplus_site(bus_address) as (site, feature):
        await site.until(lambda: relays(site)["pool-pump"], 20)
        reason = {"now": "Victron Opportunity Loads runs"}
        feature.hold_checks.append(lambda ctx: reason["now"])
        await site.until(lambda: not any(relays(site).values()), 20)
        assert site.status("/Features/surplus/Decision") == "standing down"
        reason["now"] = None
        await site.until(lambda: relays(site)["pool-pump"], 60)


async def test_when_and_tunables(bus_address):
    overrides = {"pool": {"when": "soc > 101"}, "dryer": {"when": "pv_w > 0"}}
    async with surplus_site(bus_address, overrides=overrides) as (site, feature):
        await site.until(lambda: relays(site)["heater"], 30)
        await site.run(20)
        assert not relays(site)["pool-pump"]  # never ready
        assert site.mon.get(ACLOAD + "pool", "/Surplus/Reason") == "when 'soc > 101' is false"
        settings = "com.victronenergy.settings"
        base = "/Settings/VenusEms/Surplus/"
        assert site.mon.get(settings, base + "HysteresisW") == 100.0
        assert await site.mon.set_value(settings, base + "HysteresisW", 250.0) == 0
        await site.run(2)
        assert feature.settings.hysteresis_w == 250.0
        assert feature.settings.borrow_s == 0.0  # from the config table
        assert await site.mon.set_value(settings, base + "BorrowS", 120.0) == 0
        await site.run(2)
        assert feature.settings.borrow_s == 120.0
        assert await site.mon.set_value(settings, base + "SettleS", -5.0) != 0  # refused
        await site.run(2)
        assert feature.settings.settle_s == 10.0


@pytest.mark.parametrize("mode", ["offline", "garbage", "http500", "deep_json"])
async def test_a_failing_device_gets_nothing_and_changes_nothing_else(bus_address, mode):
    async with surplus_site(bus_address) as (site, feature):
        await site.until(lambda: relays(site)["pool-pump"] and relays(site)["heater"], 30)
        await site.emus["heater"].set_fault(mode)
        await site.until(lambda: feature.runners["heater"].problem is not None, 20)
        await site.run(10)
        d = feature.last
        assert d is not None
        assert d.allocations["heater"].power_w == 0.0
        assert d.allocations["heater"].reason == "not ready"
        assert relays(site)["pool-pump"]  # the others go on
        assert site.mon.get(ACLOAD + "heater", "/Surplus/Error") != ""
        await site.emus["heater"].set_fault("ok")
        await site.until(lambda: feature.runners["heater"].problem is None, 20)

"""Settings guard: pure checks as a table, then the feature against the simulated GX."""

from __future__ import annotations

import anyio
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.features.settings_guard import GRACE_S, SettingsGuard, Values, check
from venus_ems.runtime.config import SettingsGuardConfig, parse_config
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import open_monitor
from waiting import bus_watch, until

SETTINGS = "com.victronenergy.settings"
STATUS = "com.victronenergy.venusems"
OK = Values(
    overvoltage_feed_in=0,
    max_feed_in_power_w=-1,
    hub4_mode=1,
    dvcc=1,
    feed_in_excess=0,
    disable_feed_in=0,
    bms_charge_limit_a=100.0,
    uptime_s=100,
)


@pytest.mark.parametrize(
    ("changes", "cap", "expected"),
    [
        ({}, None, []),
        ({"overvoltage_feed_in": 1}, None, []),  # feed-in allowed: fine
        ({"overvoltage_feed_in": 1, "max_feed_in_power_w": 0.0}, None, ["overvoltage_feed_in"]),
        ({"overvoltage_feed_in": 1, "feed_in_excess": 1}, None, ["overvoltage_feed_in"]),
        ({"overvoltage_feed_in": 1, "disable_feed_in": 1}, None, ["overvoltage_feed_in"]),
        ({"overvoltage_feed_in": None, "max_feed_in_power_w": 0.0}, None, []),  # unknown: no guess
        ({"hub4_mode": 3}, None, ["mode3_without_controller"]),
        ({"hub4_mode": 3, "uptime_s": GRACE_S - 1}, None, []),  # start-up grace
        ({"hub4_mode": 3, "we_drive_mode3": True}, None, []),
        ({"dvcc": 0}, None, ["dvcc_off_with_bms"]),
        ({"dvcc": 0, "bms_charge_limit_a": None}, None, []),  # no BMS
        ({}, 800.0, ["feed_in_limit_missing"]),  # unlimited
        ({"max_feed_in_power_w": 1000.0}, 800.0, ["feed_in_limit_missing"]),
        ({"max_feed_in_power_w": 600.0}, 800.0, []),
        (
            {"dvcc": 0, "hub4_mode": 3},
            800.0,
            ["mode3_without_controller", "dvcc_off_with_bms", "feed_in_limit_missing"],
        ),
    ],
)
def test_checks(changes, cap, expected):
    values = Values(**{**OK.__dict__, **changes})
    assert [f.check for f in check(values, cap)] == expected


def test_fixes_are_the_safe_settings():
    v = Values(
        overvoltage_feed_in=1,
        max_feed_in_power_w=-1.0,
        dvcc=0,
        hub4_mode=3,
        bms_charge_limit_a=50.0,
        feed_in_excess=1,
        uptime_s=GRACE_S,
    )
    fixes = {f.check: f.fix for f in check(v, 700.0)}
    assert fixes == {
        "overvoltage_feed_in": (SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", 0),
        "mode3_without_controller": (SETTINGS, "/Settings/CGwacs/Hub4Mode", 1),
        "dvcc_off_with_bms": (SETTINGS, "/Settings/Services/Bol", 1),
        "feed_in_limit_missing": (SETTINGS, "/Settings/CGwacs/MaxFeedInPower", 700.0),
    }


@pytest.mark.anyio
async def test_guard_on_the_simulated_gx_reports_and_fixes_once(bus_address):
    clock = SteppedClock()
    gx = SimulatedGx(
        "summer-sunny",
        address=bus_address,
        clock=clock,
        start_s=12 * 3600,
        settings={"/Settings/CGwacs/OvervoltageFeedIn": 1, "/Settings/CGwacs/MaxFeedInPower": 0},
    )
    config, _ = parse_config("schema_version = 1\n[general]\nlog_console = false\n")
    guard = SettingsGuard(
        SettingsGuardConfig(enabled=True, fix=("overvoltage_feed_in",), legal_feed_in_cap_w=800.0)
    )
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with open_monitor(bus_address) as mon, bus_watch(bus_address) as bus:
            await tg.start(
                lambda task_status: run_daemon(
                    config,
                    bus_address=bus_address,
                    clock=clock,
                    features=[("settings_guard", guard)],
                    task_status=task_status,
                )
            )
            decision = lambda: mon.get(STATUS, "/Features/settings_guard/Decision") or ""  # noqa: E731
            # overvoltage with feed-in blocked: found and fixed once (opted in)
            await until(lambda: gx.site.ess_settings().overvoltage_feed_in == 0)
            await until(lambda: decision() == "settings ok")
            # feed-in unlimited above the legal cap: reported, not fixed (not opted in)
            assert await mon.set_value(SETTINGS, "/Settings/CGwacs/MaxFeedInPower", -1) == 0
            await until(lambda: decision() == "1 warning(s): feed_in_limit_missing")
            assert "legal feed-in cap is 800 W" in mon.get(
                STATUS, "/Features/settings_guard/Reasons"
            )
            assert gx.site.ess_settings().max_feed_in_power_w == -1
            # DVCC switched off by someone: reported
            assert await mon.set_value(SETTINGS, "/Settings/Services/Bol", 0) == 0
            await until(lambda: "dvcc_off_with_bms" in decision())
            # the user sets OvervoltageFeedIn back with feed-in blocked: reported, not fought
            assert await mon.set_value(SETTINGS, "/Settings/CGwacs/MaxFeedInPower", 0) == 0
            assert await mon.set_value(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn", 1) == 0
            await until(lambda: "overvoltage_feed_in" in decision())
            for _ in range(5):
                await clock.advance(1.0)
            await bus.settle()  # a write back would have reached localsettings by now
            assert mon.get(SETTINGS, "/Settings/CGwacs/OvervoltageFeedIn") == 1
            assert "changed back" in (mon.get(STATUS, "/Features/settings_guard/Message") or "")
            # everything right again
            for path, value in (
                ("/Settings/CGwacs/OvervoltageFeedIn", 0),
                ("/Settings/Services/Bol", 1),
                ("/Settings/CGwacs/MaxFeedInPower", 800),
            ):
                assert await mon.set_value(SETTINGS, path, value) == 0
            await until(lambda: decision() == "settings ok")
        tg.cancel_scope.cancel()

"""Outputs are owned, not just written: read-back, a restarted target, someone else's value,
the ledger, and a safe write at shutdown that does not complete. Real dbus-daemon, real services."""

from __future__ import annotations

import logging
import time

import anyio
import pytest
from dbus_fast import Message

from venus_ems.clock import SteppedClock
from venus_ems.runtime.actuator import Actuator
from venus_ems.runtime.ledger import OutputLedger
from venus_ems.runtime.outputs import (
    MODE3_TIMEOUT_S,
    DbusPathWriter,
    grid_setpoint_actuator,
    phase_setpoints_actuator,
)
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from waiting import until

pytestmark = pytest.mark.anyio
HUB4 = "com.victronenergy.hub4"


def hub4(address: str, hang: list | None = None) -> Service:
    """A fresh hub4control process: overrides at their defaults."""
    svc = Service(HUB4, identity=Identity("hub4"), device_instance=0, address=address)
    svc.add_path("/Overrides/Setpoint", None, PathSpec("d", writable=True))
    svc.add_path("/Overrides/MaxDischargePower", -1.0, PathSpec("d", writable=True))
    if hang is not None:  # while hang[0] is true, SetValue gets no reply (a hung process)

        def handler(msg: Message):
            return True if hang and hang[0] and msg.member == "SetValue" else None

        svc.add_handler(handler)
    return svc


async def started(tg, act):
    await tg.start(act.run)
    return act


async def test_a_restarted_target_gets_our_value_again_at_once(bus_address, tmp_path):
    clock = SteppedClock()  # nothing advances it: the reaction is driven by the bus alone
    first = hub4(bus_address)
    async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        await first.register()
        await mon.wait_for_service(HUB4)
        act = await started(tg, grid_setpoint_actuator(mon, clock))
        act.claim("ess", -300.0)
        await until(lambda: first["/Overrides/Setpoint"] == -300.0)
        await until(lambda: act.in_force == -300.0)
        owner = mon.service(HUB4).owner
        await first.close()
        await until(lambda: mon.service(HUB4) is None)
        assert act.in_force is None  # the target is gone: nothing is in force
        assert act.value == -300.0
        second = hub4(bus_address)
        t0 = time.monotonic()
        await second.register()
        await until(lambda: second["/Overrides/Setpoint"] == -300.0, timeout=2)
        reassert_s = time.monotonic() - t0
        assert mon.service(HUB4).owner != owner
        await until(lambda: act.in_force == -300.0)
        assert reassert_s < 1.0, reassert_s
        tg.cancel_scope.cancel()
    assert second["/Overrides/Setpoint"] is None  # safe state on the new owner
    await second.close()


async def test_a_released_output_is_released_again_on_the_new_owner(bus_address):
    clock = SteppedClock()
    first = hub4(bus_address)
    async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        await first.register()
        await mon.wait_for_service(HUB4)
        act = await started(tg, grid_setpoint_actuator(mon, clock, safe_w=150.0))
        act.claim("ess", -300.0)
        await until(lambda: first["/Overrides/Setpoint"] == -300.0)
        act.release("ess")
        await until(lambda: act.value == 150.0)  # confirmed
        writes = act.writes
        await first.close()
        second = hub4(bus_address)
        await second.register()
        await until(lambda: second["/Overrides/Setpoint"] == 150.0)  # our safe value, again
        await until(lambda: act.writes == writes + 1)
        await until(lambda: act.in_force == 150.0)
        tg.cancel_scope.cancel()
    await second.close()


async def test_a_value_that_is_not_ours_is_reported_and_a_claim_reasserted(bus_address, caplog):
    """A target that is not refreshed (a PV inverter limit here): the read-back alone acts."""
    clock = SteppedClock()
    name = "com.victronenergy.pvinverter.test"
    svc = Service(name, identity=Identity("pv"), device_instance=20, address=bus_address)
    svc.add_path("/Ac/PowerLimit", 3000.0, PathSpec("d", writable=True))
    async with svc, open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        await mon.wait_for_service(name)
        writer = DbusPathWriter(mon, name, "/Ac/PowerLimit")
        act = await started(tg, Actuator("pv", writer, safe_value=3000.0, clock=clock))
        assert act.refresh_s is None
        act.claim("limiter", 1000.0)
        await until(lambda: act.in_force == 1000.0)
        await clock.advance(2.0)
        svc["/Ac/PowerLimit"] = 2500.0  # someone else writes it (or the target reset it)
        await until(lambda: act.in_force == 2500.0)  # the status tells the truth at once
        assert act.value == 1000.0  # what we wrote
        await until(lambda: "holds 2500.0 instead of our 1000.0" in caplog.text)
        await clock.advance(2.0)
        assert svc["/Ac/PowerLimit"] == 2500.0  # a grace of one read-back period (5 s) first
        await clock.advance(5.0)  # read back every 5 s: written again within two periods
        await clock.advance(5.0)
        await until(lambda: svc["/Ac/PowerLimit"] == 1000.0)
        act.release("limiter")
        await until(lambda: svc["/Ac/PowerLimit"] == 3000.0)
        await clock.advance(2.0)
        svc["/Ac/PowerLimit"] = 700.0  # after we released it: someone else's now
        await until(lambda: act.in_force == 700.0)
        await until(lambda: act.value is None)  # forgotten
        tg.cancel_scope.cancel()
    assert svc["/Ac/PowerLimit"] == 700.0  # no safe write over their value on stop


async def test_the_ledger_holds_what_is_out_there_and_nothing_else(bus_address, tmp_path):
    clock = SteppedClock()
    ledger = OutputLedger(tmp_path, bus_id="boot")
    async with hub4(bus_address) as svc, open_monitor(bus_address) as mon:
        await mon.wait_for_service(HUB4)
        async with anyio.create_task_group() as tg:
            act = Actuator(
                "cap",
                DbusPathWriter(mon, HUB4, "/Overrides/MaxDischargePower"),
                safe_value=-1.0,
                clock=clock,
                ledger=ledger,
            )
            await tg.start(act.run)
            assert ledger.entries() == []
            act.claim("limiter", 250.0)
            await until(lambda: svc["/Overrides/MaxDischargePower"] == 250.0)
            (entry,) = ledger.entries()
            assert (entry.values, entry.safe, entry.bus_id) == ((250.0,), -1.0, "boot")
            assert entry.target == {
                "kind": "dbus",
                "service": HUB4,
                "path": "/Overrides/MaxDischargePower",
            }
            act.claim("limiter", 300.0)
            await until(lambda: svc["/Overrides/MaxDischargePower"] == 300.0)
            assert ledger.entries()[0].values == (300.0, 250.0)
            act.release("limiter")
            await until(lambda: svc["/Overrides/MaxDischargePower"] == -1.0)
            await until(lambda: ledger.entries() == [])  # once the safe write is confirmed
            act.claim("limiter", 400.0)
            await until(lambda: ledger.entries() != [])
            act.abandon("limiter")  # Dynamic ESS took over: not ours to clear later
            assert ledger.entries() == []
            tg.cancel_scope.cancel()


async def test_mode3_in_force_is_what_we_wrote_until_the_multi_drops_it(bus_address):
    clock = SteppedClock()
    vebus = Service(
        "com.victronenergy.vebus.ttyS4", identity=Identity("Multi"), device_instance=276,
        address=bus_address,
    )  # fmt: skip
    for n in (1, 2, 3):
        vebus.add_path(f"/Hub4/L{n}/AcPowerSetpoint", 0.0, PathSpec("d", writable=True))
    async with vebus, open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        await mon.wait_for_service("com.victronenergy.vebus")
        act = await started(tg, phase_setpoints_actuator(mon, clock, phases=3, refresh_s=5.0))
        act.claim("ess", (100.0, 100.0, 100.0))
        await until(lambda: act.writes == 1)
        assert act.in_force == (100.0, 100.0, 100.0)
        act.abandon("ess")  # nobody refreshes any more
        await clock.advance(MODE3_TIMEOUT_S - 1)
        assert act.in_force is None  # abandoned: not ours to report
        act.claim("ess", (50.0, 50.0, 50.0))
        await until(lambda: act.writes == 2)
        tg.cancel_scope.cancel()


async def test_a_safe_write_that_hangs_at_shutdown_is_logged(bus_address, caplog):
    clock = SteppedClock()
    hang = [False]
    async with hub4(bus_address, hang) as svc, open_monitor(bus_address) as mon:
        await mon.wait_for_service(HUB4)
        act = grid_setpoint_actuator(mon, clock, shutdown_timeout_s=0.3)
        caplog.set_level(logging.INFO)
        t0 = time.monotonic()
        with anyio.fail_after(3):
            async with anyio.create_task_group() as tg:
                await tg.start(act.run)
                act.claim("ess", -300.0)
                await until(lambda: svc["/Overrides/Setpoint"] == -300.0)
                hang[0] = True
                tg.cancel_scope.cancel()
        assert time.monotonic() - t0 < 2.5
    assert svc["/Overrides/Setpoint"] == -300.0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "safe state None of com.victronenergy.hub4/Overrides/Setpoint not confirmed" in (
        errors[0].getMessage()
    )
    assert "no answer within 0.3 s" in errors[0].getMessage()

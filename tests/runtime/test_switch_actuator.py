"""switch_actuator drives a real Switch driver (Shelly relays on loopback emulators).

This is the seam switched consumers use: a feature opens its relay through the driver
registry, claims the actuator, and the actuator owns the safe state (off).
"""

from __future__ import annotations

import aiohttp
import anyio
import anyio.lowlevel
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.devices import Connection, Switch
from venus_ems.devices.registry import open_device
from venus_ems.errors import ConfigError
from venus_ems.runtime.outputs import SwitchWriter, switch_actuator
from venus_ems.sim.devices import MemorySwitch, ShellyGen1Emulator, plus_1pm
from waiting import until

pytestmark = pytest.mark.anyio

RELAYS = {
    "gen2-plus-1pm": lambda s, c: plus_1pm(s, clock=c),
    "gen1-1pm": lambda s, c: ShellyGen1Emulator("SHSW-PM", switch=s, clock=c),
}


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def relay(session, clock, emu) -> Switch:
    host = emu.url.removeprefix("http://")
    device = await open_device("shelly", session, Connection(host, 0.5), clock=clock)
    assert isinstance(device, Switch)
    return device


@pytest.mark.parametrize("model", list(RELAYS))
async def test_claims_switch_the_relay_and_release_turns_it_off(session, model):
    clock = SteppedClock()
    load = MemorySwitch(load_w=2000.0, clock=clock)
    async with RELAYS[model](load, clock) as emu:
        switch = await relay(session, clock, emu)
        act = switch_actuator("heater", switch, clock, write_timeout_s=2.0)
        assert act.writer.target.endswith(f"{switch.identity.serial} relay 0")
        async with anyio.create_task_group() as tg:
            await tg.start(act.run)
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            assert act.writes == 0  # never claimed: the relay is left alone
            act.claim("surplus", True)
            await until(lambda: load.read().output is True)
            await until(lambda: act.value is True)
            assert act.owner == "surplus"
            assert await SwitchWriter(switch).read() is True  # read back from the device
            act.release("surplus")
            await until(lambda: load.read().output is False)
            tg.cancel_scope.cancel()
    assert load.switch_count == 2


async def test_a_failed_write_is_reported_and_retried_until_the_relay_answers(session):
    clock = SteppedClock()
    load = MemorySwitch(load_w=2000.0, clock=clock)
    async with plus_1pm(load, clock=clock) as emu:
        switch = await relay(session, clock, emu)
        act = switch_actuator("heater", switch, clock, retry_s=5.0, write_timeout_s=2.0)
        async with anyio.create_task_group() as tg:
            await tg.start(act.run)
            await emu.set_fault("offline")
            act.claim("surplus", True)
            await until(lambda: act.last_error is not None)
            assert load.read().output is False
            await emu.set_fault("ok")
            await clock.advance(5.0)  # the retry, not a hammering loop
            await until(lambda: load.read().output is True)
            assert act.last_error is None
            tg.cancel_scope.cancel()


async def test_the_safe_state_is_off_when_the_daemon_stops(session):
    clock = SteppedClock()
    load = MemorySwitch(load_w=2000.0, clock=clock)
    async with plus_1pm(load, clock=clock) as emu:
        switch = await relay(session, clock, emu)
        act = switch_actuator("heater", switch, clock, write_timeout_s=2.0)
        async with anyio.create_task_group() as tg:
            await tg.start(act.run)
            act.claim("surplus", True)
            await until(lambda: load.read().output is True)
            tg.cancel_scope.cancel()  # SIGTERM: shielded, bounded safe state
        assert load.read().output is False
        assert act.value is False


async def test_a_relay_the_device_lacks_is_a_config_error(session):
    clock = SteppedClock()
    async with plus_1pm(MemorySwitch(clock=clock), clock=clock) as emu:
        switch = await relay(session, clock, emu)
        with pytest.raises(ConfigError, match="no relay 1"):
            await SwitchWriter(switch, channel=1).write(True)

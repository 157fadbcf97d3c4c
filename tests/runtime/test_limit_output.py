"""An inverter's limit as an actuator output: written, verified by read-back, safe on shutdown."""

from __future__ import annotations

import anyio
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.devices import Connection, PowerLimiter
from venus_ems.devices.registry import open_device
from venus_ems.errors import DeviceProtocolError, DeviceTimeoutError
from venus_ems.runtime.limit_output import InverterLimitWriter, inverter_limit_actuator
from venus_ems.sim.devices import InverterSpec, MemoryInverterBank, OpenDtuEmulator

pytestmark = pytest.mark.anyio
SERIAL = "114182940773"


def bank(clock, **spec):
    spec = {"max_power_w": 600.0, "dead_time_s": 3.0, "ack_s": 1.0, **spec}
    b = MemoryInverterBank([InverterSpec(SERIAL, **spec)], clock=clock)
    b.set_available_dc(SERIAL, 1000.0)
    return b


def writer(dtu, clock, **kw) -> InverterLimitWriter:
    async def opener(session) -> PowerLimiter:
        device = await open_device(
            "opendtu",
            session,
            Connection(f"127.0.0.1:{dtu.port}", password="openDTU42"),
            clock=clock,
        )
        assert isinstance(device, PowerLimiter)
        return device

    return InverterLimitWriter(opener, SERIAL, clock=clock, **kw)


async def test_a_write_is_done_when_the_dtu_reports_it():
    clock = SteppedClock()
    b = bank(clock)
    async with OpenDtuEmulator(b, clock=clock) as dtu:
        w = writer(dtu, clock)
        try:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(w.write, 300.0)
                    while w.confirmed_pct is None:
                        await anyio.sleep(0.01)
                        await clock.advance(0.5)
            assert (w.confirmed_pct, w.failures) == (50, 0)
            assert w.confirmed_at is not None
            assert w.confirmed_at >= 1.0  # after the DTU's acknowledgement
            cmd = b.commands[-1]
            assert (cmd.value, cmd.relative, cmd.persistent) == (50.0, True, False)
        finally:
            await w.aclose()


async def test_refused_and_unconfirmed_writes_raise_and_count():
    clock = SteppedClock()
    b = bank(clock)
    b.set_refuse_limits(SERIAL, True)
    async with OpenDtuEmulator(b, clock=clock) as dtu:
        w = writer(dtu, clock, verify_timeout_s=3.0)
        try:
            for expected in (1, 2):
                with pytest.raises(DeviceProtocolError, match="did not take limit 17 %"):
                    await write_while_ticking(w, clock, 100.0)
                assert w.failures == expected
            b.set_refuse_limits(SERIAL, False)
            b.set_reachable(SERIAL, False)  # no acknowledgement ever: Failure at the ack
            with pytest.raises(DeviceProtocolError):
                await write_while_ticking(w, clock, 100.0)
            b.set_reachable(SERIAL, True)
            slow = bank(clock, ack_s=None, dead_time_s=None)  # acknowledged after the bank's 5 s
            dtu.bank = slow
            with pytest.raises(DeviceTimeoutError, match="not confirmed within 3 s"):
                await write_while_ticking(w, clock, 100.0)
            assert w.failures == 4
            assert w.confirmed_pct is None
        finally:
            await w.aclose()


async def write_while_ticking(w: InverterLimitWriter, clock: SteppedClock, value: float) -> None:
    """``w.write(value)`` while the stepped clock moves 0.5 s every 10 ms; its error re-raised."""

    async def tick():
        while True:
            await anyio.sleep(0.01)
            await clock.advance(0.5)

    error: Exception | None = None
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            try:
                await w.write(value)
            except Exception as err:
                error = err
            finally:
                tg.cancel_scope.cancel()
    if error is not None:
        raise error


async def test_nameplate_unknown_is_an_error_not_a_guess():
    clock = SteppedClock()
    b = bank(clock, report_max_power=False)
    async with OpenDtuEmulator(b, clock=clock) as dtu:
        w = writer(dtu, clock)
        try:
            with pytest.raises(DeviceProtocolError, match="nameplate"):
                await write_while_ticking(w, clock, 100.0)
            assert not b.commands
        finally:
            await w.aclose()


async def test_the_actuator_writes_the_safe_limit_once_on_shutdown_and_closes():
    clock = SteppedClock()
    b = bank(clock)

    async def tick():
        while True:
            await anyio.sleep(0.01)
            await clock.advance(0.5)

    async with OpenDtuEmulator(b, clock=clock) as dtu, anyio.create_task_group() as outer:
        outer.start_soon(tick)  # the clock keeps moving while the actuator shuts down
        w = writer(dtu, clock, nameplate_w=600.0)
        act = inverter_limit_actuator("micro.x", w, clock, safe_w=18.0, shutdown_timeout_s=5.0)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                await tg.start(act.run)
                act.claim("f", 300.0)
                while act.value != 300.0:
                    await anyio.sleep(0.01)
                act.reassert()  # the inverter lost it: the same value goes out again
                n = len(b.commands)
                while len(b.commands) == n:
                    await anyio.sleep(0.01)
                assert b.commands[-1].value == 50.0
                tg.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    assert [c.value for c in b.commands] == [50.0, 50.0, 3.0]  # the safe 18 W = 3 %, once
    assert w.confirmed_pct == 3  # verified by reading the DTU back
    assert w._session is None  # the writer's own session is closed after the last write

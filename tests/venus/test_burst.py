"""Bursts: a full socket buffer (EAGAIN) must mean backpressure, never a dropped connection.

To fill the kernel buffer deterministically the bus daemon is paused with SIGSTOP while a service
publishes, then resumed.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

import anyio
import pytest
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from venus_ems.clock import wait_idle
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from venus_ems.venus.bus import writer_of

pytestmark = pytest.mark.anyio
NAME = "com.victronenergy.bench.burst"


@contextmanager
def daemon_paused(private_bus):
    os.kill(private_bus.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(private_bus.pid, signal.SIGCONT)


def signal_msg(i: int) -> Message:
    return Message(
        message_type=MessageType.SIGNAL,
        path=f"/P{i % 100}",
        interface="com.victronenergy.BusItem",
        member="PropertiesChanged",
        signature="a{sv}",
        body=[{"Value": Variant("d", float(i)), "Text": Variant("s", f"{i} W")}],
    )


async def test_upstream_dbus_fast_writer_drops_the_connection_on_eagain(private_bus):
    """Why we replace the writer: dbus-fast treats EAGAIN as fatal (fails once fixed upstream)."""
    bus = await MessageBus(bus_address=private_bus.address, bus_type=BusType.SESSION).connect()
    futures = []
    dropped = False
    with daemon_paused(private_bus):
        for i in range(20_000):
            try:
                futures.append(bus.send(signal_msg(i)))
            except OSError:  # the socket was already closed by the writer
                dropped = True
                break
            if not bus.connected:
                dropped = True
                break
            if i % 500 == 0:
                await anyio.sleep(0.001)
    for f in futures:
        if f.done() and not f.cancelled():
            f.exception()
    bus.disconnect()
    assert dropped


async def test_service_survives_a_full_socket_and_loses_no_final_value(private_bus):
    svc = Service(NAME, identity=Identity("burst"), device_instance=1, address=private_bus.address)
    paths = [f"/Burst/{i}" for i in range(100)]
    for p in paths:
        svc.add_path(p, 0.0, PathSpec("d", "%.1F W"))
    async with svc, open_monitor(private_bus.address, watch={NAME: None}) as mon:
        writer = writer_of(svc.bus)
        peak_queue = 0
        with daemon_paused(private_bus):
            for rnd in range(1, 301):
                for p in paths:
                    svc[p] = float(rnd)  # per-item PropertiesChanged
                svc.update(dict.fromkeys(paths[:10], rnd + 0.5))  # batched ItemsChanged
                peak_queue = max(peak_queue, writer.queued_bytes)
                await anyio.sleep(0)
            assert svc.bus.connected
            assert writer.congested
            assert len(svc._parked) <= len(paths)  # coalesced per path: bounded
        # bounded memory: the queue stops growing at the high-water mark (+ one batch of signals)
        assert peak_queue < writer.high_water + 100 * 200
        with anyio.fail_after(10):
            while any(
                mon.get(NAME, p) != (300.5 if i < 10 else 300.0) for i, p in enumerate(paths)
            ):
                await anyio.sleep(0.01)
        assert svc.bus.connected
        svc[paths[50]] = -1.0  # still alive in both directions
        with anyio.fail_after(3):
            while mon.get(NAME, paths[50]) != -1.0:
                await anyio.sleep(0.01)


async def test_drained_applies_backpressure_to_producers(private_bus):
    svc = Service(NAME, identity=Identity("burst"), device_instance=1, address=private_bus.address)
    svc.add_path("/X", 0.0, PathSpec("d"))
    async with svc:
        writer = writer_of(svc.bus)
        big = Message(
            message_type=MessageType.SIGNAL,
            path="/X",
            interface="com.victronenergy.BusItem",
            member="PropertiesChanged",
            signature="a{sv}",
            body=[{"Value": Variant("s", "x" * 60_000)}],
        )
        resumed = anyio.Event()

        async def producer() -> None:
            await svc.drained()
            resumed.set()

        with daemon_paused(private_bus):
            for _ in range(40):  # 2.4 MB, far beyond the socket buffer
                writer.write(big)
            await wait_idle()  # the writer sent what the socket takes and waits for it
            assert writer.queued_bytes > writer.low_water
            async with anyio.create_task_group() as tg:
                tg.start_soon(producer)
                await wait_idle()  # the producer ran until it blocked
                assert not resumed.is_set()  # blocked while the daemon does not read
                os.kill(private_bus.pid, signal.SIGCONT)
                with anyio.fail_after(5):
                    await resumed.wait()
        assert svc.bus.connected
        await writer.drained(empty=True)
        assert writer.queued_bytes == 0

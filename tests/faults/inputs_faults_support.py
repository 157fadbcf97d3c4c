"""Helpers for the input fault tests: the daemon on a simulated GX with a real mosquitto.

Plain helper module of tests/faults (imported as ``import inputs_faults_support``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import anyio
from anyio.abc import TaskStatus

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.features import create_features
from venus_ems.runtime.config import Config, parse_config
from venus_ems.runtime.feature import FeatureContext
from venus_ems.runtime.mqtt import MqttLink
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import Monitor, open_monitor

STATUS_SERVICE = "com.victronenergy.venusems"
SETTINGS = "com.victronenergy.settings"


def mqtt_toml(port: int) -> str:
    """An ``[mqtt]`` table for the test broker with quick reconnects."""
    return (
        f"[mqtt]\nenabled = true\nhost = '127.0.0.1'\nport = {port}\n"
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.5\nconnect_timeout_s = 3.0\n"
        "keepalive_s = 5\n"
    )


def daemon_config(extra: str) -> Config:
    """A config with quick restarts and no console logging, plus ``extra`` TOML."""
    config, _ = parse_config(
        "schema_version = 1\n[general]\nlog_console = false\nrestart_backoff_initial_s = 1.0\n"
        "restart_backoff_max_s = 2.0\n" + extra
    )
    return config


class Probe:
    """A feature that only keeps its context: tests reach the daemon's MQTT link through it."""

    name = "probe"

    def __init__(self) -> None:
        self.ctx: FeatureContext | None = None

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        self.ctx = ctx
        task_status.started()
        await anyio.sleep_forever()

    @property
    def link(self) -> MqttLink:
        assert self.ctx is not None
        assert self.ctx.mqtt is not None
        return self.ctx.mqtt


@dataclass
class Site:
    """A simulated GX, the daemon on the same stepped clock, a monitor and the probe."""

    gx: SimulatedGx
    clock: SteppedClock
    mon: Monitor
    probe: Probe
    features: dict[str, Any] = field(default_factory=dict)

    async def run(self, seconds: float, real_s: float = 0.02) -> None:
        """Advance simulated time second by second, giving the bus time to deliver."""
        for _ in range(round(seconds)):
            await self.clock.advance(1.0)
            await anyio.sleep(real_s)

    async def until(self, predicate: Callable[[], object], seconds: float = 30.0) -> None:
        """Step the clock until ``predicate()`` (AssertionError after ``seconds``)."""
        for _ in range(round(seconds)):
            if predicate():
                return
            await self.run(1)
        assert predicate(), f"not within {seconds} simulated s"

    def status(self, path: str) -> Any:
        return self.mon.get(STATUS_SERVICE, path)


@asynccontextmanager
async def running(
    bus_address: str,
    config: Config,
    *,
    prepare: Callable[[SimulatedGx], None] | None = None,
) -> AsyncIterator[Site]:
    """The configured features plus a probe, under the daemon, on a simulated GX.

    ``prepare(gx)`` runs once the GX is up, before the daemon starts (e.g. to store settings).
    """
    clock = SteppedClock()
    gx = SimulatedGx("ev-charging", address=bus_address, clock=clock, start_s=10.5 * 3600)
    probe = Probe()
    features = [*create_features(config), ("probe", probe)]
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        if prepare is not None:
            prepare(gx)
        async with open_monitor(bus_address) as mon:
            site = Site(gx, clock, mon, probe, dict(features))
            async with anyio.create_task_group() as daemon:
                await daemon.start(
                    lambda task_status: run_daemon(
                        config,
                        bus_address=bus_address,
                        clock=clock,
                        features=features,
                        task_status=task_status,
                    )
                )
                await site.run(1)
                try:
                    yield site
                finally:
                    daemon.cancel_scope.cancel()
        tg.cancel_scope.cancel()


@asynccontextmanager
async def recording(port: int, topic_filter: str) -> AsyncIterator[list[tuple[str, bytes]]]:
    """``(topic, payload)`` of every message on ``topic_filter`` while the block runs."""
    seen: list[tuple[str, bytes]] = []

    async def read(client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            assert isinstance(msg.payload, bytes)
            seen.append((str(msg.topic), msg.payload))

    async with aiomqtt.Client("127.0.0.1", port) as client, anyio.create_task_group() as tg:
        await client.subscribe(topic_filter, qos=1)
        tg.start_soon(read, client)
        yield seen
        tg.cancel_scope.cancel()


async def retained_snapshot(port: int, topic_filter: str = "#") -> dict[str, bytes]:
    """Every retained message under ``topic_filter`` as a new subscriber receives it.

    A marker published after the subscription is acknowledged arrives after every retained
    message of that subscription, so the snapshot is complete without waiting for time.
    """
    marker = "venus-ems-test/marker"
    out: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic_filter, qos=1)
        await client.subscribe(marker, qos=1)
        await client.publish(marker, b"end", qos=1)
        with anyio.fail_after(10):
            async for msg in client.messages:
                topic = str(msg.topic)
                if topic == marker and not msg.retain:
                    break
                if msg.retain:
                    assert isinstance(msg.payload, bytes)
                    out[topic] = msg.payload
    return out


async def retained_when(
    port: int,
    topic_filter: str,
    predicate: Callable[[dict[str, bytes]], object],
    *,
    timeout: float = 10.0,
) -> dict[str, bytes]:
    """The first :func:`retained_snapshot` that satisfies ``predicate`` (TimeoutError)."""
    with anyio.fail_after(timeout):
        while True:
            snapshot = await retained_snapshot(port, topic_filter)
            if predicate(snapshot):
                return snapshot
            await anyio.sleep(0.02)


async def publish_many(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish ``messages`` in order from one independent client (QoS 1: all delivered)."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)

"""An independent MQTT client (plain aiomqtt) that records what the broker delivers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import anyio


class Recorder:
    """Messages seen by an observer, in arrival order: ``(topic, payload, retain)``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p, _ in self.messages if t == topic]

    async def wait_for(self, topic: str, payload: bytes, *, timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            while payload not in self.payloads(topic):
                await anyio.sleep(0.01)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            assert isinstance(msg.payload, bytes)
            self.messages.append((str(msg.topic), msg.payload, msg.retain))


@asynccontextmanager
async def observe(port: int, topic_filter: str, **client_kw: Any) -> AsyncIterator[Recorder]:
    """Subscribe a second client to ``topic_filter`` for the duration of the block."""
    rec = Recorder()
    async with aiomqtt.Client("127.0.0.1", port, **client_kw) as client:
        await client.subscribe(topic_filter, qos=1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(rec._read, client)
            yield rec
            tg.cancel_scope.cancel()


async def retained(port: int, topic: str, *, timeout: float = 5.0, **client_kw: Any) -> bytes:
    """The retained payload of ``topic``, read by a fresh client (TimeoutError if none)."""
    async with observe(port, topic, **client_kw) as rec:
        with anyio.fail_after(timeout):
            while not rec.payloads(topic):
                await anyio.sleep(0.01)
        return rec.payloads(topic)[-1]


async def send(port: int, topic: str, payload: bytes, **client_kw: Any) -> None:
    """Publish one message (qos 1) from an independent client."""
    async with aiomqtt.Client("127.0.0.1", port, **client_kw) as client:
        await client.publish(topic, payload, qos=1)

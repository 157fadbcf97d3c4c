"""Child process for the last-will test: connect an MqttLink, say "up", then wait to be killed."""

from __future__ import annotations

import sys

import anyio

from venus_ems.runtime.config import MqttConfig
from venus_ems.runtime.mqtt import MqttLink


async def main(port: int) -> None:
    settings = MqttConfig(enabled=True, host="127.0.0.1", port=port, keepalive_s=5)
    link = MqttLink(settings)
    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        await link.wait_connected()
        print("up", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]))

"""Child process for the crash test: the daemon, and a bug outside every feature once told.

Usage: python micro_child.py CONFIG BUS TRIGGER_FILE. When TRIGGER_FILE appears, a task in the
daemon's process raises RuntimeError: the process dies with a traceback and a non-zero code,
the way an unexpected error anywhere in venus-ems would end it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio

from venus_ems.daemon import run_daemon
from venus_ems.runtime.config import load_config


async def main(config: str, bus: str, trigger: str) -> None:
    cfg = load_config(config)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: run_daemon(cfg, bus_address=bus, task_status=task_status)
        )
        print("up", flush=True)
        while not Path(trigger).exists():
            await anyio.sleep(0.1)
        raise RuntimeError("a bug outside every feature")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    anyio.run(main, *sys.argv[1:])

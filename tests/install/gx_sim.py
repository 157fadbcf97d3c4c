"""A simulated GX on a given bus as its own process: ``python gx_sim.py ADDRESS``."""

from __future__ import annotations

import sys

import anyio

from venus_ems.clock import RealClock
from venus_ems.sim.venus.gx import SimulatedGx


async def main(address: str) -> None:
    gx = SimulatedGx("summer-sunny", address=address, clock=RealClock(), start_s=12 * 3600)
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        print("ready", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])

"""``venus-ems run`` with [surplus] as a real process: SIGTERM switches every consumer off before
exit 0; after ``kill -9`` the next start switches off what the killed one left on."""

from __future__ import annotations

import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest
from test_ess_control_sigterm import read_all

from venus_ems.clock import RealClock
from venus_ems.sim.devices import ShellyGen1Emulator, plus_1pm
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.sim.wiring import SiteRelay
from waiting import until

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]


def write_config(tmp_path: Path, urls: dict[str, str], *, when: str | None = None) -> Path:
    extra = "" if when is None else f'when = "{when}"\n'
    pool = urls["pool-pump"].removeprefix("http://")
    heater = urls["heater"].removeprefix("http://")
    path = tmp_path / "venus-ems.toml"
    path.write_text(
        "schema_version = 1\n"
        f"[general]\nlog_console = true\nlog_level = 'INFO'\nstate_dir = '{tmp_path / 'state'}'\n"
        "[surplus]\nenabled = true\ninterval_s = 2.0\n"
        "reservation_points = [[0.0, 500.0], [100.0, 500.0]]\n"
        '[[surplus.consumer]]\nname = "pool"\n'
        f'host = "{pool}"\npower_w = 750\npriority = 10\npoll_interval_s = 1.0\n' + extra + ""
        '[[surplus.consumer]]\nname = "heater"\n'
        f'host = "{heater}"\ngeneration = 1\npower_w = 2000\npriority = 20\n'
        "poll_interval_s = 1.0\n" + extra
    )
    return path


def on(gx, *names: str) -> bool:
    return all(gx.site.relays[n].on for n in names)


async def test_sigterm_then_kill_and_restart(bus_address, tmp_path):
    clock = RealClock()
    gx = SimulatedGx(
        "surplus-three",
        address=bus_address,
        clock=clock,
        start_s=12 * 3600,
        settings={"overvoltage_feed_in": 1},
    )
    async with AsyncExitStack() as stack:
        emus = {
            "pool-pump": plus_1pm(SiteRelay(gx.site, "pool-pump"), clock=clock),
            "heater": ShellyGen1Emulator(
                "SHSW-PM", switch=SiteRelay(gx.site, "heater"), clock=clock
            ),
        }
        for emu in emus.values():
            await stack.enter_async_context(emu)
        urls = {n: e.url for n, e in emus.items()}
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        await tg.start(gx.run)
        cmd = [sys.executable, "-m", "venus_ems.cli", "run", "--bus", bus_address, "--config"]

        # 1. SIGTERM: both loads go off (read back) before the process exits 0
        config = write_config(tmp_path, urls)
        async with await anyio.open_process([*cmd, str(config)], cwd=ROOT) as proc:
            await until(lambda: on(gx, "pool-pump", "heater"), timeout=30)
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                code = await proc.wait()
            log = await read_all(proc.stderr)
        assert code == 0, log
        assert not on(gx, "pool-pump"), log
        assert not on(gx, "heater"), log

        # 2. kill -9 while they run: they stay on ...
        async with await anyio.open_process([*cmd, str(config)], cwd=ROOT) as proc:
            await until(lambda: on(gx, "pool-pump", "heater"), timeout=30)
            proc.kill()
            await proc.wait()
        await anyio.sleep(1.0)
        assert on(gx, "pool-pump", "heater")
        # ... until the next start, which does not want them (never ready): off at once
        config = write_config(tmp_path, urls, when="soc > 101")
        async with await anyio.open_process([*cmd, str(config)], cwd=ROOT) as proc:
            await until(lambda: not gx.site.relays["pool-pump"].on, timeout=15)
            await until(lambda: not gx.site.relays["heater"].on, timeout=15)
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await proc.wait() == 0

"""Every inverter ends at its safe limit: SIGTERM, a crash, stale inputs, kill -9 and restart.

The simulated GX and its emulated OpenDTU run here on real time; the daemon is a subprocess
(``venus-ems run``, or ``micro_child.py`` for the crash). "Safe" is what the inverters
acknowledged at the DTU: 3 % of their nameplate (the default safe limit, the minimum).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from micro_support import at_safe, config_text, raised

from venus_ems.clock import RealClock
from venus_ems.sim.run import SimHandles, running_site
from waiting import read_all, wait_for

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
CHILD = Path(__file__).with_name("micro_child.py")


@asynccontextmanager
async def site(bus_address: str) -> AsyncIterator[SimHandles]:
    async with running_site(
        "micro-inverters", address=bus_address, clock=RealClock(), start_s=19 * 3600.0
    ) as sim:
        yield sim


def write_config(tmp_path: Path, sim: SimHandles, extra: str = "") -> Path:
    assert sim.opendtu is not None
    path = tmp_path / "venus-ems.toml"
    text = config_text(sim.opendtu.port, tmp_path / "state", extra, shutdown_s=8.0)
    path.write_text(text.replace("log_level = 'WARNING'", "log_level = 'INFO'"))
    return path


def daemon(config: Path, bus: str) -> list[str]:
    return [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config), "--bus", bus]


async def test_sigterm_puts_every_inverter_at_its_safe_limit(bus_address, tmp_path):
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: raised(sim), 40, "the daemon never raised a limit")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                code = await proc.wait()
            log = await read_all(proc.stderr)
        assert code == 0, log
        assert at_safe(sim), log  # written at shutdown and acknowledged (verified) by the DTU


async def test_a_crash_puts_every_inverter_at_its_safe_limit(bus_address, tmp_path):
    trigger = tmp_path / "crash-now"
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim)
        cmd = [sys.executable, str(CHILD), str(config), bus_address, str(trigger)]
        async with await anyio.open_process(cmd, cwd=ROOT) as proc:
            await wait_for(lambda: raised(sim), 40, "the daemon never raised a limit")
            trigger.touch()
            with anyio.fail_after(20):
                code = await proc.wait()
            log = await read_all(proc.stderr)
        assert code != 0, log
        assert "a bug outside every feature" in log
        await wait_for(lambda: at_safe(sim), 5, f"not safe after the crash:\n{log}")


async def test_stale_meter_puts_every_inverter_at_its_safe_limit(bus_address, tmp_path):
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim, "stale_input_s = 3.0\n")
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: raised(sim), 40, "the daemon never raised a limit")
            sim.gx.site.set_meter_connected(False)
            await wait_for(lambda: at_safe(sim), 15, "not safe with a lost meter")
            await anyio.sleep(3)
            assert at_safe(sim)  # and it stays there
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                assert await proc.wait() == 0


async def test_a_restarted_daemon_clears_what_a_killed_one_left(bus_address, tmp_path):
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: raised(sim), 40, "the daemon never raised a limit")
            proc.kill()  # SIGKILL: no chance to write anything
            await proc.wait()
        await anyio.sleep(4)
        assert raised(sim)  # the killed process left its limits behind
        sim.gx.site.set_meter_connected(False)  # the new one cannot regulate: only the start
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: at_safe(sim), 30, "the restarted daemon left the limits")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                assert await proc.wait() == 0
        assert at_safe(sim)

"""The heating rod ends off: SIGTERM, a crash, stale inputs, kill -9 and a restart.

The simulated GX and the Heizstab emulator (Modbus TCP) run here on real time; the daemon is a
subprocess (``venus-ems run``, or ``micro_child.py`` for the crash). "Off" is what the SSRs of
the emulated firmware do; after a stop nobody renews its heartbeat (its watchdog takes over).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from heater_support import config_text, heater_host

from venus_ems.clock import RealClock
from venus_ems.sim.run import SimHandles, running_site
from waiting import read_all, wait_for

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
CHILD = Path(__file__).with_name("micro_child.py")


def heating(sim: SimHandles) -> bool:
    tank = sim.gx.site.tank
    assert tank is not None
    return any(tank.elements)


def off(sim: SimHandles) -> bool:
    return not heating(sim)


@asynccontextmanager
async def site(bus_address: str) -> AsyncIterator[SimHandles]:
    async with running_site(
        "summer-sunny",
        address=bus_address,
        clock=RealClock(),
        start_s=12 * 3600.0,
        heater="tcp",
        settings={"/Settings/CGwacs/OvervoltageFeedIn": 1},
    ) as sim:
        sim.gx.site.battery.set_soc(100.0)  # the surplus is exported
        yield sim


def write_config(tmp_path: Path, sim: SimHandles, extra: str = "", enabled: bool = True) -> Path:
    path = tmp_path / "venus-ems.toml"
    text = config_text(heater_host(sim, "tcp"), "tcp", tmp_path / "state", extra, shutdown_s=8.0)
    text = text.replace("log_level = 'WARNING'", "log_level = 'INFO'")
    if not enabled:
        text = text.replace("[water_heater]\nenabled = true", "[water_heater]\nenabled = false")
    path.write_text(text)
    return path


def daemon(config: Path, bus: str) -> list[str]:
    return [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config), "--bus", bus]


async def test_sigterm_switches_off_and_stops_the_heartbeat(bus_address, tmp_path):
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: heating(sim), 40, "the daemon never switched the rod on")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                code = await proc.wait()
            log = await read_all(proc.stderr)
        assert code == 0, log
        assert off(sim), log  # written and confirmed at shutdown
        assert sim.heater is not None
        fw = sim.heater.firmware
        held = fw.holding
        await anyio.sleep(2)
        assert fw.holding == held  # nobody renews the watchdog: it takes over


async def test_a_crash_switches_the_rod_off(bus_address, tmp_path):
    trigger = tmp_path / "crash-now"
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim)
        cmd = [sys.executable, str(CHILD), str(config), bus_address, str(trigger)]
        async with await anyio.open_process(cmd, cwd=ROOT) as proc:
            await wait_for(lambda: heating(sim), 40, "the daemon never switched the rod on")
            trigger.touch()
            with anyio.fail_after(20):
                code = await proc.wait()
            log = await read_all(proc.stderr)
        assert code != 0, log
        assert "a bug outside every feature" in log
        await wait_for(lambda: off(sim), 5, f"still heating after the crash:\n{log}")


async def test_a_stale_grid_reading_switches_the_rod_off(bus_address, tmp_path):
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim, "grid_stale_s = 3.0\n")
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: heating(sim), 40, "the daemon never switched the rod on")
            sim.gx.site.set_meter_connected(False)
            await wait_for(lambda: off(sim), 15, "still heating with a lost meter")
            await anyio.sleep(3)
            assert off(sim)  # and it stays off
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                assert await proc.wait() == 0


async def test_a_restarted_daemon_clears_what_a_killed_one_left(bus_address, tmp_path):
    async with site(bus_address) as sim:
        config = write_config(tmp_path, sim)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: heating(sim), 40, "the daemon never switched the rod on")
            proc.kill()  # SIGKILL: no chance to write anything
            await proc.wait()
        await anyio.sleep(2)
        assert heating(sim)  # the killed process left the rod on (for up to 300 s)
        assert list((tmp_path / "state" / "outputs").iterdir())  # noted in the ledger
        # even with the feature switched off in the config, the next start clears it
        config = write_config(tmp_path, sim, enabled=False)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: off(sim), 30, "the restarted daemon left the rod on")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                assert await proc.wait() == 0
        assert off(sim)
        assert not list((tmp_path / "state" / "outputs").iterdir())

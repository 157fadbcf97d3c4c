"""[ev_charger] safe state across process death: SIGTERM pauses the charger; after kill -9 the
restarted daemon takes the charger over again (the Wattpilot keeps what it was told: a killed
process cannot write, so the next start does). The daemon is a real subprocess."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest
from ev_support import config_text

from venus_ems.clock import RealClock
from venus_ems.sim.run import running_site

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]


def daemon(config: Path, bus: str) -> list[str]:
    return [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config), "--bus", bus]


async def until(predicate, seconds: float, what: str) -> None:
    with anyio.fail_after(seconds):
        while not predicate():
            await anyio.sleep(0.1)


async def test_sigterm_pauses_and_a_restart_after_kill_takes_over(bus_address, tmp_path):
    async with running_site(
        "ev-charging", address=bus_address, clock=RealClock(), start_s=10.5 * 3600
    ) as sim:
        ev = sim.gx.site.ev
        charging = tmp_path / "charging.toml"
        charging.write_text(config_text(sim, tmp_path / "state", 'mode = "manual"\n'))
        # SIGTERM: the charger ends paused (frc 1, acknowledged)
        async with await anyio.open_process(daemon(charging, bus_address), cwd=ROOT) as proc:
            wp = sim.wattpilot
            await until(lambda: wp.settings["frc"] == 2, 40, "never charged")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                code = await proc.wait()
        assert code == 0
        assert not ev.enabled
        assert ev.car is not None  # still plugged in: paused, not unplugged
        # kill -9 while charging: the charger keeps charging (nobody can tell it otherwise)...
        sim.wattpilot.settings["frc"] = 0
        sim.gx.site.set_ev_enabled(True)
        async with await anyio.open_process(daemon(charging, bus_address), cwd=ROOT) as proc:
            await until(lambda: sim.wattpilot.settings["frc"] == 2, 40, "never forced on")
            proc.kill()
            await proc.wait()
        assert ev.enabled
        # ...until the daemon starts again: its first decision (scheduled, no window) pauses it
        paused = tmp_path / "scheduled.toml"
        paused.write_text(config_text(sim, tmp_path / "state", 'mode = "scheduled"\n'))
        async with await anyio.open_process(daemon(paused, bus_address), cwd=ROOT) as proc:
            await until(lambda: not ev.enabled, 40, "the restarted daemon did not pause it")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                await proc.wait()

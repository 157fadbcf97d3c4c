"""At a constant household base load the daemon does not hunt the Multi's low-power error.

The simulated GX (real time, the Multi's ±100 W low-power error and the meter's noise on) holds
a constant 100/80/120 W load, no PV; the daemon (``venus-ems run``, subprocess) regulates zero
export in mode 3 and through the hub4 override. Its setpoints are sampled: after settling
they may change at most twice and never reverse (the issue measured 156 commands with 110
reversals in 540 s before the dead band was sized to the error).
"""

from __future__ import annotations

import itertools
import signal
import sys
from pathlib import Path

import anyio
import pytest

from venus_ems.clock import RealClock
from venus_ems.sim.venus.gx import SimulatedGx

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
LOAD_W = [100.0, 80.0, 120.0]


def write_config(tmp_path: Path, ess: str) -> Path:
    path = tmp_path / "venus-ems.toml"
    path.write_text(
        "schema_version = 1\n"
        f"[general]\nlog_console = true\nlog_level = 'INFO'\nstate_dir = '{tmp_path / 'state'}'\n"
        "[ess_control]\nenabled = true\ndead_time_s = 1.0\n" + ess
    )
    return path


def setpoint_total(gx: SimulatedGx, mode3: bool) -> float | None:
    ess = gx.site.ess
    if mode3:
        return None if min(ess.vebus.written_at) < 0 else round(sum(ess.vebus.setpoints_w), 1)
    return ess.overrides.setpoint_w


@pytest.mark.parametrize("mode3", [True, False], ids=["mode3", "hub4_override"])
async def test_constant_base_load_no_hunting(bus_address, tmp_path, mode3):
    settings = {"/Settings/CGwacs/Hub4Mode": 3} if mode3 else None
    gx = SimulatedGx(
        "cloudy-transients",
        address=bus_address,
        clock=RealClock(),
        start_s=2 * 3600.0,
        settings=settings,
    )
    gx.driver.feed = lambda: gx.site.set_inputs(LOAD_W)  # constant load, no PV
    ess = 'method = "mode3"\nallow_mode3 = true\n' if mode3 else ""
    config = write_config(tmp_path, ess)
    cmd = [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config)]
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with await anyio.open_process([*cmd, "--bus", bus_address], cwd=ROOT) as proc:
            await anyio.sleep(12)  # start and settle
            seen: list[float] = []
            for _ in range(100):  # 25 s
                await anyio.sleep(0.25)
                value = setpoint_total(gx, mode3)
                if value is not None and (not seen or value != seen[-1]):
                    seen.append(value)
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await proc.wait() == 0
        tg.cancel_scope.cancel()
    assert seen, "the daemon never wrote a setpoint"
    changes = len(seen) - 1
    deltas = [b - a for a, b in itertools.pairwise(seen)]
    reversals = sum(1 for a, b in itertools.pairwise(deltas) if a * b < 0)
    assert changes <= 2, seen
    assert reversals == 0, seen

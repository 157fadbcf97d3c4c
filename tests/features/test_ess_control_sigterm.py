"""SIGTERM on ``venus-ems run`` while it drives the simulated GX: the setpoint goes to its safe
value before the process exits 0. The GX runs here on real time; the daemon is a subprocess."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest

from venus_ems.clock import RealClock
from venus_ems.sim.venus.gx import SimulatedGx
from waiting import read_all, until

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
SAFE = 150.0


def write_config(tmp_path: Path, ess: str, *, safe: bool = True) -> Path:
    path = tmp_path / "venus-ems.toml"
    path.write_text(
        "schema_version = 1\n"
        f"[general]\nlog_console = true\nlog_level = 'INFO'\nstate_dir = '{tmp_path / 'state'}'\n"
        "[ess_control]\nenabled = true\n" + (f"safe_setpoint_w = {SAFE}\n" if safe else "") + ess
    )
    return path


async def drive_and_stop(
    bus_address: str,
    tmp_path: Path,
    ess: str,
    settings,
    driving,
    safe,
    *,
    signum: int = signal.SIGTERM,
    configured_safe: bool = True,
):
    gx = SimulatedGx(
        "ev-charging",
        address=bus_address,
        clock=RealClock(),
        start_s=10.5 * 3600,
        settings=settings,
    )
    config = write_config(tmp_path, ess, safe=configured_safe)
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        cmd = [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config)]
        async with await anyio.open_process([*cmd, "--bus", bus_address], cwd=ROOT) as proc:
            await until(lambda: driving(gx), timeout=20)  # the daemon drives the setpoint
            proc.send_signal(signum)
            with anyio.fail_after(10):
                code = await proc.wait()
            stderr = await read_all(proc.stderr)
        assert code == 0, stderr
        assert safe(gx), stderr
        tg.cancel_scope.cancel()


async def test_sigterm_puts_the_hub4_override_back_to_its_safe_value(bus_address, tmp_path):
    def driving(gx) -> bool:
        setpoint = gx.site.ess.overrides.setpoint_w
        return setpoint is not None and setpoint != SAFE

    await drive_and_stop(
        bus_address,
        tmp_path,
        "",
        None,
        driving,
        lambda gx: gx.site.ess.overrides.setpoint_w == SAFE,
    )


async def test_sigterm_puts_the_mode3_setpoints_back_to_their_safe_value(bus_address, tmp_path):
    def driving(gx) -> bool:
        vebus = gx.site.ess.vebus
        return all(at > 0 for at in vebus.written_at) and vebus.setpoints_w != [SAFE / 3] * 3

    await drive_and_stop(
        bus_address,
        tmp_path,
        'method = "mode3"\nallow_mode3 = true\n',
        {"/Settings/CGwacs/Hub4Mode": 3},
        driving,
        lambda gx: gx.site.ess.vebus.setpoints_w == [SAFE / 3] * 3,
    )


async def test_sigint_gives_the_override_back_without_a_safe_setpoint(bus_address, tmp_path):
    """Ctrl-C, and the default safe state: the override is released, ESS follows its setting."""
    await drive_and_stop(
        bus_address,
        tmp_path,
        "",
        None,
        lambda gx: gx.site.ess.overrides.setpoint_w is not None,
        lambda gx: gx.site.ess.overrides.setpoint_w is None,
        signum=signal.SIGINT,
        configured_safe=False,
    )

"""ESS control curtails AC-coupled PV the full battery cannot take, on the simulated GX.

The GX runs the ``ac-coupled-clouds`` day at noon with the battery full, on real time; the
daemon is a subprocess (``venus-ems run``). The PV inverter's ``/Ac/PowerLimit`` goes down
while export would follow, and back to MaxPower (released) on SIGTERM, after a crash (the
restarted daemon clears it) and when the battery can take the power again.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest

from venus_ems.clock import RealClock
from venus_ems.sim.venus.gx import SimulatedGx
from waiting import read_all, wait_for

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
NOON = 12.5 * 3600


def write_config(tmp_path: Path, ess: str) -> Path:
    path = tmp_path / "venus-ems.toml"
    path.write_text(
        "schema_version = 1\n"
        f"[general]\nlog_console = true\nlog_level = 'INFO'\nstate_dir = '{tmp_path / 'state'}'\n"
        "[ess_control]\nenabled = true\n" + ess
    )
    return path


def full_gx(bus_address: str, settings=None) -> SimulatedGx:
    gx = SimulatedGx(
        "ac-coupled-clouds",
        address=bus_address,
        clock=RealClock(),
        start_s=NOON,
        settings=settings,
    )
    gx.site.battery.set_soc(100.0)
    return gx


def limited(gx: SimulatedGx) -> bool:
    inv = gx.site.pv_inverter
    assert inv is not None
    return inv.limit_w is not None and inv.limit_w < inv.params.rated_power_w - 1.0


def released(gx: SimulatedGx) -> bool:
    return not limited(gx)


def daemon(config: Path, bus_address: str) -> list[str]:
    cmd = [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config)]
    return [*cmd, "--bus", bus_address]


METHODS = {
    "hub4_override": ("", None),
    "mode3": ('method = "mode3"\nallow_mode3 = true\n', {"/Settings/CGwacs/Hub4Mode": 3}),
}


@pytest.mark.parametrize("method", sorted(METHODS))
async def test_full_battery_curtails_ac_pv_and_sigterm_releases_it(bus_address, tmp_path, method):
    ess, settings = METHODS[method]
    gx = full_gx(bus_address, settings)
    config = write_config(tmp_path, ess)
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            try:
                await wait_for(lambda: limited(gx), 30, "the PV limit never went down")
                exported = []
                for _ in range(40):  # the limit holds the grid near the aim, not in export
                    await anyio.sleep(0.25)
                    exported.append(-min(sum(gx.site.grid_w), 0.0))
                # without the limit the full battery exports what the AC PV makes; a loaded
                # machine slows the loop, so the median is checked against a few hundred W
                assert sorted(exported)[len(exported) // 2] < 300.0, exported
            except BaseException:
                proc.kill()  # never leave the test waiting on a daemon that runs on
                raise
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                code = await proc.wait()
            stderr = await read_all(proc.stderr)
        assert code == 0, stderr
        assert released(gx), stderr  # PowerLimit back at MaxPower, written on the way out
        tg.cancel_scope.cancel()


async def test_room_in_the_battery_releases_the_limit(bus_address, tmp_path):
    gx = full_gx(bus_address)
    config = write_config(tmp_path, "")
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: limited(gx), 30, "the PV limit never went down")
            gx.site.battery.set_soc(60.0)  # room again: the battery takes the PV
            await wait_for(lambda: released(gx), 20, "the limit stayed with room to charge")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await proc.wait() == 0
        tg.cancel_scope.cancel()


async def test_a_restarted_daemon_clears_the_limit_a_killed_one_left(bus_address, tmp_path):
    gx = full_gx(bus_address)
    config = write_config(tmp_path, "")
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: limited(gx), 30, "the PV limit never went down")
            proc.kill()  # SIGKILL: no chance to write anything
            await proc.wait()
        await anyio.sleep(2)
        assert limited(gx)  # the killed process left its limit behind
        gx.site.set_meter_connected(False)  # the new one cannot regulate: only the start clears
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            # well before dbus-fronius' own 60 s fallback: the ledger's leftover clearing
            await wait_for(lambda: released(gx), 15, "the restarted daemon left the limit")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await proc.wait() == 0
        assert released(gx)
        tg.cancel_scope.cancel()


async def test_a_lost_grid_meter_releases_the_limit(bus_address, tmp_path):
    gx = full_gx(bus_address)
    config = write_config(tmp_path, "")
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            await wait_for(lambda: limited(gx), 30, "the PV limit never went down")
            gx.site.set_meter_connected(False)  # stale grid readings: safe state
            await wait_for(lambda: released(gx), 20, "the limit stayed without a grid meter")
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await proc.wait() == 0
        tg.cancel_scope.cancel()


async def test_victrons_own_feed_in_limiter_is_left_alone(bus_address, tmp_path):
    """ESS mode 1 with PreventFeedback: hub4control limits the PV; ours never writes it."""
    settings = {"/Settings/CGwacs/PreventFeedback": 1, "/Settings/CGwacs/MaxFeedInPower": 0}
    gx = full_gx(bus_address, settings)
    config = write_config(tmp_path, "")
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with await anyio.open_process(daemon(config, bus_address), cwd=ROOT) as proc:
            inv = gx.site.pv_inverter
            assert inv is not None
            written = []
            for _ in range(200):  # 20 s: Victron's limiter acts, the daemon decides and reports
                await anyio.sleep(0.1)
                written.append(inv.limit_w)
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await proc.wait() == 0
        assert inv.hub4_limit_w is not None  # Victron's limiter did limit the PV
        assert written == [None] * len(written)  # /Ac/PowerLimit never written by venus-ems
        assert inv.limit_w is None  # not on the way out either
        tg.cancel_scope.cancel()

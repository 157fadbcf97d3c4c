"""The simulated GX beside a settings service it does not own (``venus-ems sim --bus-settings``).

The settings service runs in another process (``python -m venus_ems.sim.localsettings``), as
Victron's localsettings would on a GX or a development machine.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from venus_ems.clock import SteppedClock
from venus_ems.errors import BusError
from venus_ems.runtime.supervisor import first_error
from venus_ems.sim.physics import SETTING_PATHS
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import open_monitor
from venus_ems.venus.bus import call
from waiting import until

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
SETTINGS = "com.victronenergy.settings"
SETPOINT = "/Settings/CGwacs/AcPowerSetPoint"
FEED_IN = "/Settings/CGwacs/MaxFeedInPower"
BUSITEM = "com.victronenergy.BusItem"


@asynccontextmanager
async def settings_process(address: str, file: Path | None = None) -> AsyncIterator[str]:
    """The settings service in its own process; yields its unique bus name."""
    args = [sys.executable, "-m", "venus_ems.sim.localsettings", "--bus", address]
    if file is not None:
        args += ["--file", str(file)]
    async with await anyio.open_process(args) as proc:
        assert proc.stdout is not None
        lines = BufferedByteReceiveStream(proc.stdout)
        with anyio.fail_after(20):
            ready = (await lines.receive_until(b"\n", 4096)).decode()
        assert ready.startswith(f"ready: {SETTINGS} as :"), ready
        try:
            yield ready.rsplit(" ", 1)[1]
        finally:
            proc.terminate()
            with anyio.fail_after(10):
                assert await proc.wait() == 0  # SIGTERM is a clean stop


async def owner_of(mon, name: str) -> str:
    (owner,) = await call(
        mon.bus,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "GetNameOwner",
        "s",
        [name],
    )
    return str(owner)


async def test_the_gx_keeps_its_settings_in_the_service_on_the_bus(bus_address, tmp_path):
    file = tmp_path / "settings.json"
    # a value stored before the simulator ever ran (e.g. set on the GX): it wins
    stored = {"type": "f", "value": -300.0, "default": 0.0, "min": -1e6, "max": 1e6}
    file.write_text(json.dumps({SETPOINT: {**stored, "silent": False}}))
    async with settings_process(bus_address, file) as settings_owner:
        gx = SimulatedGx(
            "summer-sunny",
            address=bus_address,
            clock=SteppedClock(),
            start_s=10 * 3600,
            bus_settings=True,
        )
        assert gx.local_settings is None
        async with anyio.create_task_group() as tg, open_monitor(bus_address) as mon:
            await tg.start(gx.run)
            assert await owner_of(mon, SETTINGS) == settings_owner  # the GX published none
            assert gx.site.ess_settings().ac_power_setpoint_w == -300.0
            await until(lambda: mon.service("com.victronenergy.system") is not None)
            for path in SETTING_PATHS:  # every ESS setting now lives in the other process
                (value,) = await call(mon.bus, SETTINGS, path, BUSITEM, "GetValue")
                assert value.value is not None, path
            # a write to those settings reaches the physics ...
            assert await mon.set_value(SETTINGS, SETPOINT, 250.0) == 0
            await until(lambda: gx.site.ess_settings().ac_power_setpoint_w == 250.0)
            # ... and one the physics refuses is put back there
            before = gx.site.ess_settings().max_feed_in_power_w
            mon.watch_path(SETTINGS, FEED_IN)  # unknown until the next signal
            assert await mon.set_value(SETTINGS, FEED_IN, -0.5) == 0  # within localsettings' range
            await until(lambda: mon.get(SETTINGS, FEED_IN) == before)
            assert gx.site.ess_settings().max_feed_in_power_w == before
            tg.cancel_scope.cancel()
    kept = json.loads(file.read_text())
    assert kept[SETPOINT]["value"] == 250.0
    assert set(SETTING_PATHS) <= set(kept)


async def start_error(gx: SimulatedGx) -> BaseException:
    """What starting the GX raised (out of the task groups around it)."""
    with pytest.raises(BaseException) as info:
        async with anyio.create_task_group() as tg:
            await tg.start(gx.run)
    return first_error(info.value)


async def test_without_the_option_a_taken_settings_name_says_what_to_do(bus_address):
    async with settings_process(bus_address):
        gx = SimulatedGx("winter", address=bus_address, clock=SteppedClock())
        err = await start_error(gx)
        assert isinstance(err, BusError)
        assert "already taken" in str(err)
        assert "--bus-settings" in str(err)


async def test_with_the_option_and_no_settings_service_it_fails_clearly(bus_address):
    gx = SimulatedGx("winter", address=bus_address, clock=SteppedClock(), bus_settings=True)
    err = await start_error(gx)
    assert isinstance(err, BusError)
    assert f"no {SETTINGS} on the bus" in str(err)
    with pytest.raises(ValueError, match="settings_file"):
        SimulatedGx(
            "winter", address=bus_address, clock=SteppedClock(), bus_settings=True,
            settings_file=Path("x.json"),
        )  # fmt: skip


async def test_venus_ems_sim_bus_settings(bus_address):
    cli = [sys.executable, "-m", "venus_ems.cli", "sim", "--scenario", "winter"]
    async with settings_process(bus_address) as settings_owner:
        res = await anyio.run_process(
            [*cli, "--bus", bus_address, "--bus-settings", "--speed", "20", "--duration", "10"],
            cwd=ROOT,
            check=False,
        )
        out = res.stdout.decode()
        assert res.returncode == 0, res.stderr.decode()
        assert "Settings: the com.victronenergy.settings already on the bus" in out
        assert "100%" in out
        async with open_monitor(bus_address) as mon:
            assert await owner_of(mon, SETTINGS) == settings_owner  # still there, untouched
            assert await mon.set_value(SETTINGS, SETPOINT, 10.0) == 0  # and holds the GX's
    plain = await anyio.run_process([*cli, "--bus-settings"], cwd=ROOT, check=False)
    assert plain.returncode == 2
    assert "--bus-settings needs --bus" in plain.stderr.decode()

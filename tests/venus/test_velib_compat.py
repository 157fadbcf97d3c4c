"""Wire compatibility with a client built on python3-dbus, as Victron's own tools are."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from venus_helpers import make_grid_service

from venus_ems.sim.venus import LocalSettings
from venus_ems.venus import DeviceInstance, Identity, Service, wrap
from venus_ems.venus.bus import call
from venus_ems.venus.specs import METER_ROLES, add_grid_paths

pytestmark = pytest.mark.anyio
CLIENT = Path(__file__).with_name("velib_client.py")
SYSTEM_PYTHON = "/usr/bin/python3"
NAME = "com.victronenergy.grid.test"
BUSITEM = "com.victronenergy.BusItem"


def have_python3_dbus() -> bool:
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", "import dbus, gi"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


@pytest.mark.skipif(not have_python3_dbus(), reason="python3-dbus / python3-gi not installed")
async def test_python3_dbus_client_scans_and_follows_both_signals(bus_address):
    svc = make_grid_service(bus_address)
    async with (
        svc,
        await anyio.open_process(
            [SYSTEM_PYTHON, str(CLIENT), bus_address, NAME, "3", "10"]
        ) as proc,
    ):
        lines = BufferedByteReceiveStream(proc.stdout)

        async def line() -> dict:
            with anyio.fail_after(10):
                return json.loads(await lines.receive_until(b"\n", 1 << 20))

        scan = (await line())["scan"]
        assert scan["listed"]
        items = scan["items"]
        assert items["/Ac/Power"] == {"kind": "Double", "value": 120.0, "text": "120 W"}
        assert items["/DeviceInstance"]["kind"] == "Int32"
        assert items["/DeviceInstance"]["value"] == 40
        assert items["/ProductId"]["text"] == "0xA389"
        assert items["/ProductName"]["kind"] == "String"
        assert items["/Ac/Energy/Forward"] == {"kind": "Array[i]", "value": None, "text": "---"}
        assert scan["root_value"]["Ac/L1/Power"] == 100.0
        assert scan["node_value"] == {
            "Power": 120.0,
            "L1/Power": 100.0,
            "L2/Power": 20.0,
            "Energy/Forward": None,
        }
        assert scan["leaf_text"] == "120 W"
        assert scan["set_result"] == 0
        assert scan["introspect_has_children"]
        assert (await line()) == {"listening": True}
        assert svc["/Limit"] == 12

        svc["/Ac/Power"] = 321.0
        svc.update({"/Ac/L1/Power": 300.0, "/Ac/L2/Power": 21.0})
        svc["/Ac/Energy/Forward"] = None  # no change: stays invalid, no signal
        svc["/Ac/Power"] = None
        signals = [await line() for _ in range(3)]
        assert signals == [
            {
                "signal": "PropertiesChanged",
                "path": "/Ac/Power",
                "kind": "Double",
                "value": 321.0,
                "text": "321 W",
            },
            {
                "signal": "ItemsChanged",
                "path": "/",
                "items": {
                    "/Ac/L1/Power": {"kind": "Double", "value": 300.0},
                    "/Ac/L2/Power": {"kind": "Double", "value": 21.0},
                },
            },
            {
                "signal": "PropertiesChanged",
                "path": "/Ac/Power",
                "kind": "Array[i]",
                "value": None,
                "text": "---",
            },
        ]
        assert (await line()) == {"done": 3}


@pytest.mark.skipif(not have_python3_dbus(), reason="python3-dbus / python3-gi not installed")
async def test_a_velib_style_monitor_follows_instance_and_role_changes(bus_address):
    """velib's DbusMonitor reads /DeviceInstance only when it scans: re-registering makes it."""
    grid, acload = "com.victronenergy.grid.test", "com.victronenergy.acload.test"
    setting = "/Settings/Devices/test_meter/ClassAndVrmInstance"
    svc = Service(
        grid,
        identity=Identity("Test meter"),
        device_instance=DeviceInstance("grid", 40, "test_meter", roles=METER_ROLES),
        address=bus_address,
    )
    add_grid_paths(svc, ("L1",))
    classes = ["com.victronenergy.grid", "com.victronenergy.acload"]
    args = [SYSTEM_PYTHON, str(CLIENT), bus_address, "--monitor", "20", *classes]
    async with (
        LocalSettings(address=bus_address) as ls,
        svc,
        await anyio.open_process(args) as proc,
    ):
        lines = BufferedByteReceiveStream(proc.stdout)

        async def services() -> dict:
            with anyio.fail_after(10):
                return json.loads(await lines.receive_until(b"\n", 1 << 20))["services"]

        try:
            assert await services() == {grid: 40}
            ls.set(setting, "grid:45")  # e.g. the user on the GX's device page
            assert await services() == {}  # the name went ...
            assert await services() == {grid: 45}  # ... and came back, scanned again
            # the role, written as the GX's GUI writes it
            (code,) = await call(svc.bus, grid, "/Role", BUSITEM, "SetValue", "v", [wrap("acload")])
            assert code == 0
            assert await services() == {}
            assert await services() == {acload: 45}
            assert ls.get(setting) == "acload:45"
        finally:
            proc.terminate()

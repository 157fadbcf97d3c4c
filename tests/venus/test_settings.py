"""localsettings: the simulated GX's settings service, our client, and DeviceInstance allocation."""

from __future__ import annotations

import json

import pytest
from dbus_fast import Variant

from venus_ems.errors import ConfigError
from venus_ems.sim.venus import LocalSettings
from venus_ems.venus import (
    DeviceInstance,
    Identity,
    PathSpec,
    Service,
    Setting,
    SettingsClient,
    open_monitor,
)
from venus_ems.venus.codec import unwrap
from venus_ems.venus.settings import SETTINGS_INTERFACE, SETTINGS_SERVICE, add_settings
from waiting import bus_watch, until

pytestmark = pytest.mark.anyio
S = SETTINGS_SERVICE


async def settings_call(recorder, path, member, sig="", body=None):
    from venus_ems.venus.bus import call  # noqa: PLC0415

    return await call(recorder.bus, S, path, SETTINGS_INTERFACE, member, sig, body)


async def test_add_setting_codes(bus_address, recorder):
    async with LocalSettings(address=bus_address):
        v = Variant
        zero = v("i", 0)

        async def add(obj, group, name, default, type_, lo=zero, hi=zero):
            (code,) = await settings_call(
                recorder, obj, "AddSetting", "ssvsvv", [group, name, default, type_, lo, hi]
            )
            return code

        assert await add("/Settings", "Foo", "Bar", v("i", 5), "i", v("i", 0), v("i", 10)) == 0
        assert (
            await add("/Settings", "Foo", "Bar", v("i", 5), "i", v("i", 0), v("i", 10)) == 0
        )  # idempotent
        assert await add("/Settings", "Foo", "Bar", v("s", "x"), "s") == -5  # type differs
        assert await add("/Settings", "_Foo", "Bar", v("i", 5), "i") == -2
        assert await add("/Settings", "Foo", "Baz", v("i", 5), "q") == -3
        assert await add("/Settings", "Fo o", "Baz", v("i", 5), "i") == -4
        assert await add("/Settings", "Foo", "Baz", v("s", "five"), "i") == -6
        assert await add("/Settings", "Foo", "Baz", v("i", 50), "i", v("i", 0), v("i", 10)) == -7
        assert await add("/Settings", "", "Foo", v("i", 1), "i") == -8  # /Settings/Foo is a group
        assert await add("/", "Other", "X", v("i", 1), "i") == -9
        assert await add("/", "Settings/Other", "X", v("d", 1.5), "f") == 0
        (value,) = await recorder.call(S, "/Settings/Foo/Bar", "GetValue")
        assert value.value == 5
        (lo,) = await recorder.call(S, "/Settings/Foo/Bar", "GetMin")
        (hi,) = await recorder.call(S, "/Settings/Foo/Bar", "GetMax")
        (default,) = await recorder.call(S, "/Settings/Foo/Bar", "GetDefault")
        assert (lo.value, hi.value, default.value) == (0, 10, 5)
        (nolimit,) = await recorder.call(S, "/Settings/Other/X", "GetMin")
        assert nolimit.value == 0
        # writes: in range 0, out of range / wrong type -1, SetDefault restores
        for written, code in [
            (Variant("i", 7), 0),
            (Variant("i", 11), -1),
            (Variant("s", "a"), -1),
        ]:
            (got,) = await recorder.call(S, "/Settings/Foo/Bar", "SetValue", "v", [written])
            assert got == code
        (value,) = await recorder.call(S, "/Settings/Foo/Bar", "GetValue")
        assert value.value == 7
        (code,) = await recorder.call(S, "/Settings/Foo/Bar", "SetDefault")
        assert code == 0
        (value,) = await recorder.call(S, "/Settings/Foo/Bar", "GetValue")
        assert value.value == 5
        (group,) = await recorder.call(S, "/Settings/Foo", "GetValue")
        assert unwrap(group) == {"Bar": 5}
        (items,) = await recorder.call(S, "/", "GetItems")
        assert unwrap(items["/Settings/Foo/Bar"]["Max"]) == 10
        assert unwrap(items["/Settings/Foo/Bar"]["Default"]) == 5
        (codes,) = await settings_call(
            recorder, "/", "RemoveSettings", "as", [["/Settings/Foo/Bar", "/Settings/Nope"]]
        )
        assert codes == [0, -1]
    signals = await recorder.settle()
    props = [
        (p, b) for _, m, p, b in signals if m == "PropertiesChanged" and p == "/Settings/Foo/Bar"
    ]
    assert props[0][1] == {"Value": 5, "Text": "5", "Default": 5, "Min": 0, "Max": 10}
    assert props[-1][1] == {"Value": None, "Text": ""}
    assert not [s for s in signals if s[1] == "ItemsChanged"]  # localsettings never batches


async def test_add_settings_batch_and_instance_bumping(bus_address):
    async with LocalSettings(address=bus_address), open_monitor(bus_address) as mon:
        results = await add_settings(
            mon.bus,
            [
                Setting("/Settings/Devices/a/ClassAndVrmInstance", "battery:1"),
                Setting("/Settings/Devices/b/ClassAndVrmInstance", "battery:1"),
                Setting("/Settings/Devices/c/ClassAndVrmInstance", "grid:1"),
            ],
            object_path="/Settings/Devices",
        )
        assert [(r.error, r.value) for r in results] == [
            (0, "battery:1"),
            (0, "battery:2"),
            (0, "grid:1"),
        ]
        again = await add_settings(
            mon.bus,
            [Setting("/Settings/Devices/b/ClassAndVrmInstance", "tank:9")],
            object_path="/Settings/Devices",
        )
        assert again[0].value == "battery:2"  # an existing record is kept
        assert await mon.set_value(S, "/Settings/Devices/c/ClassAndVrmInstance", "battery:1") == 0
        await until(lambda: mon.get(S, "/Settings/Devices/c/ClassAndVrmInstance") == "battery:3")
        assert await mon.set_value(S, "/Settings/Devices/c/ClassAndVrmInstance", "battery:x") == -1


async def test_persistence_across_restart(bus_address, tmp_path):
    file = tmp_path / "settings.json"
    async with LocalSettings(address=bus_address, file=file) as ls:
        assert ls.add("/Settings/CGwacs/AcPowerSetPoint", 50.0, "f", -10000.0, 10000.0) == 0
        assert ls.set("/Settings/CGwacs/AcPowerSetPoint", -200) == 0
    assert json.loads(file.read_text())["/Settings/CGwacs/AcPowerSetPoint"]["value"] == -200.0
    async with LocalSettings(address=bus_address, file=file), open_monitor(bus_address) as mon:
        assert mon.get(S, "/Settings/CGwacs/AcPowerSetPoint") == -200.0
        (default,) = await settings_call_via(mon, "/Settings/CGwacs/AcPowerSetPoint", "GetDefault")
        assert default == 50.0


async def settings_call_via(mon, path, member):
    from venus_ems.venus.bus import call  # noqa: PLC0415

    (v,) = await call(mon.bus, S, path, "com.victronenergy.BusItem", member)
    return (unwrap(v),)


async def test_settings_client(bus_address):
    async with (
        LocalSettings(address=bus_address) as ls,
        open_monitor(bus_address, watch={S: []}) as mon,
    ):
        client = SettingsClient(mon)
        changes = []
        client.on_change(lambda p, v: changes.append((p, v)))
        values = await client.add(
            [
                Setting("/Settings/VenusEms/Ess/GridTarget", 0.0, -5000.0, 5000.0),
                Setting("/Settings/VenusEms/Ess/Mode", "zero_export"),
                Setting("/Settings/VenusEms/Ess/Enabled", 1, 0, 1),
            ]
        )
        assert values == {
            "/Settings/VenusEms/Ess/GridTarget": 0.0,
            "/Settings/VenusEms/Ess/Mode": "zero_export",
            "/Settings/VenusEms/Ess/Enabled": 1,
        }
        assert await client.set("/Settings/VenusEms/Ess/GridTarget", 100) == 0
        assert await client.set("/Settings/VenusEms/Ess/GridTarget", 9999) == -1
        ls.set("/Settings/VenusEms/Ess/Mode", "export_cap")  # someone else writes
        await until(lambda: len(changes) == 2)
        assert changes == [
            ("/Settings/VenusEms/Ess/GridTarget", 100.0),
            ("/Settings/VenusEms/Ess/Mode", "export_cap"),
        ]
        assert client.get("/Settings/VenusEms/Ess/GridTarget") == 100.0
        with pytest.raises(ConfigError, match="default out of range"):
            await client.add([Setting("/Settings/VenusEms/Bad", 50, 0, 10)])
    with pytest.raises(ValueError, match="not under /Settings"):
        Setting("/Other/X", 1)
    with pytest.raises(TypeError):
        Setting("/Settings/X", True)


async def test_device_instance_from_localsettings_and_user_changes(bus_address):
    def meter(uid: str, name: str) -> Service:
        svc = Service(
            name,
            identity=Identity("m"),
            device_instance=DeviceInstance("grid", 40, uid),
            address=bus_address,
        )
        svc.add_path("/Ac/Power", 0.0, PathSpec("d"))
        return svc

    async with LocalSettings(address=bus_address) as ls, bus_watch(bus_address) as bus:
        async with (
            meter("shelly_a", "com.victronenergy.grid.a") as a,
            meter("shelly_b", "com.victronenergy.grid.b") as b,
        ):
            assert a["/DeviceInstance"] == 40
            assert b["/DeviceInstance"] == 41
            assert ls.set("/Settings/Devices/shelly_a/ClassAndVrmInstance", "grid:45") == 0
            await until(lambda: a["/DeviceInstance"] == 45)
            assert ls.set("/Settings/Devices/shelly_a/ClassAndVrmInstance", "pvinverter:3") == 0
            await bus.settle()  # the change reached the service, which did not follow it
            assert a["/DeviceInstance"] == 45  # a class change is not ours to follow
        async with meter("shelly_b", "com.victronenergy.grid.b") as b:
            assert b["/DeviceInstance"] == 41  # stable across restarts
    async with meter("shelly_c", "com.victronenergy.grid.c") as c:
        assert c["/DeviceInstance"] == 40  # no settings service: the fallback
    with pytest.raises(ValueError, match="unique_id"):
        DeviceInstance("grid", 40, "bad id")

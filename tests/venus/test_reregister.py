"""A service follows its ClassAndVrmInstance record the way Victron's drivers do: by re-registering.

velib's DbusMonitor (systemcalc, VRM logging) reads /DeviceInstance only when it scans a service,
so a changed instance or role must make the name go and come back with the tree already updated.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from dbus_fast import Message, MessageType, NameFlag, Variant

from venus_ems.sim.venus import LocalSettings
from venus_ems.venus import DeviceInstance, Identity, Service, SetResult, open_monitor
from venus_ems.venus.bus import add_match, call, connect
from venus_ems.venus.codec import unwrap
from venus_ems.venus.specs import METER_ROLES, add_grid_paths
from waiting import until

pytestmark = pytest.mark.anyio

BUSITEM = "com.victronenergy.BusItem"
GRID = "com.victronenergy.grid.test"
ACLOAD = "com.victronenergy.acload.test"
UID = "test_meter"
CLASS_SETTING = f"/Settings/Devices/{UID}/ClassAndVrmInstance"
POSITION_SETTING = f"/Settings/Devices/{UID}/Position"


def meter(address: str, *, roles: tuple[str, ...] = METER_ROLES, name: str = GRID) -> Service:
    svc = Service(
        name,
        identity=Identity("Test meter", product_id=0xFFFF),
        device_instance=DeviceInstance("grid", 40, UID, roles=roles),
        address=address,
    )
    add_grid_paths(svc, ("L1",))
    svc["/Ac/L1/Power"] = 123.0
    return svc


class Watcher:
    """A raw connection that sees NameOwnerChanged and scans with GetItems the moment a name
    appears, as velib's DbusMonitor does."""

    def __init__(self) -> None:
        self.bus: Any = None
        self.owners: list[tuple[str, str, str]] = []
        self.scans: list[tuple[str, dict[str, Any]]] = []
        self._pending: dict[int, str] = {}

    async def start(self, address: str) -> Watcher:
        self.bus = await connect(address)
        self.bus.add_message_handler(self._on)
        await add_match(self.bus, "type='signal',member='NameOwnerChanged',arg0namespace='com'")
        return self

    def _on(self, msg: Message) -> None:
        if msg.message_type is MessageType.SIGNAL and msg.member == "NameOwnerChanged":
            name, old, new = msg.body
            self.owners.append((name, old, new))
            if new and name.startswith("com.victronenergy.") and "settings" not in name:
                scan = Message(destination=name, path="/", interface=BUSITEM, member="GetItems")
                scan.serial = self.bus.next_serial()
                self._pending[scan.serial] = name
                self.bus.send(scan)
        elif msg.message_type is MessageType.METHOD_RETURN and msg.reply_serial in self._pending:
            name = self._pending.pop(msg.reply_serial)
            self.scans.append((name, {p: unwrap(e["Value"]) for p, e in msg.body[0].items()}))

    async def call(self, dest: str, path: str, member: str, sig: str = "", body: Any = None) -> Any:
        (value,) = await call(self.bus, dest, path, BUSITEM, member, sig, body)
        return unwrap(value)

    async def after_settings(self, dest: str, path: str) -> Any:
        """GetValue on ``dest`` once everything the settings service sent so far reached it."""
        await self.call("com.victronenergy.settings", CLASS_SETTING, "GetValue")
        return await self.call(dest, path, "GetValue")

    def close(self) -> None:
        self.bus.disconnect()


@pytest.fixture
async def watcher(bus_address):
    w = await Watcher().start(bus_address)
    yield w
    w.close()


async def test_changed_instance_re_registers_with_the_whole_tree(bus_address, watcher):
    async with LocalSettings(address=bus_address) as ls, meter(bus_address) as svc:
        await until(lambda: watcher.scans)
        me = watcher.owners[-1][2]
        assert watcher.scans == [(GRID, watcher.scans[0][1])]
        assert watcher.scans[0][1]["/DeviceInstance"] == 40
        paths = set(watcher.scans[0][1])
        del watcher.owners[:], watcher.scans[:]

        assert ls.set(CLASS_SETTING, "grid:45") == 0
        await until(lambda: watcher.scans)
        # the name went and came back on the same connection ...
        assert watcher.owners == [(GRID, me, ""), (GRID, "", me)]
        # ... and the first scan after it already sees the new instance and every path
        (name, items) = watcher.scans[0]
        assert name == GRID
        assert items["/DeviceInstance"] == 45
        assert set(items) == paths
        assert items["/Ac/L1/Power"] == 123.0
        assert svc["/DeviceInstance"] == 45
        assert svc.registered

        # the same value again, a class that is no role, an instance that is no int32: ignored
        ls.set(CLASS_SETTING, "grid:45")
        ls.set(CLASS_SETTING, "tank:3")
        ls.set(CLASS_SETTING, "grid:-1")
        ls.set(CLASS_SETTING, f"grid:{2**40}")
        assert await watcher.after_settings(GRID, "/DeviceInstance") == 45
        assert watcher.owners == [(GRID, me, ""), (GRID, "", me)]


async def test_our_monitor_sees_the_new_instance(bus_address):
    async with (
        LocalSettings(address=bus_address) as ls,
        meter(bus_address),
        open_monitor(bus_address, require_device_instance=True) as mon,
    ):
        await until(lambda: mon.service(GRID) is not None)
        assert mon.services("com.victronenergy.grid")[0].device_instance == 40
        ls.set(CLASS_SETTING, "grid:46")
        await until(
            lambda: [s.device_instance for s in mon.services("com.victronenergy.grid")] == [46]
        )


async def test_role_write_re_registers_under_the_new_class(bus_address, watcher):
    async with LocalSettings(address=bus_address) as ls, meter(bus_address) as svc:
        await until(lambda: watcher.scans)
        assert watcher.scans[0][1]["/Role"] == "grid"
        assert watcher.scans[0][1]["/AllowedRoles"] == list(METER_ROLES)
        assert "/Position" not in watcher.scans[0][1]
        del watcher.scans[:]

        # refused writes change nothing
        assert await watcher.call(GRID, "/Role", "SetValue", "v", [Variant("s", "tank")]) == (
            SetResult.REJECTED
        )
        assert await watcher.call(GRID, "/Role", "SetValue", "v", [Variant("i", 3)]) == (
            SetResult.WRONG_TYPE  # a string path takes strings only
        )
        wrong = Variant("as", ["acload"])
        assert await watcher.call(GRID, "/Role", "SetValue", "v", [wrong]) == SetResult.WRONG_TYPE
        assert ls.get(CLASS_SETTING) == "grid:40"

        assert await watcher.call(GRID, "/Role", "SetValue", "v", [Variant("s", "acload")]) == 0
        await until(lambda: watcher.scans)
        name, items = watcher.scans[0]
        assert name == ACLOAD
        assert (GRID, watcher.owners[-2][1], "") in watcher.owners  # the grid name is gone
        assert items["/Role"] == "acload"
        assert items["/DeviceInstance"] == 40
        assert items["/IsGenericEnergyMeter"] == 1
        assert items["/Position"] == 0
        assert items["/Ac/L1/Power"] == 123.0
        assert ls.get(CLASS_SETTING) == "acload:40"
        assert svc.name == ACLOAD
        assert svc.device_class == "acload"

        # the position is a device setting, kept in localsettings
        assert await watcher.call(ACLOAD, "/Position", "SetValue", "v", [Variant("i", 1)]) == 0
        await until(lambda: ls.get(POSITION_SETTING) == 1)
        assert await watcher.call(ACLOAD, "/Position", "SetValue", "v", [Variant("i", 3)]) != 0
        ls.set(POSITION_SETTING, 2)  # changed by someone else: the path follows
        await until(lambda: svc["/Position"] == 2)

        # back to grid: the generic paths go away, the position setting stays
        del watcher.scans[:]
        assert await watcher.call(ACLOAD, "/Role", "SetValue", "v", [Variant("s", "grid")]) == 0
        await until(lambda: watcher.scans)
        name, items = watcher.scans[0]
        assert name == GRID
        assert "/Position" not in items
        assert "/IsGenericEnergyMeter" not in items
        assert ls.get(POSITION_SETTING) == 2


async def test_role_and_position_survive_a_restart(bus_address, tmp_path):
    file = tmp_path / "settings.json"
    async with LocalSettings(address=bus_address, file=file) as ls:
        async with meter(bus_address) as svc:
            ls.set(CLASS_SETTING, "pvinverter:40")
            await until(lambda: svc.name == "com.victronenergy.pvinverter.test")
            ls.set(POSITION_SETTING, 1)
            await until(lambda: svc["/Position"] == 1)
    async with LocalSettings(address=bus_address, file=file), meter(bus_address) as svc:
        # declared as a grid meter, started as what the user chose
        assert svc.name == "com.victronenergy.pvinverter.test"
        assert (svc["/Role"], svc["/Position"], svc["/DeviceInstance"]) == ("pvinverter", 1, 40)


async def test_role_change_without_a_settings_service_applies_at_once(bus_address, watcher):
    async with meter(bus_address) as svc:
        await until(lambda: watcher.scans)
        del watcher.scans[:]
        assert await watcher.call(GRID, "/Role", "SetValue", "v", [Variant("s", "heatpump")]) == 0
        await until(lambda: watcher.scans)
        assert watcher.scans[0][0] == "com.victronenergy.heatpump.test"
        assert watcher.scans[0][1]["/Position"] == 0
        assert svc.registered


async def test_a_fixed_class_service_has_a_read_only_role(bus_address, watcher):
    async with LocalSettings(address=bus_address) as ls, meter(bus_address, roles=()) as svc:
        await until(lambda: watcher.scans)
        assert await watcher.call(GRID, "/Role", "SetValue", "v", [Variant("s", "acload")]) == (
            SetResult.NOT_WRITABLE
        )
        ls.set(CLASS_SETTING, "acload:40")  # not ours to follow
        ls.set(CLASS_SETTING, "acload:41")
        assert await watcher.after_settings(GRID, "/Role") == "grid"
        assert await watcher.call(GRID, "/DeviceInstance", "GetValue") == 40
        assert svc.name == GRID
    with pytest.raises(ValueError, match="suffix"):
        meter(bus_address, name="com.victronenergy.acload.test")  # class and name disagree
    with pytest.raises(ValueError, match="roles"):
        DeviceInstance("grid", 40, UID, roles=("acload",))


async def test_only_the_settings_service_is_believed(bus_address, watcher):
    async with LocalSettings(address=bus_address), meter(bus_address):
        await until(lambda: watcher.scans)
        (owner,) = await call(
            watcher.bus,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetNameOwner",
            "s",
            [GRID],
        )
        forged = Message(
            message_type=MessageType.SIGNAL,
            destination=owner,  # sent straight to the service: no match rule filters it
            path=CLASS_SETTING,
            interface=BUSITEM,
            member="PropertiesChanged",
            signature="a{sv}",
            body=[{"Value": Variant("s", "grid:99"), "Text": Variant("s", "grid:99")}],
        )
        await watcher.bus.send(forged)
        # a call from the same connection is handled after the signal
        assert await watcher.call(GRID, "/DeviceInstance", "GetValue") == 40
        assert len(watcher.scans) == 1


async def test_a_restarted_settings_service_is_followed(bus_address, tmp_path):
    file = tmp_path / "settings.json"
    first = LocalSettings(address=bus_address, file=file)
    await first.register()
    async with meter(bus_address) as svc:
        await first.close()
        async with LocalSettings(address=bus_address, file=file) as second:
            assert second.get(CLASS_SETTING) == "grid:40"
            second.set(CLASS_SETTING, "grid:41")  # from its new unique name
            await until(lambda: svc["/DeviceInstance"] == 41)
            assert svc.registered


async def test_a_taken_name_takes_the_service_off_the_bus(bus_address, caplog):
    squatter = await connect(bus_address)
    try:
        await squatter.request_name(ACLOAD, NameFlag.DO_NOT_QUEUE)
        async with meter(bus_address) as svc, open_monitor(bus_address) as mon:
            await until(lambda: mon.service(GRID) is not None)
            with caplog.at_level(logging.ERROR, logger="venus_ems.venus.registration"):
                code = await mon.set_value(GRID, "/Role", "acload")
                assert code == 0
                await until(lambda: not svc.registered)
            assert "cannot take the name back" in caplog.text
            await until(lambda: mon.service(GRID) is None)
            # still reachable by its unique name: the next change tries again, and succeeds
            unique = svc.bus.unique_name
            back = [Variant("s", "grid")]
            assert await call(mon.bus, unique, "/Role", BUSITEM, "SetValue", "v", back) == [0]
            await until(lambda: svc.registered and mon.service(GRID) is not None)
            assert mon.get(GRID, "/Role") == "grid"
    finally:
        squatter.disconnect()

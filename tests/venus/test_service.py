"""Service: the BusItem contract of venus-dbus.md §8, checked on a real dbus-daemon."""

from __future__ import annotations

import anyio
import pytest
from dbus_fast import Message, MessageType, Variant
from venus_helpers import BUSITEM, dbus_send, make_grid_service

from venus_ems.callbacks import Owner
from venus_ems.errors import BusError
from venus_ems.venus import DBusCallError, PathSpec, SetResult
from venus_ems.venus.bus import add_match, connect
from venus_ems.venus.codec import unwrap

pytestmark = pytest.mark.anyio
NAME = "com.victronenergy.grid.test"


async def test_whole_tree_answers_the_moment_the_name_appears(bus_address):
    """A consumer that scans on NameOwnerChanged must find every path (velib commit 494f9ae)."""
    bus = await connect(bus_address)
    replies: list[Message] = []
    sent: list[int] = []

    def on(msg: Message) -> None:
        if msg.message_type is MessageType.SIGNAL and msg.member == "NameOwnerChanged":
            if msg.body[0] == NAME and msg.body[2]:
                scan = Message(destination=NAME, path="/", interface=BUSITEM, member="GetItems")
                scan.serial = bus.next_serial()
                sent.append(scan.serial)
                bus.send(scan)
        elif msg.message_type is MessageType.METHOD_RETURN and msg.reply_serial in sent:
            replies.append(msg)

    bus.add_message_handler(on)
    await add_match(bus, "type='signal',member='NameOwnerChanged'")
    svc = make_grid_service(bus_address)
    async with svc:
        with anyio.fail_after(3):
            while not replies:
                await anyio.sleep(0.005)
    bus.disconnect()
    items = replies[0].body[0]
    assert set(items) == set(svc.paths())
    assert unwrap(items["/DeviceInstance"]["Value"]) == 40
    assert {
        "/Mgmt/ProcessName",
        "/Mgmt/ProcessVersion",
        "/Mgmt/Connection",
        "/ProductId",
        "/ProductName",
        "/FirmwareVersion",
        "/FirmwareBuild",
        "/HardwareVersion",
        "/Connected",
    } <= set(items)


async def test_getitems_types_and_texts(bus_address, recorder):
    async with make_grid_service(bus_address):
        (items,) = await recorder.call(NAME, "/", "GetItems")
    sig = {p: e["Value"].signature for p, e in items.items()}
    text = {p: e["Text"].value for p, e in items.items()}
    assert sig["/Ac/Power"] == "d"
    assert text["/Ac/Power"] == "120 W"
    assert sig["/DeviceInstance"] == "i"
    assert sig["/Connected"] == "i"
    assert sig["/ProductId"] == "i"
    assert text["/ProductId"] == "0xA389"
    assert sig["/ProductName"] == "s"
    assert sig["/Ac/Energy/Forward"] == "ai"
    assert items["/Ac/Energy/Forward"]["Value"].value == []
    assert text["/Ac/Energy/Forward"] == "---"
    assert items["/Limit"]["Min"].value == 0
    assert items["/Limit"]["Max"].value == 100
    assert "Min" not in items["/Ac/Power"]


async def test_getvalue_and_gettext_on_leaves_nodes_and_root(bus_address, recorder):
    async with make_grid_service(bus_address):
        (leaf,) = await recorder.call(NAME, "/Ac/L1/Power", "GetValue")
        (leaf_text,) = await recorder.call(NAME, "/Ac/L1/Power", "GetText")
        (node,) = await recorder.call(NAME, "/Ac", "GetValue")
        (node_text,) = await recorder.call(NAME, "/Ac", "GetText")
        (root,) = await recorder.call(NAME, "/", "GetValue")
        (root_text,) = await recorder.call(NAME, "/", "GetText")
    assert leaf.signature == "d"
    assert leaf.value == 100.0
    assert leaf_text == "100 W"
    assert node.signature == "a{sv}"
    assert unwrap(node) == {
        "Power": 120.0,
        "L1/Power": 100.0,
        "L2/Power": 20.0,
        "Energy/Forward": None,
    }
    assert node_text.signature == "a{ss}"
    assert node_text.value["L1/Power"] == "100 W"
    assert unwrap(root)["DeviceInstance"] == 40
    assert "/DeviceInstance" not in unwrap(root)
    assert root_text.value["Ac/Power"] == "120 W"


async def test_setvalue_result_codes_and_nothing_else_changes(bus_address, recorder):
    async with make_grid_service(bus_address) as svc:
        (before,) = await recorder.call(NAME, "/", "GetItems")

        async def write(path, variant):
            (code,) = await recorder.call(NAME, path, "SetValue", "v", [variant])
            return code

        assert await write("/Ac/Power", Variant("d", 1.0)) == SetResult.NOT_WRITABLE
        assert await write("/Limit", Variant("s", "abc")) == SetResult.WRONG_TYPE
        assert await write("/Limit", Variant("d", 1.5)) == SetResult.WRONG_TYPE
        assert await write("/Limit", Variant("i", 1000)) == SetResult.OUT_OF_RANGE
        assert await write("/Limit", Variant("i", -1)) == SetResult.OUT_OF_RANGE
        assert await write("/Even", Variant("i", 3)) == SetResult.REJECTED
        assert await write("/CustomName", Variant("s", "x" * 100_000)) == SetResult.TOO_LARGE
        assert await write("/CustomName", Variant("ai", [1, 2])) == SetResult.WRONG_TYPE
        (after,) = await recorder.call(NAME, "/", "GetItems")
        assert unwrap(Variant("a{sv}", {p: e["Value"] for p, e in after.items()})) == unwrap(
            Variant("a{sv}", {p: e["Value"] for p, e in before.items()})
        )
        signals = await recorder.settle()
        assert [s for s in signals if s[1] != "NameOwnerChanged"] == []
        # accepted writes: lenient numeric types, one signal each, nothing for an unchanged value
        assert await write("/Limit", Variant("d", 50.0)) == SetResult.OK
        assert await write("/Limit", Variant("x", 50)) == SetResult.OK
        assert await write("/Even", Variant("u", 4)) == SetResult.OK
        assert await write("/CustomName", Variant("s", "garage")) == SetResult.OK
        signals = await recorder.settle(3)
        assert [(m, p, b["Value"]) for _, m, p, b in signals] == [
            ("PropertiesChanged", "/Limit", 50),
            ("PropertiesChanged", "/Even", 4),
            ("PropertiesChanged", "/CustomName", "garage"),
        ]
        assert svc["/Limit"] == 50
        assert type(svc["/Limit"]) is int
        signals.clear()
        # a bare (non-variant) value is accepted; a malformed call is a D-Bus error
        (code,) = await recorder.call(NAME, "/Limit", "SetValue", "i", [52])
        assert code == SetResult.OK
        with pytest.raises(DBusCallError, match="InvalidArgs"):
            await recorder.call(NAME, "/Limit", "SetValue", "ii", [5, 6])
        (v,) = await recorder.call(NAME, "/Limit", "GetValue")
        assert v.value == 52


async def test_writing_invalid_and_write_callbacks(bus_address, recorder):
    seen = []

    def on_write(path, value):
        seen.append((path, value))
        return value != 13

    async with make_grid_service(bus_address) as svc:
        svc.add_path("/Setpoint", 0.0, PathSpec("d", writable=True), on_write=on_write)
        for variant, code in [
            (Variant("d", 13.0), 2),
            (Variant("i", 7), 0),
            (Variant("ai", []), 0),
        ]:
            (got,) = await recorder.call(NAME, "/Setpoint", "SetValue", "v", [variant])
            assert got == code
        assert seen == [("/Setpoint", 13.0), ("/Setpoint", 7.0), ("/Setpoint", None)]
        assert svc["/Setpoint"] is None
        (v,) = await recorder.call(NAME, "/Setpoint", "GetValue")
        assert v.signature == "ai"


async def test_crashing_write_handler_rejects_and_service_survives(bus_address, recorder):
    def boom(path, value):
        raise RuntimeError("bug")

    async with make_grid_service(bus_address) as svc:
        svc.add_path("/Fragile", 1, PathSpec("i", writable=True), on_write=boom)
        (code,) = await recorder.call(NAME, "/Fragile", "SetValue", "v", [Variant("i", 2)])
        assert code == SetResult.REJECTED
        assert svc["/Fragile"] == 1
        (v,) = await recorder.call(NAME, "/Ac/Power", "GetValue")
        assert v.value == 120.0


async def test_a_write_handler_bug_fails_the_feature_run_that_added_it(bus_address, recorder):
    def boom(path, value):
        raise RuntimeError("bug in a feature's handler")

    owner = Owner("some_feature")
    async with make_grid_service(bus_address) as svc:
        with owner.running() as scope:
            svc.add_path("/Owned", 1, PathSpec("i", writable=True), on_write=boom)
            (code,) = await recorder.call(NAME, "/Owned", "SetValue", "v", [Variant("i", 2)])
            assert code == SetResult.REJECTED
            await anyio.sleep_forever()  # the failed handler cancels the run
        assert scope.cancelled_caught
        assert isinstance(owner.error, RuntimeError)
        assert svc["/Owned"] == 1
        (v,) = await recorder.call(NAME, "/Ac/Power", "GetValue")
        assert v.value == 120.0  # the service itself carries on


async def test_unknown_paths_and_methods_are_dbus_errors(bus_address, recorder):
    async with make_grid_service(bus_address):
        with pytest.raises(DBusCallError, match="UnknownObject"):
            await recorder.call(NAME, "/Nope", "GetValue")
        with pytest.raises(DBusCallError, match="UnknownObject"):
            await recorder.call(NAME, "/Ac/L3/Power", "SetValue", "v", [Variant("d", 1.0)])
        with pytest.raises(DBusCallError, match="UnknownMethod"):
            await recorder.call(NAME, "/Ac/Power", "Frobnicate")
        with pytest.raises(DBusCallError, match="UnknownMethod"):
            await recorder.call(NAME, "/Ac", "GetItems")
        reply = await recorder.raw(
            NAME, "/Nope", "org.freedesktop.DBus.Introspectable", "Introspect"
        )
        assert reply.message_type is MessageType.ERROR


async def test_introspection_lists_children_on_every_node(bus_address, recorder):
    intro = "org.freedesktop.DBus.Introspectable"
    async with make_grid_service(bus_address):
        root = (await recorder.raw(NAME, "/", intro, "Introspect")).body[0]
        ac = (await recorder.raw(NAME, "/Ac", intro, "Introspect")).body[0]
        leaf = (await recorder.raw(NAME, "/Ac/Power", intro, "Introspect")).body[0]
    for child in ("Ac", "Mgmt", "DeviceInstance", "ProductId", "Limit"):
        assert f'<node name="{child}"/>' in root
    assert 'name="GetItems"' in root
    assert 'name="ItemsChanged"' in root
    assert '<node name="L1"/>' in ac
    assert '<node name="Energy"/>' in ac
    assert '<node name="Power"/>' in ac
    assert 'name="GetItems"' not in ac
    assert 'name="SetValue"' in leaf
    assert "<node name" not in leaf.split("</interface>")[-1]


async def test_per_item_and_batched_signals_never_both(bus_address, recorder):
    async with make_grid_service(bus_address) as svc:
        svc["/Ac/Power"] = 130.0
        signals = await recorder.settle(1)
        assert [(m, p, b) for _, m, p, b in signals] == [
            ("PropertiesChanged", "/Ac/Power", {"Value": 130.0, "Text": "130 W"})
        ]
        signals.clear()
        svc.update({"/Ac/Power": 140.0, "/Ac/L1/Power": 100.0, "/Ac/L2/Power": 40.0})
        signals = await recorder.settle(1)
        assert len(signals) == 1
        _, member, path, body = signals[0]
        assert (member, path) == ("ItemsChanged", "/")
        assert body == {
            "/Ac/Power": {"Value": 140.0, "Text": "140 W"},
            "/Ac/L2/Power": {"Value": 40.0, "Text": "40 W"},
        }
        signals.clear()
        svc["/Ac/Power"] = 140.0  # no change, no signal
        svc["/Ac/Power"] = 140  # int coerced to the declared double: still no change
        with svc.batch():
            svc["/Ac/L1/Power"] = 100.0
        assert await recorder.settle() == []


async def test_paths_added_and_removed_after_registration_are_announced(bus_address, recorder):
    async with make_grid_service(bus_address) as svc:
        svc.add_path("/Ac/L3/Power", 5.0, PathSpec("d", "%.0F W"))
        signals = await recorder.settle(1)
        assert signals[-1][1:] == (
            "ItemsChanged",
            "/",
            {"/Ac/L3/Power": {"Value": 5.0, "Text": "5 W"}},
        )
        (items,) = await recorder.call(NAME, "/", "GetItems")
        assert "/Ac/L3/Power" in items
        signals.clear()
        svc.remove_path("/Ac/L3/Power")
        svc.remove_path("/Ac/Energy/Forward")
        signals = await recorder.settle(2)
        assert [s[3] for s in signals] == [
            {"/Ac/L3/Power": {"Value": None, "Text": ""}},
            {"/Ac/Energy/Forward": {"Value": None, "Text": ""}},
        ]
        ac = (
            await recorder.raw(NAME, "/Ac", "org.freedesktop.DBus.Introspectable", "Introspect")
        ).body[0]
        assert '<node name="L3"/>' not in ac
        assert '<node name="Energy"/>' not in ac
        with pytest.raises(DBusCallError, match="UnknownObject"):
            await recorder.call(NAME, "/Ac/L3/Power", "GetValue")
        with pytest.raises(DBusCallError, match="UnknownObject"):
            await recorder.call(NAME, "/Ac/Energy", "GetValue")


async def test_bad_declarations_are_refused(bus_address):
    svc = make_grid_service(bus_address)
    for bad in ("Ac/Power", "/Ac/", "/", "/Ac//P", "/Ac/Pö", "/Ac/L1-P"):
        with pytest.raises(ValueError, match="invalid D-Bus path"):
            svc.add_path(bad, 1.0)
    with pytest.raises(ValueError, match="already exists"):
        svc.add_path("/Ac/Power", 1.0)
    with pytest.raises(ValueError, match="tree node"):
        svc.add_path("/Ac", 1.0)
    with pytest.raises(ValueError, match="below the leaf"):
        svc.add_path("/Ac/Power/X", 1.0)
    with pytest.raises(TypeError):
        svc["/Ac/Power"] = "not a number"
    with pytest.raises(KeyError):
        svc["/Nope"] = 1
    with pytest.raises(ValueError, match="bus name"):
        make_grid_service(bus_address, name="not a bus name")
    assert svc["/Ac/Power"] == 120.0


async def test_name_taken_is_a_bus_error_and_the_owner_keeps_it(bus_address, recorder):
    async with make_grid_service(bus_address):
        with pytest.raises(BusError, match="already taken"):
            async with make_grid_service(bus_address):
                pass
        (v,) = await recorder.call(NAME, "/Ac/Power", "GetValue")
        assert v.value == 120.0


async def test_close_releases_the_name_without_invalidating(bus_address, recorder):
    await add_match(recorder.bus, "type='signal',member='NameOwnerChanged'")
    owners = []

    def on(msg: Message) -> None:
        if msg.member == "NameOwnerChanged" and msg.body[0] == NAME:
            owners.append(msg.body[2])

    recorder.bus.add_message_handler(on)
    svc = make_grid_service(bus_address)
    async with svc:
        svc["/Ac/Power"] = 1.0
    signals = await recorder.settle(1)
    with anyio.fail_after(2):
        while len(owners) < 2:
            await anyio.sleep(0.01)
    assert owners[0].startswith(":")
    assert owners[1] == ""
    assert [s[3] for s in signals] == [{"Value": 1.0, "Text": "1 W"}]  # no invalidation burst


async def test_dbus_send_speaks_to_us(bus_address):
    """dbus-send (libdbus, not our code) reads, writes and introspects leaves, nodes and /."""
    async with make_grid_service(bus_address) as svc:
        rc, out, _ = await dbus_send(
            bus_address, f"--dest={NAME}", "/Ac/Power", f"{BUSITEM}.GetValue"
        )
        assert rc == 0
        assert "variant       double 120" in out
        rc, out, _ = await dbus_send(
            bus_address, f"--dest={NAME}", "/Ac/Power", f"{BUSITEM}.GetText"
        )
        assert 'string "120 W"' in out
        rc, out, _ = await dbus_send(bus_address, f"--dest={NAME}", "/Ac", f"{BUSITEM}.GetValue")
        assert 'string "L1/Power"' in out
        assert "double 100" in out
        rc, out, _ = await dbus_send(bus_address, f"--dest={NAME}", "/", f"{BUSITEM}.GetItems")
        assert 'string "/DeviceInstance"' in out
        assert "int32 40" in out
        rc, out, _ = await dbus_send(bus_address, f"--dest={NAME}", "/", f"{BUSITEM}.GetText")
        assert 'string "0xA389"' in out
        rc, out, _ = await dbus_send(
            bus_address, f"--dest={NAME}", "/Limit", f"{BUSITEM}.SetValue", "variant:int32:42"
        )
        assert "int32 0" in out
        assert svc["/Limit"] == 42
        rc, out, _ = await dbus_send(
            bus_address, f"--dest={NAME}", "/Limit", f"{BUSITEM}.SetValue", "variant:string:x"
        )
        assert "int32 3" in out
        for path in ("/", "/Ac", "/Ac/Power"):
            rc, out, _ = await dbus_send(
                bus_address,
                f"--dest={NAME}",
                path,
                "org.freedesktop.DBus.Introspectable.Introspect",
            )
            assert rc == 0
            assert "com.victronenergy.BusItem" in out
        rc, _, err = await dbus_send(bus_address, f"--dest={NAME}", "/Nope", f"{BUSITEM}.GetValue")
        assert rc != 0
        assert "UnknownObject" in err

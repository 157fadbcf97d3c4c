"""Monitor: discovery, scans (with fallbacks), both change signals, coalescing, lifecycle."""

from __future__ import annotations

import sys

import anyio
import pytest
from dbus_fast import Message, MessageType, NameFlag, Variant
from venus_helpers import make_grid_service

from venus_ems.callbacks import Owner
from venus_ems.errors import ServiceNotFoundError
from venus_ems.venus import DBusCallError, Identity, PathSpec, Service, open_monitor
from venus_ems.venus.bus import connect
from waiting import bus_watch, until

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio
GRID = "com.victronenergy.grid.test"


async def test_discovers_scans_and_follows_changes(bus_address):
    async with make_grid_service(bus_address) as svc, open_monitor(bus_address) as mon:
        state = mon.service(GRID)
        assert state is not None
        assert state.device_instance == 40
        assert state.device_class == "com.victronenergy.grid"
        assert mon.get(GRID, "/Ac/Power") == 120.0
        assert mon.get(GRID, "/Ac/Energy/Forward") is None
        assert mon.get(GRID, "/Ac/Energy/Forward", 0.0) == 0.0
        svc["/Ac/Power"] = 150.0  # PropertiesChanged
        await until(lambda: mon.get(GRID, "/Ac/Power") == 150.0)
        svc.update({"/Ac/L1/Power": 1.0, "/Ac/L2/Power": 2.0})  # ItemsChanged
        await until(lambda: mon.get(GRID, "/Ac/L2/Power") == 2.0)
        assert mon.get(GRID, "/Ac/L1/Power") == 1.0


async def test_typed_access(bus_address):
    async with make_grid_service(bus_address) as svc, open_monitor(bus_address) as mon:
        svc.add_path("/Int", 3, PathSpec("i"))
        svc.add_path("/Text", "abc", PathSpec("s"))
        await until(lambda: mon.get(GRID, "/Text") == "abc")
        assert mon.get_float(GRID, "/Int") == 3.0
        assert mon.get_int(GRID, "/Ac/Power") == 120
        assert mon.get_int(GRID, "/Text") is None
        assert mon.get_float(GRID, "/Text") is None
        assert mon.get_str(GRID, "/Text") == "abc"
        assert mon.get_str(GRID, "/Int") is None
        assert mon.get_float("com.victronenergy.nothing", "/Int") is None
        assert mon.get_text(GRID, "/Ac/Power") is None  # texts only with keep_text
    async with make_grid_service(bus_address), open_monitor(bus_address, keep_text=True) as mon:
        assert mon.get_text(GRID, "/Ac/Power") == "120 W"


async def test_services_appearing_restarting_and_vanishing(bus_address):
    events: list[tuple[str, bool]] = []
    async with open_monitor(bus_address) as mon:
        mon.on_service(lambda name, state: events.append((name, state is not None)))
        sub = mon.subscribe(services=["com.victronenergy.grid"], paths=["/Ac/Power"])
        svc = make_grid_service(bus_address)
        async with svc:
            await mon.wait_for_service("com.victronenergy.grid", timeout=3)
            owner1 = mon.service(GRID).owner
            first = await sub.__anext__()
            assert first == {(GRID, "/Ac/Power"): 120.0}
        await until(lambda: mon.service(GRID) is None)
        gone = await sub.__anext__()
        assert gone == {(GRID, "/Ac/Power"): None}
        assert mon.get(GRID, "/Ac/Power") is None
        svc2 = make_grid_service(bus_address)
        svc2["/Ac/Power"] = 7.0
        async with svc2:
            state = await mon.wait_for_service(GRID, timeout=3)
            assert state.owner != owner1
            assert mon.get(GRID, "/Ac/Power") == 7.0
        mon.unsubscribe(sub)
    assert events[:3] == [(GRID, True), (GRID, False), (GRID, True)]


async def test_selection_by_class_and_paths(bus_address):
    other = Service(
        "com.victronenergy.battery.b1",
        identity=Identity("bat"),
        device_instance=512,
        address=bus_address,
    )
    other.add_path("/Soc", 50.0, PathSpec("d"))
    async with make_grid_service(bus_address) as svc, other:
        watch = {"com.victronenergy.grid": ["/Ac/Power", "/Ac/L3/Power"]}
        async with open_monitor(bus_address, watch=watch) as mon:
            assert [s.name for s in mon.services()] == [GRID]
            state = mon.service(GRID)
            assert set(state.values) == {"/Ac/Power", "/Ac/L3/Power"}
            assert state.values["/Ac/L3/Power"] is None  # watched but absent
            got = []
            mon.on_change(lambda ch: got.append(dict(ch)))
            svc["/Ac/L1/Power"] = 5.0  # not watched
            svc["/Ac/Power"] = 6.0
            await until(lambda: mon.get(GRID, "/Ac/Power") == 6.0)
            assert got == [{(GRID, "/Ac/Power"): 6.0}]
            assert mon.get("com.victronenergy.battery.b1", "/Soc") is None


async def test_change_stream_coalesces_bursts(bus_address):
    async with make_grid_service(bus_address) as svc, open_monitor(bus_address) as mon:
        sub = mon.subscribe(services=[GRID])
        for i in range(500):
            svc["/Ac/Power"] = float(i)
            svc["/Ac/L1/Power"] = float(-i)
        await until(lambda: mon.get(GRID, "/Ac/Power") == 499.0)
        batches: list[dict] = []
        with anyio.move_on_after(0.2):
            async for batch in sub:  # a comprehension would lose all batches on cancellation
                batches.append(batch)  # noqa: PERF401
        assert len(batches) < 500
        assert batches[-1][(GRID, "/Ac/Power")] == 499.0
        assert mon.get(GRID, "/Ac/L1/Power") == -499.0
        assert mon.updates_received >= 1000


async def test_wait_for_service_times_out(bus_address):
    async with open_monitor(bus_address) as mon:
        with pytest.raises(ServiceNotFoundError, match="vebus"):
            await mon.wait_for_service("com.victronenergy.vebus", timeout=0.2)


async def test_set_value_returns_codes(bus_address):
    async with make_grid_service(bus_address) as svc, open_monitor(bus_address) as mon:
        assert await mon.set_value(GRID, "/Limit", 33) == 0
        assert svc["/Limit"] == 33
        assert await mon.set_value(GRID, "/Limit", 333) == 4
        assert await mon.set_value(GRID, "/Ac/Power", 1.0) == 1
        with pytest.raises(DBusCallError, match="UnknownObject"):
            await mon.set_value(GRID, "/Nope", 1)
        with pytest.raises(DBusCallError, match=r"ServiceUnknown|NameHasNoOwner"):
            await mon.set_value("com.victronenergy.grid.gone", "/Limit", 1)


async def test_change_right_after_the_scan_reply_is_not_overwritten(bus_address):
    """The service answers GetItems and changes a value in the same write; the change wins."""
    svc = make_grid_service(bus_address)

    def getitems_then_change(msg: Message) -> Message | None:
        if msg.member == "GetItems" and msg.message_type is MessageType.METHOD_CALL:
            reply = Message.new_method_return(msg, "a{sa{sv}}", [svc._items_body()])
            svc._writer.write(reply)  # queued, not yet sent
            svc["/Ac/Power"] = 999.0  # PropertiesChanged queued behind the reply: one send
            return True  # type: ignore[return-value]
        return None

    svc.add_handler(getitems_then_change)
    async with svc, bus_watch(bus_address) as bus, open_monitor(bus_address) as mon:
        await until(lambda: mon.get(GRID, "/Ac/Power") == 999.0, timeout=2)
        await bus.settle()  # nothing still on its way can overwrite it
        assert mon.get(GRID, "/Ac/Power") == 999.0


async def test_changes_during_scans_are_not_lost(bus_address):
    """A publisher changes values without pause while monitors start; they all end exact."""
    svc = make_grid_service(bus_address)
    async with svc:
        stop = anyio.Event()

        async def churn() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                svc.update({"/Ac/Power": float(i), "/Ac/L1/Power": float(i)})
                svc["/Ac/L2/Power"] = float(i)
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(churn)
            for _ in range(5):
                async with open_monitor(bus_address) as mon:
                    await anyio.sleep(0.02)
                    target = svc["/Ac/L2/Power"]
                    await until(lambda m=mon, t=target: m.get(GRID, "/Ac/L2/Power", 0.0) >= t)
            stop.set()
        async with open_monitor(bus_address) as mon:
            assert mon.get(GRID, "/Ac/Power") == svc["/Ac/Power"]


async def test_legacy_scan_without_getitems(bus_address):
    """Old services answer only GetValue/GetText: fall back as velib does."""
    bus = await connect(bus_address)
    values = {"/DeviceInstance": 3, "/Soc": 77.0, "/Dc/0/Voltage": 52.1}

    def handler(msg: Message) -> Message | None:
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        if msg.path == "/" and msg.member == "GetValue":
            body = {
                p[1:]: Variant("d" if isinstance(v, float) else "i", v) for p, v in values.items()
            }
            return Message.new_method_return(msg, "v", [Variant("a{sv}", body)])
        if msg.path == "/" and msg.member == "GetText":
            return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "no")
        if msg.path in values and msg.member == "GetValue":
            v = values[msg.path]
            return Message.new_method_return(
                msg, "v", [Variant("d" if isinstance(v, float) else "i", v)]
            )
        return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "no")

    bus.add_message_handler(handler)
    await bus.request_name("com.victronenergy.battery.old", NameFlag.DO_NOT_QUEUE)
    try:
        async with open_monitor(bus_address) as mon:
            assert mon.get("com.victronenergy.battery.old", "/Soc") == 77.0
            assert mon.service("com.victronenergy.battery.old").device_instance == 3
        values.pop("/Soc")
        watch = {"com.victronenergy.battery": ["/Dc/0/Voltage", "/Soc"]}
        async with open_monitor(bus_address, watch=watch) as mon:
            assert mon.get("com.victronenergy.battery.old", "/Dc/0/Voltage") == 52.1
            assert mon.get("com.victronenergy.battery.old", "/Soc") is None
    finally:
        bus.disconnect()


async def test_services_without_device_instance(bus_address):
    bare = Service(
        "com.victronenergy.temperature.x",
        identity=Identity("t"),
        device_instance=None,
        address=bus_address,
    )
    bare.add_path("/Temperature", 21.0, PathSpec("d"))
    async with bare:
        async with open_monitor(bus_address) as mon:
            assert mon.get("com.victronenergy.temperature.x", "/Temperature") == 21.0
            assert mon.service("com.victronenergy.temperature.x").device_instance is None
        async with open_monitor(bus_address, require_device_instance=True) as mon:
            assert mon.service("com.victronenergy.temperature.x") is None


async def test_a_callback_bug_fails_the_feature_that_registered_it(bus_address):
    """The owner (a feature run) gets the exception and ends; the monitor and others go on."""
    async with make_grid_service(bus_address) as svc, open_monitor(bus_address) as mon:
        seen = []
        calls = []
        owner = Owner("feature")

        def bad(changes):
            calls.append(dict(changes))
            raise RuntimeError("subscriber bug")

        async def feature(*, task_status):
            with owner.running():
                mon.on_change(bad)
                mon.on_service(lambda name, state: None)
                task_status.started()
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            await tg.start(feature)
            mon.on_change(lambda ch: seen.append(dict(ch)))  # the test's own callback
            svc["/Ac/Power"] = 1.0
            await until(lambda: owner.ended)
            svc["/Ac/Power"] = 2.0
            await until(lambda: len(seen) == 2)
        assert seen[-1] == {(GRID, "/Ac/Power"): 2.0}
        assert calls == [{(GRID, "/Ac/Power"): 1.0}]  # an ended run is not called again
        assert isinstance(owner.error, RuntimeError)
        assert len(mon._callbacks) == 1  # and its callbacks are dropped
        assert len(mon._service_callbacks.live()) == 0


async def test_a_callback_bug_outside_any_feature_ends_the_monitor(bus_address):
    """A callback nobody owns is part of the monitor: its bug is not swallowed, run() raises."""
    async with make_grid_service(bus_address) as svc:

        def bad(changes):
            raise RuntimeError("monitor bug")

        async def monitor():
            async with open_monitor(bus_address) as mon:
                mon.on_change(bad)
                svc["/Ac/Power"] = 1.0
                with anyio.fail_after(5):
                    await anyio.sleep_forever()

        with pytest.raises(ExceptionGroup) as caught:
            await monitor()
        assert caught.group_contains(RuntimeError, match="monitor bug", depth=None)


async def test_signals_without_value_or_from_strangers_are_ignored(bus_address):
    async with make_grid_service(bus_address) as svc, open_monitor(bus_address) as mon:
        stranger = await connect(bus_address)
        try:
            stranger.send(
                Message(
                    message_type=MessageType.SIGNAL,
                    path="/Ac/Power",
                    interface="com.victronenergy.BusItem",
                    member="PropertiesChanged",
                    signature="a{sv}",
                    body=[{"Value": Variant("d", -1.0)}],
                )
            )
            svc._send_signal("/Ac/Power", "PropertiesChanged", "a{sv}", {"Text": Variant("s", "x")})
            svc._send_signal(
                "/", "ItemsChanged", "a{sa{sv}}", {"/Ac/Power": {"Min": Variant("d", 0.0)}}
            )
            svc["/Ac/L1/Power"] = 3.0
            await until(lambda: mon.get(GRID, "/Ac/L1/Power") == 3.0)
            assert mon.get(GRID, "/Ac/Power") == 120.0
        finally:
            stranger.disconnect()

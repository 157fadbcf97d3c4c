"""Bad D-Bus SetValue on every path the running daemon publishes: rejected with a code, no change.

``venus-ems run`` (its own process) runs every feature that publishes a service beside the
simulated GX. The test finds every ``com.victronenergy.*`` service the daemon's process owns
and every path in it, then writes values of the wrong type to each path (with dbus-fast, and a
few with Debian's ``dbus-send`` as a libdbus client does): each is answered with a non-zero code,
the value stays as it was, and what the daemon keeps in localsettings stays too. A good write
to each writable path is then accepted, which shows the paths found were really writable.
"""

from __future__ import annotations

import math
import shutil
import subprocess

import anyio
import pytest
from dbus_fast import Message, MessageType, Variant
from inputs_helpers import Daemon, daemon_config, wait_alive

from venus_ems.clock import RealClock
from venus_ems.sim.devices import MemorySwitch, StaticMeter, plus_1pm, pro_3em
from venus_ems.sim.run import running_site
from venus_ems.venus import SETTINGS_SERVICE, open_monitor
from venus_ems.venus.bus import call, connect

pytestmark = pytest.mark.anyio
DBUS = "org.freedesktop.DBus"
BUSITEM = "com.victronenergy.BusItem"
NAMED = {
    "com.victronenergy.grid.venusems_house": "/Settings/VenusEms/GridMeter/house/CustomName",
    "com.victronenergy.pvinverter.venusems_balcony": (
        "/Settings/VenusEms/PvMeter/balcony/CustomName"
    ),
    "com.victronenergy.temperature.venusems_fridge": (
        "/Settings/VenusEms/Temperature/fridge/CustomName"
    ),
}
WRONG_FOR_STRINGS = [
    Variant("i", 5),
    Variant("t", 2**64 - 1),
    Variant("x", -(2**63)),
    Variant("y", 7),
    Variant("b", True),
    Variant("b", False),
    Variant("d", math.nan),
    Variant("d", math.inf),
    Variant("d", -math.inf),
    Variant("d", 1.5),
    Variant("ai", []),  # invalid: a name cannot be invalid
    Variant("as", ["a", "b"]),
    Variant("a{sv}", {"a": Variant("s", "b")}),
    Variant("v", Variant("s", "nested")),
    Variant("s", "x" * 65),  # longer than the 64 characters a name may have
]
WRONG_FOR_NUMBERS = [
    Variant("s", "5"),
    Variant("s", "nan"),
    Variant("b", True),
    Variant("d", math.nan),
    Variant("d", math.inf),
    Variant("as", ["1"]),
    Variant("a{sv}", {"a": Variant("d", 1.0)}),
]
WRONG_FOR_ANY = [  # whatever the declared type (for paths that are invalid now)
    Variant("d", math.nan),
    Variant("d", math.inf),
    Variant("as", ["1"]),
    Variant("a{sv}", {"a": Variant("d", 1.0)}),
]


def config(grid_port: int, pv_port: int, mqtt_port: int) -> str:
    return f"""
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mqtt_port}
reconnect_initial_s = 0.05
reconnect_max_s = 0.2
[[grid_meter]]
name = "house"
enabled = true
host = "127.0.0.1:{grid_port}"
poll_interval_s = 0.5
[[pv_meter]]
name = "balcony"
enabled = true
host = "127.0.0.1:{pv_port}"
poll_interval_s = 0.5
[[temperature]]
name = "fridge"
enabled = true
topic = "sensors/fridge"
"""


async def set_raw(bus, service: str, path: str, signature: str, value) -> int:
    reply = await bus.call(
        Message(
            destination=service,
            path=path,
            interface=BUSITEM,
            member="SetValue",
            signature=signature,
            body=[value],
        )
    )
    assert reply.message_type is MessageType.METHOD_RETURN, (service, path, reply.body)
    return int(reply.body[0])


async def get_raw(bus, service: str, path: str):
    (value,) = await call(bus, service, path, BUSITEM, "GetValue")
    return (value.signature, value.value)


async def daemon_services(bus, pid: int) -> list[str]:
    (names,) = await call(bus, DBUS, "/org/freedesktop/DBus", DBUS, "ListNames")
    ours = []
    for name in names:
        if name.startswith("com.victronenergy."):
            (owner_pid,) = await call(
                bus, DBUS, "/org/freedesktop/DBus", DBUS, "GetConnectionUnixProcessID", "s", [name]
            )
            if owner_pid == pid:
                ours.append(name)
    return sorted(ours)


def bad_values(signature: str) -> list[Variant]:
    if signature == "s":
        return WRONG_FOR_STRINGS
    if signature in ("d", "i", "x", "u", "t", "n", "q", "y"):
        return WRONG_FOR_NUMBERS
    return WRONG_FOR_ANY


async def test_bad_writes_on_every_path_are_refused_and_change_nothing(
    bus_address, mosquitto, tmp_path
):
    clock = RealClock()
    grid = StaticMeter(3, clock=clock)
    grid.set_power(0, 700.0)
    async with (
        running_site("summer-sunny", address=bus_address, clock=clock, start_s=11 * 3600),
        pro_3em(grid, clock=clock) as grid_emu,
        plus_1pm(MemorySwitch(load_w=300.0, on=True, clock=clock), clock=clock) as pv_emu,
        open_monitor(bus_address) as mon,
    ):
        text = config(grid_emu.port, pv_emu.port, mosquitto.port)
        with Daemon(tmp_path, bus_address, daemon_config(tmp_path, text)) as d:
            await wait_alive(d, lambda: all(mon.service(n) for n in NAMED), 30)
            await wait_alive(d, lambda: mon.service("com.victronenergy.venusems"), 10)
            settings = list(NAMED.values())
            await wait_alive(
                d, lambda: None not in [mon.get(SETTINGS_SERVICE, p) for p in settings], 10
            )
            bus = await connect(bus_address)
            try:
                services = await daemon_services(bus, d.pid)
                assert set(NAMED) | {"com.victronenergy.venusems"} <= set(services)
                stored = {s: mon.get(SETTINGS_SERVICE, p) for s, p in NAMED.items()}
                writable: set[tuple[str, str]] = set()
                tried = 0
                for service in services:
                    (items,) = await call(bus, service, "/", BUSITEM, "GetItems")
                    for path in sorted(items):
                        before = await get_raw(bus, service, path)
                        for value in bad_values(before[0]):
                            code = await set_raw(bus, service, path, "v", value)
                            tried += 1
                            assert code != 0, (service, path, value)
                            if code != 1:  # 1 = not writable; anything else = refused
                                writable.add((service, path))
                                assert code in (3, 4, 5), (service, path, value, code)
                        # bare arguments, as libdbus clients without introspection send them
                        for sig, raw in (("i", 5), ("d", math.nan), ("b", True)):
                            if before[0] == "s":
                                assert await set_raw(bus, service, path, sig, raw) != 0
                        if before[0] in ("d", "i"):
                            assert await set_raw(bus, service, path, "s", "12") != 0
                        assert await get_raw(bus, service, path) == before, (service, path)
                assert tried > 200
                assert {(s, "/CustomName") for s in NAMED} <= writable
                # what the daemon keeps in localsettings did not change either
                assert {s: mon.get(SETTINGS_SERVICE, p) for s, p in NAMED.items()} == stored

                if shutil.which("dbus-send"):  # a libdbus client, as Victron's tools are
                    service = next(iter(NAMED))
                    for arg in ("int32:5", "variant:boolean:true", "variant:double:nan"):
                        out = subprocess.run(
                            ["dbus-send", f"--bus={bus_address}", "--print-reply",
                             f"--dest={service}", "/CustomName", f"{BUSITEM}.SetValue", arg],
                            capture_output=True, text=True, check=True, timeout=10,
                        )  # fmt: skip
                        assert out.stdout.split()[-1] == "3", (arg, out.stdout)

                # a good write to each writable name works, and is kept in localsettings
                # (/Role and /Position take only their documented values: tests/venus/)
                for service, path in sorted(p for p in writable if p[1] == "/CustomName"):
                    code = await set_raw(bus, service, path, "v", Variant("s", "Renamed"))
                    assert code == 0, (service, path)
                    assert (await get_raw(bus, service, path)) == ("s", "Renamed")
                with anyio.fail_after(10):
                    while any(mon.get(SETTINGS_SERVICE, p) != "Renamed" for p in NAMED.values()):
                        await anyio.sleep(0.02)
            finally:
                bus.disconnect()
            assert d.alive()
            assert "Traceback" not in d.log_text()

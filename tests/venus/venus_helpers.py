"""Helpers for the D-Bus layer tests: a raw signal recorder and dbus-send."""

from __future__ import annotations

from typing import Any

import anyio
from dbus_fast import Message, MessageType

from venus_ems.clock import wait_idle
from venus_ems.venus import Identity, PathSpec, Service
from venus_ems.venus.bus import add_match, call, connect
from venus_ems.venus.codec import unwrap

BUSITEM = "com.victronenergy.BusItem"
DBUS = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"


class Recorder:
    """A raw dbus-fast connection that records every BusItem signal it sees."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, str, str, Any]] = []  # (sender, member, path, body)
        self.bus: Any = None

    async def start(self, address: str) -> Recorder:
        self.bus = await connect(address)
        self.bus.add_message_handler(self._on)
        await add_match(self.bus, f"type='signal',interface='{BUSITEM}'")
        return self

    def _on(self, msg: Message) -> None:
        if msg.message_type is MessageType.SIGNAL and msg.interface == BUSITEM:
            self.signals.append((msg.sender, msg.member, msg.path, unwrap(msg.body[0])))

    async def settle(self, count: int = 0, timeout: float = 3.0) -> list[tuple[str, str, str, Any]]:
        """Wait until at least ``count`` signals arrived and no more are on their way.

        No more on their way: a round (every task here runs until it blocks, two round trips
        through the dbus-daemon, the tasks run again) brought no new signal — the daemon routes
        what every connection sent before it answers the second call (see waiting.BusWatch).
        """
        with anyio.fail_after(timeout):
            while len(self.signals) < count:
                await anyio.sleep(0.005)
            while True:
                seen = len(self.signals)
                await wait_idle()
                for _ in range(2):
                    await call(self.bus, DBUS, DBUS_PATH, DBUS, "GetId")
                await wait_idle()
                if len(self.signals) == seen:
                    return self.signals

    async def call(self, dest: str, path: str, member: str, sig: str = "", body: Any = None) -> Any:
        return await call(self.bus, dest, path, BUSITEM, member, sig, body)

    async def raw(self, dest: str, path: str, interface: str, member: str) -> Message:
        return await self.bus.call(
            Message(destination=dest, path=path, interface=interface, member=member)
        )

    def close(self) -> None:
        self.bus.disconnect()


async def dbus_send(address: str, *args: str) -> tuple[int, str, str]:
    """Run dbus-send (not our code) against the private bus; (returncode, stdout, stderr)."""
    res = await anyio.run_process(
        ["dbus-send", f"--bus={address}", "--print-reply", *args], check=False
    )
    return res.returncode, res.stdout.decode(), res.stderr.decode()


def make_grid_service(address: str, name: str = "com.victronenergy.grid.test") -> Service:
    """A small grid-meter-like service used across tests."""
    svc = Service(
        name,
        identity=Identity("Test meter", product_id=0xA389),
        device_instance=40,
        address=address,
    )
    svc.add_path("/Ac/Power", 120.0, PathSpec("d", "%.0F W"))
    svc.add_path("/Ac/L1/Power", 100.0, PathSpec("d", "%.0F W"))
    svc.add_path("/Ac/L2/Power", 20.0, PathSpec("d", "%.0F W"))
    svc.add_path("/Ac/Energy/Forward", None, PathSpec("d", "%.2F kWh"))
    svc.add_path("/CustomName", "meter", PathSpec("s", writable=True, max_length=64))
    svc.add_path("/Limit", 10, PathSpec("i", writable=True, min=0, max=100))
    svc.add_path("/Even", 2, PathSpec("i", writable=True, validator=lambda v: v % 2 == 0))
    return svc

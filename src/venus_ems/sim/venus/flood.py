"""A misbehaving local D-Bus client: floods of never-seen paths and of new services.

Anything on a GX's system bus may claim ``com.victronenergy.*`` names and send BusItem signals,
so a monitor that keeps every path it hears of can be made to grow without bound. This client
does exactly that, to prove the monitor's bounds (tests, ``bench/input_floods.py``):

* :meth:`BusFlood.paths` sends ItemsChanged batches (or PropertiesChanged) whose paths were
  never seen before, from a service it owns;
* :meth:`BusFlood.services` claims many new names, each answering GetItems with its own paths
  (over as many connections as the bus's ``max_names_per_connection`` requires).

Each name answers GetItems/GetValue so that a monitor scans it like a real service. Sending
awaits the connection's backpressure (:class:`~venus_ems.venus.bus.BusWriter`), so the flood is
as fast as the bus takes it and the flooding process stays small.
"""

from __future__ import annotations

from types import TracebackType

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from ...venus.bus import call, connect, writer_of
from ...venus.names import PREFIX
from ...venus.tree import BUSITEM

__all__ = ["BusFlood"]

_DBUS = "org.freedesktop.DBus"
_NAMES_PER_CONNECTION = 500  # dbus-daemon's default limit is 512


class BusFlood:
    """One connection that floods the bus; an async context manager."""

    def __init__(self, address: str, *, prefix: str = PREFIX + "flood") -> None:
        """Connect on entry to ``address``; names are ``<prefix>`` and ``<prefix>_<n>``."""
        self.address = address
        self.prefix = prefix
        self.sent_paths = 0
        self._bus: MessageBus | None = None
        self._more: list[MessageBus] = []  # further connections for many names
        self._claimed = 0
        self._scans = 0
        self._paths: dict[str, int] = {}  # name -> paths each scan of it answers
        self._last_count = 1

    async def __aenter__(self) -> BusFlood:
        """Connect and answer BusItem calls for the names claimed later."""
        self._bus = await connect(self.address)
        self._bus.add_message_handler(self._answer)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Disconnect (the names go away with the connections)."""
        buses = [self._bus, *self._more]
        self._bus, self._more = None, []
        for bus in buses:
            if bus is not None:
                bus.disconnect()

    @property
    def bus(self) -> MessageBus:
        """The flooding connection; RuntimeError outside the context."""
        if self._bus is None:
            raise RuntimeError("BusFlood is not connected")
        return self._bus

    def _answer(self, msg: Message) -> Message | None:
        if msg.message_type is not MessageType.METHOD_CALL or msg.interface != BUSITEM:
            return None
        if msg.member == "GetItems":
            body = {p: {"Value": v, "Text": Variant("s", "")} for p, v in self._fresh(msg).items()}
            return Message.new_method_return(msg, "a{sa{sv}}", [body])
        if msg.member == "GetValue" and msg.path == "/":
            items = {p[1:]: v for p, v in self._fresh(msg).items()}
            return Message.new_method_return(msg, "v", [Variant("a{sv}", items)])
        return Message.new_method_return(msg, "v", [Variant("ai", [])])

    def _fresh(self, msg: Message) -> dict[str, Variant]:
        """Paths nobody has seen, for each scan (a monitor may call by unique name)."""
        count = self._paths.get(msg.destination or "", self._last_count)
        self._scans += 1
        items = {"/DeviceInstance": Variant("i", 900)}
        items.update({f"/S{self._scans}/{i}": Variant("d", float(i)) for i in range(count - 1)})
        return items

    async def claim(self, name: str, paths: int = 1) -> None:
        """Own ``name``; each scan of it answers ``paths`` never-seen paths (one DeviceInstance)."""
        self._paths[name] = self._last_count = paths
        bus = self.bus
        if self._claimed >= _NAMES_PER_CONNECTION:
            if len(self._more) < self._claimed // _NAMES_PER_CONNECTION:
                extra = await connect(self.address)
                extra.add_message_handler(self._answer)
                self._more.append(extra)
            bus = self._more[-1]
        self._claimed += 1
        await call(bus, _DBUS, "/org/freedesktop/DBus", _DBUS, "RequestName", "su", [name, 4])

    async def paths(
        self, count: int, *, batch: int = 500, per_item: bool = False, tag: str = "F"
    ) -> None:
        """Send ``count`` never-seen paths from ``<prefix>`` (claimed first if needed).

        ``batch`` paths per ItemsChanged; with ``per_item`` one PropertiesChanged per path.
        """
        if self.prefix not in self._paths:
            await self.claim(self.prefix)
        writer = writer_of(self.bus)
        start = self.sent_paths
        for first in range(start, start + count, batch):
            last = min(first + batch, start + count)
            if per_item:
                for i in range(first, last):
                    writer.write(_changed(f"/{tag}/{i}", float(i)))
            else:
                body = {
                    f"/{tag}/{i}": {"Value": Variant("d", float(i)), "Text": Variant("s", "")}
                    for i in range(first, last)
                }
                writer.write(
                    Message(
                        message_type=MessageType.SIGNAL,
                        path="/",
                        interface=BUSITEM,
                        member="ItemsChanged",
                        signature="a{sa{sv}}",
                        body=[body],
                    )
                )
            self.sent_paths = last
            await writer.drained()
        await writer.drained(empty=True)

    async def services(self, count: int, *, paths: int = 50, first: int = 0) -> None:
        """Claim ``count`` new names ``<prefix>_<n>``, each with ``paths`` paths of its own."""
        for n in range(first, first + count):
            await self.claim(f"{self.prefix}_{n}", paths)


def _changed(path: str, value: float) -> Message:
    return Message(
        message_type=MessageType.SIGNAL,
        path=path,
        interface=BUSITEM,
        member="PropertiesChanged",
        signature="a{sv}",
        body=[{"Value": Variant("d", value), "Text": Variant("s", "")}],
    )

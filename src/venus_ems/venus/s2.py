"""The resource-manager side of Victron's S2-over-D-Bus (venus-platform.md §1.2).

An :class:`S2Endpoint` turns ``/S2/0/Rm`` of one :class:`~venus_ems.venus.Service` into the
``com.victronenergy.S2`` object a CEM (Victron's Opportunity Loads) talks to: methods
``Discover``, ``Connect``, ``KeepAlive``, ``Message``, ``Disconnect``; signals ``Message`` and
``Disconnect``. It serves one CEM at a time, drops it when keep-alives stop (interval +
ceil(0.2 x interval)), and hands the S2 JSON text to a listener; it knows nothing of S2 content.
The item value of ``/S2/0/Rm`` is None (not ready), ``"Ready"`` or ``"CEM: <id>"``.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

from dbus_fast import Message, MessageType

from ..clock import Clock
from .bus import writer_of
from .names import OPPORTUNITY_LOADS
from .service import Service
from .tree import PathSpec

__all__ = [
    "IFACE",
    "MAX_CLIENT_ID",
    "MAX_MESSAGE",
    "OPPORTUNITY_LOADS",
    "RM_PATH",
    "S2Endpoint",
    "S2Listener",
]

_LOG = logging.getLogger(__name__)

IFACE = "com.victronenergy.S2"
RM_PATH = "/S2/0/Rm"
MAX_MESSAGE = 64 * 1024  # characters of one S2 JSON message; a description is a few kB
MAX_CLIENT_ID = 128
_KEEPALIVE_RANGE = (1, 3600)  # s accepted in Connect
_INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
_SIGNATURES = {
    "Discover": "",
    "Connect": "si",
    "KeepAlive": "s",
    "Message": "ss",
    "Disconnect": "s",
}


class S2Listener(Protocol):
    """What the endpoint tells its resource manager (called on the event loop, must not raise)."""

    def s2_connected(self, client_id: str) -> None:
        """A CEM connected (a new session starts)."""
        ...

    def s2_message(self, client_id: str, text: str) -> None:
        """An S2 JSON message from the connected CEM (at most MAX_MESSAGE characters)."""
        ...

    def s2_disconnected(self, client_id: str, reason: str) -> None:
        """The session ended (CEM left, keep-alive missed, RM dropped it, not ready)."""
        ...


class S2Endpoint:
    """``com.victronenergy.S2`` at ``path`` of ``service`` (add before the service registers)."""

    def __init__(
        self, service: Service, clock: Clock, listener: S2Listener, *, path: str = RM_PATH
    ) -> None:
        """Add the item and the method handler to ``service``; not ready until :meth:`set_ready`."""
        self.service = service
        self.path = path
        self._clock = clock
        self._listener = listener
        self._ready = False
        self.client_id: str | None = None
        self.keep_alive_s = 0
        self._last_seen = 0.0
        service.add_path(path, None, PathSpec("s", max_length=MAX_CLIENT_ID + 8))
        service.add_handler(self._on_call)

    @property
    def ready(self) -> bool:
        """Whether the RM accepts a CEM."""
        return self._ready

    @property
    def connected(self) -> bool:
        """Whether a CEM session is open."""
        return self.client_id is not None

    def set_ready(self, ready: bool, reason: str = "Not ready") -> None:
        """Offer (True) or withdraw (False) the RM; withdrawing ends a session with ``reason``."""
        if not ready and self.client_id is not None:
            self.drop(reason)
        self._ready = ready
        self.service[self.path] = self._item_value()

    def send(self, text: str) -> bool:
        """Send one S2 JSON message to the connected CEM; False when none is connected."""
        if self.client_id is None:
            return False
        self._signal("Message", [self.client_id, text])
        return True

    def drop(self, reason: str) -> None:
        """End the session from the RM side: ``Disconnect`` signal, then the listener hears it."""
        cid = self.client_id
        if cid is None:
            return
        self._signal("Disconnect", [cid, reason])
        self._end(reason)

    def check_keep_alive(self) -> bool:
        """Drop a CEM whose keep-alive is overdue; True if it was dropped (call every ~1 s)."""
        if self.client_id is None:
            return False
        limit = self.keep_alive_s + math.ceil(0.2 * self.keep_alive_s)
        if self._clock.monotonic() - self._last_seen > limit:
            _LOG.warning("%s: CEM %s missed its keep-alive", self.service.name, self.client_id)
            self.drop("KeepAlive missed")
            return True
        return False

    async def run(self) -> None:
        """Watch the keep-alive until cancelled."""
        while True:
            await self._clock.sleep(1.0)
            self.check_keep_alive()

    # ----------------------------------------------------------------- internals

    def _item_value(self) -> str | None:
        if self.client_id is not None:
            return f"CEM: {self.client_id}"
        return "Ready" if self._ready else None

    def _end(self, reason: str) -> None:
        cid, self.client_id = self.client_id, None
        self.service[self.path] = self._item_value()
        if cid is not None:
            self._listener.s2_disconnected(cid, reason)

    def _signal(self, member: str, body: list[str]) -> None:
        if not self.service.registered:
            return
        bus = self.service.bus
        writer_of(bus).write(
            Message(
                message_type=MessageType.SIGNAL,
                path=self.path,
                interface=IFACE,
                member=member,
                signature="ss",
                body=body,
                serial=bus.next_serial(),
            )
        )

    def _on_call(self, msg: Message) -> Message | None:
        if msg.interface != IFACE or msg.path != self.path:
            return None
        member = msg.member or ""
        expected = _SIGNATURES.get(member)
        if expected is None:
            return Message.new_error(msg, _UNKNOWN_METHOD, f"{member} is not an S2 method")
        if msg.signature != expected:
            return Message.new_error(msg, _INVALID_ARGS, f"{member} takes ({expected})")
        if member == "Discover":
            return Message.new_method_return(msg, "b", [self._ready])
        client_id: str = msg.body[0]
        if not 0 < len(client_id) <= MAX_CLIENT_ID:
            return Message.new_error(msg, _INVALID_ARGS, "client id must be 1-128 characters")
        if member == "Connect":
            return Message.new_method_return(msg, "b", [self._connect(client_id, msg.body[1])])
        if not self._ready or client_id != self.client_id:
            self._signal("Disconnect", [client_id, "Not connected" if self._ready else "Not ready"])
            if member == "KeepAlive":
                return Message.new_method_return(msg, "b", [False])
            return Message.new_method_return(msg, "", [])
        if member == "KeepAlive":
            self._last_seen = self._clock.monotonic()
            return Message.new_method_return(msg, "b", [True])
        if member == "Disconnect":
            self._end("CEM disconnected")
            return Message.new_method_return(msg, "", [])
        text: str = msg.body[1]
        if len(text) > MAX_MESSAGE:
            return Message.new_error(msg, _INVALID_ARGS, f"S2 message over {MAX_MESSAGE} chars")
        self._listener.s2_message(client_id, text)
        return Message.new_method_return(msg, "", [])

    def _connect(self, client_id: str, keep_alive_s: int) -> bool:
        if not self._ready:
            self._signal("Disconnect", [client_id, "Not ready"])
            return False
        if self.client_id is not None:
            return self.client_id == client_id  # the same CEM again keeps its session
        lo, hi = _KEEPALIVE_RANGE
        self.client_id = client_id
        self.keep_alive_s = min(max(int(keep_alive_s), lo), hi)
        self._last_seen = self._clock.monotonic()
        self.service[self.path] = self._item_value()
        self._listener.s2_connected(client_id)
        return True

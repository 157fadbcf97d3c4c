"""Bus connections with a writer that survives bursts.

dbus-fast's asyncio writer treats a full socket buffer (``EAGAIN``) as fatal and drops the
connection. :func:`connect` replaces it with :class:`BusWriter`, which waits for the socket to
become writable instead, sends every message queued in one loop turn with one system call, and
reports how many bytes are queued so publishers can apply backpressure (``congested``,
``on_drained``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus

from ..errors import BusError

__all__ = [
    "BusWriter",
    "DBusCallError",
    "add_match",
    "call",
    "connect",
    "resolve_address",
    "writer_of",
]

_LOG = logging.getLogger(__name__)

SYSTEM_BUS_ADDRESS = "unix:path=/var/run/dbus/system_bus_socket"


def resolve_address(address: str | None = None) -> str:
    """Bus address to use: explicit, else ``DBUS_SESSION_BUS_ADDRESS``, else the system bus."""
    if address:
        return address
    return os.environ.get("DBUS_SESSION_BUS_ADDRESS") or os.environ.get(
        "DBUS_SYSTEM_BUS_ADDRESS", SYSTEM_BUS_ADDRESS
    )


async def connect(address: str | None = None) -> MessageBus:
    """Open a new connection (one per published service); raises BusError when unreachable."""
    resolved = resolve_address(address)
    try:
        bus = await MessageBus(bus_address=resolved, bus_type=BusType.SESSION).connect()
    except (OSError, EOFError, ValueError) as err:
        raise BusError(f"cannot connect to D-Bus at {resolved}: {err}") from err
    except Exception as err:  # dbus-fast raises AuthError and friends
        raise BusError(f"cannot connect to D-Bus at {resolved}: {err!r}") from err
    BusWriter.install(bus)
    return bus


class DBusCallError(BusError):
    """A method call was answered with a D-Bus error; ``name`` is the error name."""

    def __init__(self, name: str, text: str) -> None:
        """Keep the D-Bus error name for callers that branch on it."""
        super().__init__(f"{name}: {text}")
        self.name = name
        self.text = text


async def call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
    *,
    timeout: float = 5.0,
) -> list[Any]:
    """Call a method and return the reply body; raises DBusCallError or BusError (timeout)."""
    msg = Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=body or [],
    )
    try:
        with anyio.fail_after(timeout):
            reply = await bus.call(msg)
    except TimeoutError:
        bus._method_return_handlers.pop(msg.serial, None)
        raise BusError(f"{destination} {path} {member}: no reply in {timeout} s") from None
    except anyio.get_cancelled_exc_class():
        bus._method_return_handlers.pop(msg.serial, None)
        raise
    except (OSError, EOFError, DBusError) as err:
        raise BusError(f"{destination} {path} {member}: connection lost: {err}") from err
    if reply is None:
        raise BusError(f"{destination} {path} {member}: no reply")
    if reply.message_type is MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise DBusCallError(reply.error_name or "unknown", text)
    return reply.body


async def add_match(bus: MessageBus, rule: str) -> None:
    """Ask the bus daemon to route signals matching ``rule`` to this connection."""
    await call(
        bus,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        "s",
        [rule],
    )


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def writer_of(bus: MessageBus) -> BusWriter:
    """The BusWriter of a connection made by :func:`connect`."""
    w: Any = bus._writer
    if not isinstance(w, BusWriter):
        raise TypeError("bus was not opened with venus_ems.venus.bus.connect()")
    return w


class BusWriter:
    """Buffered, EAGAIN-safe writer for one connection; bytes are sent in order."""

    __slots__ = (
        "_buf",
        "_bus",
        "_drain_callbacks",
        "_fd",
        "_flush_scheduled",
        "_futures",
        "_loop",
        "_offset",
        "_queued_total",
        "_sock",
        "_watching",
        "_written_total",
        "high_water",
        "low_water",
    )

    def __init__(
        self, bus: MessageBus, *, high_water: int = 1 << 20, low_water: int = 256 << 10
    ) -> None:
        """Take over writing for ``bus``; thresholds in bytes of unsent data."""
        if bus._sock is None or bus._fd is None:
            raise BusError("bus is not connected")
        self._bus = bus
        self._sock = bus._sock
        self._fd: int = bus._fd
        self._loop: asyncio.AbstractEventLoop = bus._loop
        self._buf = bytearray()
        self._offset = 0
        self._queued_total = 0
        self._written_total = 0
        self._futures: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._drain_callbacks: list[Callable[[], None]] = []
        self._flush_scheduled = False
        self._watching = False
        self.high_water = high_water
        self.low_water = low_water

    @classmethod
    def install(cls, bus: MessageBus) -> BusWriter:
        """Replace dbus-fast's writer on a freshly connected bus."""
        old: Any = bus._writer
        new = cls(bus)
        pending: list[tuple[bytes, asyncio.Future[None] | None]] = []
        if old is not None:
            if old.buf is not None:
                pending.append((bytes(old.buf[old.offset :]), old.fut))
            pending.extend((bytes(b), f) for b, _fds, f in old.messages)
            old.messages.clear()
            old.buf = None
            with contextlib.suppress(Exception):
                new._loop.remove_writer(new._fd)
        bus._writer = new  # type: ignore[assignment]
        for data, fut in pending:
            new._append(data, fut)
        if pending:
            new.flush()
        return new

    @property
    def queued_bytes(self) -> int:
        """Bytes accepted but not yet handed to the kernel."""
        return self._queued_total - self._written_total

    @property
    def congested(self) -> bool:
        """True while more than ``high_water`` bytes wait to be sent."""
        return self._queued_total - self._written_total > self.high_water

    def on_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, as soon as queued bytes fall to ``low_water`` or below."""
        if self.queued_bytes <= self.low_water:
            self._loop.call_soon(callback)
        else:
            self._drain_callbacks.append(callback)

    async def drained(self, *, empty: bool = False) -> None:
        """Wait until queued bytes are at or below ``low_water`` (or zero with ``empty``)."""
        limit = 0 if empty else self.low_water
        while self.queued_bytes > limit:
            fut: asyncio.Future[None] = self._loop.create_future()
            self._drain_callbacks.append(partial(_resolve, fut))
            if empty and not self._watching:
                self.flush()
            await fut

    # dbus-fast calls this from MessageBus.send() and after Hello.
    def schedule_write(
        self, msg: Message | None = None, future: asyncio.Future[None] | None = None
    ) -> None:
        """Queue a message and flush now (replies and calls are latency-sensitive)."""
        if msg is not None:
            if msg.unix_fds:
                raise BusError("unix fd passing is not supported")
            self._append(msg._marshall(False), future)
        if self._bus.unique_name:
            self.flush()

    def write(self, msg: Message) -> None:
        """Queue a message without a completion future; flushed at the end of this loop turn."""
        if not msg.serial:
            msg.serial = self._bus.next_serial()
        self._append(msg._marshall(False), None)
        if not self._flush_scheduled and not self._watching:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _append(self, data: bytes | bytearray, fut: asyncio.Future[None] | None) -> None:
        self._buf += data
        self._queued_total += len(data)
        if fut is not None:
            self._futures.append((self._queued_total, fut))

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send as much as the socket takes; wait for writability on EAGAIN, never disconnect."""
        if self._watching and self._offset < len(self._buf):
            return  # the writability callback will continue
        self._write_ready()

    def _write_ready(self) -> None:
        buf = self._buf
        while self._offset < len(buf):
            try:
                n = self._sock.send(memoryview(buf)[self._offset :])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                self._fail(err)
                return
            if n == 0:
                break
            self._offset += n
            self._written_total += n
        if self._futures:
            self._resolve_futures()
        if self._offset >= len(buf):
            buf.clear()
            self._offset = 0
            if self._watching:
                self._loop.remove_writer(self._fd)
                self._watching = False
        else:
            if self._offset > 1 << 16 and self._offset > len(buf) // 2:
                del buf[: self._offset]
                self._offset = 0
            if not self._watching:
                self._loop.add_writer(self._fd, self._write_ready)
                self._watching = True
        if self._drain_callbacks and self.queued_bytes <= self.low_water:
            callbacks, self._drain_callbacks = self._drain_callbacks, []
            for cb in callbacks:
                cb()

    def _resolve_futures(self) -> None:
        written = self._written_total
        futures = self._futures
        while futures and futures[0][0] <= written:
            _end, fut = futures.popleft()
            if not fut.done():
                fut.set_result(None)

    def _fail(self, err: Exception) -> None:
        _LOG.warning("D-Bus connection lost while writing: %s", err)
        for _end, fut in self._futures:
            if not fut.done():
                fut.set_exception(err)
        self._futures.clear()
        self._buf.clear()
        self._offset = 0
        if self._watching:
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._fd)
            self._watching = False
        self._bus._finalize(err)

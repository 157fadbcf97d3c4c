"""Waiting in tests for something that happens on the bus or the broker (plain helper module).

* :func:`until` polls a condition (use it when the test knows what it waits for);
* :class:`BusWatch` is a barrier for "everything that was sent has been handled": it sees every
  message the dbus-daemon routes (an eavesdropping monitor connection) and settles when a round
  trip through the daemon and a pass of every in-process task produce no new message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from venus_ems.clock import wait_idle

__all__ = ["BusWatch", "bus_watch", "read_all", "until", "wait_for"]

_DBUS = "org.freedesktop.DBus"
_DBUS_PATH = "/org/freedesktop/DBus"


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``predicate`` every 5 ms; TimeoutError when it is still false after ``timeout`` s."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


async def wait_for(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s; AssertionError saying ``what`` after ``seconds`` s."""
    with anyio.move_on_after(seconds):
        while not predicate():
            await anyio.sleep(0.1)
        return
    raise AssertionError(what)


async def read_all(stream: object) -> str:
    """Everything a subprocess stream still holds, decoded (for failure messages)."""
    chunks = []
    try:
        while stream is not None:
            chunks.append(await stream.receive())  # type: ignore[attr-defined]
    except anyio.EndOfStream:
        pass
    return b"".join(chunks).decode(errors="replace")


class BusWatch:
    """Counts (and can record) every message routed on a bus; :meth:`settle` is a barrier."""

    def __init__(self, monitor: MessageBus, pinger: MessageBus) -> None:
        self._monitor = monitor
        self._pinger = pinger
        self._me = pinger.unique_name
        self.count = 0
        """Messages routed so far (our own pings excluded)."""
        self._recorders: list[tuple[Callable[[Message], bool], list[Message]]] = []
        monitor.add_message_handler(self._seen)

    def _seen(self, msg: Message) -> bool:
        if self._me in (msg.sender, msg.destination):
            return True
        self.count += 1
        for wanted, out in self._recorders:
            if wanted(msg):
                out.append(msg)
        return True  # handled: a monitor must never answer anything

    def record(self, wanted: Callable[[Message], bool]) -> list[Message]:
        """From now on, append each routed message for which ``wanted(msg)`` is true."""
        out: list[Message] = []
        self._recorders.append((wanted, out))
        return out

    async def _ping(self) -> None:
        reply = await self._pinger.call(
            Message(destination=_DBUS, path=_DBUS_PATH, interface=_DBUS, member="GetId")
        )
        assert reply is not None
        assert reply.message_type is MessageType.METHOD_RETURN

    async def settle(self, *, max_rounds: int = 200) -> int:
        """Return once nothing is in flight on the bus and every task here is blocked; rounds.

        A round: every in-process task runs until it blocks, then two round trips through the
        dbus-daemon (it handles the connections ready at each poll before polling again, so
        by the second reply whatever was sent before the round has been routed, and its copy
        has reached us), then the tasks run again. A round in which no message was routed
        ends the wait. TimeoutError after ``max_rounds`` busy rounds (traffic never stops).
        """
        for rounds in range(1, max_rounds + 1):
            await wait_idle()
            before = self.count
            await self._ping()
            await self._ping()
            await wait_idle()
            if self.count == before:
                return rounds
        raise TimeoutError(f"the bus did not settle in {max_rounds} rounds")


@asynccontextmanager
async def bus_watch(address: str) -> AsyncIterator[BusWatch]:
    """A :class:`BusWatch` on the bus at ``address`` (two connections, closed afterwards)."""
    monitor = await MessageBus(bus_address=address).connect()
    pinger = await MessageBus(bus_address=address).connect()
    try:
        reply = await monitor.call(
            Message(
                destination=_DBUS,
                path=_DBUS_PATH,
                interface=f"{_DBUS}.Monitoring",
                member="BecomeMonitor",
                signature="asu",
                body=[[], 0],
            )
        )
        assert reply is not None
        assert reply.message_type is MessageType.METHOD_RETURN, reply.body
        yield BusWatch(monitor, pinger)
    finally:
        monitor.disconnect()
        pinger.disconnect()

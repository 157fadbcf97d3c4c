"""The Wattpilot as an ``EvCharger``: one websocket kept open, status merged, writes acknowledged.

``open_wattpilot`` connects once (so a wrong password or an unreachable charger surfaces where
every opener raises it) and returns a :class:`WattpilotCharger` holding that connection. Use it
as an async context manager: entering starts its reader in a task group of its own; leaving
closes the socket. While inside, the reader merges every status frame into the typed reading
and, when the connection ends (closed, silent for ``idle_timeout_s``, a frame it refuses), drops
it and reconnects after a backoff that doubles from ``min_backoff_s`` to ``max_backoff_s``
(clock time) and goes back to the minimum once a connection has lasted ``max_backoff_s``. A
refused password is never retried with the same secret: every call then raises
DeviceAuthError (not retryable) and the feature decides.

Writes go out one at a time (the firmware crashes on parallel writes: evcc #14498) as signed
``securedMsg`` frames when the charger is secured, and each waits for its ``response``: success
merges the new value into the reading, ``success: false`` is a DeviceProtocolError with the
charger's message, no answer within ``conn.timeout_s`` a DeviceTimeoutError, a connection lost
meanwhile a DeviceConnectionError. Nothing is retried here: the caller knows whether it still
wants the value.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import aiohttp
import anyio
import anyio.abc

from ...clock import Clock
from ...errors import (
    ConfigError,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from ..base import ChargeForce, Connection, DeviceIdentity, EvChargerReading
from .auth import new_token3
from .frames import FLEX_DEVICE_TYPE, Response, encode_set_value, parse_response
from .link import Link, connect
from .status import merge_status, parse_reading, status_values

__all__ = ["WattpilotCharger", "open_wattpilot"]

_FORCE_CODES: dict[str, int] = {"neutral": 0, "off": 1, "on": 2}
_PSM_CODES: dict[int | None, int] = {None: 0, 1: 1, 3: 2}


class _Pending:
    """One write waiting for its ``response``."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: Response | None = None
        self.error: DeviceError | None = None


class WattpilotCharger:
    """A Fronius Wattpilot (classic or Flex): implements ``EvCharger`` and ``PersistentDevice``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        conn: Connection,
        *,
        clock: Clock,
        scheme: str = "auto",
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        idle_timeout_s: float = 15.0,
        token3: Callable[[], str] = new_token3,
    ) -> None:
        """Nothing is sent here: :meth:`open` connects (``open_wattpilot`` does both)."""
        if not conn.password:
            raise ConfigError(f"Wattpilot at {conn.host}: a password is required")
        self._session = session
        self._conn = conn
        self._password = conn.password
        self._clock = clock
        self._scheme = scheme
        self._backoff = (min_backoff_s, max_backoff_s)
        self._idle_timeout_s = idle_timeout_s
        self._token3 = token3
        self._link: Link | None = None
        self._values: dict[str, Any] = {}
        self._reading: EvChargerReading | None = None
        self._failure: DeviceError = DeviceConnectionError(f"{self.url}: not connected yet")
        self._changed = anyio.Event()
        self._write_lock = anyio.Lock()
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._stack: AsyncExitStack | None = None
        self._identity = DeviceIdentity("Fronius Wattpilot", "wattpilot", "", "")
        self._can_switch = False
        self.connections = 0
        """How many times a login succeeded (1 after open; grows with every reconnect)."""
        self.retry_in_s = 0.0
        """While disconnected: the backoff (clock s) before the current or next attempt."""
        self.failed_attempts = 0
        """Reconnection attempts that failed since the last login."""

    # --- what the device is -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://<host>/ws``."""
        return f"ws://{self._conn.host}/ws"

    @property
    def identity(self) -> DeviceIdentity:
        """From the charger's ``hello``: serial, device type, firmware version."""
        return self._identity

    @property
    def can_switch_phases(self) -> bool:
        """Whether the charger reports a phase switch mode (``psm``)."""
        return self._can_switch

    @property
    def connected(self) -> bool:
        """Whether a logged-in connection is open now."""
        return self._link is not None

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and log in once; DeviceAuthError, other DeviceErrors as :func:`connect`."""
        self._adopt(await self._connect())

    async def __aenter__(self) -> WattpilotCharger:
        """Start the reader (and the reconnects) in a task group of this device's own."""
        stack = AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        tg.start_soon(self._keep)
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the reader, fail waiting writes, close the socket."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (a device opened but never entered is closed with this)."""
        link, self._link = self._link, None
        if link is not None:
            self._fail_pending(DeviceConnectionError(f"{self.url}: closed"))
            await link.close()
        self._failure = DeviceConnectionError(f"{self.url}: closed")

    async def _connect(self) -> Link:
        link = await connect(
            self._session,
            self._conn.host,
            self._password,
            timeout_s=self._conn.timeout_s,
            scheme=self._scheme,
            token3=self._token3,
        )
        hello = link.hello
        if self._identity.serial and hello.serial != self._identity.serial:
            await link.close()
            raise DeviceProtocolError(
                f"{self.url}: another Wattpilot answers (serial {hello.serial}, "
                f"expected {self._identity.serial})"
            )
        try:
            reading = parse_reading(link.values, self._clock.monotonic())
        except DeviceError:
            await link.close()
            raise
        flex = hello.devicetype == FLEX_DEVICE_TYPE
        self._identity = DeviceIdentity(
            product_name="Fronius Wattpilot Flex" if flex else "Fronius Wattpilot",
            model=hello.devicetype,
            serial=hello.serial,
            firmware=hello.version,
        )
        self._can_switch = "psm" in link.values
        self._values = dict(link.values)
        self._reading = reading
        return link

    def _adopt(self, link: Link) -> None:
        self._link = link
        self.retry_in_s = 0.0
        self.failed_attempts = 0
        self.connections += 1
        self._notify()

    async def _keep(self) -> None:
        """Read while connected; reconnect with a capped, doubling backoff; stop on auth."""
        low, high = self._backoff
        delay = low
        while True:
            link = self._link
            if link is None:
                self.retry_in_s = delay
                await self._clock.sleep(delay)
                delay = min(delay * 2, high)
                try:
                    link = await self._connect()
                except DeviceAuthError as err:
                    self._failure = err
                    self.failed_attempts += 1
                    self._notify()
                    return  # never retry a refused secret (the charger may lock us out)
                except DeviceError as err:
                    self._failure = err
                    self.failed_attempts += 1
                    self._notify()
                    continue
                self._adopt(link)
            started = self._clock.monotonic()
            try:
                await self._read(link)
            except DeviceError as err:
                self._failure = err
            finally:
                self._link = None
                self._fail_pending(DeviceConnectionError(f"{self._failure} (connection dropped)"))
                self._notify()
                await link.close()
            if self._clock.monotonic() - started >= high:
                delay = low

    async def _read(self, link: Link) -> None:
        while True:
            frame = await link.receive(self._idle_timeout_s)
            kind = frame["type"]
            if kind in ("fullStatus", "deltaStatus"):
                self._apply(status_values(frame, f"{self.url} {kind}"))
            elif kind == "response":
                self._answer(parse_response(frame))
            # hello, clearInverters, updateInverter, ...: nothing for us

    def _apply(self, status: Any) -> None:
        """Merge a status object; the whole frame is refused if the result does not parse."""
        merged = merge_status(self._values, status)
        self._reading = parse_reading(merged, self._clock.monotonic())
        self._values = merged
        self._notify()

    def _answer(self, response: Response) -> None:
        pending = self._pending.get(response.request_id)
        if response.success and response.status:
            self._apply(response.status)  # the charger's word for the new value
        if pending is not None:
            pending.response = response
            pending.done.set()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _fail_pending(self, error: DeviceError) -> None:
        for pending in self._pending.values():
            pending.error = error
            pending.done.set()

    def _down(self) -> DeviceError:
        """A fresh copy of why there is no connection (an exception is raised once)."""
        err = self._failure
        return type(err)(str(err))

    # --- EvCharger --------------------------------------------------------------------------

    async def read_charger(self) -> EvChargerReading:
        """The latest merged state; the connection's failure while it is down."""
        if self._link is None or self._reading is None:
            raise self._down()
        return self._reading

    async def wait_reading(self, newer_than: float, timeout_s: float) -> EvChargerReading:
        """The first state taken after ``newer_than``; DeviceTimeoutError after ``timeout_s``."""
        with anyio.move_on_after(timeout_s):
            while True:
                changed = self._changed
                reading = await self.read_charger()
                if reading.taken_at > newer_than:
                    return reading
                await changed.wait()
        raise DeviceTimeoutError(f"{self.url}: no new status within {timeout_s:g} s")

    async def set_current(self, amps: float) -> None:
        """Offer ``amps`` per phase, rounded down to whole A; ConfigError outside min..max."""
        reading = await self.read_charger()
        whole = int(amps + 1e-9)
        if not reading.min_current_a <= whole <= reading.max_current_a:
            raise ConfigError(
                f"{self.url}: {amps:g} A is outside the charger's "
                f"{reading.min_current_a:g}..{reading.max_current_a:g} A"
            )
        await self._set("amp", whole)

    async def set_phases(self, phases: int | None) -> None:
        """1 or 3 phases, or None (the charger chooses); ConfigError if it cannot switch."""
        if phases not in _PSM_CODES:
            raise ConfigError(f"{self.url}: phases must be 1, 3 or None, not {phases!r}")
        if not self._can_switch:
            raise ConfigError(f"{self.url}: this Wattpilot reports no phase switching (psm)")
        await self._set("psm", _PSM_CODES[phases])

    async def set_force(self, force: ChargeForce) -> None:
        """Charging forced ``on``, ``off``, or ``neutral`` (the charger's own logic)."""
        if force not in _FORCE_CODES:
            raise ConfigError(f"{self.url}: force must be neutral, off or on, not {force!r}")
        await self._set("frc", _FORCE_CODES[force])

    async def _set(self, key: str, value: int) -> None:
        """One acknowledged write (see the module docstring for what it raises)."""
        what = f"{self.url}: {key}={value}"
        async with self._write_lock:
            link = self._link
            if link is None:
                raise self._down()
            request_id = next(self._ids)
            pending = _Pending()
            self._pending[str(request_id)] = pending
            try:
                secret = link.secret if link.hello.secured else None
                await link.send(encode_set_value(request_id, key, value, secret))
                with anyio.move_on_after(self._conn.timeout_s):
                    await pending.done.wait()
            finally:
                self._pending.pop(str(request_id), None)
        if pending.error is not None:
            raise type(pending.error)(f"{what}: {pending.error}")
        response = pending.response
        if response is None:
            raise DeviceTimeoutError(f"{what}: not acknowledged within {self._conn.timeout_s:g} s")
        if not response.success:
            raise DeviceProtocolError(f"{what} refused: {response.message or 'no reason given'}")
        if self._link is link and self._values.get(key) != value:
            self._apply({key: value})  # acknowledged without the new value: it is in force


async def open_wattpilot(
    session: aiohttp.ClientSession,
    conn: Connection,
    *,
    clock: Clock,
    **options: Any,
) -> WattpilotCharger:
    """Connect and log in; the returned charger is entered (``async with``) to stay connected."""
    charger = WattpilotCharger(session, conn, clock=clock, **options)
    await charger.open()
    return charger

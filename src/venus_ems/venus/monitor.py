"""Watch ``com.victronenergy.*`` services the way velib's DbusMonitor and dbus-flashmq do.

Discovery: ListNames + GetNameOwner at start, NameOwnerChanged (``arg0namespace``) afterwards.
Each service is scanned with GetItems (falling back to GetValue/GetText on ``/`` and per path).
Scan replies are applied in the message handler, in arrival order with the change signals, so a
change that arrives during a scan is never lost and never overwritten by an older snapshot.
Both PropertiesChanged and ItemsChanged are handled. Change notifications are coalesced per
path: callbacks and streams receive ``{(service, path): value}`` batches, so memory stays
bounded however fast values change.

Memory stays bounded however many paths and services appear (:class:`MonitorLimits`): paths
a ``watch`` selection names are always kept; every other path is charged an estimate of what it
costs (entry, name, value) against a budget per service and one for the whole monitor, and a
path that does not fit is ignored, with one warning. Too many services, or a value larger than
``max_value_bytes``, are refused the same way (the value is kept as invalid). A flood of
never-seen paths or names therefore costs at most ``total_bytes``, and values already kept go
on updating.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from dbus_fast import DBusError, Message, MessageType
from dbus_fast.aio import MessageBus

from ..callbacks import Callbacks
from ..errors import BusError, ServiceNotFoundError
from .budget import MAX_TEXT, SIZED, Budget, MonitorLimits
from .bus import DBusCallError, add_match, call, connect, writer_of
from .codec import Value, unwrap, wrap
from .tree import BUSITEM

__all__ = [
    "Changes",
    "Monitor",
    "MonitorLimits",
    "ServiceState",
    "Subscription",
    "open_monitor",
]

_LOG = logging.getLogger(__name__)

Changes = Mapping[tuple[str, str], Value]
"""A coalesced batch of changes: ``{(service name, path): latest value}``."""

_SIGNAL = MessageType.SIGNAL
_RETURN = MessageType.METHOD_RETURN
_ERROR = MessageType.ERROR
_DBUS = "org.freedesktop.DBus"
_DBUS_PATH = "/org/freedesktop/DBus"
_PREFIX = "com.victronenergy."
_GONE = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.NoReply",
    }
)
_NO_INSTANCE_OK = (
    "com.victronenergy.settings",
    "com.victronenergy.platform",
    "com.victronenergy.vecan",
)
_MISSING: Any = object()


def service_class(name: str) -> str:
    """``com.victronenergy.grid.shelly_1`` -> ``com.victronenergy.grid``."""
    return ".".join(name.split(".")[:3])


@dataclass(eq=False)
class ServiceState:
    """What the monitor knows of one service; read it, do not modify it."""

    name: str
    owner: str | None
    paths: set[str] | None
    values: dict[str, Value] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    device_instance: int | None = None
    ready: bool = False
    cost: int = 0  # estimated bytes charged for paths no selection names

    @property
    def device_class(self) -> str:
        """The service class, e.g. ``com.victronenergy.grid``."""
        return service_class(self.name)


class Subscription:
    """Async iterator of coalesced change batches for a selection of services and paths."""

    def __init__(self, services: set[str] | None, paths: set[str] | None) -> None:
        """Select by service name or class (None = all) and by path (None = all)."""
        self._services = services
        self._paths = paths
        self._pending: dict[tuple[str, str], Value] = {}
        self._event = anyio.Event()
        self.closed = False

    def _push(self, changes: Changes) -> None:
        services, paths, pending = self._services, self._paths, self._pending
        for key, value in changes.items():
            name, path = key
            if paths is not None and path not in paths:
                continue
            if (
                services is not None
                and name not in services
                and service_class(name) not in services
            ):
                continue
            pending.pop(key, None)
            pending[key] = value
        if pending:
            self._event.set()

    def __aiter__(self) -> Subscription:
        """Iterate over batches."""
        return self

    async def __anext__(self) -> dict[tuple[str, str], Value]:
        """Wait for the next non-empty batch (latest value per path)."""
        while not self._pending:
            if self.closed:
                raise StopAsyncIteration
            await self._event.wait()
            self._event = anyio.Event()
        batch, self._pending = self._pending, {}
        return batch


class Monitor:
    """Discovers, scans and tracks services; start it with :func:`open_monitor` or ``run``."""

    def __init__(
        self,
        bus: MessageBus,
        *,
        watch: Mapping[str, Iterable[str] | None] | None = None,
        require_device_instance: bool = False,
        keep_text: bool = False,
        scan_timeout: float = 5.0,
        limits: MonitorLimits | None = None,
    ) -> None:
        """``watch`` maps a service class or full name to the paths to keep (None = all).

        Without ``watch`` every ``com.victronenergy.*`` service is tracked with all its paths,
        within ``limits``. Texts are kept only with ``keep_text`` (they double the memory and
        must not be parsed).
        """
        self.bus = bus
        self._watch: dict[str, set[str] | None] | None = (
            None
            if watch is None
            else {k: (None if v is None else set(v)) for k, v in watch.items()}
        )
        self._require_instance = require_device_instance
        self._keep_text = keep_text
        self._scan_timeout = scan_timeout
        self._by_name: dict[str, ServiceState] = {}
        self._by_owner: dict[str, ServiceState] = {}
        self._reply_hooks: dict[int, Callable[[Message], None]] = {}
        self._dirty: dict[tuple[str, str], Value] = {}
        self._dispatch_scheduled = False
        self._callbacks: Callbacks[[Changes]] = Callbacks()
        self._service_callbacks: Callbacks[[str, ServiceState | None]] = Callbacks()
        self._crash: Exception | None = None
        self._life: anyio.CancelScope | None = None
        self._subscriptions: list[Subscription] = []
        self._waiters: list[tuple[str, anyio.Event]] = []
        self._tg: TaskGroup | None = None
        self.updates_received = 0
        self.budget = Budget(limits)

    # ----------------------------------------------------------------- reading

    def services(self, name_or_class: str | None = None) -> list[ServiceState]:
        """Scanned services, by name or class (None = all), sorted by DeviceInstance then name."""
        out = [
            s
            for s in self._by_name.values()
            if s.ready and (name_or_class is None or name_or_class in (s.name, s.device_class))
        ]
        out.sort(
            key=lambda s: (s.device_instance if s.device_instance is not None else 1 << 31, s.name)
        )
        return out

    def service(self, name: str) -> ServiceState | None:
        """The scanned service called ``name``, or None."""
        s = self._by_name.get(name)
        return s if s is not None and s.ready else None

    def get(self, service: str, path: str, default: Value = None) -> Value:
        """Latest value of a path (``default`` when invalid or unknown)."""
        s = self._by_name.get(service)
        if s is None or not s.ready:
            return default
        v = s.values.get(path)
        return default if v is None else v

    def get_float(self, service: str, path: str) -> float | None:
        """Latest numeric value as float; None when invalid, unknown or not a number."""
        v = self.get(service, path)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return None

    def get_int(self, service: str, path: str) -> int | None:
        """Latest integral value as int; None when invalid, unknown or not integral."""
        v = self.get(service, path)
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return None

    def get_str(self, service: str, path: str) -> str | None:
        """Latest value if it is a string, else None."""
        v = self.get(service, path)
        return v if isinstance(v, str) else None

    def get_text(self, service: str, path: str) -> str | None:
        """Latest text of a path (only with ``keep_text``; never parse it)."""
        s = self._by_name.get(service)
        return None if s is None else s.texts.get(path)

    # ----------------------------------------------------------------- notifications

    def on_change(self, callback: Callable[[Changes], None]) -> None:
        """Call ``callback(changes)`` with each coalesced batch (once per loop turn at most).

        If it raises, the feature run that registered it fails (see venus_ems.callbacks);
        registered outside a feature, its exception ends :meth:`run` (the monitor fails).
        """
        self._callbacks.add(callback)

    def on_service(self, callback: Callable[[str, ServiceState | None], None]) -> None:
        """Call ``callback(name, state)`` when a service is scanned, ``(name, None)`` when gone.

        Exceptions are handled as for :meth:`on_change`.
        """
        self._service_callbacks.add(callback)

    def subscribe(
        self, services: Iterable[str] | None = None, paths: Iterable[str] | None = None
    ) -> Subscription:
        """Change stream for some services (names or classes) and paths; end it with unsubscribe."""
        sub = Subscription(
            None if services is None else set(services), None if paths is None else set(paths)
        )
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop a change stream; a pending ``async for`` ends."""
        sub.closed = True
        sub._event.set()
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    async def wait_for_service(self, name_or_class: str, *, timeout: float = 10.0) -> ServiceState:
        """First scanned service with this name or class; ServiceNotFoundError after timeout."""
        with anyio.move_on_after(timeout):
            while True:
                found = self.services(name_or_class)
                if found:
                    return found[0]
                event = anyio.Event()
                waiter = (name_or_class, event)
                self._waiters.append(waiter)
                try:
                    await event.wait()
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
        raise ServiceNotFoundError(f"{name_or_class} did not appear within {timeout} s")

    def watch_path(self, service: str, path: str, value: Value = _MISSING) -> None:
        """Start keeping ``path`` of ``service`` (full name); optionally seed its value."""
        if self._watch is not None:
            sel = self._watch.setdefault(service, set())
            if sel is not None:
                sel.add(path)
        s = self._by_name.get(service)
        if s is not None:
            if s.paths is not None:
                s.paths.add(path)
            if value is not _MISSING and path not in s.values:
                s.values[path] = value

    # ----------------------------------------------------------------- writing

    async def set_value(
        self, service: str, path: str, value: Value, *, timeout: float = 5.0
    ) -> int:
        """SetValue on a path; returns the service's result code (0 = accepted).

        Raises DBusCallError when the service answers with a D-Bus error (no such path or
        service) and BusError on timeout.
        """
        (code,) = await call(
            self.bus, service, path, BUSITEM, "SetValue", "v", [wrap(value)], timeout=timeout
        )
        return int(code)

    # ----------------------------------------------------------------- lifecycle

    async def run(self, *, task_status: TaskStatus[Monitor] = anyio.TASK_STATUS_IGNORED) -> None:
        """Discover and scan, report started, then track until cancelled.

        Raises BusError if the bus dies, and the exception of a callback that has no owner.
        """
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.bus.add_message_handler(self._on_message)
            try:
                names = await self._subscribe_and_list()
                async with anyio.create_task_group() as initial:
                    for name in names:
                        if self._selection(name) is not False:
                            initial.start_soon(self._discover, name)
                task_status.started(self)
                with anyio.CancelScope() as self._life:
                    if self._crash is None:
                        try:
                            await self.bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
                        except Exception as err:
                            raise BusError(f"monitor lost the bus: {err}") from err
                if self._crash is not None:
                    raise self._crash
                raise BusError("monitor lost the bus")
            finally:
                self.bus.remove_message_handler(self._on_message)
                self._tg = None
                tg.cancel_scope.cancel()

    async def _subscribe_and_list(self) -> list[str]:
        """AddMatch x3 then ListNames, pipelined: the daemon handles them in the order sent."""
        names: list[str] = []

        async def owner_changed() -> None:
            noc = f"type='signal',sender='{_DBUS}',interface='{_DBUS}',member='NameOwnerChanged'"
            try:
                await add_match(self.bus, noc + ",arg0namespace='com.victronenergy'")
            except DBusCallError:  # very old daemons lack arg0namespace
                await add_match(self.bus, noc)

        async def list_names() -> None:
            (found,) = await call(self.bus, _DBUS, _DBUS_PATH, _DBUS, "ListNames")
            names.extend(found)

        async with anyio.create_task_group() as tg:  # tasks start, and so send, in this order
            tg.start_soon(owner_changed)
            tg.start_soon(
                add_match,
                self.bus,
                f"type='signal',interface='{BUSITEM}',member='PropertiesChanged'",
            )
            tg.start_soon(
                add_match,
                self.bus,
                f"type='signal',interface='{BUSITEM}',member='ItemsChanged',path='/'",
            )
            tg.start_soon(list_names)
        return names

    def _selection(self, name: str) -> set[str] | bool | None:
        """Paths to keep for a service: a set, None for all, False if unwanted."""
        if not name.startswith(_PREFIX):
            return False
        if self._watch is None:
            return None
        if name in self._watch:
            sel = self._watch[name]
        elif service_class(name) in self._watch:
            sel = self._watch[service_class(name)]
        else:
            return False
        return None if sel is None else set(sel)

    async def _discover(self, name: str) -> None:
        # No GetNameOwner round trip: the scan reply's sender is the owner, and it is recorded
        # before any later signal is handled. Signals sent before the reply are in the snapshot.
        if name not in self._by_name:
            self._add_service(name, None, scan_now=False)
            state = self._by_name.get(name)
            if state is not None:
                await self._scan(state)

    # ----------------------------------------------------------------- scanning

    def _add_service(self, name: str, owner: str | None, *, scan_now: bool = True) -> None:
        sel = self._selection(name)
        if sel is False:
            return
        old = self._by_name.get(name)
        if old is not None:
            if old.owner == owner:
                return
            self._remove_service(name)
        state = ServiceState(name, owner, sel if isinstance(sel, set) else None)
        if not self.budget.admit_service(state, len(self._by_name)):
            return
        self._by_name[name] = state
        if owner is not None:
            self._by_owner[owner] = state
        if scan_now and self._tg is not None:
            self._tg.start_soon(self._scan, state)

    def _remove_service(self, name: str) -> None:
        state = self._by_name.pop(name, None)
        if state is None:
            return
        self.budget.forget(state)
        if state.owner is not None and self._by_owner.get(state.owner) is state:
            del self._by_owner[state.owner]
        if state.ready:
            state.ready = False
            for path in state.values:
                self._mark(name, path, None)
            self._notify(self._service_callbacks, name, None)

    def _current(self, state: ServiceState) -> bool:
        return self._by_name.get(state.name) is state

    async def _scan(self, state: ServiceState) -> None:
        for attempt in range(3):
            if not self._current(state):
                return
            try:
                await self._scan_getitems(state)
            except DBusCallError as err:
                if err.name in _GONE:
                    return
                try:
                    await self._scan_legacy(state)
                except DBusCallError as err2:
                    if err2.name in _GONE:
                        return
                    _LOG.warning("scan of %s failed: %s", state.name, err2)
                except BusError as err2:
                    _LOG.warning("scan of %s failed: %s", state.name, err2)
            except BusError as err:
                _LOG.warning("scan of %s failed: %s", state.name, err)
            if not self._current(state):
                return
            if state.ready:
                return
            await anyio.sleep(0.5 * 2**attempt)
        _LOG.error("giving up scanning %s", state.name)

    async def _call_hooked(
        self, state: ServiceState, path: str, member: str, hook: Callable[[Message], None]
    ) -> list[Any]:
        msg = Message(
            destination=state.owner or state.name, path=path, interface=BUSITEM, member=member
        )
        msg.serial = self.bus.next_serial()

        def learn_owner_then(reply: Message) -> None:
            sender = reply.sender
            if state.owner is None and sender and sender != _DBUS and self._current(state):
                state.owner = sender
                self._by_owner[sender] = state
            hook(reply)

        self._reply_hooks[msg.serial] = learn_owner_then
        try:
            with anyio.fail_after(self._scan_timeout):
                reply = await self.bus.call(msg)
        except TimeoutError:
            raise BusError(f"{state.name} {path} {member}: no reply") from None
        except (OSError, EOFError, DBusError) as err:
            raise BusError(f"{state.name} {path} {member}: {err}") from err
        finally:
            self._reply_hooks.pop(msg.serial, None)
            self.bus._method_return_handlers.pop(msg.serial, None)
        if reply is None:
            raise BusError(f"{state.name}: no reply")
        if reply.message_type is _ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise DBusCallError(reply.error_name or "unknown", text)
        return reply.body

    async def _scan_getitems(self, state: ServiceState) -> None:
        def apply(msg: Message) -> None:
            if (
                msg.message_type is _RETURN
                and msg.signature == "a{sa{sv}}"
                and self._current(state)
            ):
                for path, props in msg.body[0].items():
                    v = props.get("Value")
                    if v is not None:
                        t = props.get("Text") if self._keep_text else None
                        self._store(state, path, unwrap(v), None if t is None else t.value)
                self._scan_done(state)

        await self._call_hooked(state, "/", "GetItems", apply)

    async def _scan_legacy(self, state: ServiceState) -> None:
        def apply_values(msg: Message) -> None:
            if msg.message_type is _RETURN and self._current(state):
                values = unwrap(msg.body[0]) if msg.body else None
                if isinstance(values, dict):
                    for rel, v in values.items():
                        self._store(state, "/" + rel, v, None)

        def apply_texts(msg: Message) -> None:
            if msg.message_type is _RETURN and self._current(state) and self._keep_text:
                texts = unwrap(msg.body[0]) if msg.body else None
                if isinstance(texts, dict):
                    for rel, t in texts.items():
                        if "/" + rel in state.values:  # kept paths only: no growth here
                            state.texts["/" + rel] = str(t)[:MAX_TEXT]

        def apply_one(path: str, msg: Message) -> None:
            if msg.message_type is _RETURN and self._current(state):
                self._store(state, path, unwrap(msg.body[0]), None)

        try:
            await self._call_hooked(state, "/", "GetValue", apply_values)
            await self._call_hooked(state, "/", "GetText", apply_texts)
        except DBusCallError as err:
            if err.name in _GONE:
                raise
        for path in sorted(state.paths or ()):
            if path not in state.values:
                try:
                    await self._call_hooked(state, path, "GetValue", partial(apply_one, path))
                except DBusCallError as err:
                    if err.name in _GONE:
                        raise
        if self._current(state):
            self._scan_done(state)

    def _scan_done(self, state: ServiceState) -> None:
        needs_instance = self._require_instance and not state.name.startswith(_NO_INSTANCE_OK)
        if state.device_instance is None and needs_instance:
            _LOG.info("ignoring %s: it has no /DeviceInstance", state.name)
            if self._by_name.pop(state.name, None) is state:
                self.budget.forget(state)
            if state.owner is not None:
                self._by_owner.pop(state.owner, None)
            return
        if state.paths is not None:
            for path in state.paths:
                state.values.setdefault(path, None)
        state.ready = True
        for path, value in state.values.items():
            self._mark(state.name, path, value)
        self._notify(self._service_callbacks, state.name, state)
        for wanted, event in list(self._waiters):
            if wanted in (state.name, state.device_class):
                event.set()

    # ----------------------------------------------------------------- signals

    def _on_message(self, msg: Message) -> None:
        mt = msg.message_type
        if mt is _SIGNAL:
            member = msg.member
            if member == "PropertiesChanged":
                state = self._by_owner.get(msg.sender)
                if state is not None and msg.interface == BUSITEM and msg.signature == "a{sv}":
                    props = msg.body[0]
                    v = props.get("Value")
                    path = msg.path or "/"
                    if v is not None and (state.paths is None or path in state.paths):
                        self.updates_received += 1
                        t = props.get("Text") if self._keep_text else None
                        self._store(state, path, unwrap(v), None if t is None else t.value)
            elif member == "ItemsChanged":
                state = self._by_owner.get(msg.sender)
                if state is not None and msg.signature == "a{sa{sv}}" and msg.interface == BUSITEM:
                    paths = state.paths
                    items = msg.body[0]
                    self.updates_received += len(items)
                    for path, props in items.items():
                        v = props.get("Value")
                        if v is not None and (paths is None or path in paths):
                            t = props.get("Text") if self._keep_text else None
                            self._store(state, path, unwrap(v), None if t is None else t.value)
            elif member == "NameOwnerChanged" and msg.sender == _DBUS and msg.signature == "sss":
                name, _old, new = msg.body
                if name.startswith(_PREFIX):
                    if new:
                        self._add_service(name, new)
                    else:
                        self._remove_service(name)
        elif (mt is _RETURN or mt is _ERROR) and self._reply_hooks:
            hook = self._reply_hooks.pop(msg.reply_serial, None)
            if hook is not None:
                try:
                    hook(msg)
                except Exception:  # noqa: BLE001 - logged; the scan retries
                    _LOG.exception("applying a scan reply failed")

    def _store(self, state: ServiceState, path: str, value: Value, text: str | None) -> None:
        if path == "/DeviceInstance":
            state.device_instance = value if isinstance(value, int) else None
        if state.paths is not None and path not in state.paths:
            return
        values = state.values
        old = values.get(path, _MISSING)
        if old is _MISSING:
            if state.paths is None and not self.budget.admit_path(state, path, value, text):
                return
            path = sys.intern(path)  # services share path names: one string per name
        elif type(value) in SIZED or type(old) in SIZED:
            value = self.budget.resize(state, path, old, value)
        if text is not None:
            state.texts[path] = text[:MAX_TEXT]
        if old == value and type(old) is type(value):
            return
        values[path] = value
        if state.ready:
            self._mark(state.name, path, value)

    def _mark(self, name: str, path: str, value: Value) -> None:
        self._dirty[(name, path)] = value
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            self.bus._loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        changes, self._dirty = self._dirty, {}
        if not changes:
            return
        for sub in self._subscriptions:
            sub._push(changes)
        self._notify(self._callbacks, changes)

    def _notify(self, callbacks: Callbacks[Any], *args: Any) -> None:
        """Call back; an owned callback's bug fails its feature, an unowned one the monitor."""
        try:
            callbacks.call(*args)
        except Exception as err:  # noqa: BLE001 - not swallowed: it ends run()
            _LOG.error("monitor callback failed: the monitor stops", exc_info=err)
            if self._crash is None:
                self._crash = err
            if self._life is not None:
                self._life.cancel()


@asynccontextmanager
async def open_monitor(
    address: str | None = None,
    *,
    bus: MessageBus | None = None,
    watch: Mapping[str, Iterable[str] | None] | None = None,
    require_device_instance: bool = False,
    keep_text: bool = False,
    scan_timeout: float = 5.0,
    limits: MonitorLimits | None = None,
) -> AsyncIterator[Monitor]:
    """Connect (unless ``bus`` is given), discover and scan, then yield the running monitor."""
    own = bus is None
    the_bus = await connect(address) if bus is None else bus
    try:
        writer_of(the_bus)
        async with anyio.create_task_group() as tg:
            mon = Monitor(
                the_bus,
                watch=watch,
                require_device_instance=require_device_instance,
                keep_text=keep_text,
                scan_timeout=scan_timeout,
                limits=limits,
            )
            await tg.start(mon.run)
            try:
                yield mon
            finally:
                tg.cancel_scope.cancel()
    finally:
        if own:
            the_bus.disconnect()

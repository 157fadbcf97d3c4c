"""Publish a ``com.victronenergy.*`` service exactly as velib_python and veutil do.

A :class:`Service` owns one bus connection. Every path, every tree node and ``/`` answer the
``com.victronenergy.BusItem`` methods before the name is requested. ``service[path] = value``
sends one PropertiesChanged; changes made inside ``with service.batch():`` (or through
:meth:`Service.update`) go out as one ItemsChanged. When the connection's send buffer is over
its high-water mark, changes are parked per path (latest value wins) and sent as soon as it
drains, so a burst costs bounded memory and loses no final value.

A service with a :class:`DeviceInstance` takes its class and VRM instance from localsettings
and follows changes to them the way Victron's drivers do: it releases its name and requests it
again (under ``com.victronenergy.<new class>.<suffix>`` after a role change) with the whole tree
already updated, because velib's DbusMonitor (systemcalc, VRM logging) reads ``/DeviceInstance``
only when it scans a service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any

import anyio
from dbus_fast import DBusError, Message, MessageType, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.validators import is_bus_name_valid

from ..callbacks import Owner, current_owner
from ..errors import BusError
from .bus import BusWriter, connect, writer_of
from .codec import (
    INVALID,
    SetResult,
    Value,
    WriteError,
    coerce_for_write,
    coerce_value,
    text_variant,
    unwrap,
    wrap,
)
from .device import DeviceInstance, DeviceRecord, Identity
from .registration import DeviceRegistration, RoleHook
from .tree import BUSITEM, Item, PathSpec, PathTree, limit_variant

__all__ = ["DeviceInstance", "Identity", "RoleHook", "Service"]

_LOG = logging.getLogger(__name__)

_CALL = MessageType.METHOD_CALL
_SIGNAL = MessageType.SIGNAL
_INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
_UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
_INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
_INT = PathSpec("i")
_STR = PathSpec("s")
_ANY = PathSpec("v")


class Service(DeviceRegistration):
    """One published D-Bus service on its own connection; register with ``async with``."""

    def __init__(
        self,
        name: str,
        *,
        identity: Identity | None,
        device_instance: DeviceInstance | int | None,
        address: str | None = None,
    ) -> None:
        """Declare a service; paths are added before :meth:`register` claims ``name``."""
        if not is_bus_name_valid(name) or name.startswith(":"):
            raise ValueError(f"invalid bus name {name!r}")
        record = (
            DeviceRecord(device_instance) if isinstance(device_instance, DeviceInstance) else None
        )
        self._suffix = ""
        if record is not None and record.request.roles:
            labels = name.split(".")
            if len(labels) != 4 or labels[2] != record.device_class:
                raise ValueError(
                    f"{name!r}: a service that changes its role is named "
                    f"<vendor>.<vendor>.{record.device_class}.<suffix>"
                )
            self._suffix = labels[3]
        self.name = name
        self._address = address
        self._tree = PathTree()
        self._record = record
        self._role_hooks: list[RoleHook] = []
        self._replies: dict[int, Callable[[Message], None]] = {}
        self._bus: MessageBus | None = None
        self._writer: BusWriter | None = None
        self._registered = False
        self._batch: dict[str, Item | None] | None = None
        self._parked: dict[str, tuple[Item | None, bool]] = {}
        self._drain_pending = False
        self._handlers: list[Callable[[Message], Message | bool | None]] = []
        if identity is not None:
            self.add_path("/Mgmt/ProcessName", identity.process_name, _STR)
            self.add_path("/Mgmt/ProcessVersion", identity.process_version, _STR)
            self.add_path("/Mgmt/Connection", identity.connection, _STR)
            self.add_path("/ProductId", identity.product_id, _INT)
            self.add_path("/ProductName", identity.product_name, _STR)
            self.add_path("/FirmwareVersion", identity.firmware_version, _ANY)
            self.add_path("/FirmwareBuild", identity.firmware_build, _STR)
            self.add_path("/HardwareVersion", identity.hardware_version, _ANY)
            self.add_path("/Connected", identity.connected, _INT)
        if record is not None:
            self.add_path("/DeviceInstance", record.instance, _INT)
            roles = record.request.roles
            if roles:
                spec = PathSpec("s", writable=True, validator=roles.__contains__, max_length=32)
                self.add_path("/Role", record.device_class, spec, on_write=self._role_written)
                self.add_path("/AllowedRoles", list(roles), _ANY)
        elif device_instance is not None:
            self.add_path("/DeviceInstance", device_instance, _INT)

    # ----------------------------------------------------------------- paths and values

    def add_path(
        self,
        path: str,
        value: Any = None,
        spec: PathSpec = _ANY,
        *,
        on_write: Callable[[str, Any], bool] | None = None,
        announce: bool = True,
    ) -> None:
        """Add a leaf; after registration it is announced in an ItemsChanged. ValueError if bad.

        ``on_write(path, value)`` runs for accepted bus writes and returns False to reject; a bug
        in it belongs to the feature run that added the path (:mod:`venus_ems.callbacks`): the
        write is refused and that run fails. With ``announce=False`` the caller sends its own
        signal (see :meth:`send_properties`).
        """
        owner = current_owner()
        if on_write is not None and owner is not None:
            on_write = _owned(on_write, owner)
        item = self._tree.add(path, spec, value, on_write)
        if announce:
            self._changed(item.path, item, batched=True)

    def remove_path(self, path: str, *, announce: bool = True, per_item: bool = False) -> None:
        """Remove a leaf, announced as invalid with empty text; KeyError if absent.

        The announcement is an ItemsChanged entry, or a PropertiesChanged with ``per_item``
        (as localsettings does).
        """
        self._tree.remove(path)
        if not announce:
            return
        if per_item:
            self._send_signal(
                path, "PropertiesChanged", "a{sv}", {"Value": INVALID, "Text": text_variant("")}
            )
        else:
            self._changed(path, None, batched=True)

    def replace_spec(self, path: str, spec: PathSpec) -> None:
        """Change how a leaf is published (bounds, default, text); the value is re-coerced."""
        self._tree.items[path].restyle(spec)

    def send_properties(self, path: str, extra: Mapping[str, Value] | None = None) -> None:
        """Send one PropertiesChanged with Value, Text and ``extra`` entries (e.g. Min, Max)."""
        item = self._tree.items[path]
        if self._registered:
            props = {k: wrap(v) for k, v in (extra or {}).items()}
            self._send_properties_changed(item, props)

    def __contains__(self, path: object) -> bool:
        """True if ``path`` is a leaf of this service."""
        return path in self._tree.items

    def __getitem__(self, path: str) -> Value:
        """Current value of a leaf (None = invalid); KeyError if absent."""
        return self._tree.items[path].value

    def __setitem__(self, path: str, value: Any) -> None:
        """Set a leaf; a real change is announced. KeyError if absent, TypeError if bad type."""
        item = self._tree.items[path]
        if item.set(coerce_value(item.spec.dbus_type, value)):
            self._changed(path, item, batched=False)

    def get_text(self, path: str) -> str:
        """Current text of a leaf; KeyError if absent."""
        return self._tree.items[path].text

    def paths(self) -> list[str]:
        """All leaf paths."""
        return list(self._tree.items)

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several leaves and announce the real changes in one ItemsChanged."""
        with self.batch():
            for path, value in values.items():
                self[path] = value

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect changes made in the block into one ItemsChanged (nesting joins the outer)."""
        if self._batch is not None:
            yield
            return
        self._batch = {}
        try:
            yield
        finally:
            changes, self._batch = self._batch, None
            if changes and self._registered:
                if self._parked or self._congested():
                    for path, item in changes.items():
                        self._park(path, item, batched=True)
                else:
                    self._send_items_changed(changes)

    def add_handler(self, handler: Callable[[Message], Message | bool | None]) -> None:
        """Extra method handler consulted first (e.g. the localsettings API); None = not mine.

        A reply is sent; True means handled without a reply (a simulated hung process).
        """
        self._handlers.append(handler)

    # ----------------------------------------------------------------- lifecycle

    @property
    def bus(self) -> MessageBus:
        """The service's own connection; RuntimeError before :meth:`register`."""
        if self._bus is None:
            raise RuntimeError("service is not registered")
        return self._bus

    @property
    def registered(self) -> bool:
        """True while the service owns its name."""
        return self._registered

    async def register(self, *, timeout: float = 10.0) -> None:
        """Connect, take class and instance from localsettings, claim the name (DO_NOT_QUEUE).

        BusError if the name is taken or the bus does not answer within ``timeout``.
        """
        if self._bus is not None:
            raise RuntimeError("service already registered")
        bus = await connect(self._address)
        try:
            bus.add_message_handler(self._on_message)
            self._writer = writer_of(bus)
            with anyio.fail_after(timeout):
                if self._record is not None:
                    await self._load_record(bus, self._record)
                self._set_identity(initial=True)
                # from here on a change of the record re-registers
                self._bus, self._registered = bus, True
                reply = await bus.request_name(self.name, NameFlag.DO_NOT_QUEUE)
            if reply is not RequestNameReply.PRIMARY_OWNER:
                raise BusError(f"bus name {self.name} is already taken ({reply.name})")
        except BaseException as err:
            self._bus, self._registered = None, False
            bus.disconnect()
            if isinstance(err, DBusError):
                raise BusError(f"cannot register {self.name}: {err}") from err
            if isinstance(err, TimeoutError):
                raise BusError(f"cannot register {self.name}: no answer in {timeout} s") from None
            raise
        _LOG.debug("registered %s with %d paths", self.name, len(self._tree.items))

    async def close(self, *, timeout: float = 2.0) -> None:
        """Send what is queued, then leave the bus (no invalidation, as velib)."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        with anyio.move_on_after(timeout, shield=True):
            if self._parked:
                self._flush_parked()
            if self._writer is not None and bus.connected:
                await self._writer.drained(empty=True)
        self._registered = False
        bus.disconnect()
        with anyio.move_on_after(timeout, shield=True), suppress(Exception):
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    async def drained(self) -> None:
        """Backpressure for producers: wait until the send buffer is below its low-water mark."""
        if self._writer is not None:
            await self._writer.drained()

    async def __aenter__(self) -> Service:
        """Register on entry."""
        await self.register()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close on exit."""
        await self.close()

    # ----------------------------------------------------------------- change signals

    def _congested(self) -> bool:
        w = self._writer
        return w is not None and w.congested

    def _changed(self, path: str, item: Item | None, *, batched: bool) -> None:
        if self._batch is not None:
            self._batch[path] = item
        elif not self._registered:
            return
        elif self._parked or self._congested():
            self._park(path, item, batched=batched)
        elif item is None or batched:
            self._send_items_changed({path: item})
        else:
            self._send_properties_changed(item)

    def _park(self, path: str, item: Item | None, *, batched: bool) -> None:
        self._parked.pop(path, None)  # re-insert: keeps the order of the latest changes
        self._parked[path] = (item, batched)
        if not self._drain_pending and self._writer is not None:
            self._drain_pending = True
            self._writer.on_drained(self._flush_parked)

    def _flush_parked(self) -> None:
        self._drain_pending = False
        if not self._registered or self._bus is None or not self._bus.connected:
            self._parked.clear()
            return
        batch: dict[str, Item | None] = {}
        while self._parked:
            if self._congested():
                break
            path, (item, batched) = next(iter(self._parked.items()))
            del self._parked[path]
            if batched or item is None:
                batch[path] = item
                if len(batch) >= 256:
                    self._send_items_changed(batch)
                    batch = {}
            else:
                self._send_properties_changed(item)
        if batch:
            self._send_items_changed(batch)
        if self._parked and self._writer is not None:
            self._drain_pending = True
            self._writer.on_drained(self._flush_parked)

    def _send_signal(self, path: str, member: str, signature: str, body: Any) -> None:
        bus, writer = self._bus, self._writer
        if bus is None or writer is None or not self._registered:
            return
        writer.write(
            Message(
                message_type=_SIGNAL,
                path=path,
                interface=BUSITEM,
                member=member,
                signature=signature,
                body=[body],
                serial=bus.next_serial(),
                validate=False,
            )
        )

    def _send_properties_changed(self, item: Item, extra: dict[str, Variant] | None = None) -> None:
        body: dict[str, Variant] = {"Value": item.variant, "Text": text_variant(item.text)}
        if extra:
            body.update(extra)
        self._send_signal(item.path, "PropertiesChanged", "a{sv}", body)

    def _send_items_changed(self, changes: Mapping[str, Item | None]) -> None:
        body = {
            path: (
                {"Value": item.variant, "Text": text_variant(item.text)}
                if item is not None
                else {"Value": INVALID, "Text": text_variant("")}
            )
            for path, item in changes.items()
        }
        self._send_signal("/", "ItemsChanged", "a{sa{sv}}", body)

    # ----------------------------------------------------------------- incoming calls

    def _on_message(self, msg: Message) -> Message | bool | None:
        mt = msg.message_type
        if mt is not _CALL:
            if mt is _SIGNAL:
                self._on_signal(msg)
            elif self._replies:
                on_reply = self._replies.pop(msg.reply_serial, None)
                if on_reply is not None:
                    on_reply(msg)
            return None
        for handler in self._handlers:
            reply = handler(msg)
            if reply is not None:
                return reply
        iface = msg.interface
        member = msg.member or ""
        path = msg.path or "/"
        if iface == _INTROSPECTABLE and member == "Introspect":
            if path in self._tree.items or self._tree.is_node(path):
                return Message.new_method_return(msg, "s", [self._tree.introspect(path)])
            return Message.new_error(msg, _UNKNOWN_OBJECT, f"no object at {path}")
        if iface is not None and iface != BUSITEM:
            return None  # Peer, Properties...: dbus-fast's defaults answer or refuse
        item = self._tree.items.get(path)
        if item is not None:
            return self._leaf_call(msg, item, member)
        if self._tree.is_node(path):
            return self._node_call(msg, path, member)
        return Message.new_error(msg, _UNKNOWN_OBJECT, f"no object at {path}")

    def _leaf_call(self, msg: Message, item: Item, member: str) -> Message:
        if member == "GetValue":
            return Message.new_method_return(msg, "v", [item.variant])
        if member == "GetText":
            return Message.new_method_return(msg, "s", [item.text])
        if member == "SetValue":
            if len(msg.body) != 1:  # lenient: a bare int32/double/string is accepted too
                return Message.new_error(msg, _INVALID_ARGS, "SetValue takes one value")
            return Message.new_method_return(msg, "i", [int(self._write(item, msg.body[0]))])
        spec = item.spec
        if member == "GetMin":
            return Message.new_method_return(msg, "v", [limit_variant(spec.min)])
        if member == "GetMax":
            return Message.new_method_return(msg, "v", [limit_variant(spec.max)])
        if member == "GetDefault":
            return Message.new_method_return(msg, "v", [wrap(spec.default)])
        if member == "GetDescription":
            return Message.new_method_return(msg, "s", [spec.description or "No description given"])
        return Message.new_error(msg, _UNKNOWN_METHOD, f"{member} is not a BusItem method")

    def _node_call(self, msg: Message, path: str, member: str) -> Message:
        tree = self._tree
        if member == "GetValue":
            values = {rel: item.variant for rel, item in tree.leaves_under(path)}
            return Message.new_method_return(msg, "v", [_dict_variant("a{sv}", values)])
        if member == "GetText":
            texts = {rel: item.text for rel, item in tree.leaves_under(path)}
            return Message.new_method_return(msg, "v", [_dict_variant("a{ss}", texts)])
        if member == "GetItems" and path == "/":
            return Message.new_method_return(msg, "a{sa{sv}}", [self._items_body()])
        return Message.new_error(msg, _UNKNOWN_METHOD, f"{member} is not available on {path}")

    def _items_body(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for path, item in self._tree.items.items():
            entry = {"Value": item.variant, "Text": text_variant(item.text)}
            spec = item.spec
            if spec.min is not None:
                entry["Min"] = limit_variant(spec.min)
            if spec.max is not None:
                entry["Max"] = limit_variant(spec.max)
            if spec.default is not None:
                entry["Default"] = wrap(spec.default)
            out[path] = entry
        return out

    def _write(self, item: Item, raw: Any) -> SetResult:
        spec = item.spec
        if not spec.writable:
            return SetResult.NOT_WRITABLE
        try:
            value = coerce_for_write(spec.dbus_type, unwrap(raw), max_length=spec.max_length)
        except WriteError as err:
            _LOG.info("%s%s: write refused: %s", self.name, item.path, err)
            return err.code
        if isinstance(value, (int, float)) and not _within(value, spec.min, spec.max):
            _LOG.info("%s%s: %r out of range", self.name, item.path, value)
            return SetResult.OUT_OF_RANGE
        if value == item.value and type(value) is type(item.value):
            return SetResult.OK
        try:
            if spec.validator is not None and not spec.validator(value):
                return SetResult.REJECTED
            if item.on_write is not None and not item.on_write(item.path, value):
                return SetResult.REJECTED
        except Exception:  # noqa: BLE001 - refused here; an owned handler's run fails too
            _LOG.exception("%s%s: write handler failed for %r", self.name, item.path, value)
            return SetResult.REJECTED
        if item.path in self._tree.items and item.set(value):
            self._changed(item.path, item, batched=False)
            setting = None if self._record is None else self._record.setting_of_path(item.path)
            if setting is not None:
                self._store_setting(setting, value)
        return SetResult.OK


def _owned(fn: Callable[[str, Any], bool], owner: Owner) -> Callable[[str, Any], bool]:
    """``fn`` whose exceptions also fail the feature run ``owner`` (then propagate)."""

    def call(path: str, value: Any) -> bool:
        try:
            return fn(path, value)
        except Exception as err:
            owner.fail(err)
            raise

    return call


def _within(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _dict_variant(signature: str, values: dict[str, Any]) -> Variant:
    return Variant(signature, values, False)

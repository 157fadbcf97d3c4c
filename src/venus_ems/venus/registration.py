"""How a published service follows its record in localsettings (venus-dbus.md §3.4, §6.4).

:class:`DeviceRegistration` is the part of :class:`~venus_ems.venus.service.Service` that takes
the class and VRM instance from ``ClassAndVrmInstance`` before the name is requested and acts on
later changes as Victron's drivers do: the name is released and requested again (under
``com.victronenergy.<new class>.<suffix>`` after a role change) with the tree already updated,
because velib's DbusMonitor (systemcalc, VRM logging) reads ``/DeviceInstance`` only when it
scans a service. A write to ``/Role`` stores ``"<role>:<instance>"`` there; the settings
service's answer re-registers. Other per-device choices (``Position``) live beside it.

Everything runs in the bus's message handler: calls go out through the connection's writer in
order and their replies come back in message order, so no task is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import anyio
from dbus_fast import Message, MessageType, NameFlag, RequestNameReply
from dbus_fast.aio import MessageBus

from .bus import BusWriter, DBusCallError, add_match, call
from .codec import Value, coerce_value
from .device import CLASS_AND_INSTANCE, DeviceRecord
from .settings import SETTINGS_SERVICE
from .tree import PathTree

if TYPE_CHECKING:
    from .service import Service

__all__ = ["DeviceRegistration", "RoleHook"]

_LOG = logging.getLogger(__name__)

_DBUS = "org.freedesktop.DBus"
_MAX_PENDING_REPLIES = 64

RoleHook = Callable[["Service", str], None]
"""Called with the service and its class before the name is requested (at start and after a
role change): adds or removes the paths that depend on the role."""


class DeviceRegistration:
    """Class, instance, roles and device settings of a :class:`Service` (a mixin)."""

    name: str
    _tree: PathTree
    _record: DeviceRecord | None
    _suffix: str
    _role_hooks: list[RoleHook]
    _replies: dict[int, Callable[[Message], None]]
    _bus: MessageBus | None
    _writer: BusWriter | None
    _registered: bool

    if TYPE_CHECKING:

        def __getitem__(self, path: str) -> Value: ...

        def __setitem__(self, path: str, value: Any) -> None: ...

    @property
    def device_class(self) -> str:
        """The device's class (``grid``, ``acload``...), as localsettings keeps it."""
        if self._record is not None:
            return self._record.device_class
        labels = self.name.split(".")
        return labels[2] if len(labels) > 2 else ""

    @property
    def roles(self) -> tuple[str, ...]:
        """Classes ``/Role`` accepts; empty when the class is fixed."""
        return () if self._record is None else self._record.request.roles

    def on_role(self, hook: RoleHook) -> None:
        """Run ``hook(service, class)`` before the name is requested: at start, on role change."""
        self._role_hooks.append(hook)

    def add_device_setting(
        self,
        name: str,
        default: int | float | str,
        *,
        min: int | float | None = None,  # noqa: A002 - as localsettings calls it
        max: int | float | None = None,  # noqa: A002
        path: str | None = None,
    ) -> None:
        """Keep a per-device choice in ``/Settings/Devices/<unique_id>/<name>``.

        Created with the DeviceInstance before the name is requested. While ``path`` is
        published it shows the setting, and a bus write to it is stored there. ValueError for a
        service without a :class:`DeviceInstance`, RuntimeError once registered.
        """
        if self._record is None:
            raise ValueError(f"{self.name} has no DeviceInstance to keep settings with")
        if self._bus is not None:
            raise RuntimeError("device settings must be declared before register()")
        self._record.add(name, default, min=min, max=max, path=path)

    def device_setting(self, name: str) -> int | float | str:
        """Current value of a device setting (its default until localsettings answered)."""
        if self._record is None:
            raise KeyError(name)
        return self._record.value(name)

    # ----------------------------------------------------------------- re-registration

    async def _load_record(self, bus: MessageBus, record: DeviceRecord) -> None:
        """Create or read the device's settings; without a settings service keep the fallback."""
        await add_match(
            bus,
            f"type='signal',sender='{_DBUS}',interface='{_DBUS}',member='NameOwnerChanged',"
            f"arg0='{SETTINGS_SERVICE}'",
        )
        try:
            (owner,) = await call(
                bus, _DBUS, "/org/freedesktop/DBus", _DBUS, "GetNameOwner", "s", [SETTINGS_SERVICE]
            )
        except DBusCallError:
            _LOG.info("%s: no settings service, DeviceInstance %d", self.name, record.instance)
            return
        record.owner = owner
        await add_match(bus, record.match_rule())
        done = anyio.Event()

        def on_reply(reply: Message) -> None:  # in message order: later signals are newer
            record.apply_reply(reply, self.name)
            done.set()

        self._send_call(bus, record.add_message(), on_reply)
        await done.wait()

    def _set_identity(self, *, initial: bool = False) -> None:
        """Make the tree show the record's class, instance and settings (no signals)."""
        record, service = self._record, cast("Service", self)
        if record is None:
            if initial:
                for hook in self._role_hooks:
                    hook(service, self.device_class)
            return
        items = self._tree.items
        new_class = bool(self._suffix) and record.device_class != self.name.split(".")[2]
        items["/DeviceInstance"].set(record.instance)
        if new_class:
            items["/Role"].set(record.device_class)
        if initial or new_class:
            for hook in self._role_hooks:
                hook(service, record.device_class)
        for extra in record.extras.values():
            item = items.get(extra.path) if extra.path else None
            if item is not None:
                item.set(coerce_value(item.spec.dbus_type, extra.value))
        if new_class:  # last: a failing hook leaves the service under its old name
            vendor = self.name.rsplit(".", 2)[0]  # com.victronenergy
            self.name = f"{vendor}.{record.device_class}.{self._suffix}"

    def _setting_changed(self, record: DeviceRecord, name: str, value: Value) -> None:
        """Act on a change of one of the device's settings, whoever made it."""
        if name != CLASS_AND_INSTANCE:
            extra = record.extras[name]
            accepted = extra.accept(value)
            if accepted is None:
                _LOG.warning("%s: ignoring %s = %r from settings", self.name, name, value)
                return
            extra.value = accepted
            if extra.path is not None and extra.path in self._tree.items:
                self[extra.path] = accepted
            return
        parsed = record.parse(value)
        if parsed is None or not record.accepts_class(parsed[0]):
            _LOG.warning("%s: ignoring %s = %r from settings", self.name, name, value)
            return
        if parsed == (record.device_class, record.instance):
            return
        record.device_class, record.instance = parsed
        if self._bus is not None:  # registered, or off the bus after a failed attempt: retry
            self._reregister()

    def _reregister(self) -> None:
        """Release the name, update the tree, request the (new) name: consumers scan again."""
        bus, old = self._bus, self.name
        if bus is None:
            return
        self._registered = False  # the hooks' path changes are not announced
        try:
            self._set_identity()
        finally:
            self._registered = True
        instance = self["/DeviceInstance"]
        _LOG.info("%s: re-registering as %s, DeviceInstance %s", old, self.name, instance)
        self._send_call(bus, _bus_call("ReleaseName", "s", [old]), _ignore)
        request = _bus_call("RequestName", "su", [self.name, NameFlag.DO_NOT_QUEUE.value])
        self._send_call(bus, request, partial(self._name_requested, self.name))

    def _name_requested(self, name: str, reply: Message) -> None:
        if name != self.name:
            return  # an older request; a newer one decides
        primary = RequestNameReply.PRIMARY_OWNER.value
        ok = reply.message_type is MessageType.METHOD_RETURN and reply.body == [primary]
        if not ok:
            self._registered = False
            _LOG.error("%s: cannot take the name back (%s); off the bus", name, reply.body)

    def _role_written(self, _path: str, role: str) -> bool:
        """A bus write to ``/Role``: store ``"<role>:<instance>"``; the change re-registers."""
        record = self._record
        if record is None or role == record.device_class:
            return True
        if record.stored and self._bus is not None:
            value = f"{role}:{record.instance}"
            self._send_call(
                self._bus, record.set_message(CLASS_AND_INSTANCE, value), self._role_stored
            )
        else:  # nothing to persist it in: switch at once
            record.device_class = role
            self._reregister()
        return True

    def _role_stored(self, reply: Message) -> None:
        if reply.message_type is not MessageType.METHOD_RETURN or reply.body != [0]:
            _LOG.warning("%s: settings refused the new role (%s)", self.name, reply.body)
            if self._record is not None and "/Role" in self._tree.items:
                self["/Role"] = self._record.device_class

    def _store_setting(self, name: str, value: Any) -> None:
        """A bus write to a path that shows a device setting: keep it in localsettings."""
        record = self._record
        if record is None:
            return
        record.extras[name].value = value
        if record.stored and self._bus is not None:
            self._send_call(self._bus, record.set_message(name, value), partial(_log_refusal, name))

    def _send_call(
        self, bus: MessageBus, msg: Message, on_reply: Callable[[Message], None]
    ) -> None:
        """Send a method call now; ``on_reply`` gets its answer in message order."""
        writer = self._writer
        if writer is None:
            return
        msg.serial = bus.next_serial()
        if len(self._replies) >= _MAX_PENDING_REPLIES:  # a peer that never answers costs nothing
            del self._replies[next(iter(self._replies))]
        self._replies[msg.serial] = on_reply
        writer.write(msg)

    def _on_signal(self, msg: Message) -> None:
        record = self._record
        if record is None:
            return
        if msg.member == "NameOwnerChanged" and msg.sender == _DBUS:
            record.settings_owner_changed(msg)
        elif msg.member == "PropertiesChanged":
            change = record.changed(msg)
            if change is not None:
                self._setting_changed(record, *change)


def _bus_call(member: str, signature: str, body: list[Any]) -> Message:
    return Message(
        destination=_DBUS,
        path="/org/freedesktop/DBus",
        interface=_DBUS,
        member=member,
        signature=signature,
        body=body,
    )


def _ignore(_reply: Message) -> None:
    return


def _log_refusal(name: str, reply: Message) -> None:
    if reply.message_type is not MessageType.METHOD_RETURN or reply.body != [0]:
        _LOG.warning("localsettings refused %s (%s)", name, reply.body)

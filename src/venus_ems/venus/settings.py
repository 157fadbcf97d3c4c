"""localsettings (``com.victronenergy.settings``) client: add, read, write and watch settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, Variant
from dbus_fast.aio import MessageBus

from ..callbacks import Callbacks
from ..errors import BusError, ConfigError
from .bus import call
from .codec import Value, unwrap, wrap
from .monitor import Monitor
from .names import SETTINGS
from .tree import check_path

__all__ = [
    "SETTINGS_INTERFACE",
    "SETTINGS_SERVICE",
    "AddResult",
    "Setting",
    "SettingsClient",
    "add_settings",
    "add_settings_message",
    "parse_add_reply",
    "parse_class_instance",
]

_LOG = logging.getLogger(__name__)

SETTINGS_SERVICE = SETTINGS
"""localsettings (the name is spelt in :mod:`.names`)."""
SETTINGS_INTERFACE = "com.victronenergy.Settings"

ADD_ERRORS = {
    -2: "path contains '/_'",
    -3: "unknown type",
    -4: "invalid path",
    -5: "type differs from the existing setting",
    -6: "invalid default",
    -7: "default out of range",
    -8: "path is a group",
    -9: "not under /Settings",
}


@dataclass(frozen=True, slots=True)
class Setting:
    """A setting to create: absolute path under ``/Settings``; the default's type picks i/f/s."""

    path: str
    default: int | float | str
    min: int | float | None = None
    max: int | float | None = None
    silent: bool = False

    def __post_init__(self) -> None:
        """Reject paths outside /Settings and bools (localsettings refuses them)."""
        check_path(self.path)
        if not self.path.startswith("/Settings/"):
            raise ValueError(f"setting path {self.path} is not under /Settings/")
        if isinstance(self.default, bool) or not isinstance(self.default, (int, float, str)):
            raise TypeError(f"setting default must be int, float or str, not {self.default!r}")


@dataclass(frozen=True, slots=True)
class AddResult:
    """Outcome of one AddSettings entry: error code (0 = ok) and the current value."""

    path: str
    error: int
    value: Value


def _entry(s: Setting, base: str) -> dict[str, Variant]:
    rel = s.path if base == "/" else s.path[len(base) + 1 :]
    default: Any = s.default
    d: dict[str, Variant] = {"path": wrap(rel), "default": wrap(default)}
    if isinstance(default, float):
        d["default"] = Variant("d", default)
    if s.min is not None:
        d["min"] = Variant("d", float(s.min)) if isinstance(default, float) else wrap(s.min)
    if s.max is not None:
        d["max"] = Variant("d", float(s.max)) if isinstance(default, float) else wrap(s.max)
    if s.silent:
        d["silent"] = wrap(1)
    return d


def add_settings_message(
    settings: Sequence[Setting],
    *,
    object_path: str = "/",
    destination: str = SETTINGS_SERVICE,
) -> Message:
    """The AddSettings call for ``settings`` on ``object_path``; ValueError if one is outside it."""
    base = object_path.rstrip("/") or "/"
    for s in settings:
        if base != "/" and not s.path.startswith(base + "/"):
            raise ValueError(f"{s.path} is not below {base}")
    return Message(
        destination=destination,
        path=object_path,
        interface=SETTINGS_INTERFACE,
        member="AddSettings",
        signature="aa{sv}",
        body=[[_entry(s, base) for s in settings]],
    )


def parse_add_reply(settings: Sequence[Setting], body: Any) -> list[AddResult]:
    """One :class:`AddResult` per setting from an AddSettings reply body; BusError if malformed."""
    entries = body[0] if isinstance(body, list) and body else None
    if not isinstance(entries, list) or len(entries) != len(settings):
        count = len(entries) if isinstance(entries, list) else "no"
        raise BusError(f"AddSettings answered {count} entries for {len(settings)}")
    out: list[AddResult] = []
    for s, r in zip(settings, entries, strict=True):
        if not isinstance(r, dict):
            raise BusError(f"AddSettings answered {r!r} for {s.path}")
        err = unwrap(r.get("error"))
        out.append(
            AddResult(
                s.path,
                err if isinstance(err, int) and not isinstance(err, bool) else 0,
                unwrap(r["value"]) if "value" in r else None,
            )
        )
    return out


async def add_settings(
    bus: MessageBus,
    settings: Sequence[Setting],
    *,
    object_path: str = "/",
    destination: str = SETTINGS_SERVICE,
    timeout: float = 5.0,
) -> list[AddResult]:
    """One batched AddSettings call on ``object_path``; raises BusError if the call fails."""
    if not settings:
        return []
    msg = add_settings_message(settings, object_path=object_path, destination=destination)
    reply = await call(
        bus,
        destination,
        object_path,
        SETTINGS_INTERFACE,
        "AddSettings",
        "aa{sv}",
        msg.body,
        timeout=timeout,
    )
    return parse_add_reply(settings, reply)


class SettingsClient:
    """Our tunables in localsettings: created in one batch, read from a cache, watched."""

    def __init__(self, monitor: Monitor) -> None:
        """Use ``monitor``'s connection; it must watch ``com.victronenergy.settings``."""
        self._monitor = monitor
        self._paths: set[str] = set()
        self._callbacks: Callbacks[[str, Value]] = Callbacks()
        monitor.on_change(self._changed)

    async def add(self, settings: Iterable[Setting], *, timeout: float = 10.0) -> dict[str, Value]:
        """Create settings (existing ones keep their value); path -> value; ConfigError on codes."""
        todo = list(settings)
        await self._monitor.wait_for_service(SETTINGS_SERVICE, timeout=timeout)
        results = await add_settings(self._monitor.bus, todo, timeout=timeout)
        errors = [f"{r.path}: {ADD_ERRORS.get(r.error, r.error)}" for r in results if r.error]
        if errors:
            raise ConfigError("localsettings refused: " + "; ".join(errors))
        out = {}
        for r in results:
            self._paths.add(r.path)
            self._monitor.watch_path(SETTINGS_SERVICE, r.path, r.value)
            out[r.path] = r.value
        return out

    def get(self, path: str) -> Value:
        """Current value of a setting we added (None if unknown)."""
        return self._monitor.get(SETTINGS_SERVICE, path)

    async def set(self, path: str, value: Value) -> int:
        """Write a setting; returns localsettings' code (0 ok, -1 refused)."""
        return await self._monitor.set_value(SETTINGS_SERVICE, path, value)

    def on_change(self, callback: Callable[[str, Value], None]) -> None:
        """Call ``callback(path, value)`` when one of our settings changes (any writer).

        Registered by a feature run, it belongs to that run: dropped when the run ends, and
        its exception fails that feature (venus_ems.callbacks), not the others.
        """
        self._callbacks.add(callback)

    def _changed(self, changes: Mapping[tuple[str, str], Value]) -> None:
        for (service, path), value in changes.items():
            if service == SETTINGS_SERVICE and path in self._paths:
                self._callbacks.call(path, value)


def parse_class_instance(text: Any) -> tuple[str, int] | None:
    """``"grid:40"`` -> ``("grid", 40)``; None when malformed."""
    if not isinstance(text, str) or ":" not in text:
        return None
    cls, _, inst = text.partition(":")
    try:
        return cls, int(inst)
    except ValueError:
        return None

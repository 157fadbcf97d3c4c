"""``com.victronenergy.settings``: the localsettings API, as the simulated GX runs it.

Implements what Victron's localsettings offers (venus-dbus.md §5): AddSetting,
AddSilentSetting, AddSettings, RemoveSettings on ``com.victronenergy.Settings``; per setting
GetValue/GetText/SetValue (0 or -1), GetMin/GetMax (0 = no limit), GetDefault, SetDefault,
GetSilent, GetAttributes; PropertiesChanged only (with Default/Min/Max when a setting is added or
its attributes change); ``ClassAndVrmInstance`` allocation with bumping to the next free instance;
persistence to a JSON file (written atomically after every change).
Run on its own with ``python -m venus_ems.sim.localsettings``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType, Variant

from ...venus.codec import Value, unwrap, wrap
from ...venus.service import Service
from ...venus.settings import SETTINGS_INTERFACE, SETTINGS_SERVICE, parse_class_instance
from ...venus.tree import BUSITEM, PathSpec, check_path

__all__ = ["LocalSettings", "SettingRecord"]

_LOG = logging.getLogger(__name__)

OK, E_SLASH_UNDERSCORE, E_TYPE, E_PATH, E_TYPE_DIFFERS = 0, -2, -3, -4, -5
E_DEFAULT, E_RANGE, E_GROUP, E_NOT_SETTINGS = -6, -7, -8, -9
_TYPE_LETTER = {"i": "i", "f": "d", "s": "s"}
_CLASS_AND_INSTANCE = "/ClassAndVrmInstance"


@dataclass
class SettingRecord:
    """One stored setting: type letter (i, f, s), value, default, bounds (0/0 = none), silent."""

    type: str
    value: Any
    default: Any
    min: Any = 0
    max: Any = 0
    silent: bool = False

    def limited(self) -> bool:
        """True when min/max apply (numbers with a non-zero bound)."""
        return self.type != "s" and not (self.min == 0 and self.max == 0)


class LocalSettings:
    """The settings service; wrap it in ``async with`` or call ``register``/``close``."""

    def __init__(self, *, address: str | None = None, file: Path | None = None) -> None:
        """Load ``file`` if it exists; nothing is published until :meth:`register`."""
        self.service = Service(
            SETTINGS_SERVICE, identity=None, device_instance=None, address=address
        )
        self.service.add_handler(self._handle)
        self._file = file
        self._records: dict[str, SettingRecord] = {}
        self._callbacks: list[Callable[[str, Value], None]] = []
        if file is not None and file.exists():
            for path, rec in json.loads(file.read_text()).items():
                self._records[path] = SettingRecord(**rec)
                self.service.add_path(path, rec["value"], self._spec(self._records[path]))

    # ----------------------------------------------------------------- local API

    def get(self, path: str) -> Value:
        """Current value of a setting, None if absent."""
        rec = self._records.get(path)
        return None if rec is None else rec.value

    def set(self, path: str, value: Any) -> int:
        """Set a setting as a SetValue from the bus would; 0 or -1."""
        return self._set_value(path, value)

    def add(self, path: str, default: Any, type_: str, min_: Any = 0, max_: Any = 0) -> int:
        """Add a setting locally (as AddSetting); returns the localsettings code."""
        return self._add(path, default, type_, min_, max_, silent=False)

    def on_change(self, callback: Callable[[str, Value], None]) -> None:
        """Call ``callback(path, value)`` after any setting changed (bus write or local)."""
        self._callbacks.append(callback)

    async def register(self) -> None:
        """Claim ``com.victronenergy.settings``."""
        await self.service.register()

    async def close(self) -> None:
        """Leave the bus."""
        await self.service.close()

    async def __aenter__(self) -> LocalSettings:
        """Register on entry."""
        await self.register()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on exit."""
        await self.close()

    # ----------------------------------------------------------------- bus API

    def _handle(self, msg: Message) -> Message | None:
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        iface, member, obj = msg.interface, msg.member, msg.path or "/"
        if iface == SETTINGS_INTERFACE:
            if member in ("AddSetting", "AddSilentSetting") and msg.signature == "ssvsvv":
                group, name, default, type_, min_, max_ = msg.body
                path = _join(obj, group, name)
                code = self._add(
                    path,
                    unwrap(default),
                    type_,
                    unwrap(min_),
                    unwrap(max_),
                    silent=member == "AddSilentSetting",
                    on_root=obj == "/",
                )
                return Message.new_method_return(msg, "i", [code])
            if member == "AddSettings" and msg.signature == "aa{sv}":
                return Message.new_method_return(msg, "aa{sv}", [self._add_many(obj, msg.body[0])])
            if member == "RemoveSettings" and msg.signature == "as":
                codes = [self._remove(_join(obj, p)) for p in msg.body[0]]
                return Message.new_method_return(msg, "ai", [codes])
            rec = self._records.get(obj)
            if rec is not None and member == "GetSilent":
                return Message.new_method_return(msg, "b", [rec.silent])
            if rec is not None and member == "GetAttributes":
                body = [wrap(rec.default), wrap(rec.min), wrap(rec.max), int(rec.silent)]
                return Message.new_method_return(msg, "vvvi", body)
            return None
        if iface not in (BUSITEM, None):
            return None
        rec = self._records.get(obj)
        if rec is None:
            return None  # groups and '/': the generic tree answers
        if member == "SetValue" and msg.signature == "v":
            return Message.new_method_return(msg, "i", [self._set_value(obj, unwrap(msg.body[0]))])
        if member == "GetMin":
            return Message.new_method_return(msg, "v", [_typed(rec.type, rec.min)])
        if member == "GetMax":
            return Message.new_method_return(msg, "v", [_typed(rec.type, rec.max)])
        if member == "GetDefault":
            return Message.new_method_return(msg, "v", [_typed(rec.type, rec.default)])
        if member == "SetDefault":
            if obj.endswith(_CLASS_AND_INSTANCE):
                return Message.new_method_return(msg, "i", [-1])
            return Message.new_method_return(msg, "i", [self._set_value(obj, rec.default)])
        return None

    def _add_many(self, obj: str, entries: list[dict[str, Variant]]) -> list[dict[str, Variant]]:
        out = []
        for entry in entries:
            rel = unwrap(entry.get("path"))
            res: dict[str, Variant] = {"path": entry.get("path", wrap(""))}
            default = entry.get("default")
            if not isinstance(rel, str) or default is None:
                res["error"] = wrap(E_PATH if not isinstance(rel, str) else E_DEFAULT)
                out.append(res)
                continue
            type_ = {"i": "i", "x": "i", "d": "f", "s": "s"}.get(default.signature, "?")
            path = _join(obj, rel)
            code = self._add(
                path,
                unwrap(default),
                type_,
                unwrap(entry["min"]) if "min" in entry else 0,
                unwrap(entry["max"]) if "max" in entry else 0,
                silent=bool(unwrap(entry["silent"])) if "silent" in entry else False,
                on_root=obj == "/",
            )
            res["error"] = wrap(code)
            if path in self._records:
                res["value"] = wrap(self._records[path].value)
            out.append(res)
        return out

    # ----------------------------------------------------------------- semantics

    def _add(
        self,
        path: str,
        default: Any,
        type_: str,
        min_: Any,
        max_: Any,
        *,
        silent: bool,
        on_root: bool = False,
    ) -> int:
        if "/_" in path:
            return E_SLASH_UNDERSCORE
        if type_ not in _TYPE_LETTER:
            return E_TYPE
        try:
            check_path(path)
        except ValueError:
            return E_PATH
        if on_root and not path.startswith("/Settings/"):
            return E_NOT_SETTINGS
        if path not in self._records and _is_group(path, self._records):
            return E_GROUP
        try:
            default = _convert(type_, default)
            min_, max_ = (_convert(type_, min_), _convert(type_, max_)) if type_ != "s" else (0, 0)
        except (TypeError, ValueError):
            return E_DEFAULT
        rec = SettingRecord(type_, default, default, min_, max_, silent)
        if rec.limited() and not min_ <= default <= max_:
            return E_RANGE
        old = self._records.get(path)
        if old is not None:
            if old.type != type_:
                return E_TYPE_DIFFERS
            if (old.default, old.min, old.max, old.silent) != (default, min_, max_, silent):
                old.default, old.min, old.max, old.silent = default, min_, max_, silent
                self.service.replace_spec(path, self._spec(old))
                self.service.send_properties(path, self._attributes(old))
                self._save()
            return OK
        if path.endswith(_CLASS_AND_INSTANCE):
            rec.value = self._free_instance(path, default)
        self._records[path] = rec
        self.service.add_path(path, rec.value, self._spec(rec), announce=False)
        self.service.send_properties(path, self._attributes(rec))
        self._save()
        self._notify(path, rec.value)
        return OK

    def _remove(self, path: str) -> int:
        if self._records.pop(path, None) is None:
            return -1
        self.service.remove_path(path, per_item=True)
        self._save()
        self._notify(path, None)
        return OK

    def _set_value(self, path: str, value: Any) -> int:
        rec = self._records.get(path)
        if rec is None:
            return -1
        try:
            new = _convert(rec.type, value)
        except (TypeError, ValueError):
            return -1
        if rec.limited() and not rec.min <= new <= rec.max:
            return -1
        if path.endswith(_CLASS_AND_INSTANCE):
            if parse_class_instance(new) is None:
                return -1
            new = self._free_instance(path, new)
        if new == rec.value:
            return OK
        rec.value = new
        self.service[path] = new
        self._save()
        self._notify(path, new)
        return OK

    def _free_instance(self, path: str, wanted: str) -> str:
        parsed = parse_class_instance(wanted)
        if parsed is None:
            return wanted
        cls, inst = parsed
        taken = {
            parse_class_instance(r.value)
            for p, r in self._records.items()
            if p.endswith(_CLASS_AND_INSTANCE) and p != path
        }
        while (cls, inst) in taken:
            inst += 1
        return f"{cls}:{inst}"

    def _spec(self, rec: SettingRecord) -> PathSpec:
        lo, hi = (rec.min, rec.max) if rec.limited() else (None, None)
        return PathSpec(_TYPE_LETTER[rec.type], min=lo, max=hi, default=rec.default)

    def _attributes(self, rec: SettingRecord) -> dict[str, Value]:
        attrs: dict[str, Value] = {"Default": rec.default}
        if rec.type != "s":
            attrs["Min"] = rec.min
            attrs["Max"] = rec.max
        return attrs

    def _notify(self, path: str, value: Value) -> None:
        for cb in self._callbacks:
            try:
                cb(path, value)
            except Exception:  # noqa: BLE001, PERF203 - a listener's bug must not break the settings service
                _LOG.exception("settings listener failed for %s", path)

    def _save(self) -> None:
        if self._file is None:
            return
        data = json.dumps({p: asdict(r) for p, r in sorted(self._records.items())}, indent=1)
        self._file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".settings-")
        with os.fdopen(fd, "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(self._file)


def _join(obj: str, *parts: str) -> str:
    base = "" if obj == "/" else obj
    rest = "/".join(p.strip("/") for p in parts if p.strip("/"))
    return f"{base}/{rest}" if rest else base or "/"


def _is_group(path: str, records: dict[str, SettingRecord]) -> bool:
    prefix = path + "/"
    return any(p.startswith(prefix) for p in records)


def _convert(type_: str, value: Any) -> Any:
    if type_ == "s":
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return value
    if isinstance(value, str) or value is None or isinstance(value, (list, dict)):
        raise TypeError("expected a number")
    if type_ == "i":
        return int(value)
    f = float(value)
    if math.isnan(f):
        raise ValueError("NaN")
    return f


def _typed(type_: str, value: Any) -> Variant:
    if type_ == "f":
        return Variant("d", float(value))
    return wrap(value)

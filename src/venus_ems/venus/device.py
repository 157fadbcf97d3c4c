"""A published device's identity and its record in localsettings (``/Settings/Devices/<id>/``).

Victron drivers keep a device's class and VRM instance in ``ClassAndVrmInstance``
(``"grid:40"``, venus-dbus.md §3.4) and per-device choices such as ``Position`` beside it.
:class:`DeviceRecord` asks for them in one AddSettings call, parses the answer and recognises
later changes (from the settings service only); the :class:`~venus_ems.venus.service.Service`
acts on them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import Message, MessageType

from .. import __version__
from .codec import Value, unwrap, wrap
from .settings import (
    SETTINGS_SERVICE,
    Setting,
    add_settings_message,
    parse_add_reply,
    parse_class_instance,
)
from .tree import BUSITEM

__all__ = ["CLASS_AND_INSTANCE", "DeviceInstance", "DeviceRecord", "Identity"]

_LOG = logging.getLogger(__name__)

CLASS_AND_INSTANCE = "ClassAndVrmInstance"
"""Name of the setting that holds ``"<class>:<instance>"``."""

_UNIQUE_ID = re.compile(r"[A-Za-z0-9_]+")
_CLASS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the third label of a bus name
_MAX_INSTANCE = 2**31 - 1  # /DeviceInstance is an int32


@dataclass(frozen=True, slots=True)
class DeviceInstance:
    """Request a VRM device instance from localsettings (``/Settings/Devices``).

    ``unique_id`` must be stable for the physical device (driver prefix + serial); the
    ``fallback`` (default: ``preferred``) is used when no settings service runs. ``roles`` are
    the classes the user may switch the device to through ``/Role`` (venus-dbus.md §6.4);
    empty means the class is fixed.
    """

    device_class: str
    preferred: int
    unique_id: str
    fallback: int | None = None
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Reject ids that cannot be a settings path segment or a bus-name label."""
        if not _UNIQUE_ID.fullmatch(self.unique_id) or not _CLASS.fullmatch(self.device_class):
            raise ValueError(
                "unique_id must match [A-Za-z0-9_]+ and device_class be a bus-name label"
            )
        if self.roles:
            if self.device_class not in self.roles:
                raise ValueError(f"roles {self.roles} do not include {self.device_class!r}")
            bad = [r for r in self.roles if not _CLASS.fullmatch(r)]
            if bad or len(set(self.roles)) != len(self.roles):
                raise ValueError(f"roles must be distinct bus-name labels, not {self.roles}")

    @property
    def setting_path(self) -> str:
        """Where localsettings keeps ``"<class>:<instance>"`` for this device."""
        return f"{self.group}/{CLASS_AND_INSTANCE}"

    @property
    def group(self) -> str:
        """The device's settings group, ``/Settings/Devices/<unique_id>``."""
        return f"/Settings/Devices/{self.unique_id}"


@dataclass(frozen=True, slots=True)
class Identity:
    """Values of the mandatory paths (``/Mgmt/*``, ``/Product*``, versions, ``/Connected``).

    ``firmware_version`` is the version a user reads (``"1.1.0"`` or Victron's ``0xMMmm``
    integer); a build id (``"20231219-134001/1.1.0-g34b5d4f"``) goes to ``/FirmwareBuild``,
    as systemcalc publishes Venus's build next to its version.
    """

    product_name: str
    product_id: int | None = 0
    connection: str = "venus-ems"
    firmware_version: int | str | None = None
    hardware_version: int | str | None = None
    process_name: str = "venus-ems"
    process_version: str = __version__
    connected: int = 1
    firmware_build: str | None = None


@dataclass(slots=True)
class _Extra:
    """A per-device setting beside ClassAndVrmInstance, and the path that shows it."""

    default: int | float | str
    min: int | float | None
    max: int | float | None
    path: str | None
    value: int | float | str = field(init=False)

    def __post_init__(self) -> None:
        """Start at the default."""
        self.value = self.default

    def accept(self, value: Value) -> int | float | str | None:
        """The value if it has the default's type and is within the bounds, else None."""
        if isinstance(self.default, str):
            return value if isinstance(value, str) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(self.default, int) and not isinstance(value, int):
            return None
        number = float(value) if isinstance(self.default, float) else value
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            return None
        return number


class DeviceRecord:
    """One device's class, VRM instance and extra settings, as localsettings keeps them."""

    def __init__(self, request: DeviceInstance) -> None:
        """Start from the requested class and the fallback instance (nothing stored yet)."""
        self.request = request
        self.device_class = request.device_class
        self.instance = request.preferred if request.fallback is None else request.fallback
        self.stored = False
        """True once a settings service holds the record (writes are then persisted)."""
        self.owner: str | None = None
        """Unique bus name of the settings service whose signals count."""
        self.loaded = False
        """True once AddSettings answered: signals from before its answer are older."""
        self.extras: dict[str, _Extra] = {}

    def add(
        self,
        name: str,
        default: int | float | str,
        *,
        min: int | float | None = None,  # noqa: A002 - the localsettings name
        max: int | float | None = None,  # noqa: A002
        path: str | None = None,
    ) -> None:
        """Declare a setting ``<group>/<name>``; ValueError for a bad or duplicate name."""
        Setting(f"{self.request.group}/{name}", default, min, max)  # validates path and type
        if name == CLASS_AND_INSTANCE or name in self.extras:
            raise ValueError(f"device setting {name} already exists")
        if path is not None and any(e.path == path for e in self.extras.values()):
            raise ValueError(f"{path} already shows a device setting")
        self.extras[name] = _Extra(default, min, max, path)

    def value(self, name: str) -> int | float | str:
        """Current value of an extra setting; KeyError if undeclared."""
        return self.extras[name].value

    def setting_of_path(self, path: str) -> str | None:
        """Name of the extra setting shown at ``path``, if any."""
        for name, extra in self.extras.items():
            if extra.path == path:
                return name
        return None

    @staticmethod
    def parse(value: Value) -> tuple[str, int] | None:
        """``(class, instance)`` from a ``ClassAndVrmInstance`` value; None if unusable."""
        parsed = parse_class_instance(value)
        if parsed is None or not 0 <= parsed[1] <= _MAX_INSTANCE:
            return None
        return parsed

    def accepts_class(self, device_class: str) -> bool:
        """True for our own class and the allowed roles."""
        return device_class == self.request.device_class or device_class in self.request.roles

    # ----------------------------------------------------------------- AddSettings

    def _settings(self) -> list[Setting]:
        req = self.request
        out = [Setting(req.setting_path, f"{req.device_class}:{req.preferred}")]
        for name, e in self.extras.items():
            out.append(Setting(f"{req.group}/{name}", e.default, e.min, e.max))
        return out

    def add_message(self) -> Message:
        """The AddSettings call that creates (or reads back) every setting of the device."""
        return add_settings_message(self._settings(), object_path="/Settings/Devices")

    def apply_reply(self, reply: Message, log_name: str) -> None:
        """Take class, instance and extras from an AddSettings reply; keep defaults on errors."""
        self.loaded = True
        if reply.message_type is MessageType.ERROR:
            _LOG.warning("%s: AddSettings failed: %s %s", log_name, reply.error_name, reply.body)
            return
        settings = self._settings()
        try:
            results = parse_add_reply(settings, reply.body)
        except Exception as err:  # noqa: BLE001 - a broken peer must not stop the service
            _LOG.warning("%s: unusable AddSettings reply: %s", log_name, err)
            return
        first, *rest = results
        parsed = self.parse(first.value)
        if first.error or parsed is None:
            _LOG.warning("%s: AddSettings gave %r (error %d)", log_name, first.value, first.error)
            return
        self.stored = True
        if self.accepts_class(parsed[0]):
            self.device_class, self.instance = parsed
        else:
            _LOG.warning("%s: settings hold class %r, not ours", log_name, parsed[0])
            self.instance = parsed[1]
        for (name, extra), result in zip(self.extras.items(), rest, strict=True):
            value = extra.accept(result.value)
            if result.error or value is None:
                _LOG.warning("%s: %s is %r; using %r", log_name, name, result.value, extra.default)
            else:
                extra.value = value

    # ----------------------------------------------------------------- changes

    def match_rule(self) -> str:
        """Match rule for the settings service's PropertiesChanged below the device's group."""
        return (
            f"type='signal',sender='{SETTINGS_SERVICE}',interface='{BUSITEM}',"
            f"member='PropertiesChanged',path_namespace='{self.request.group}'"
        )

    def changed(self, msg: Message) -> tuple[str, Value] | None:
        """``(setting name, new value)`` for a PropertiesChanged of ours; None otherwise.

        Only signals from the settings service (its current unique name) count: a signal sent
        to us directly by anyone else is ignored.
        """
        if not self.loaded or msg.sender != self.owner or msg.signature != "a{sv}":
            return None
        prefix = self.request.group + "/"
        path = msg.path or ""
        if not path.startswith(prefix):
            return None
        name = path[len(prefix) :]
        if name != CLASS_AND_INSTANCE and name not in self.extras:
            return None
        props = msg.body[0]
        if not isinstance(props, dict) or "Value" not in props:
            return None
        return name, unwrap(props["Value"])

    def settings_owner_changed(self, msg: Message) -> None:
        """Follow the settings service's unique name across restarts (NameOwnerChanged)."""
        if msg.signature == "sss" and msg.body[0] == SETTINGS_SERVICE:
            self.owner = msg.body[2] or None

    def set_message(self, name: str, value: Any) -> Message:
        """SetValue on the setting ``name`` (ClassAndVrmInstance or an extra)."""
        return Message(
            destination=SETTINGS_SERVICE,
            path=f"{self.request.group}/{name}",
            interface=BUSITEM,
            member="SetValue",
            signature="v",
            body=[wrap(value)],
        )

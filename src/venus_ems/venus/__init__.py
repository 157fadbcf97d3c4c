"""The Venus OS D-Bus layer: publish (Service), watch (Monitor) and settings (SettingsClient)."""

from __future__ import annotations

from .active import active_service
from .budget import MonitorLimits
from .bus import BusWriter, DBusCallError, call, connect, resolve_address
from .codec import INVALID, SetResult, Value, format_text, unwrap, wrap
from .monitor import Changes, Monitor, ServiceState, Subscription, open_monitor
from .service import DeviceInstance, Identity, RoleHook, Service
from .settings import SETTINGS_SERVICE, Setting, SettingsClient, add_settings
from .tree import BUSITEM, PathSpec

__all__ = [
    "BUSITEM",
    "INVALID",
    "SETTINGS_SERVICE",
    "BusWriter",
    "Changes",
    "DBusCallError",
    "DeviceInstance",
    "Identity",
    "Monitor",
    "MonitorLimits",
    "PathSpec",
    "RoleHook",
    "Service",
    "ServiceState",
    "SetResult",
    "Setting",
    "SettingsClient",
    "Subscription",
    "Value",
    "active_service",
    "add_settings",
    "call",
    "connect",
    "format_text",
    "open_monitor",
    "resolve_address",
    "unwrap",
    "wrap",
]

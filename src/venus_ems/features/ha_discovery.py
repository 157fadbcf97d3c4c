"""Home Assistant MQTT discovery for exported D-Bus values (part of M4, pure: no I/O).

Every exported topic is announced as an MQTT ``sensor`` with a retained config message on
``<discovery_prefix>/sensor/<node>/<object>/config``. Unit, device class and state class come
from the D-Bus path through :data:`RULES` (first match wins); a path no rule knows is announced
without them, so Home Assistant shows it as text. Availability follows venus-ems's own
``<prefix>/$SYS/Status`` (``Online`` / ``Offline``, the broker's last will).

Invalid values: JSON payloads carry ``null`` and plain payloads are empty; both templates turn
them into ``None``, which Home Assistant shows as "unknown" (never as 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from .. import __version__
from ..venus.names import PREFIX

__all__ = [
    "RULES",
    "SensorKind",
    "classify",
    "discovery_config",
    "discovery_topic",
    "object_id",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class SensorKind:
    """How Home Assistant should treat a value: unit, device class, state class (None = unset)."""

    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None


_M = "measurement"
RULES: tuple[tuple[re.Pattern[str], SensorKind], ...] = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (r"(^|/)Soc$", SensorKind("%", "battery", _M)),
        (r"(^|/)(\w*Soc\w*|Soh)$", SensorKind("%", None, _M)),
        (r"(^|/)Energy(/|$)", SensorKind("kWh", "energy", "total_increasing")),
        (r"(^|/)Yield/(User|System)$", SensorKind("kWh", "energy", "total_increasing")),
        (r"^/History/Daily/\d+/Yield$", SensorKind("kWh", "energy", "total_increasing")),
        (r"(Power|Setpoint)$", SensorKind("W", "power", _M)),
        (r"Voltage$", SensorKind("V", "voltage", _M)),
        (r"Current$", SensorKind("A", "current", _M)),
        (r"Frequency$", SensorKind("Hz", "frequency", _M)),
        (r"Temperature$", SensorKind("°C", "temperature", _M)),
        (r"Humidity$", SensorKind("%", "humidity", _M)),
        (r"Pressure$", SensorKind("hPa", "atmospheric_pressure", _M)),
        (r"TimeToGo$", SensorKind("s", "duration", _M)),
        (r"(Amphours|Capacity)$", SensorKind("Ah", None, _M)),
    )
)
"""D-Bus path pattern -> sensor kind, checked in order (units as in venus-dbus §6)."""


def classify(path: str) -> SensorKind:
    """Unit, device class and state class for a D-Bus path (all None when unknown)."""
    for pattern, kind in RULES:
        if pattern.search(path):
            return kind
    return SensorKind()


def object_id(topic: str) -> str:
    """A Home Assistant object id for a state topic (``[A-Za-z0-9_-]`` only)."""
    return _UNSAFE.sub("_", topic)


def discovery_topic(discovery_prefix: str, node: str, topic: str) -> str:
    """``<discovery_prefix>/sensor/<node>/<object>/config`` for the state ``topic``."""
    return f"{discovery_prefix}/sensor/{object_id(node)}/{object_id(topic)}/config"


def _entity_name(path: str) -> str:
    return " ".join(path.strip("/").split("/")) or path


def discovery_config(
    *,
    node: str,
    state_topic: str,
    service: str,
    path: str,
    payload: Literal["plain", "json"],
    availability_topic: str,
) -> dict[str, Any]:
    """The retained config message announcing ``state_topic`` (a D-Bus ``path`` of ``service``).

    ``service`` is what the export names (a full service name or a class); one Home Assistant
    device is created per such name.
    """
    node_id = object_id(node)
    short = service.removeprefix(PREFIX)
    kind = classify(path)
    config: dict[str, Any] = {
        "name": _entity_name(path),
        "unique_id": f"{node_id}_{object_id(state_topic)}",
        "state_topic": state_topic,
        "availability_topic": availability_topic,
        "payload_available": "Online",
        "payload_not_available": "Offline",
        "value_template": (
            "{{ value_json.value }}" if payload == "json" else "{{ value if value else 'None' }}"
        ),
        "device": {
            "identifiers": [f"{node_id}_{object_id(short)}"],
            "name": f"Victron {short}",
            "manufacturer": "Victron Energy",
            "model": service,
        },
        "origin": {"name": "venus-ems", "sw_version": __version__},
    }
    if kind.unit is not None:
        config["unit_of_measurement"] = kind.unit
    if kind.device_class is not None:
        config["device_class"] = kind.device_class
    if kind.state_class is not None:
        config["state_class"] = kind.state_class
    return config

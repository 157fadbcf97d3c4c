"""Shared pieces of the config models: the strict base model and common field types."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "DeviceInstance",
    "FeatureName",
    "FeatureTable",
    "Generation",
    "Host",
    "Items",
    "Phase",
    "PublishTopic",
    "StrictModel",
    "SubscribeTopic",
    "check_publish_topic",
    "check_topic_filter",
]


class StrictModel(BaseModel):
    """Frozen, strict model: unknown keys are errors and TOML types are not coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class FeatureTable(StrictModel):
    """A table that enables one feature; ``feature`` is its ``"module:factory"``.

    The feature registry is derived from these declarations (``Config.feature_tables``), so a
    new feature is one config model with its ``feature`` line and one module in ``features/``.
    """

    feature: ClassVar[str]
    enabled: bool = False


T = TypeVar("T")


def _array_to_tuple(value: Any) -> Any:
    """TOML arrays arrive as lists; the frozen models keep tuples."""
    return tuple(value) if isinstance(value, list) else value


Items = Annotated[tuple[T, ...], BeforeValidator(_array_to_tuple)]
"""A TOML array kept as an immutable tuple."""


def check_publish_topic(topic: str) -> str:
    """Return ``topic`` if we may publish to it (no wildcards, no '/' at ends), else ValueError."""
    if not topic or "+" in topic or "#" in topic or "\0" in topic:
        raise ValueError("expected an MQTT topic without wildcards (+, #)")
    if topic.startswith("/") or topic.endswith("/"):
        raise ValueError("expected an MQTT topic without a leading or trailing '/'")
    if topic.startswith("$"):
        raise ValueError("expected an MQTT topic not starting with '$' (reserved for brokers)")
    return topic


def check_topic_filter(topic: str) -> str:
    """Return ``topic`` if it is a valid filter ('+' whole levels, '#' last); else ValueError."""
    levels = topic.split("/")
    if not topic or "\0" in topic:
        raise ValueError("expected a non-empty MQTT topic")
    for i, level in enumerate(levels):
        if ("+" in level and level != "+") or ("#" in level and level != "#"):
            raise ValueError("expected '+' and '#' to fill a whole topic level")
        if level == "#" and i != len(levels) - 1:
            raise ValueError("expected '#' only as the last topic level")
    return topic


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def _check_name(name: str) -> str:
    """Names become parts of D-Bus service names and MQTT topics."""
    if not _NAME.fullmatch(name):
        raise ValueError("expected a name of 1-32 letters, digits or '_' starting with a letter")
    return name


FeatureName = Annotated[str, AfterValidator(_check_name)]
"""Identifier of one device or sensor: used in D-Bus service names and MQTT topics."""

PublishTopic = Annotated[str, AfterValidator(check_publish_topic)]
"""An MQTT topic without wildcards."""

SubscribeTopic = Annotated[str, AfterValidator(check_topic_filter)]
"""An MQTT topic filter (wildcards allowed in whole levels)."""


def _check_host(host: str) -> str:
    """A bare host: the scheme and path are added by the driver."""
    if not host or len(host) > 253 or any(c.isspace() for c in host) or "/" in host:
        raise ValueError("expected a host name or IP address (no scheme, path or spaces)")
    return host


Host = Annotated[str, AfterValidator(_check_host)]
"""Host name or IP address (optionally ``host:port``), no scheme, no path."""

Phase = Literal["L1", "L2", "L3"]
"""An AC phase."""

Generation = Literal["auto", 1, 2]
"""Shelly API generation: 1 = HTTP /status, 2 = RPC (Gen2, Gen3, Gen4), auto = ask /shelly."""

DeviceInstance = Annotated[int, Field(ge=0, le=999)]
"""Preferred VRM device instance (localsettings may assign another if it is taken)."""

"""``[mqtt_exporter]`` (M4) and ``[time_to_go]`` (M5)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import FeatureTable, Items, PublishTopic, StrictModel, check_publish_topic

__all__ = ["ExportConfig", "MqttExporterConfig", "TimeToGoConfig"]

_SERVICE = re.compile(r"com\.victronenergy\.[a-z0-9_]+(\.[A-Za-z0-9_-]+)*")
_DBUS_PATH = re.compile(r"/([A-Za-z0-9_]+(/[A-Za-z0-9_]+)*)?")


def _check_service(name: str) -> str:
    """A Venus service name (``com.victronenergy.grid.shelly_0``) or class (``...grid``)."""
    if not _SERVICE.fullmatch(name):
        raise ValueError(
            "expected a service name or class such as 'com.victronenergy.grid' "
            "or 'com.victronenergy.grid.cgwacs_ttyUSB0_mb1'"
        )
    return name


def _check_path(path: str) -> str:
    """An absolute D-Bus object path."""
    if not _DBUS_PATH.fullmatch(path):
        raise ValueError("expected a D-Bus path such as '/Ac/Power'")
    return path


ServiceName = Annotated[str, AfterValidator(_check_service)]
DbusPath = Annotated[str, AfterValidator(_check_path)]


class ExportConfig(StrictModel):
    """One export: a D-Bus path (or every path under a prefix) to an MQTT topic.

    A ``topic`` ending in ``*`` has the ``*`` removed and the D-Bus path appended
    (``grid*`` + ``/Ac/Power`` -> ``grid/Ac/Power``). A service class (no instance part)
    means the active/first service of that class.
    """

    service: ServiceName
    path: DbusPath | None = None
    prefix: DbusPath | None = None
    topic: Annotated[str, Field(min_length=1)]
    rate_limit_s: float | None = Field(default=None, ge=0.0, le=3600.0)
    retain: bool | None = None
    payload: Literal["plain", "json"] | None = None

    @property
    def appends_path(self) -> bool:
        """True when the D-Bus path is appended to the topic."""
        return self.topic.endswith("*")

    @model_validator(mode="after")
    def _consistent(self) -> ExportConfig:
        """Exactly one of path/prefix; a prefix needs a ``*`` topic; the topic is valid."""
        if (self.path is None) == (self.prefix is None):
            raise ValueError("set exactly one of path or prefix")
        if self.prefix is not None and not self.appends_path:
            raise ValueError(
                f"prefix = {self.prefix!r} exports many paths: the topic must end in '*'"
            )
        base = self.topic[:-1].rstrip("/") if self.appends_path else self.topic
        if "*" in base:
            raise ValueError("'*' is allowed only at the end of topic")
        if not base:
            raise ValueError("topic needs a topic before the '*'")
        check_publish_topic(base)
        return self


class MqttExporterConfig(FeatureTable):
    """Chosen D-Bus values to MQTT, on change with a rate limit; optional HA discovery."""

    feature = "venus_ems.features.mqtt_exporter:build"

    rate_limit_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    retain: bool = True
    payload: Literal["plain", "json"] = "plain"
    ha_discovery: bool = False
    ha_discovery_prefix: PublishTopic = "homeassistant"
    exports: Items[ExportConfig] = ()

    @model_validator(mode="after")
    def _consistent(self) -> MqttExporterConfig:
        """An enabled exporter exports something."""
        if self.enabled and not self.exports:
            raise ValueError("enabled = true but no [[mqtt_exporter.exports]] are listed")
        return self


class TimeToGoConfig(FeatureTable):
    """Battery time-to-go when the BMS does not provide it (seconds)."""

    feature = "venus_ems.features.time_to_go:build"

    smoothing_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    update_interval_s: float = Field(default=5.0, ge=1.0, le=600.0)
    capacity_wh: float | None = Field(default=None, gt=0.0, le=10_000_000.0)
    publish_to_battery: bool = True

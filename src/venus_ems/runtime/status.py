"""Our own D-Bus service ``com.victronenergy.venusems`` and its MQTT mirror.

Per feature: ``/Features/<key>/State`` (starting, running, backing_off, failed, stopped),
``/LastError``, ``/Restarts``, ``/Decision``, ``/Reasons`` (``; `` joined) and ``/Message``
(last service message). Per output: ``/Outputs/<key>/Owner`` (the feature whose claim wins,
empty when none), ``/Value`` (what the target really holds: read back, or for outputs that do
not echo, what we wrote while the target keeps it; invalid when absent or unknown),
``/Written`` (what we last wrote), ``/Target``, ``/Error`` and ``/Writes``. dbus-flashmq bridges the
service to MQTT as ``venusems``; with our own MQTT link the same is published, retained, as
JSON under ``<prefix>/features/<name>`` and ``<prefix>/outputs/<name>``.
``<key>`` is the name with every character outside ``[A-Za-z0-9_]`` replaced by ``_``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..venus import DeviceInstance, Identity, PathSpec, Service
from ..venus.names import VENUSEMS
from .actuator import Actuator
from .feature import FeatureStatus, NullSink, ServiceLevel

if TYPE_CHECKING:
    from .mqtt import MqttLink

__all__ = ["STATUS_SERVICE", "StatusPublisher", "path_key"]

STATUS_SERVICE = VENUSEMS
_S = PathSpec("s")
_I = PathSpec("i")
_V = PathSpec("v")


def _plain(value: Any) -> Any:
    """A value for D-Bus and JSON: tuples as lists, a dataclass command as its text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return str(value)
    return list(value) if isinstance(value, tuple) else value


def path_key(name: str) -> str:
    """A D-Bus path segment for a feature or output name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"


class StatusPublisher(NullSink):
    """Publishes feature and output states on D-Bus and MQTT."""

    def __init__(
        self,
        *,
        address: str | None,
        features: Iterable[str],
        dry_run: bool = False,
        mqtt: MqttLink | None = None,
    ) -> None:
        """Declare the paths of every configured feature before registering."""
        self.mqtt = mqtt
        self.service = Service(
            STATUS_SERVICE,
            identity=Identity("venus-ems", product_id=None, connection="local"),
            device_instance=DeviceInstance("venusems", 0, "venusems"),
            address=address,
        )
        self.service.add_path("/DryRun", int(dry_run), _I)
        self.service.add_path("/Version", __version__, _S)
        for name in features:
            self._add_feature(name)

    def _add_feature(self, name: str) -> str:
        base = f"/Features/{path_key(name)}"
        if f"{base}/State" not in self.service:
            self.service.add_path(f"{base}/Name", name, _S)
            self.service.add_path(f"{base}/State", "starting", _S)
            self.service.add_path(f"{base}/LastError", "", _S)
            self.service.add_path(f"{base}/Restarts", 0, _I)
            self.service.add_path(f"{base}/Decision", "", _S)
            self.service.add_path(f"{base}/Reasons", "", _S)
            self.service.add_path(f"{base}/Message", "", _S)
        return base

    def _add_output(self, name: str) -> str:
        base = f"/Outputs/{path_key(name)}"
        if f"{base}/Owner" not in self.service:
            with self.service.batch():
                self.service.add_path(f"{base}/Name", name, _S)
                self.service.add_path(f"{base}/Owner", "", _S)
                self.service.add_path(f"{base}/Value", None, _V)
                self.service.add_path(f"{base}/Written", None, _V)
                self.service.add_path(f"{base}/Target", "", _S)
                self.service.add_path(f"{base}/Error", "", _S)
                self.service.add_path(f"{base}/Writes", 0, _I)
        return base

    async def __aenter__(self) -> StatusPublisher:
        """Register the service."""
        await self.service.register()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Leave the bus."""
        await self.service.close()

    def feature_changed(self, status: FeatureStatus) -> None:
        """Publish a feature's state, error, restarts, decision and reasons."""
        base = self._add_feature(status.name)
        self.service.update(
            {
                f"{base}/State": status.state.value,
                f"{base}/LastError": status.last_error,
                f"{base}/Restarts": status.restarts,
                f"{base}/Decision": status.decision,
                f"{base}/Reasons": "; ".join(status.reasons),
            }
        )
        if self.mqtt is not None:
            payload = {
                "state": status.state.value,
                "last_error": status.last_error,
                "restarts": status.restarts,
                "retry_in_s": status.retry_in_s,
                "decision": status.decision,
                "reasons": list(status.reasons),
            }
            self.mqtt.publish(
                self.mqtt.topic("features", path_key(status.name)), json.dumps(payload), retain=True
            )

    def output_changed(self, actuator: Actuator[Any]) -> None:
        """Publish who holds an output, the value in force, what we wrote and the last error."""
        base = self._add_output(actuator.name)
        value = _plain(actuator.in_force)
        written = _plain(actuator.value)
        self.service.update(
            {
                f"{base}/Owner": actuator.owner or "",
                f"{base}/Value": value,
                f"{base}/Written": written,
                f"{base}/Target": actuator.writer.target,
                f"{base}/Error": actuator.last_error or "",
                f"{base}/Writes": actuator.writes,
            }
        )
        if self.mqtt is not None:
            payload = {
                "owner": actuator.owner,
                "value": value,
                "written": written,
                "target": actuator.writer.target,
                "error": actuator.last_error,
                "writes": actuator.writes,
            }
            self.mqtt.publish(
                self.mqtt.topic("outputs", path_key(actuator.name)),
                json.dumps(payload),
                retain=True,
            )

    def service_message(self, feature: str, level: ServiceLevel, text: str) -> None:
        """Log it, keep it as the feature's last message, add it to the MQTT ring."""
        base = self._add_feature(feature)
        self.service[f"{base}/Message"] = f"{level}: {text}"
        if self.mqtt is not None:
            self.mqtt.service_message(path_key(feature), level, text)
        else:
            super().service_message(feature, level, text)

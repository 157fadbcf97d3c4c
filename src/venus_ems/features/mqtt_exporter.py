"""M4: chosen D-Bus values to MQTT topics, on change, rate-limited, optionally with HA discovery.

Each ``[[mqtt_exporter.exports]]`` names a service (a full name, or a class meaning the active
service of that class, followed when it changes) and a path or a path prefix. A topic ending
in ``*`` gets the D-Bus path appended. Values are published on change only, at most once per
``rate_limit_s`` per topic: a change inside the limit is held and the latest held value is sent
when the limit ends, so the final value is never lost.

Payloads: ``plain`` is the value as text (numbers in JSON notation, strings as they are, arrays
as JSON) and an **empty payload** when the value is invalid or its service is gone; ``json`` is
``{"value": ...}`` with ``null`` when invalid (the dbus-flashmq shape).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.abc import TaskStatus

from ..clock import Clock, sleep_or_event
from ..errors import ConfigError
from ..runtime.config import ExportConfig, MqttExporterConfig
from ..venus.active import BATTERY, SYSTEM, active_service
from ..venus.monitor import Changes, Monitor
from .ha_discovery import discovery_config, discovery_topic

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext
    from ..runtime.mqtt import MqttMessage

__all__ = [
    "MqttExporter",
    "RateLimiter",
    "build",
    "encode_payload",
    "export_topic",
]

_SYSTEM_BATTERY_PATHS = ("/Dc/Battery/BatteryService", "/ActiveBatteryService")
_IDLE_WAIT_S = 3600.0

PayloadKind = Literal["plain", "json"]


def _jsonable(value: Any) -> Any:
    """D-Bus value -> JSON value: non-finite floats are invalid (None), bools are 0/1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def encode_payload(value: Any, kind: PayloadKind) -> bytes:
    """Wire form of a D-Bus value: plain text (empty when invalid) or ``{"value": ...}``."""
    v = _jsonable(value)
    if kind == "json":
        return json.dumps({"value": v}).encode()
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode()
    return json.dumps(v).encode()


def export_topic(export: ExportConfig, path: str) -> str:
    """The topic of ``path`` for this export (``*`` replaced by the D-Bus path)."""
    if export.appends_path:
        return export.topic[:-1].rstrip("/") + path
    return export.topic


@dataclass(slots=True)
class _Slot:
    sent_at: float | None = None
    sent: tuple[bytes, bool] | None = None
    pending: tuple[bytes, bool] | None = None


class RateLimiter:
    """Per topic at most one message per ``rate_s``; changes in between are held, latest wins."""

    def __init__(self, clock: Clock, send: Callable[[str, bytes, bool], None]) -> None:
        """``send(topic, payload, retain)`` puts one message on the wire (must not block)."""
        self._clock = clock
        self._send = send
        self._slots: dict[str, _Slot] = {}
        self._due: dict[str, float] = {}
        self._wake = anyio.Event()
        self.sent = 0

    def offer(self, topic: str, payload: bytes, retain: bool, rate_s: float) -> None:
        """A new value for ``topic``: sent now, held until the limit ends, or dropped if equal."""
        slot = self._slots.get(topic)
        if slot is None:
            slot = self._slots[topic] = _Slot()
        message = (payload, retain)
        if message == slot.sent:
            slot.pending = None  # back to what subscribers already have: nothing to send
            self._due.pop(topic, None)
            return
        now = self._clock.monotonic()
        if slot.sent_at is None or now - slot.sent_at >= rate_s:
            self._emit(topic, slot, message, now)
            return
        slot.pending = message
        self._due[topic] = slot.sent_at + rate_s
        self._wake.set()

    def _emit(self, topic: str, slot: _Slot, message: tuple[bytes, bool], now: float) -> None:
        slot.pending = None
        self._due.pop(topic, None)
        slot.sent, slot.sent_at = message, now
        self.sent += 1
        self._send(topic, message[0], message[1])

    def flush_due(self) -> float | None:
        """Send every held value whose limit has ended; seconds until the next one, or None."""
        now = self._clock.monotonic()
        nearest: float | None = None
        for topic, due in list(self._due.items()):
            if due <= now:
                slot = self._slots[topic]
                if slot.pending is not None:
                    self._emit(topic, slot, slot.pending, now)
            else:
                nearest = due - now if nearest is None else min(nearest, due - now)
        return nearest

    async def run(self) -> None:
        """Send held values when their limits end, until cancelled."""
        while True:
            wait = self.flush_due()
            self._wake = anyio.Event()
            await sleep_or_event(self._clock, _IDLE_WAIT_S if wait is None else wait, self._wake)


@dataclass(eq=False)
class _Export:
    """One configured export with its effective options and what it resolved to."""

    config: ExportConfig
    rate_s: float
    retain: bool
    kind: PayloadKind
    current: str | None = None
    topics: dict[str, str] = field(default_factory=dict)  # topic -> D-Bus path published

    def matches(self, path: str) -> bool:
        """True if ``path`` is exported by this export."""
        cfg = self.config
        if cfg.path is not None:
            return path == cfg.path
        prefix = cfg.prefix or "/"
        return prefix in ("/", path) or path.startswith(prefix + "/")


class MqttExporter:
    """The MQTT exporter feature (M4)."""

    name = "mqtt_exporter"

    def __init__(self, config: MqttExporterConfig) -> None:
        """Prepare the exports; nothing is published until :meth:`run`."""
        self.config = config
        self.exports = [
            _Export(
                e,
                config.rate_limit_s if e.rate_limit_s is None else e.rate_limit_s,
                config.retain if e.retain is None else e.retain,
                config.payload if e.payload is None else e.payload,
            )
            for e in config.exports
        ]
        self._by_service: dict[str, list[_Export]] = {}
        self._announced: dict[str, bytes] = {}  # discovery topic -> config payload
        self._ctx: FeatureContext | None = None
        self.limiter: RateLimiter | None = None

    # ----------------------------------------------------------------- selection

    def watched(self) -> tuple[set[str], set[str] | None]:
        """Services (names or classes) and paths (None = all) the exporter must see."""
        services = {e.config.service for e in self.exports}
        paths: set[str] | None = set()
        for e in self.exports:
            if e.config.path is None:
                paths = None
            elif paths is not None:
                paths.add(e.config.path)
        if BATTERY in services:
            services.add(SYSTEM)
            if paths is not None:
                paths.update(_SYSTEM_BATTERY_PATHS)
        return services, paths

    def _resolve(self, monitor: Monitor, *, force: bool = False) -> None:
        """Follow the active service of each class export; republish an export that moved."""
        moved = []
        for e in self.exports:
            now = active_service(monitor, e.config.service)
            if force or now != e.current:
                e.current = now
                moved.append(e)
        if not moved:
            return
        self._by_service = {}
        for e in self.exports:
            if e.current is not None:
                self._by_service.setdefault(e.current, []).append(e)
        for e in moved:
            self._publish_all(monitor, e)

    def _publish_all(self, monitor: Monitor, e: _Export) -> None:
        """Publish every value the export has now; topics no longer backed become invalid."""
        state = None if e.current is None else monitor.service(e.current)
        values: Iterable[tuple[str, Any]]
        if e.config.path is not None:
            path = e.config.path
            values = [(path, None if state is None else state.values.get(path))]
        else:
            values = [] if state is None else [(p, v) for p, v in state.values.items()]
        seen = set()
        for path, value in values:
            if e.matches(path):
                seen.add(export_topic(e.config, path))
                self._offer(e, path, value)
        for topic, path in list(e.topics.items()):
            if topic not in seen:
                self._offer(e, path, None)

    def _apply(self, monitor: Monitor, changes: Changes) -> None:
        """One coalesced batch of D-Bus changes."""
        self._resolve(monitor)
        by_service = self._by_service
        for (service, path), value in changes.items():
            for e in by_service.get(service, ()):
                if e.matches(path):
                    self._offer(e, path, value)

    # ----------------------------------------------------------------- publishing

    def _offer(self, e: _Export, path: str, value: Any) -> None:
        limiter = self.limiter
        if limiter is None:
            return
        topic = export_topic(e.config, path)
        e.topics[topic] = path
        if self.config.ha_discovery:
            self._announce(e, topic, path)
        limiter.offer(topic, encode_payload(value, e.kind), e.retain, e.rate_s)

    def _announce(self, e: _Export, topic: str, path: str) -> None:
        ctx = self._ctx
        if ctx is None or ctx.mqtt is None:
            return
        node = ctx.mqtt.settings.topic_prefix
        where = discovery_topic(self.config.ha_discovery_prefix, node, topic)
        if where in self._announced:
            return
        payload = json.dumps(
            discovery_config(
                node=node,
                state_topic=topic,
                service=e.config.service,
                path=path,
                payload=e.kind,
                availability_topic=ctx.mqtt.status_topic,
            )
        ).encode()
        self._announced[where] = payload
        ctx.mqtt.publish(where, payload, retain=True, qos=1)

    def _ha_birth(self, msg: MqttMessage) -> None:
        """Home Assistant restarted (``online`` on its status topic): announce everything again."""
        ctx = self._ctx
        if ctx is None or ctx.mqtt is None or msg.payload.strip().lower() != b"online":
            return
        for where, payload in self._announced.items():
            ctx.mqtt.publish(where, payload, retain=True, qos=1)

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        ctx = self._ctx
        if ctx is not None and ctx.mqtt is not None:
            ctx.mqtt.publish(topic, payload, retain=retain)

    # ----------------------------------------------------------------- lifecycle

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Publish current values, then every change until cancelled; ConfigError without MQTT."""
        mqtt = ctx.mqtt
        if mqtt is None:
            raise ConfigError("[mqtt_exporter] needs [mqtt] enabled = true")
        self._ctx = ctx
        self._announced.clear()
        for e in self.exports:
            e.current, e.topics = None, {}
        self.limiter = RateLimiter(ctx.clock, self._send)
        services, paths = self.watched()
        sub = ctx.monitor.subscribe(services, paths)
        birth = f"{self.config.ha_discovery_prefix}/status"
        listening = False
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.limiter.run)
                if self.config.ha_discovery:
                    listening = True
                    await mqtt.subscribe(birth, self._ha_birth)
                self._resolve(ctx.monitor, force=True)
                ctx.report(f"exporting {len(self.exports)} exports")
                task_status.started()
                async for batch in sub:
                    self._apply(ctx.monitor, batch)
        finally:
            ctx.monitor.unsubscribe(sub)
            if listening:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                    await mqtt.unsubscribe(birth, self._ha_birth)


def build(config: MqttExporterConfig) -> MqttExporter:
    """Registry factory for ``[mqtt_exporter]``."""
    return MqttExporter(config)

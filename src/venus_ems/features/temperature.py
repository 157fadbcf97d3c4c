"""M3: MQTT temperature sensors published as ``com.victronenergy.temperature`` services.

One service ``com.victronenergy.temperature.venusems_<name>`` per ``[[temperature]]`` table:
``/Temperature`` (degC), optional ``/Humidity`` (%) and ``/Pressure`` (hPa), ``/TemperatureType``,
``/Status`` (0 ok, 4 unknown), ``/CustomName`` (writable, kept in localsettings when it runs)
and ``/Connected``. A payload is a plain number or, with ``payload = "json"``, a JSON object
whose (dotted) field holds the number. A value without a valid message for ``stale_s`` becomes
invalid (None, never 0). A bad payload changes nothing; it is reported at most once a minute
with the number of others rejected since, so a broken sensor cannot flood the log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..clock import Clock, sleep_or_event
from ..errors import BusError, ConfigError, DeviceProtocolError
from ..runtime.config import TemperatureConfig
from ..venus import SETTINGS_SERVICE, DeviceInstance, Identity, PathSpec, Service, Setting
from ..venus.bus import DBusCallError
from ..venus.specs import TEMPERATURE_TYPES, add_temperature_paths

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext
    from ..runtime.mqtt import MqttMessage

__all__ = [
    "HUMIDITY",
    "PRESSURE",
    "TEMPERATURE",
    "TEMPERATURE_TYPES",
    "Complaints",
    "MqttTemperature",
    "Quantity",
    "build",
    "parse_reading",
    "service_name",
]

STATUS_OK = 0
STATUS_UNKNOWN = 4
_PREFERRED_INSTANCE = 20
_COMPLAIN_EVERY_S = 60.0
_IDLE_WAIT_S = 3600.0


@dataclass(frozen=True, slots=True)
class Quantity:
    """One measured value: its D-Bus path, name, unit and plausible range (inclusive)."""

    path: str
    label: str
    unit: str
    low: float
    high: float


TEMPERATURE = Quantity("/Temperature", "temperature", "°C", -60.0, 150.0)
HUMIDITY = Quantity("/Humidity", "humidity", "%", 0.0, 100.0)
PRESSURE = Quantity("/Pressure", "pressure", "hPa", 300.0, 1100.0)


def service_name(name: str) -> str:
    """D-Bus service name of the sensor called ``name``."""
    return f"com.victronenergy.temperature.venusems_{name}"


def _field(document: Any, field: str) -> Any:
    """``document[field]``; a dotted field walks nested objects unless the key has the dot."""
    if not isinstance(document, dict):
        raise DeviceProtocolError(f"JSON payload is not an object (expected field {field!r})")
    if field in document:
        return document[field]
    node = document
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            raise DeviceProtocolError(f"JSON has no field {field!r}")
        node = node[part]
    return node


def parse_reading(payload: bytes, quantity: Quantity, json_field: str | None) -> float:
    """A reading in the quantity's unit; DeviceProtocolError unless finite and plausible.

    ``payload`` is a plain number, or with ``json_field`` a JSON object holding it.
    """
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as err:
        raise DeviceProtocolError("payload is not UTF-8 text") from err
    if not text:
        raise DeviceProtocolError("empty payload")
    raw: Any = text
    if json_field is not None:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as err:  # RecursionError: nested too deep
            raise DeviceProtocolError(f"payload is not JSON: {text[:40]!r}") from err
        raw = _field(document, json_field)
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise DeviceProtocolError(f"{quantity.label} {str(raw)[:40]!r} is not a number")
    try:
        value = float(raw)
    except ValueError:
        raise DeviceProtocolError(f"{quantity.label} {str(raw)[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise DeviceProtocolError(f"{quantity.label} {raw!r} is not a finite number")
    if not quantity.low <= value <= quantity.high:
        raise DeviceProtocolError(
            f"{quantity.label} {value:g} {quantity.unit} is outside "
            f"{quantity.low:g}..{quantity.high:g} {quantity.unit}"
        )
    return value


class Complaints:
    """Reports rejected input at most once per ``every_s`` (clock time) with a count of the rest."""

    def __init__(self, clock: Clock, report: Callable[[str], None], every_s: float) -> None:
        """``report(text)`` is called for each line that is let through."""
        self._clock = clock
        self._report = report
        self._every_s = every_s
        self._last: float | None = None
        self.suppressed = 0
        self.total = 0

    def reject(self, text: str) -> None:
        """Count one rejection; report it unless one was reported less than ``every_s`` ago."""
        self.total += 1
        now = self._clock.monotonic()
        if self._last is not None and now - self._last < self._every_s:
            self.suppressed += 1
            return
        if self.suppressed:
            text += f" ({self.suppressed} more rejected since the last report)"
        self._report(text)
        self._last = now
        self.suppressed = 0


@dataclass(frozen=True, slots=True)
class _Part:
    quantity: Quantity
    json_field: str | None


def _sources(config: TemperatureConfig) -> dict[str, list[_Part]]:
    """Topic -> the quantities read from it (a JSON topic may carry several)."""
    json_mode = config.payload == "json"
    out: dict[str, list[_Part]] = {}
    out.setdefault(config.topic, []).append(_Part(TEMPERATURE, config.json_field))
    extra = (
        (HUMIDITY, config.humidity_topic, config.humidity_json_field),
        (PRESSURE, config.pressure_topic, config.pressure_json_field),
    )
    for quantity, topic, field in extra:
        if topic is None and field is None:
            continue
        # with JSON on its own topic and no field of its own, the field name is json_field
        used = (field or config.json_field) if json_mode else None
        out.setdefault(topic or config.topic, []).append(_Part(quantity, used))
    return out


class MqttTemperature:
    """One MQTT sensor as a ``com.victronenergy.temperature`` service (feature M3)."""

    def __init__(self, config: TemperatureConfig) -> None:
        """Prepare the sensor; nothing is published until :meth:`run`."""
        self.config = config
        self.name = f"temperature.{config.name}"
        self.sources = _sources(config)
        self.quantities = [p.quantity for parts in self.sources.values() for p in parts]
        self._last_ok: dict[Quantity, float] = {}
        self._arrived = anyio.Event()
        self._tg: TaskGroup | None = None
        self._service: Service | None = None
        self._name_watch = False
        self._ctx: FeatureContext | None = None
        self._complaints: Complaints | None = None
        self.setting_path = f"/Settings/VenusEms/Temperature/{config.name}/CustomName"

    # ----------------------------------------------------------------- service

    def _default_name(self) -> str:
        return self.config.custom_name or self.config.name

    def make_service(self, address: str | None, custom_name: str) -> Service:
        """The sensor's service with every path declared (not registered)."""
        cfg = self.config
        svc = Service(
            service_name(cfg.name),
            identity=Identity(
                "MQTT temperature sensor", connection=f"MQTT {cfg.topic}", connected=0
            ),
            device_instance=DeviceInstance(
                "temperature",
                _PREFERRED_INSTANCE if cfg.device_instance is None else cfg.device_instance,
                f"venusems_temperature_{cfg.name}",
            ),
            address=address,
        )
        add_temperature_paths(
            svc,
            kind=TEMPERATURE_TYPES[cfg.temperature_type],
            humidity=HUMIDITY in self.quantities,
            pressure=PRESSURE in self.quantities,
            status=STATUS_UNKNOWN,
        )
        svc.add_path(
            "/CustomName",
            custom_name,
            PathSpec("s", writable=True, max_length=64),
            on_write=self._name_written,
        )
        return svc

    async def _stored_name(self, ctx: FeatureContext) -> str:
        """The name last written over D-Bus (kept in localsettings), else the configured one."""
        settings = ctx.settings
        if settings is None or ctx.monitor.service(SETTINGS_SERVICE) is None:
            return self._default_name()
        try:
            values = await settings.add([Setting(self.setting_path, "")], timeout=5.0)
        except (BusError, DBusCallError) as err:
            ctx.log.warning("cannot read the stored custom name: %s", err)
            return self._default_name()
        if not self._name_watch:
            self._name_watch = True
            settings.on_change(self._setting_changed)
        stored = values.get(self.setting_path)
        return stored if isinstance(stored, str) and stored else self._default_name()

    def _setting_changed(self, path: str, value: Any) -> None:
        svc = self._service
        if path == self.setting_path and svc is not None and svc.registered:
            svc["/CustomName"] = value if isinstance(value, str) and value else self._default_name()

    def _name_written(self, _path: str, value: Any) -> bool:
        ctx = self._ctx
        if self._tg is not None and ctx is not None and ctx.settings is not None:
            self._tg.start_soon(self._persist_name, ctx, value)
        return True

    async def _persist_name(self, ctx: FeatureContext, value: str) -> None:
        if ctx.settings is None or ctx.monitor.service(SETTINGS_SERVICE) is None:
            return
        try:
            await ctx.settings.set(self.setting_path, value)
        except (BusError, DBusCallError) as err:
            ctx.message("warning", f"cannot store the custom name: {err}")

    # ----------------------------------------------------------------- messages

    def on_message(self, parts: list[_Part], msg: MqttMessage) -> None:
        """Apply one MQTT message: valid values are published, bad ones reported and ignored."""
        svc, ctx, complaints = self._service, self._ctx, self._complaints
        if svc is None or ctx is None or complaints is None or not svc.registered:
            return
        now = ctx.clock.monotonic()
        with svc.batch():
            for part in parts:
                try:
                    value = parse_reading(msg.payload, part.quantity, part.json_field)
                except DeviceProtocolError as err:
                    complaints.reject(f"{msg.topic}: {err}; ignored")
                    continue
                svc[part.quantity.path] = value
                self._last_ok[part.quantity] = now
                if part.quantity is TEMPERATURE:
                    svc["/Connected"] = 1
                    svc["/Status"] = STATUS_OK
        self._arrived.set()

    def expire(self, ctx: FeatureContext, svc: Service) -> float | None:
        """Invalidate values older than ``stale_s``; seconds until the next one expires, or None."""
        now = ctx.clock.monotonic()
        stale_s = self.config.stale_s
        nearest: float | None = None
        with svc.batch():
            for quantity, at in list(self._last_ok.items()):
                left = at + stale_s - now
                if left > 0:
                    nearest = left if nearest is None else min(nearest, left)
                    continue
                del self._last_ok[quantity]
                svc[quantity.path] = None
                if quantity is TEMPERATURE:
                    svc["/Connected"] = 0
                    svc["/Status"] = STATUS_UNKNOWN
                    ctx.message(
                        "warning", f"no valid temperature for {stale_s:g} s: invalid until the next"
                    )
        return nearest

    # ----------------------------------------------------------------- lifecycle

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Publish the sensor, follow its topics, expire stale values; ConfigError without MQTT."""
        mqtt = ctx.mqtt
        if mqtt is None:
            raise ConfigError(f"[[temperature]] {self.config.name!r} needs [mqtt] enabled = true")
        self._ctx = ctx
        self._complaints = Complaints(ctx.clock, partial(ctx.message, "warning"), _COMPLAIN_EVERY_S)
        self._last_ok.clear()
        svc = self.make_service(ctx.bus_address, await self._stored_name(ctx))
        handlers = [
            (topic, partial(self.on_message, parts)) for topic, parts in self.sources.items()
        ]
        async with svc, anyio.create_task_group() as tg:
            self._service, self._tg = svc, tg
            try:
                for topic, handler in handlers:
                    await mqtt.subscribe(topic, handler)
                ctx.report(f"waiting for {self.config.topic}")
                task_status.started()
                while True:
                    wait = self.expire(ctx, svc)
                    ctx.report(
                        "temperature valid" if TEMPERATURE in self._last_ok else "no temperature",
                    )
                    self._arrived = anyio.Event()
                    await sleep_or_event(
                        ctx.clock, _IDLE_WAIT_S if wait is None else wait, self._arrived
                    )
            finally:
                self._service = self._tg = None
                with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                    for topic, handler in handlers:
                        await mqtt.unsubscribe(topic, handler)


def build(config: TemperatureConfig) -> MqttTemperature:
    """Registry factory for ``[[temperature]]``."""
    return MqttTemperature(config)

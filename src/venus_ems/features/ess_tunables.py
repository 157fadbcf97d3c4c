"""Runtime-tunable values of a feature: kept in localsettings, written over D-Bus or MQTT.

Each :class:`Tunable` is one setting ``/Settings/VenusEms/<Group>/<Setting>`` (created with
the configured value as its default; a value stored by an earlier run wins) and one MQTT topic
``<prefix>/<feature>/set/<name>``. Every new value — from any D-Bus writer (the GX menu, Node-RED,
our MQTT bridge) or from MQTT — is parsed and checked together with the others by the feature's
``validate``; a bad value is refused with a message, and a refused localsettings value is put
back, so nothing half-valid is ever applied and nothing valid is lost. The values in force are
published retained on ``<prefix>/<feature>/<name>``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from ..errors import BusError, ConfigError, DeviceProtocolError
from ..venus import SETTINGS_SERVICE, DBusCallError, Setting, Value

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext
    from ..runtime.mqtt.topics import MqttMessage

__all__ = ["Tunable", "TunableValue", "Tunables", "check_config", "shielded_stop"]

TunableValue = float | str


@dataclass(frozen=True, slots=True)
class Tunable:
    """One value: MQTT ``name``, localsettings leaf ``setting``, default, bounds or choices."""

    name: str
    setting: str
    default: TunableValue
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    def parse(self, raw: object) -> TunableValue:
        """Check one value (a number, or one of ``choices``); ValueError saying why not."""
        if self.choices is not None:
            if not isinstance(raw, str) or raw not in self.choices:
                raise ValueError(
                    f"{self.name} = {raw!r}: expected one of {', '.join(self.choices)}"
                )
            return raw
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"{self.name} = {raw!r}: expected a number")  # noqa: TRY004
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError(f"{self.name} = {raw!r}: expected a finite number")
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            raise ValueError(f"{self.name} = {value:g}: expected {self.min:g}..{self.max:g}")
        return value

    def parse_text(self, text: str) -> TunableValue:
        """Parse an MQTT payload: a JSON number or string, or bare text for a choice."""
        try:
            raw: object = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested too deep: plain text
            raw = text.strip()
        if isinstance(raw, dict) and "value" in raw:  # {"value": ...} as dbus-flashmq writes
            raw = raw["value"]
        return self.parse(raw)


def check_config(
    feature: str,
    validate: Callable[[dict[str, TunableValue]], object],
    values: dict[str, TunableValue],
) -> None:
    """Raise ConfigError naming ``feature`` when the configured values do not validate."""
    try:
        validate(values)
    except ValueError as err:
        raise ConfigError(f"[{feature}] {err}") from None


class Tunables:
    """The tunables of one feature; ``values`` holds the validated values in force."""

    def __init__(
        self,
        feature: str,
        group: str,
        items: Sequence[Tunable],
        validate: Callable[[dict[str, TunableValue]], object],
        on_change: Callable[[], None],
    ) -> None:
        """``validate(values)`` raises ValueError for a bad combination; ``on_change()`` applies."""
        self.feature = feature
        self.base = f"/Settings/VenusEms/{group}"
        self.items = {t.name: t for t in items}
        self._by_path = {self.path(t): t for t in items}
        self.validate = validate
        self.on_change = on_change
        self.values: dict[str, TunableValue] = {t.name: t.default for t in items}
        check_config(feature, validate, dict(self.values))
        self._ctx: FeatureContext | None = None
        self._tg: TaskGroup | None = None
        self._stored = False
        self._watching = False

    def path(self, t: Tunable) -> str:
        """The localsettings path of a tunable."""
        return f"{self.base}/{t.setting}"

    @property
    def topic_filter(self) -> str:
        """MQTT filter of the set topics (needs a context with MQTT)."""
        assert self._ctx is not None
        assert self._ctx.mqtt is not None
        return self._ctx.mqtt.topic(self.feature, "set") + "/+"

    async def start(self, ctx: FeatureContext, tg: TaskGroup) -> None:
        """Create/read the settings and subscribe to the MQTT set topics."""
        self._ctx, self._tg = ctx, tg
        settings = ctx.settings
        self._stored = False
        if settings is not None and ctx.monitor.service(SETTINGS_SERVICE) is not None:
            specs = [
                Setting(
                    self.path(t),
                    t.default,
                    None if t.choices else t.min,
                    None if t.choices else t.max,
                )
                for t in self.items.values()
            ]
            stored = await settings.add(specs, timeout=5.0)
            self._stored = True
            self._load(stored)
            if not self._watching:
                self._watching = True
                settings.on_change(self._setting_changed)
        if ctx.mqtt is not None:
            await ctx.mqtt.subscribe(self.topic_filter, self.on_mqtt)
        self._publish()

    async def stop(self) -> None:
        """Unsubscribe from MQTT (shielded by the caller)."""
        ctx = self._ctx
        if ctx is not None and ctx.mqtt is not None:
            await ctx.mqtt.unsubscribe(self.topic_filter, self.on_mqtt)
        self._ctx = self._tg = None

    def _load(self, stored: dict[str, Value]) -> None:
        candidate = dict(self.values)
        for path, value in stored.items():
            t = self._by_path.get(path)
            if t is None or value is None:
                continue
            try:
                candidate[t.name] = t.parse(value)
            except ValueError as err:
                self._complain(f"stored {err}; using {self.values[t.name]!r}")
        try:
            self.validate(dict(candidate))
        except ValueError as err:
            self._complain(f"stored values rejected ({err}); using the configured ones")
            return
        self.values = candidate

    # ----------------------------------------------------------------- changes

    def _setting_changed(self, path: str, value: Value) -> None:
        t = self._by_path.get(path)
        if t is None or self._ctx is None:
            return
        try:
            self._apply(t, t.parse(value))
        except ValueError as err:
            self._complain(f"{path}: {err}; kept {self.values[t.name]!r}")
            if self._tg is not None and value != self.values[t.name]:
                self._tg.start_soon(self._put_back, path, self.values[t.name])

    def _apply(self, t: Tunable, value: TunableValue) -> None:
        if self.values.get(t.name) == value:
            return
        candidate = {**self.values, t.name: value}
        self.validate(dict(candidate))
        self.values = candidate
        self._publish()
        self.on_change()

    async def _put_back(self, path: str, value: TunableValue) -> None:
        ctx = self._ctx
        if ctx is None or ctx.settings is None:
            return
        try:
            await ctx.settings.set(path, value)
        except (BusError, DBusCallError) as err:
            ctx.log.warning("could not restore %s: %s", path, err)

    async def on_mqtt(self, msg: MqttMessage) -> None:
        """``<prefix>/<feature>/set/<name>``: validate, then store (or apply without storage)."""
        ctx = self._ctx
        if ctx is None:
            return
        name = msg.topic.rsplit("/", 1)[-1]
        t = self.items.get(name)
        if t is None:
            self._complain(f"{msg.topic}: no such setting (known: {', '.join(self.items)})")
            return
        try:
            value = t.parse_text(msg.text())
            self.validate({**self.values, t.name: value})
        except (ValueError, DeviceProtocolError) as err:
            self._complain(f"{msg.topic}: {err}; ignored")
            return
        if self._stored and ctx.settings is not None:
            try:
                code = await ctx.settings.set(self.path(t), value)
            except (BusError, DBusCallError) as err:
                code = -1
                ctx.log.warning("storing %s failed: %s", self.path(t), err)
            if code == 0:
                return  # applied when localsettings reports the change
        self._apply(t, value)

    def _publish(self) -> None:
        ctx = self._ctx
        if ctx is None or ctx.mqtt is None:
            return
        for name, value in self.values.items():
            ctx.mqtt.publish(ctx.mqtt.topic(self.feature, name), value, retain=True)

    def _complain(self, text: str) -> None:
        if self._ctx is not None:
            self._ctx.message("warning", text)


async def shielded_stop(tunables: Tunables) -> None:
    """Stop ``tunables`` inside a shielded, time-bounded scope (for ``finally`` blocks)."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
        await tunables.stop()

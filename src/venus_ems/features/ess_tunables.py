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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from ..errors import BusError, ConfigError, DeviceProtocolError
from ..runtime.complaints import Complaints
from ..runtime.mqtt.payload import parse_json, parse_number, payload_text, short_topic
from ..venus import SETTINGS_SERVICE, DBusCallError, Setting, Value

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext
    from ..runtime.mqtt.topics import MqttMessage

__all__ = ["Tunable", "TunableValue", "Tunables", "check_config", "shielded_stop"]

TunableValue = float | str

_MAX_PAYLOAD = 256  # bytes of an MQTT set message; a number or a choice needs a few dozen
_MQTT = "mqtt:"  # complaint keys: one per set topic we know, one for every other topic


def _show(raw: object, limit: int = 40) -> str:
    """A rejected value for a message, cut to ``limit`` characters."""
    text = repr(raw)
    return text if len(text) <= limit else text[:limit] + "..."


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
                    f"{self.name} = {_show(raw)}: expected one of {', '.join(self.choices)}"
                )
            return raw
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"{self.name} = {_show(raw)}: expected a number")  # noqa: TRY004
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError(f"{self.name} = {_show(raw)}: expected a finite number")
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            raise ValueError(f"{self.name} = {value:g}: expected {self.min:g}..{self.max:g}")
        return value

    def parse_text(self, text: str) -> TunableValue:
        """Parse an MQTT payload: a number, a JSON number or string, or bare text for a choice.

        Numbers are ASCII decimal syntax only; JSON is bounded (``{"value": ...}`` as
        dbus-flashmq writes is accepted too). ValueError saying why not.
        """
        raw: object
        try:
            raw = parse_number(text)
        except DeviceProtocolError:
            try:
                raw = parse_json(text)
            except DeviceProtocolError:
                raw = text.strip(" \t\r\n")
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
        self._complaints: Complaints | None = None

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
        self._complaints = None
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

    def resolve(
        self, stored: Mapping[str, Value]
    ) -> tuple[dict[str, TunableValue], list[tuple[str, str]]]:
        """Values in force given localsettings' ``stored`` (path -> value), and (key, problem)s.

        A stored value wins over the configured one (D12) unless it is invalid on its own or
        the stored values together do not validate (then the configured ones are used).
        """
        candidate = dict(self.values)
        problems: list[tuple[str, str]] = []
        for path, value in stored.items():
            t = self._by_path.get(path)
            if t is None or value is None:
                continue
            try:
                candidate[t.name] = t.parse(value)
            except ValueError as err:
                problems.append((t.name, f"stored {err}; using {self.values[t.name]!r}"))
        try:
            self.validate(dict(candidate))
        except ValueError as err:
            problems.append(("", f"stored values rejected ({err}); using the configured ones"))
            return dict(self.values), problems
        return candidate, problems

    def overrides(self, values: Mapping[str, TunableValue]) -> list[str]:
        """``name = value (config: x, /Settings/...)`` for each of ``values`` not configured."""
        return [
            f"{name} = {_show(value)} (config: {_show(self.values[name])}, "
            f"{self.path(self.items[name])})"
            for name, value in values.items()
            if value != self.values[name]
        ]

    def _load(self, stored: Mapping[str, Value]) -> None:
        values, problems = self.resolve(stored)
        for key, text in problems:
            self._complain(text, key)
        overrides = self.overrides(values)
        if overrides and self._ctx is not None:
            # D12: a value stored by an earlier run wins over the TOML; say so, once per start
            self._ctx.message(
                "info",
                "localsettings overrides the configuration: "
                + "; ".join(overrides)
                + " (change the setting over D-Bus or MQTT, not the TOML)",
            )
        self.values = values

    # ----------------------------------------------------------------- changes

    def _setting_changed(self, path: str, value: Value) -> None:
        t = self._by_path.get(path)
        if t is None or self._ctx is None:
            return
        try:
            self._apply(t, t.parse(value))
        except ValueError as err:
            self._complain(f"{path}: {err}; kept {self.values[t.name]!r}", t.name)
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
            known = ", ".join(self.items)
            self._complain(f"{short_topic(msg.topic)}: no such setting (known: {known})", _MQTT)
            return
        try:
            value = t.parse_text(payload_text(msg.payload, limit=_MAX_PAYLOAD))
            self.validate({**self.values, t.name: value})
        except (ValueError, DeviceProtocolError) as err:
            self._complain(f"{short_topic(msg.topic)}: {err}; ignored", _MQTT + t.name)
            return
        if value == self.values[t.name]:
            return  # nothing changes: no localsettings write (flash) for a repeated value
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

    def _complain(self, text: str, key: str = "") -> None:
        """Tell the user, at most once a minute per ``key`` (a setting, or MQTT and a setting)."""
        ctx = self._ctx
        if ctx is None:
            return
        if self._complaints is None:
            self._complaints = Complaints(ctx.clock, partial(ctx.message, "warning"))
        self._complaints.reject(text, key)


async def shielded_stop(tunables: Tunables) -> None:
    """Stop ``tunables`` inside a shielded, time-bounded scope (for ``finally`` blocks)."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
        await tunables.stop()

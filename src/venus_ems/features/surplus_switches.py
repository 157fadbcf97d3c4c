"""The switches of ``[[surplus.consumer]]``: Shelly, HTTP (registry) and MQTT (the link).

Shelly and generic HTTP relays are opened through the driver registry (drivers ``shelly`` and
``http_switch``); the MQTT switch lives here because it talks through the daemon's MQTT link.

Each is a :class:`~venus_ems.devices.base.Switch` (one relay, channel 0 for HTTP and MQTT)
whose ``set_output`` is confirmed by reading the state back, and may also measure the draw
(:meth:`ConsumerSwitch.read_draw`, W, None when it has no meter). Every HTTP call goes through
the bounded client (:func:`~venus_ems.devices.http.http_request`, with the consumer's
``timeout_s``); MQTT state comes from the ``state_topic`` and counts only while younger than
``stale_s``. Errors are DeviceError subclasses.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Protocol

import aiohttp
import aiomqtt
import anyio

from ..clock import Clock
from ..devices import Connection, DeviceIdentity, PowerMeter, Switch
from ..devices.registry import open_device
from ..errors import ConfigError, DeviceError, DeviceProtocolError, DeviceTimeoutError
from ..runtime.config import SurplusConsumerConfig
from ..runtime.mqtt.payload import parse_number, payload_text

if TYPE_CHECKING:
    from ..runtime.mqtt import MqttLink
    from ..runtime.mqtt.topics import MqttMessage

__all__ = ["ConsumerSwitch", "DeviceSwitch", "MqttSwitch", "open_switch"]

_HTTP_OPTIONS = ("on_url", "off_url", "status_url", "status_field", "power_url", "power_field")


class ConsumerSwitch(Protocol):
    """A consumer's relay and (maybe) meter."""

    identity: DeviceIdentity

    async def set_output(self, channel: int, on: bool) -> None:
        """Switch; DeviceError unless the read-back confirms it."""
        ...

    async def read_output(self, channel: int = 0) -> bool:
        """On now? DeviceError when the device fails."""
        ...

    async def read_draw(self) -> float | None:
        """Its draw now (W), None without a meter; DeviceError when the meter fails."""
        ...


def _as_watts(value: float) -> float:
    if not -1e6 < value < 1e6:
        raise DeviceProtocolError(f"{value} W is out of range")
    return value


class MqttSwitch:
    """Publish ``on_payload``/``off_payload`` to ``command_topic``; state from ``state_topic``."""

    def __init__(self, cfg: SurplusConsumerConfig, link: MqttLink, clock: Clock) -> None:
        """Subscribe with :meth:`start`."""
        self.cfg = cfg
        self.link = link
        self.clock = clock
        self.identity = DeviceIdentity("MQTT switch", "mqtt", cfg.name, "")
        self.stale_s = max(3.0 * cfg.poll_interval_s, 30.0)
        self.state: bool | None = None
        self.state_at: float | None = None
        self.draw_w: float | None = None
        self.draw_at: float | None = None
        self.last_error: str | None = None
        self._changed = anyio.Event()

    async def start(self) -> None:
        """Subscribe to the state (and power) topic."""
        assert self.cfg.state_topic is not None
        await self.link.subscribe(self.cfg.state_topic, self._on_state)
        if self.cfg.power_topic is not None:
            await self.link.subscribe(self.cfg.power_topic, self._on_power)

    async def stop(self) -> None:
        """Unsubscribe (a handler the link dropped already is fine)."""
        assert self.cfg.state_topic is not None
        with contextlib.suppress(ValueError):
            await self.link.unsubscribe(self.cfg.state_topic, self._on_state)
        if self.cfg.power_topic is not None:
            with contextlib.suppress(ValueError):
                await self.link.unsubscribe(self.cfg.power_topic, self._on_power)

    async def _on_state(self, msg: MqttMessage) -> None:
        try:
            text = payload_text(msg.payload, limit=256).strip()
        except DeviceError as err:
            self.last_error = f"state {msg.topic}: {err}"
            return
        self.state = text == self.cfg.on_state
        self.state_at = self.clock.monotonic()
        self._changed.set()
        self._changed = anyio.Event()

    async def _on_power(self, msg: MqttMessage) -> None:
        try:
            w = _as_watts(parse_number(payload_text(msg.payload, limit=64).strip()))
        except (DeviceError, ValueError) as err:
            self.last_error = f"power {msg.topic}: {err}"
            self.draw_w = None
            return
        self.draw_w, self.draw_at = w, self.clock.monotonic()

    async def set_output(self, channel: int, on: bool) -> None:
        """Publish the command; the state topic must confirm it within ``timeout_s``.

        When the shared link does not get it confirmed in half that time (it may be going
        down with the daemon, or reconnecting), a one-shot connection sends it again and
        waits for the state itself: a stopping daemon still switches its consumers off.
        """
        cfg = self.cfg
        assert cfg.command_topic is not None
        payload = cfg.on_payload if on else cfg.off_payload
        if self.link.connected:
            self.link.publish(cfg.command_topic, payload, qos=1)
            with anyio.move_on_after(cfg.timeout_s / 2):
                while self.state is not on:
                    await self._changed.wait()
            if self.state is on:
                return
        if not await self._one_shot(payload, on, cfg.timeout_s / 2):
            raise DeviceTimeoutError(
                f"{cfg.state_topic} did not confirm {'on' if on else 'off'} within "
                f"{cfg.timeout_s:g} s"
            )

    async def _one_shot(self, payload: str, on: bool, timeout_s: float) -> bool:
        """Send over a connection of its own and wait for the state; False when unconfirmed."""
        s = self.link.settings
        if s.tls:
            return False  # TLS needs the link's context: only the shared link is used
        pw = None if s.password is None else s.password.get_secret_value()
        cfg = self.cfg
        assert cfg.command_topic is not None
        assert cfg.state_topic is not None
        try:
            with anyio.move_on_after(timeout_s):
                async with aiomqtt.Client(
                    s.host, s.effective_port, username=s.username, password=pw, timeout=timeout_s
                ) as client:
                    await client.subscribe(cfg.state_topic, qos=1)
                    await client.publish(cfg.command_topic, payload.encode(), qos=1)
                    async for msg in client.messages:
                        raw = msg.payload if isinstance(msg.payload, bytes) else b""
                        if raw[:256].decode("utf-8", "replace").strip() == cfg.on_state:
                            if on:
                                return True
                        elif not on:
                            return True
        except aiomqtt.MqttError:
            return False
        return False

    async def read_output(self, channel: int = 0) -> bool:
        """The last state heard (DeviceTimeoutError when none or too old)."""
        at = self.state_at
        if self.state is None or at is None or self.clock.monotonic() - at > self.stale_s:
            raise DeviceTimeoutError(f"no state on {self.cfg.state_topic} for {self.stale_s:g} s")
        return self.state

    async def read_draw(self) -> float | None:
        """The last power heard (W), None without a power topic or when it is old."""
        at = self.draw_at
        if self.draw_w is None or at is None or self.clock.monotonic() - at > self.stale_s:
            return None
        return self.draw_w


class DeviceSwitch:
    """A relay opened through the registry (Shelly, HTTP switch) and its meter, if any."""

    def __init__(self, device: Switch, channel: int) -> None:
        """``device`` opened through the registry."""
        self.device = device
        self.channel = channel
        self.identity = device.identity
        if channel not in device.outputs:
            raise ConfigError(
                f"{device.identity.product_name} has relays {list(device.outputs)}, not {channel}"
            )

    async def set_output(self, channel: int, on: bool) -> None:
        """Switch the relay and read it back."""
        await self.device.set_output(self.channel, on)
        if await self.device.read_output(self.channel) != on:
            raise DeviceProtocolError(f"relay {self.channel} did not stay {'on' if on else 'off'}")

    async def read_output(self, channel: int = 0) -> bool:
        """The relay now."""
        return await self.device.read_output(self.channel)

    async def read_draw(self) -> float | None:
        """The channel's metered power (W), None when the model has no meter there."""
        dev = self.device
        if isinstance(dev, PowerMeter) and self.channel in dev.power_channels:
            return abs((await dev.read_power(self.channel)).power_w)
        return None


async def open_switch(
    cfg: SurplusConsumerConfig,
    session: aiohttp.ClientSession,
    link: MqttLink | None,
    clock: Clock,
) -> ConsumerSwitch:
    """The consumer's switch; DeviceError when it cannot be reached, ConfigError if unfit."""
    if cfg.driver == "mqtt":
        if link is None:
            raise ConfigError(f"consumer {cfg.name}: driver mqtt needs [mqtt] enabled")
        sw = MqttSwitch(cfg, link, clock)
        await sw.start()
        return sw
    pw = None if cfg.password is None else cfg.password.get_secret_value()
    options: dict[str, object]
    if cfg.driver == "http":
        driver, host, channel = "http_switch", cfg.name, 0
        options = {k: getattr(cfg, k) for k in _HTTP_OPTIONS if getattr(cfg, k) is not None}
    else:
        assert cfg.host is not None
        driver, host, channel = "shelly", cfg.host, cfg.channel
        options = {} if cfg.generation == "auto" else {"generation": cfg.generation}
    conn = Connection(host, cfg.timeout_s, cfg.username, pw, options)
    device = await open_device(driver, session, conn, clock=clock)
    if not isinstance(device, Switch):
        raise ConfigError(f"consumer {cfg.name}: {device.identity.product_name} has no relay")
    return DeviceSwitch(device, channel)

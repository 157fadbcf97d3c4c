"""The MQTT link: one broker connection that survives broker restarts.

* Reconnects with capped exponential backoff and jitter; after every (re)connect it publishes
  ``<prefix>/$SYS/Status`` = ``Online`` (retained), subscribes every filter again and
  re-publishes every retained message (a broker may restart without its retained store). The
  last will is ``Offline`` (retained); an orderly stop publishes ``Offline`` itself and
  disconnects cleanly.
* :meth:`MqttLink.publish` never blocks and never raises for a missing connection. A retained
  message is *state*: the latest payload per topic is kept (at most :data:`MAX_RETAINED_TOPICS`
  topics) and sent once connected, and again after each reconnect; a newer value replaces one
  not sent yet. Other messages are *events*: they wait in a bounded FIFO (``queue_size``) and
  are sent in order; when it is full the oldest is dropped and counted in
  :attr:`MqttLink.dropped`. Events and state are sent alternately, so neither starves.
* Handlers may be plain or async callables. A handler belongs to the feature run that
  subscribed it (:mod:`venus_ems.callbacks`): its exception fails that feature (the supervisor
  logs it, puts its outputs in their safe state and restarts it) while the link and the other
  handlers go on; a handler subscribed outside any feature is part of the link, and its
  exception ends :meth:`MqttLink.run`. Handlers of a run that has ended are dropped.
"""

from __future__ import annotations

import inspect
import json
import logging
import random
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiomqtt
import anyio
from anyio.abc import TaskStatus

from ...callbacks import Owner, current_owner
from ...clock import Clock, RealClock
from ...errors import ConfigError, DeviceAuthError, DeviceConnectionError, DeviceError
from ..config import MqttConfig
from ..logging import redact
from .topics import (
    SERVICE_MESSAGES,
    STATUS,
    MqttMessage,
    backoff_delay,
    check_publish_topic,
    check_topic_filter,
    join_topic,
    topic_matches,
)

__all__ = ["MAX_RETAINED_TOPICS", "Handler", "MqttLink", "Payload", "ServiceLevel"]

_LOG = logging.getLogger(__name__)

Handler = Callable[[MqttMessage], Awaitable[None] | None]
"""Receives each message on a subscribed filter; may be a plain function or a coroutine."""

Payload = str | bytes | int | float
ServiceLevel = Literal["info", "warning", "error"]
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# CONNACK return codes (MQTT 3.1.1) that mean "your credentials are refused"
_AUTH_CODES = {4, 5, 134, 135}
_START_WAIT_S = 2.0

MAX_RETAINED_TOPICS = 20_000
"""Retained topics whose latest message is kept for re-publishing (beyond: sent once only)."""


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool


def _encode(payload: Payload) -> bytes:
    """Bytes on the wire: str as UTF-8, numbers as their decimal text."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bool):
        raise TypeError("publish a bool as 0/1 or text, not True/False")
    return str(payload).encode("utf-8")


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSLSocket that closes itself when the handshake fails.

    paho drops the socket of a failed handshake (e.g. certificate rejected) without closing
    it; on a reconnect loop that would leave each attempt's descriptor to the GC.
    """

    def do_handshake(self, block: bool = False) -> None:
        """Handshake; on any failure close the socket, then re-raise."""
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(settings: MqttConfig) -> ssl.SSLContext | None:
    """The TLS context for ``settings`` (None without TLS); ConfigError for a bad ca_file."""
    if not settings.tls:
        return None
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"mqtt.ca_file = {settings.ca_file!r}: cannot load: {err}") from err
    context.sslsocket_class = _ClosingSSLSocket
    if settings.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _LOG.warning(
            "MQTT TLS certificate verification is OFF (mqtt.insecure = true): anyone on the "
            "path to %s can read and change MQTT traffic",
            settings.host,
        )
    return context


class MqttLink:
    """One MQTT broker connection for the whole daemon (start with ``tg.start(link.run)``)."""

    def __init__(
        self,
        settings: MqttConfig,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Prepare the link; nothing connects until :meth:`run`."""
        self.settings = settings
        self._clock: Clock = clock or RealClock()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._prefix = settings.topic_prefix
        self._outbox: deque[_Outgoing] = deque()
        self._wakeup = anyio.Event()
        self._subs: dict[str, list[tuple[Handler, Owner | None]]] = {}
        self._rings: dict[str, deque[dict[str, str]]] = {}
        self._retained: dict[str, _Outgoing] = {}  # topic -> latest retained message
        self._dirty: dict[str, None] = {}  # retained topics to send, oldest change first
        self._retained_warned = False
        self._client: aiomqtt.Client | None = None
        self._up = anyio.Event()
        self._attempted = anyio.Event()
        self._drop_warned = False
        self.dropped = 0
        """Messages dropped because the queue was full."""
        self.connections = 0
        """Successful connections so far (1 after the first, +1 per reconnect)."""
        self.last_error: str | None = None
        """Why the last connection attempt failed or the last connection ended."""

    @property
    def status_topic(self) -> str:
        """``<prefix>/$SYS/Status``."""
        return self.topic(STATUS)

    @property
    def connected(self) -> bool:
        """True while a broker session is up."""
        return self._up.is_set()

    def topic(self, *parts: str) -> str:
        """``<prefix>/part/...``; ValueError for wildcards or empty topics."""
        return join_topic(self._prefix, *parts)

    async def wait_connected(self) -> None:
        """Return once a broker session is up (at once if it is)."""
        await self._up.wait()

    def publish(self, topic: str, payload: Payload, *, retain: bool = False, qos: int = 0) -> None:
        """Queue a message (FIFO, oldest dropped when full); ValueError for an invalid topic."""
        check_publish_topic(topic)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos}")
        message = _Outgoing(topic, _encode(payload), qos, retain)
        if retain and self._keep_retained(message):
            self._dirty[topic] = None
            self._wakeup.set()
            return
        if len(self._outbox) >= self.settings.queue_size:
            self._outbox.popleft()
            self.dropped += 1
            if not self._drop_warned:
                self._drop_warned = True
                _LOG.warning(
                    "MQTT queue full (%d messages): dropping the oldest", self.settings.queue_size
                )
        self._outbox.append(message)
        self._wakeup.set()

    def _keep_retained(self, message: _Outgoing) -> bool:
        """Store ``message`` as its topic's state; False once the store is full (a new topic)."""
        if message.topic not in self._retained and len(self._retained) >= MAX_RETAINED_TOPICS:
            if not self._retained_warned:
                self._retained_warned = True
                _LOG.warning(
                    "MQTT: more than %d retained topics: new ones are not re-published after "
                    "a reconnect",
                    MAX_RETAINED_TOPICS,
                )
            return False
        self._retained[message.topic] = message
        return True

    @property
    def retained_topics(self) -> int:
        """Retained topics kept for re-publishing after a reconnect."""
        return len(self._retained)

    def service_message(self, feature: str, level: ServiceLevel, text: str) -> None:
        """Log ``text`` and append it to ``<prefix>/<feature>/ServiceMessages`` (retained ring)."""
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {sorted(_LEVELS)}, not {level!r}")
        topic = self.topic(feature, SERVICE_MESSAGES)
        if topic.count("/") != self._prefix.count("/") + 2:
            raise ValueError(f"feature must be one topic level, not {feature!r}")
        text = redact(text)
        _LOG.log(_LEVELS[level], "[%s] %s", feature, text)
        ring = self._rings.setdefault(feature, deque(maxlen=self.settings.service_messages))
        ring.append({"time": self._clock.now().isoformat(), "level": level, "text": text})
        # rings are state, not events: only the newest content of each is sent
        self.publish(topic, json.dumps(list(ring)), retain=True, qos=1)

    async def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Call ``handler`` for every message on ``topic_filter``, across reconnects."""
        check_topic_filter(topic_filter)
        handlers = self._subs.setdefault(topic_filter, [])
        handlers.append((handler, current_owner()))
        client = self._client
        if len(handlers) == 1 and client is not None:
            try:
                await client.subscribe(topic_filter, qos=1, timeout=self._timeout)
            except aiomqtt.MqttError as err:
                # the next (re)connect subscribes every filter again
                _LOG.debug("subscribe %s failed (%s): retried on reconnect", topic_filter, err)

    async def unsubscribe(self, topic_filter: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``topic_filter``; ValueError if it was not subscribed."""
        handlers = self._subs.get(topic_filter, [])
        entry = next((e for e in handlers if e[0] == handler), None)
        if entry is None:
            raise ValueError(f"{handler!r} is not subscribed to {topic_filter}")
        handlers.remove(entry)
        if handlers:
            return
        del self._subs[topic_filter]
        client = self._client
        if client is not None:
            try:
                await client.unsubscribe(topic_filter, timeout=self._timeout)
            except aiomqtt.MqttError as err:
                _LOG.debug("unsubscribe %s failed: %s", topic_filter, err)

    @property
    def _timeout(self) -> float:
        return self.settings.connect_timeout_s

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled; ``started`` once the first attempt ends (<= 2 s)."""
        context = tls_context(self.settings)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_connected, context)
            # a broker that does not answer (blackholed host) must not hold up the daemon
            with anyio.move_on_after(min(_START_WAIT_S, self._timeout)):
                await self._attempted.wait()
            task_status.started()

    async def _keep_connected(self, context: ssl.SSLContext | None) -> None:
        """Connect, serve the session, back off, repeat."""
        attempt = 0
        while True:
            try:
                client = await self._connect(context)
            except DeviceError as err:
                self.last_error = redact(str(err))
                level = logging.ERROR if isinstance(err, DeviceAuthError) else logging.WARNING
                _LOG.log(level, "MQTT: %s", err)
                self._attempted.set()
            else:
                attempt = 0
                await self._session(client)
            delay = backoff_delay(
                attempt,
                self.settings.reconnect_initial_s,
                self.settings.reconnect_max_s,
                rng=self._rng,
            )
            attempt += 1
            _LOG.debug("MQTT: reconnecting in %.2f s", delay)
            await self._clock.sleep(delay)

    def _make_client(self, context: ssl.SSLContext | None) -> aiomqtt.Client:
        s = self.settings
        password = s.password.get_secret_value() if s.password is not None else None
        return aiomqtt.Client(
            s.host,
            s.effective_port,
            username=s.username,
            password=password,
            identifier=s.client_id,
            will=aiomqtt.Will(self.status_topic, b"Offline", qos=1, retain=True),
            keepalive=s.keepalive_s,
            timeout=s.connect_timeout_s,
            tls_context=context,
            clean_session=True,
        )

    async def _connect(self, context: ssl.SSLContext | None) -> aiomqtt.Client:
        """Connect once; DeviceAuthError / DeviceConnectionError on failure."""
        where = f"{self.settings.host}:{self.settings.effective_port}"
        client = self._make_client(context)
        try:
            await client.__aenter__()
        except aiomqtt.MqttCodeError as err:
            code = err.rc if isinstance(err.rc, int) or err.rc is None else err.rc.value
            if code in _AUTH_CODES:
                raise DeviceAuthError(f"broker {where} refused our credentials: {err}") from err
            raise DeviceConnectionError(f"cannot connect to broker {where}: {err}") from err
        except aiomqtt.MqttError as err:
            reason = str(err)
            if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
                reason += " (set mqtt.ca_file to the CA that signed the broker's certificate)"
            raise DeviceConnectionError(f"cannot connect to broker {where}: {reason}") from err
        return client

    async def _session(self, client: aiomqtt.Client) -> None:
        """Serve one connection until it drops (returns) or we are cancelled (Offline sent)."""
        lost = False
        self._client = client
        try:
            await client.publish(
                self.status_topic, b"Online", qos=1, retain=True, timeout=self._timeout
            )
            for topic_filter in list(self._subs):
                await client.subscribe(topic_filter, qos=1, timeout=self._timeout)
            # the broker may have restarted without persistence: publish all state again
            self._dirty.update(dict.fromkeys(self._retained))
            self.connections += 1
            self._up.set()
            self._attempted.set()
            _LOG.info("MQTT: connected to %s (%s)", self.settings.host, self.status_topic)
            lost_by: list[aiomqtt.MqttError] = []
            async with anyio.create_task_group() as tg:
                for part in (self._sender, self._reader):
                    tg.start_soon(_until_lost, part, client, tg.cancel_scope, lost_by)
            raise lost_by[0] if lost_by else aiomqtt.MqttError("message stream ended")
        except aiomqtt.MqttError as err:
            lost = True
            self.last_error = redact(f"connection lost: {err}")
            _LOG.warning("MQTT: connection to %s lost: %s", self.settings.host, err)
        finally:
            self._client = None
            if self._up.is_set():
                self._up = anyio.Event()
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
                await self._close(client, say_offline=not lost)

    async def _close(self, client: aiomqtt.Client, *, say_offline: bool) -> None:
        """Orderly end: retained ``Offline`` first, then a clean DISCONNECT (no last will)."""
        try:
            if say_offline:
                await client.publish(
                    self.status_topic, b"Offline", qos=1, retain=True, timeout=self._timeout
                )
            await client.__aexit__(None, None, None)
        except aiomqtt.MqttError as err:
            _LOG.debug("MQTT: disconnect: %s", err)

    async def _sender(self, client: aiomqtt.Client) -> None:
        """Send events in order and changed state, alternately; a message leaves once sent."""
        while True:
            while self._outbox or self._dirty:
                if self._outbox:
                    msg = self._outbox[0]
                    await self._send(client, msg)
                    if self._outbox and self._outbox[0] is msg:
                        self._outbox.popleft()
                    self._drop_warned = False
                if self._dirty:
                    topic = next(iter(self._dirty))
                    state = self._retained[topic]
                    await self._send(client, state)
                    if self._retained.get(topic) is state:  # else a newer value waits its turn
                        self._dirty.pop(topic, None)
            self._wakeup = anyio.Event()
            await self._wakeup.wait()

    async def _send(self, client: aiomqtt.Client, msg: _Outgoing) -> None:
        await client.publish(
            msg.topic, msg.payload, qos=msg.qos, retain=msg.retain, timeout=self._timeout
        )

    async def _reader(self, client: aiomqtt.Client) -> None:
        """Dispatch incoming messages until the connection drops (MqttError)."""
        async for message in client.messages:
            msg = MqttMessage(
                str(message.topic), bytes(message.payload), message.retain, message.qos
            )
            await self._dispatch(msg)

    async def _dispatch(self, msg: MqttMessage) -> None:
        """Call each matching handler; a failing one fails its owner, the others still run.

        Raises the exception of a handler without an owner (after the others ran).
        """
        unowned: Exception | None = None
        for topic_filter, handlers in list(self._subs.items()):
            if not topic_matches(topic_filter, msg.topic):
                continue
            for entry in list(handlers):
                handler, owner = entry
                if owner is not None and not owner.active:
                    if owner.ended and entry in handlers:
                        handlers.remove(entry)  # its run ended without unsubscribing
                    continue
                try:
                    result: Any = handler(msg)
                    if inspect.isawaitable(result):
                        await result
                except Exception as err:  # noqa: BLE001 - handed to its owner or raised below
                    if owner is None:
                        unowned = unowned or err
                    else:
                        owner.fail(err)
        if unowned is not None:
            _LOG.error("MQTT handler failed on %s: the link stops", msg.topic, exc_info=unowned)
            raise unowned


async def _until_lost(
    part: Callable[[aiomqtt.Client], Awaitable[None]],
    client: aiomqtt.Client,
    scope: anyio.CancelScope,
    lost_by: list[aiomqtt.MqttError],
) -> None:
    """Run one half of a session; a broken connection stops both halves (no ExceptionGroup)."""
    try:
        await part(client)
    except aiomqtt.MqttError as err:
        lost_by.append(err)
        scope.cancel()

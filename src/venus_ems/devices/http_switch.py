"""Driver ``http_switch``: any relay with on/off/status URLs and JSON answers (one relay, 0).

Options (``Connection.options``; unknown ones are a ConfigError): ``on_url``, ``off_url``,
``status_url`` (GET, all required), ``status_field`` (dotted JSON path in the status answer,
e.g. ``relays.0.ison``: ``true/false``, ``1/0``, ``"on"/"off"``), optionally ``power_url`` and
``power_field`` (a finite number in W, then it is also a ``PowerMeter`` on channel 0).
``set_output`` GETs the URL and reads the status back (DeviceProtocolError when it does not
show the new state). Every request goes through :func:`~venus_ems.devices.http.http_request`
with ``Connection.timeout_s`` (bounded body, JSON checked before parsing); ``username`` and
``password`` become a Basic auth header, never part of a URL.
"""

from __future__ import annotations

import math
from typing import Any

import aiohttp

from ..clock import Clock
from ..errors import ConfigError, DeviceProtocolError
from .base import Connection, DeviceIdentity, PowerReading
from .http import basic_auth_header, decode_json, http_request

__all__ = ["OPTIONS", "HttpSwitch", "json_field", "open_device"]

OPTIONS = frozenset({"on_url", "off_url", "status_url", "status_field", "power_url", "power_field"})
_REQUIRED = ("on_url", "off_url", "status_url", "status_field")


def _quote(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def json_field(doc: Any, path: str) -> Any:
    """``doc`` at the dotted ``path`` (list items by number); DeviceProtocolError if absent."""
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DeviceProtocolError(f"no field {path!r} in the answer")
    return node


def _as_on(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("on", "off", "true", "false", "1", "0"):
        return value.lower() in ("on", "true", "1")
    raise DeviceProtocolError(f"field {path!r} is {_quote(value)}, not on/off")


def _as_watts(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeviceProtocolError(f"field {path!r} is {_quote(value)}, not a power in W")
    if not -1e6 < value < 1e6:
        raise DeviceProtocolError(f"field {path!r} = {value} W is out of range")
    return float(value)


class HttpSwitch:
    """One relay on HTTP (see the module doc); a ``Switch``, and a ``PowerMeter`` with power."""

    def __init__(
        self, session: aiohttp.ClientSession, conn: Connection, urls: dict[str, str], clock: Clock
    ) -> None:
        """``urls``: the checked options."""
        self.session = session
        self.conn = conn
        self.urls = urls
        self.clock = clock
        self._identity = DeviceIdentity("HTTP switch", "http_switch", conn.host, "")
        self._headers: dict[str, str] = {}
        if conn.username is not None:
            self._headers["Authorization"] = basic_auth_header(conn.username, conn.password or "")

    @property
    def identity(self) -> DeviceIdentity:
        """A generic identity (the device says nothing about itself)."""
        return self._identity

    @property
    def outputs(self) -> tuple[int, ...]:
        """One relay."""
        return (0,)

    @property
    def power_channels(self) -> tuple[int, ...]:
        """Channel 0 when a power URL is configured."""
        return (0,) if "power_url" in self.urls else ()

    async def _get(self, url: str) -> Any:
        answer = await http_request(
            self.session, "GET", url, timeout_s=self.conn.timeout_s, headers=self._headers
        )
        if answer.status != 200:
            raise DeviceProtocolError(f"GET {url}: HTTP {answer.status}")
        return answer

    def _check(self, channel: int) -> None:
        if channel != 0:
            raise ConfigError(f"an HTTP switch has relay 0 only, not {channel}")

    async def set_output(self, channel: int, on: bool) -> None:
        """GET the on or off URL, then read the state back (DeviceError if it differs)."""
        self._check(channel)
        await self._get(self.urls["on_url" if on else "off_url"])
        if await self.read_output(0) != on:
            raise DeviceProtocolError(f"switched {'on' if on else 'off'} but the status says not")

    async def read_output(self, channel: int = 0) -> bool:
        """The ``status_field`` of the status answer."""
        self._check(channel)
        url, field = self.urls["status_url"], self.urls["status_field"]
        return _as_on(json_field(decode_json(await self._get(url), url), field), field)

    async def read_power(self, channel: int = 0) -> PowerReading:
        """``power_field`` of the power answer (W); ConfigError without a power URL."""
        self._check(channel)
        if "power_url" not in self.urls:
            raise ConfigError("this HTTP switch has no power_url")
        url, field = self.urls["power_url"], self.urls["power_field"]
        watts = _as_watts(json_field(decode_json(await self._get(url), url), field), field)
        return PowerReading(watts, self.clock.monotonic())


async def open_device(session: Any, conn: Connection, *, clock: Clock) -> HttpSwitch:
    """The registry opener: checks the options (ConfigError), contacts nothing yet."""
    unknown = sorted(set(conn.options) - OPTIONS)
    if unknown:
        raise ConfigError(f"http_switch: unknown options {', '.join(unknown)}")
    urls = {k: v for k, v in conn.options.items() if isinstance(v, str) and v}
    missing = [k for k in _REQUIRED if k not in urls]
    if missing:
        raise ConfigError(f"http_switch needs {', '.join(missing)}")
    if ("power_url" in urls) != ("power_field" in urls):
        raise ConfigError("http_switch: power_url and power_field go together")
    return HttpSwitch(session, conn, urls, clock)

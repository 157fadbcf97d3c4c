"""Blueprint driver: a minimal, complete driver to copy when adding one (registry: "blueprint").

Copy this file to ``devices/<family>.py`` (or ``devices/<family>/`` when it grows past ~400
lines), replace the device facts below with the real ones, add one line to
``devices/registry.py`` and follow ``docs/devices.md``. Everything a driver owes its callers is
here once: an identity, readings stamped with the clock, a timeout on every request, errors
mapped into the ``DeviceError`` tree, bounded parsing, capabilities as protocols.

The device (an example, not a product): an energy meter with up to three CT channels and one
relay, speaking JSON over HTTP.

* ``GET /api/info`` -> ``{"model": str, "serial": str, "firmware": str, "channels": 1..3,
  "relays": 0..1}``
* ``GET /api/meter`` -> ``{"channels": [{"power_w", "voltage_v", "energy_in_wh",
  "energy_out_wh"}, ...]}``: W signed (+ = import through the CT), V, Wh counters that only
  grow (``energy_*`` may be absent: not measured). One entry per channel, in channel order.
* ``GET /api/relay`` -> ``{"on": bool}``; ``POST /api/relay`` with ``{"on": bool}`` switches
  and answers the new state.
* Auth: HTTP Basic when a password is set on the device; 401 otherwise. Errors: any other
  status than 200, with a short text body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from ..clock import Clock
from ..errors import ConfigError, DeviceAuthError, DeviceProtocolError
from .base import Connection, DeviceIdentity, MeterReading, PhaseReading
from .http import basic_auth_header, decode_json, http_request
from .parsing import bool_field, items, number, optional_number, text

__all__ = ["BlueprintMeter", "open_device", "parse_info", "parse_meter", "parse_relay"]

MAX_CHANNELS = 3
"""More channels than this in an answer is a protocol error (bounded parsing)."""


# --- 1. Pure parsers: payload -> reading; they raise DeviceProtocolError and nothing else. -----
# Keep them free of I/O so that tests can feed them every real capture and every mutation.


def parse_info(doc: Any) -> tuple[DeviceIdentity, int, int]:
    """``/api/info`` -> (identity, CT channels, relays); DeviceProtocolError if malformed."""
    where = "/api/info"
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    channels = number(doc, "channels", where)
    relays = number(doc, "relays", where)
    if channels not in (1.0, 2.0, 3.0) or relays not in (0.0, 1.0):
        raise DeviceProtocolError(f"{where}: unsupported layout {channels:g} CT / {relays:g} relay")
    model = text(doc, "model", where)  # bounded: at most 64 characters
    identity = DeviceIdentity(
        product_name=f"Blueprint meter {model}",
        model=model,
        serial=text(doc, "serial", where),
        firmware=text(doc, "firmware", where),
    )
    return identity, int(channels), int(relays)


def parse_meter(doc: Any, channels: int, taken_at: float) -> MeterReading:
    """``/api/meter`` -> ``channels`` readings (Wh -> kWh) stamped ``taken_at`` (monotonic s)."""
    where = "/api/meter"
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    entries = items(doc, "channels", where, max_items=MAX_CHANNELS)
    if len(entries) != channels:
        raise DeviceProtocolError(f"{where}: {len(entries)} channels, expected {channels}")
    out = []
    for i, entry in enumerate(entries):
        at = f"{where} channels[{i}]"
        if not isinstance(entry, Mapping):
            raise DeviceProtocolError(f"{at}: expected a JSON object")
        energy_in = optional_number(entry, "energy_in_wh", at)
        energy_out = optional_number(entry, "energy_out_wh", at)
        out.append(
            PhaseReading(
                power_w=number(entry, "power_w", at),
                voltage_v=optional_number(entry, "voltage_v", at),
                # units are normalised once, here: the device counts Wh, readings carry kWh
                energy_forward_kwh=None if energy_in is None else energy_in / 1000.0,
                energy_reverse_kwh=None if energy_out is None else energy_out / 1000.0,
            )
        )
    return MeterReading(tuple(out), taken_at)


def parse_relay(doc: Any) -> bool:
    """``/api/relay`` -> whether the relay is on; DeviceProtocolError if malformed."""
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError("/api/relay: expected a JSON object")
    return bool_field(doc, "on", "/api/relay")


# --- 2. The transport: one request with a timeout, the device's answers mapped to errors. ----


class _Api:
    """HTTP to one device through the caller's session (never created or closed here)."""

    def __init__(self, session: aiohttp.ClientSession, conn: Connection) -> None:
        """Requests go to ``http://<conn.host>``, each within ``conn.timeout_s``."""
        self.session = session
        self.url = f"http://{conn.host}"
        self.timeout_s = conn.timeout_s
        self.headers: dict[str, str] = {}
        if conn.password is not None:
            auth = basic_auth_header(conn.username or "admin", conn.password)
            self.headers["Authorization"] = auth

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request -> decoded JSON; DeviceAuthError on 401, DeviceProtocolError otherwise.

        ``http_request`` puts the timeout on the request, bounds the body and maps aiohttp's
        errors (timeout -> DeviceTimeoutError, refused -> DeviceConnectionError); this method
        maps what the device says (its HTTP status) and decodes the JSON.
        """
        url = f"{self.url}{path}"
        headers = dict(self.headers)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        answer = await http_request(
            self.session, method, url, timeout_s=self.timeout_s, headers=headers, body=data
        )
        what = f"{method} {url}"  # names the request; never the credentials
        if answer.status == 401:
            hint = "credentials refused" if self.headers else "password required: set password"
            raise DeviceAuthError(f"{what}: 401 ({hint})")
        if answer.status != 200:
            head = answer.body[:80].decode("utf-8", "replace")  # a bounded quote of the body
            raise DeviceProtocolError(f"{what}: HTTP {answer.status} {head!r}")
        return decode_json(answer, what)


# --- 3. The driver: implements the protocols of devices.base that the device supports. -------


class BlueprintMeter:
    """A blueprint meter: implements ``PhaseMeter`` and ``Switch`` (see ``devices.base``).

    Built by :func:`open_device`, which has already read the identity. Every method raises
    only the DeviceError tree (and ConfigError for a relay the device does not have).
    """

    def __init__(
        self,
        api: _Api,
        identity: DeviceIdentity,
        *,
        channels: int,
        relays: int,
        clock: Clock,
    ) -> None:
        """A device already identified by :func:`open_device`; nothing is sent here."""
        self._api = api
        self._identity = identity
        self._channels = channels
        self._relays = relays
        self._clock = clock

    @property
    def identity(self) -> DeviceIdentity:
        """What ``/api/info`` said when the device was opened."""
        return self._identity

    @property
    def channel_count(self) -> int:
        """CT channels (1..3)."""
        return self._channels

    @property
    def outputs(self) -> tuple[int, ...]:
        """Relay numbers: ``(0,)`` or none."""
        return tuple(range(self._relays))

    async def read_phases(self) -> MeterReading:
        """All CT channels now (W + = import); stamped when the answer arrived."""
        doc = await self._api.call("GET", "/api/meter")
        # stamp after the answer: the age of a reading counts from when we had it
        return parse_meter(doc, self._channels, self._clock.monotonic())

    async def read_output(self, channel: int = 0) -> bool:
        """Whether relay ``channel`` is on; ConfigError if the device has no such relay."""
        self._need_relay(channel)
        return parse_relay(await self._api.call("GET", "/api/relay"))

    async def set_output(self, channel: int, on: bool) -> None:
        """Switch relay ``channel``; DeviceProtocolError unless the device confirms the state."""
        self._need_relay(channel)
        state = parse_relay(await self._api.call("POST", "/api/relay", {"on": on}))
        if state is not on:  # a command is done only when the device says so
            raise DeviceProtocolError(f"relay {channel} did not switch {'on' if on else 'off'}")

    def _need_relay(self, channel: int) -> None:
        if channel not in self.outputs:
            # the configuration points at something the device lacks: never retried
            name = self._identity.product_name
            raise ConfigError(f"{name} at {self._api.url} has no relay {channel}")


# --- 4. The registry entry: detect the device, check the options, return the driver. ---------


async def open_device(
    session: aiohttp.ClientSession, conn: Connection, *, clock: Clock
) -> BlueprintMeter:
    """Read ``/api/info`` and return the driver; ConfigError for options it does not take."""
    if conn.options:  # this driver has none: say so instead of ignoring them
        raise ConfigError(f"the blueprint driver has no option {', '.join(sorted(conn.options))}")
    api = _Api(session, conn)
    identity, channels, relays = parse_info(await api.call("GET", "/api/info"))
    return BlueprintMeter(api, identity, channels=channels, relays=relays, clock=clock)

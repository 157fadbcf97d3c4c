"""Shelly gen1 over HTTP GET: EM (``SHEM``), 3EM (``SHEM-3``), Plug/Plug S, 1PM; relay control.

Endpoints: ``/status`` (everything), ``/relay/<i>[?turn=on|off]``. Auth is HTTP Basic when
login is enabled (401 otherwise). Units as the firmware sends them and what we make of them:

* ``emeters[i]``: ``power`` W signed (+ = forward through the CT, - = export), ``current`` A
  unsigned (3EM only; signed here from the power), ``voltage`` V, ``pf``,
  ``total``/``total_returned`` **Wh** → kWh. ``is_valid: false`` makes the sample an error.
* ``meters[i]`` (plugs, 1PM): ``power`` W, magnitude only; ``total`` and ``counters`` (last
  three whole minutes, newest first) in **watt-minutes** → kWh and Wh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from ...clock import Clock
from ...errors import DeviceAuthError, DeviceProtocolError
from ..base import MeterReading, PhaseReading, PowerReading
from ..http import basic_auth_header, decode_json, http_request
from .device import ShellyDevice
from .fields import ShellyInfo, bool_field, number, optional_number

__all__ = ["Gen1Shelly", "parse_emeters", "parse_plug_meter", "parse_relay"]


def _signed(current: float | None, power: float) -> float | None:
    """Give an unsigned current the sign of the power."""
    if current is None:
        return None
    return -abs(current) if power < 0 else abs(current)


def _list(doc: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise DeviceProtocolError(f"{where}: {key!r} missing or not a list")
    return value


def _item(items: Sequence[Any], index: int, where: str) -> Mapping[str, Any]:
    if index >= len(items) or not isinstance(items[index], Mapping):
        raise DeviceProtocolError(f"{where}: no object at index {index}")
    item: Mapping[str, Any] = items[index]
    return item


def _valid(item: Mapping[str, Any], where: str) -> None:
    if item.get("is_valid") is False:
        raise DeviceProtocolError(f"{where}: the device marks this reading invalid")


def parse_emeters(status: Any, channels: int, taken_at: float) -> MeterReading:
    """``/status`` of an EM/3EM → ``channels`` CT channels; DeviceProtocolError if malformed."""
    if not isinstance(status, Mapping):
        raise DeviceProtocolError("/status: expected a JSON object")
    emeters = _list(status, "emeters", "/status")
    if len(emeters) < channels:
        raise DeviceProtocolError(f"/status: {len(emeters)} emeters, expected {channels}")
    out = []
    for i in range(channels):
        where = f"/status emeters[{i}]"
        em = _item(emeters, i, where)
        _valid(em, where)
        power = number(em, "power", where)
        fwd = optional_number(em, "total", where)
        rev = optional_number(em, "total_returned", where)
        out.append(
            PhaseReading(
                power_w=power,
                voltage_v=optional_number(em, "voltage", where),
                current_a=_signed(optional_number(em, "current", where), power),
                power_factor=optional_number(em, "pf", where),
                energy_forward_kwh=None if fwd is None else fwd / 1000.0,
                energy_reverse_kwh=None if rev is None else rev / 1000.0,
            )
        )
    return MeterReading(tuple(out), taken_at)


def parse_relay(relay: Any, where: str = "relay") -> bool:
    """A relay object (``/relay/<i>`` or ``relays[i]``) → whether it is on."""
    if not isinstance(relay, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    return bool_field(relay, "ison", where)


def parse_plug_meter(status: Any, channel: int, taken_at: float) -> PowerReading:
    """``/status`` of a plug/1PM → the meter (and relay) of ``channel``."""
    if not isinstance(status, Mapping):
        raise DeviceProtocolError("/status: expected a JSON object")
    where = f"/status meters[{channel}]"
    meter = _item(_list(status, "meters", "/status"), channel, where)
    _valid(meter, where)
    total_wmin = optional_number(meter, "total", where)
    counters = meter.get("counters", [])
    if not isinstance(counters, list):
        raise DeviceProtocolError(f"{where}: 'counters' is not a list")
    minutes = tuple(number({"c": c}, "c", f"{where} counters") / 60.0 for c in counters)
    relays = status.get("relays")
    output = None
    if isinstance(relays, list) and channel < len(relays):
        output = parse_relay(relays[channel], f"/status relays[{channel}]")
    temperature = optional_number(status, "temperature", "/status")
    return PowerReading(
        power_w=number(meter, "power", where),
        taken_at=taken_at,
        signed=False,
        energy_forward_kwh=None if total_wmin is None else total_wmin / 60_000.0,
        last_minutes_wh=minutes,
        output=output,
        temperature_c=temperature,
    )


class Gen1Shelly(ShellyDevice):
    """A gen1 device; ``credentials`` (user, password) are sent as Basic auth when given."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        info: ShellyInfo,
        *,
        clock: Clock,
        timeout_s: float,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """See :class:`ShellyDevice`."""
        super().__init__(session, base_url, info, clock=clock, timeout_s=timeout_s)
        self._headers = (
            {} if credentials is None else {"Authorization": basic_auth_header(*credentials)}
        )

    @property
    def channel_count(self) -> int:
        """CT channels of an EM (2) or 3EM (3); 0 for plugs."""
        return self.info.channels

    @property
    def power_channels(self) -> tuple[int, ...]:
        """Relay meters (plugs, 1PM)."""
        return tuple(range(self.info.num_meters)) if self.info.channels == 0 else ()

    @property
    def outputs(self) -> tuple[int, ...]:
        """Relays (the EM/3EM contactor output counts as one)."""
        return tuple(range(self.info.num_outputs))

    async def get(self, path_qs: str) -> Any:
        """GET ``path_qs`` → JSON; DeviceAuthError on 401, DeviceProtocolError on other errors."""
        answer = await http_request(
            self.session,
            "GET",
            f"{self.base_url}{path_qs}",
            timeout_s=self.timeout_s,
            headers=self._headers,
        )
        what = f"GET {self.base_url}{path_qs}"
        if answer.status == 401:
            hint = (
                "credentials refused" if self._headers else "login enabled: set username/password"
            )
            raise DeviceAuthError(f"{what}: 401 ({hint})")
        if answer.status != 200:
            text = answer.body[:80].decode("utf-8", "replace")
            raise DeviceProtocolError(f"{what}: HTTP {answer.status} {text!r}")
        return decode_json(answer, what)

    async def status(self) -> Mapping[str, Any]:
        """The whole ``/status`` document."""
        doc = await self.get("/status")
        if not isinstance(doc, Mapping):
            raise DeviceProtocolError("/status: expected a JSON object")
        return doc

    async def read_phases(self) -> MeterReading:
        """EM/3EM channels from ``/status``."""
        self._need_meter()
        doc = await self.status()
        return parse_emeters(doc, self.channel_count, self.clock.monotonic())

    async def read_power(self, channel: int = 0) -> PowerReading:
        """Plug/1PM meter ``channel`` from ``/status``."""
        self._need_power(channel)
        doc = await self.status()
        return parse_plug_meter(doc, channel, self.clock.monotonic())

    async def set_output(self, channel: int, on: bool) -> None:
        """``/relay/<channel>?turn=on|off``; DeviceProtocolError if the answer disagrees."""
        self._need_output(channel)
        relay = await self.get(f"/relay/{channel}?turn={'on' if on else 'off'}")
        if parse_relay(relay, f"/relay/{channel}") != on:
            raise DeviceProtocolError(f"relay {channel} did not switch {'on' if on else 'off'}")

    async def read_output(self, channel: int = 0) -> bool:
        """``/relay/<channel>`` → on/off."""
        self._need_output(channel)
        return parse_relay(await self.get(f"/relay/{channel}"), f"/relay/{channel}")

"""OpenDTU driver (registry: "opendtu"): Hoymiles micro-inverters behind an OpenDTU gateway.

Facts (reference devices.md §3, vectors ``opendtu-*.json``):

* ``GET /api/livedata/status`` lists every inverter. Firmware from 2024-01-29 on gives only
  summary fields there; the channel values of one inverter come with ``?inv=<serial>``. The
  DTU polls each inverter every few seconds (5 s by default), so the driver asks for an
  inverter's details only when its ``data_age`` shows a poll newer than the details it has:
  one summary request per read, plus one detail request per inverter with new data.
* ``GET /api/limit/status``: limit %, nameplate W and ``limit_set_status`` per serial.
* ``POST /api/limit/config`` / ``/api/power/config``: form field ``data`` holding JSON;
  limits are sent non-persistent (no EEPROM wear, forgotten on a restart), relative
  (``limit_type`` 1, what the features use) or absolute (``set_limit_w``, type 0). Power
  on/off as JSON booleans (firmware from 2024-09 refuses 0/1). The answer is always HTTP 200;
  its ``type`` tells success.
* Auth: HTTP Basic ``admin:<password>`` (POSTs always; GETs too when read-only access is off).
  ``X-Requested-With`` keeps the DTU from sending a browser challenge.
* ``GET /api/system/status``: hostname and firmware (identity); missing on some builds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from ...clock import Clock
from ...errors import ConfigError, DeviceAuthError, DeviceError, DeviceProtocolError
from ..base import Connection, DeviceIdentity, InverterReading, LimitStatus
from ..http import basic_auth_header, decode_json, http_request
from .parse import (
    inverter_family,
    parse_command_reply,
    parse_limit_status,
    parse_livedata,
    parse_system_status,
)

__all__ = ["NEW_DATA_S", "OpenDtu", "inverter_family", "open_device"]

NEW_DATA_S = 1.5
"""An inverter's data counts as a new poll when it is this much newer than the details held
(``data_age`` is whole seconds on older firmware)."""


class _Api:
    """HTTP to one OpenDTU through the caller's session."""

    def __init__(self, session: aiohttp.ClientSession, conn: Connection) -> None:
        """Requests go to ``http://<conn.host>`` within ``conn.timeout_s`` each."""
        self.session = session
        self.url = f"http://{conn.host}"
        self.timeout_s = conn.timeout_s
        self.headers = {"X-Requested-With": "XMLHttpRequest"}
        self.authenticated = conn.password is not None
        if conn.password is not None:
            user = conn.username or "admin"
            self.headers["Authorization"] = basic_auth_header(user, conn.password)

    async def call(self, method: str, path: str, form: Mapping[str, Any] | None = None) -> Any:
        """One request -> decoded JSON (DeviceAuthError on 401, DeviceProtocolError otherwise)."""
        url = f"{self.url}{path}"
        headers = dict(self.headers)
        body = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode({"data": json.dumps(form, separators=(",", ":"))}).encode()
        answer = await http_request(
            self.session, method, url, timeout_s=self.timeout_s, headers=headers, body=body
        )
        what = f"{method} {url}"
        if answer.status == 401:
            hint = "password refused" if self.authenticated else "password required: set password"
            raise DeviceAuthError(f"{what}: 401 ({hint})")
        if answer.status != 200:
            head = answer.body[:80].decode("utf-8", "replace")
            raise DeviceProtocolError(f"{what}: HTTP {answer.status} {head!r}")
        return decode_json(answer, what)

    async def command(self, path: str, form: Mapping[str, Any]) -> None:
        """POST a command; DeviceProtocolError naming the DTU's message when it is refused."""
        what = f"POST {self.url}{path}"
        reply = parse_command_reply(await self.call("POST", path, form), what)
        if not reply.ok:
            raise DeviceProtocolError(f"{what} refused: {reply.message} (code {reply.code})")


class OpenDtu:
    """An OpenDTU: implements ``PowerLimiter`` (see ``devices.base``)."""

    def __init__(
        self, api: _Api, identity: DeviceIdentity, serials: tuple[str, ...], *, clock: Clock
    ) -> None:
        """A DTU already identified by :func:`open_device`; nothing is sent here."""
        self._api = api
        self._identity = identity
        self._serials = serials
        self._clock = clock
        self._details: dict[str, InverterReading] = {}
        self._nameplates: dict[str, float] = {}

    @property
    def identity(self) -> DeviceIdentity:
        """Hostname, build and firmware of the DTU."""
        return self._identity

    @property
    def inverter_serials(self) -> tuple[str, ...]:
        """Serials listed by the last livedata answer, in the DTU's order."""
        return self._serials

    async def read_inverters(self) -> tuple[InverterReading, ...]:
        """Every inverter: summary now, channel values of its last poll (fetched when new)."""
        doc = await self._api.call("GET", "/api/livedata/status")
        summary = parse_livedata(doc, self._clock.monotonic())
        self._serials = tuple(r.serial for r in summary)
        out = [self._merge(reading, await self._detail_for(reading)) for reading in summary]
        for gone in set(self._details) - set(self._serials):
            del self._details[gone]
        return tuple(out)

    async def _detail_for(self, summary: InverterReading) -> InverterReading | None:
        if summary.detailed:  # 2023 firmware: the channels come with the summary
            self._details[summary.serial] = summary
            return summary
        held = self._details.get(summary.serial)
        if held is not None and summary.data_at <= held.data_at + NEW_DATA_S:
            return held
        path = f"/api/livedata/status?inv={quote(summary.serial)}"
        doc = await self._api.call("GET", path)
        found = [r for r in parse_livedata(doc, self._clock.monotonic()) if r.detailed]
        match = [r for r in found if r.serial == summary.serial]
        if not match:
            raise DeviceProtocolError(f"GET {path}: no channel data for {summary.serial}")
        self._details[summary.serial] = match[0]
        return match[0]

    def _merge(self, summary: InverterReading, detail: InverterReading | None) -> InverterReading:
        nameplate = summary.max_power_w or self._nameplates.get(summary.serial)
        if nameplate is not None:
            self._nameplates[summary.serial] = nameplate
        merged = summary
        if detail is not None and detail is not summary:
            # channel values from the detail, as old as the poll they came from
            merged = replace(
                detail,
                name=summary.name,
                reachable=summary.reachable,
                producing=summary.producing,
                data_at=min(summary.data_at, detail.data_at),
                taken_at=summary.taken_at,
                limit_pct=summary.limit_pct,
                limit_w=summary.limit_w,
                dc_inputs=detail.dc_inputs or summary.dc_inputs,
            )
        if nameplate is None:
            return merged
        limit_w = merged.limit_w
        if limit_w is None and merged.limit_pct is not None:
            limit_w = round(merged.limit_pct * nameplate / 100.0, 1)
        return replace(merged, max_power_w=nameplate, limit_w=limit_w)

    async def read_limits(self) -> dict[str, LimitStatus]:
        """Limit %, nameplate W and ``limit_set_status`` per serial."""
        doc = await self._api.call("GET", "/api/limit/status")
        limits = parse_limit_status(doc, self._clock.monotonic())
        for serial, status in limits.items():
            if status.max_power_w is not None:
                self._nameplates[serial] = status.max_power_w
        return limits

    async def set_limit(self, serial: str, percent: int) -> None:
        """Queue a relative non-persistent limit; ValueError outside 0..100 %."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"limit {percent!r}: expected a whole percent 0..100")
        form = {"serial": serial, "limit_type": 1, "limit_value": percent}
        await self._api.command("/api/limit/config", form)

    async def set_limit_w(self, serial: str, watts: int) -> None:
        """Queue an absolute non-persistent limit (W, ``limit_type`` 0); ValueError if < 0.

        Not what the features use: on hardware the DTU has not identified, an absolute limit
        can take minutes to show in ``limit_absolute`` (reference devices.md §3.4), while the
        relative one is acknowledged like any other.
        """
        if isinstance(watts, bool) or not isinstance(watts, int) or not 0 <= watts <= 2250:
            raise ValueError(f"limit {watts!r}: expected whole watts 0..2250")
        form = {"serial": serial, "limit_type": 0, "limit_value": watts}
        await self._api.command("/api/limit/config", form)

    async def set_power(self, serial: str, on: bool) -> None:
        """Queue switching the inverter's output on or off."""
        await self._api.command("/api/power/config", {"serial": serial, "power": bool(on)})

    async def restart(self, serial: str) -> None:
        """Queue a restart of the inverter."""
        await self._api.command("/api/power/config", {"serial": serial, "restart": True})


async def open_device(session: aiohttp.ClientSession, conn: Connection, *, clock: Clock) -> OpenDtu:
    """Identify the DTU and list its inverters; ConfigError for options it does not take."""
    if conn.options:
        raise ConfigError(f"the opendtu driver has no option {', '.join(sorted(conn.options))}")
    api = _Api(session, conn)
    try:
        identity = parse_system_status(await api.call("GET", "/api/system/status"))
    except DeviceAuthError:
        raise
    except DeviceError:  # some builds lack it: the livedata below still proves an OpenDTU
        identity = DeviceIdentity("OpenDTU", "OpenDTU", conn.host.partition(":")[0], "")
    summary = parse_livedata(await api.call("GET", "/api/livedata/status"), clock.monotonic())
    return OpenDtu(api, identity, tuple(r.serial for r in summary), clock=clock)

"""OpenDTU emulator: the web API of firmware v24.2.12 (the captured payloads) over inverters.

``layout="2023"`` serves the livedata layout of the 2023 firmware instead (capture
henne49/dbus-opendtu ``docs/opendtu_status.json``, MIT; reference devices.md §3.2): every
inverter of the plain call carries ``AC``/``DC``/``INV``, ``Power DC``, ``YieldDay``,
``YieldTotal`` and ``Efficiency`` sit under ``AC`` and ``INV`` holds only the temperature; no
``order``/``poll_enabled``; ``?inv=`` is ignored (that firmware had no such parameter [U]).

Endpoints:

* ``GET /api/livedata/status`` - ``{inverters: [summary...], total, hints}``; with ``?inv=<serial>``
  only that inverter plus ``AC``/``DC``/``INV`` channel objects and ``events``; an unknown serial
  gives ``inverters: []`` (as the firmware does). The serial is parsed as hex, like the firmware.
  Values are ``{"v", "u", "d"}`` objects rounded through float32 as the device prints them:
  W, V, A, Hz, var; ``YieldDay`` Wh, ``YieldTotal`` kWh. ``current_firmware=True`` adds
  ``data_age_ms``, ``radio_stats`` and ``hints.pin_mapping_issue`` (newer firmware).
* ``GET /api/limit/status`` - ``{serial: {limit_relative, max_power, limit_set_status}}``.
* ``POST /api/limit/config`` - form field ``data`` = JSON ``{serial, limit_type, limit_value}``
  (types 0 = absolute W, 1 = relative %, 2/3 = the persistent ones); queues
  ``InverterBank.command_limit`` and the status goes ``Pending`` → ``Ok`` after the bank's dead
  time. Answers are always status 200 ``{type, message, code}``: success 1001; 1002 no ``data``,
  1003 data > 1024 chars, 1004 not JSON, 1005 values missing, 5001 serial not > 0, 5002 limit
  outside 0..2250 (with ``param.max``; negatives rejected as OpenDTU-OnBattery does), 5003
  bad type, 5004 unknown inverter. The limit is truncated to an integer as the firmware does.
* ``GET /api/power/status``; ``POST /api/power/config`` - ``data={serial, power: bool}`` or
  ``{serial, restart: true}``; errors 1002-1005, 11001 serial zero, 11002 unknown inverter.
* ``GET /api/system/status`` - a subset (hostname, uptime, versions, radio flags).

Auth: HTTP Basic ``admin:<password>`` (default ``openDTU42``) on every POST, and on GETs too when
``allow_readonly=False``; a 401 carries ``WWW-Authenticate: Basic realm="Login Required"``
unless the request has an ``X-Requested-With`` header. Fault modes: see ``faults``; ``auth``
refuses the GETs too (as a DTU with read-only access off and another password would);
``http500`` answers the firmware's ``{"message", "code": 1007, "type": "danger"}``.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any, Literal

from aiohttp import web

from ...clock import Clock
from .auth import basic_credentials_ok
from .faults import EmulatorServer
from .inverters import InverterBank, InverterStatus

__all__ = ["DEFAULT_PASSWORD", "MAX_INVERTER_LIMIT", "OpenDtuEmulator"]

DEFAULT_PASSWORD = "openDTU42"  # noqa: S105 - the firmware's documented default
MAX_INVERTER_LIMIT = 2250
_HEX = re.compile(r"\s*([0-9a-fA-F]+)")


def _f32(value: float) -> float:
    """The value as a float32 printed with 9 significant digits (what ArduinoJson sends)."""
    if not math.isfinite(value):
        return 0.0
    return float(f"{struct.unpack('f', struct.pack('f', value))[0]:.9g}")


def _field(value: float, unit: str, digits: int) -> dict[str, Any]:
    return {"v": _f32(value), "u": unit, "d": digits}


def _hex_serial(text: object) -> int:
    """Leading hex digits as a number (``strtoll(s, NULL, 16)``), 0 if there are none."""
    match = _HEX.match(str(text))
    return int(match.group(1), 16) if match else 0


def _message(kind: str, message: str, code: int, **extra: Any) -> web.Response:
    return web.json_response({"type": kind, "message": message, "code": code, **extra})


class OpenDtuEmulator(EmulatorServer):
    """An OpenDTU on loopback in front of an ``InverterBank``."""

    def __init__(
        self,
        bank: InverterBank,
        *,
        password: str = DEFAULT_PASSWORD,
        allow_readonly: bool = True,
        current_firmware: bool = False,
        layout: Literal["2024", "2023"] = "2024",
        hostname: str = "OpenDTU-1A2B3C",
        clock: Clock | None = None,
        port: int = 0,
    ) -> None:
        """Serve ``bank``; ``allow_readonly`` False also protects the GET endpoints."""
        super().__init__(clock=clock, port=port)
        self.bank = bank
        self.password = password
        self.allow_readonly = allow_readonly
        self.current_firmware = current_firmware
        self.layout = layout
        self.hostname = hostname
        self._boot = self.clock.monotonic()

    def add_routes(self, app: web.Application) -> None:
        """The ``/api/...`` endpoints listed in the module docstring."""
        app.router.add_get("/api/livedata/status", self._livedata)
        app.router.add_get("/api/limit/status", self._limit_status)
        app.router.add_post("/api/limit/config", self._limit_config)
        app.router.add_get("/api/power/status", self._power_status)
        app.router.add_post("/api/power/config", self._power_config)
        app.router.add_get("/api/system/status", self._system_status)

    async def is_protected(self, request: web.Request) -> bool:
        """POSTs always; GETs when read-only access is disabled or in fault mode ``auth``."""
        return request.method != "GET" or not self.allow_readonly or self.faults.mode == "auth"

    async def check_auth(self, request: web.Request) -> web.StreamResponse | None:
        """Basic ``admin:<password>``."""
        header = request.headers.get("Authorization")
        if basic_credentials_ok(header, "admin", self.password):
            return None
        return await self.challenge(request)

    async def challenge(self, request: web.Request) -> web.StreamResponse:
        """401; the browser challenge header unless ``X-Requested-With`` was sent."""
        headers = {}
        if "X-Requested-With" not in request.headers:
            headers["WWW-Authenticate"] = 'Basic realm="Login Required"'
        return web.Response(status=401, headers=headers)

    def error_500(self) -> web.StreamResponse:
        """The firmware's JSON answer to an oversized response."""
        body = {
            "message": "500 Internal Server Error: onLivedataStatus, 216",
            "code": 1007,
            "type": "danger",
        }
        return web.json_response(body, status=500)

    # --- GET ----------------------------------------------------------------------------------

    def _summary(self, inv: InverterStatus) -> dict[str, Any]:
        out: dict[str, Any] = {
            "serial": inv.serial,
            "name": inv.name,
            "order": inv.order,
            "data_age": int(inv.data_age_s),
        }
        if self.current_firmware:
            out["data_age_ms"] = int(inv.data_age_s * 1000)
        out.update(
            poll_enabled=inv.poll_enabled,
            reachable=inv.reachable,
            producing=inv.producing,
            limit_relative=_f32(inv.limit_relative_pct),
            limit_absolute=_f32(inv.limit_absolute_w),
        )
        if self.current_firmware:
            out["radio_stats"] = {
                "tx_request": 0,
                "tx_re_request": 0,
                "rx_success": 0,
                "rx_fail_nothing": 0,
                "rx_fail_partial": 0,
                "rx_fail_corrupt": 0,
                "rssi": -62,
            }
        return out

    def _detail(self, inv: InverterStatus) -> dict[str, Any]:
        out = self._summary(inv)
        ac = inv.ac
        out["AC"] = {
            "0": {
                "Power": _field(ac.power_w, "W", 1),
                "Voltage": _field(ac.voltage_v, "V", 1),
                "Current": _field(ac.current_a, "A", 2),
                "Frequency": _field(ac.frequency_hz, "Hz", 2),
                "PowerFactor": _field(ac.power_factor, "", 3),
                "ReactivePower": _field(ac.reactive_var, "var", 1),
            }
        }
        dc: dict[str, Any] = {}
        for i, ch in enumerate(inv.dc):
            chan: dict[str, Any] = {
                "name": {"u": ch.name},
                "Power": _field(ch.power_w, "W", 1),
                "Voltage": _field(ch.voltage_v, "V", 1),
                "Current": _field(ch.current_a, "A", 2),
                "YieldDay": _field(ch.yield_day_wh, "Wh", 0),
                "YieldTotal": _field(ch.yield_total_kwh, "kWh", 3),
            }
            irradiation = ch.irradiation_pct
            if irradiation is not None and ch.peak_wp is not None:
                chan["Irradiation"] = {**_field(irradiation, "%", 3), "max": int(ch.peak_wp)}
            dc[str(i)] = chan
        out["DC"] = dc
        out["INV"] = {
            "0": {
                "Power DC": _field(inv.power_dc_w, "W", 1),
                "YieldDay": _field(inv.yield_day_wh, "Wh", 0),
                "YieldTotal": _field(inv.yield_total_kwh, "kWh", 3),
                "Temperature": _field(inv.temperature_c, "°C", 1),
                "Efficiency": _field(inv.efficiency_pct, "%", 3),
            }
        }
        out["events"] = inv.events
        return out

    def _legacy(self, inv: InverterStatus) -> dict[str, Any]:
        """One inverter in the 2023 layout (summary, channels and all in one object)."""
        new = self._detail(inv)
        inv0 = new["INV"]["0"]
        ac0 = new["AC"]["0"]
        return {
            "serial": inv.serial,
            "name": inv.name,
            "data_age": int(inv.data_age_s),
            "reachable": inv.reachable,
            "producing": inv.producing,
            "limit_relative": _f32(inv.limit_relative_pct),
            "limit_absolute": _f32(inv.limit_absolute_w),
            "AC": {
                "0": {
                    "Power": ac0["Power"],
                    "Voltage": ac0["Voltage"],
                    "Current": ac0["Current"],
                    "Power DC": inv0["Power DC"],
                    "YieldDay": inv0["YieldDay"],
                    "YieldTotal": inv0["YieldTotal"],
                    "Frequency": ac0["Frequency"],
                    "PowerFactor": ac0["PowerFactor"],
                    "ReactivePower": ac0["ReactivePower"],
                    "Efficiency": inv0["Efficiency"],
                }
            },
            # that firmware's Irradiation had no "max" (Wp) yet
            "DC": {
                key: {
                    name: {k: v for k, v in value.items() if k != "max"}
                    if name == "Irradiation"
                    else value
                    for name, value in chan.items()
                }
                for key, chan in new["DC"].items()
            },
            "INV": {"0": {"Temperature": inv0["Temperature"]}},
            "events": inv.events,
        }

    def livedata(self, inv_param: str | None = None) -> dict[str, Any]:
        """``/api/livedata/status`` (``inv_param`` = the ``?inv=`` value)."""
        inverters = list(self.bank.inverters())
        wanted = _hex_serial(inv_param) if inv_param is not None else 0
        if self.layout == "2023":
            listed = [self._legacy(i) for i in inverters]
        elif wanted > 0:
            listed = [self._detail(i) for i in inverters if _hex_serial(i.serial) == wanted]
        else:
            listed = [self._summary(i) for i in inverters]
        polled = [i for i in inverters if i.poll_enabled]
        hints: dict[str, Any] = {
            "time_sync": False,
            "radio_problem": False,
            "default_password": self.password == DEFAULT_PASSWORD,
        }
        if self.current_firmware:
            hints["pin_mapping_issue"] = False
        return {
            "inverters": listed,
            "total": {
                "Power": _field(sum(i.ac.power_w for i in polled), "W", 1),
                "YieldDay": _field(sum(i.yield_day_wh for i in polled), "Wh", 0),
                "YieldTotal": _field(sum(i.yield_total_kwh for i in polled), "kWh", 3),
            },
            "hints": hints,
        }

    async def _livedata(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.livedata(request.query.get("inv")))

    async def _limit_status(self, request: web.Request) -> web.StreamResponse:
        body = {
            i.serial: {
                "limit_relative": _f32(i.limit_relative_pct),
                "max_power": int(i.max_power_w),
                "limit_set_status": i.limit_set_status,
            }
            for i in self.bank.inverters()
        }
        return web.json_response(body)

    async def _power_status(self, request: web.Request) -> web.StreamResponse:
        body = {i.serial: {"power_set_status": i.power_set_status} for i in self.bank.inverters()}
        return web.json_response(body)

    async def _system_status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "hostname": self.hostname,
                "sdkversion": "v4.4.6",
                "cpufreq": 240,
                "heap_total": 282748,
                "heap_used": 174216,
                "uptime": int(self.clock.monotonic() - self._boot),
                "config_version": "0.1.29",
                "git_hash": "v24.2.12",
                "git_branch": "master",
                "pioenv": "generic_esp32",
                "nrf_configured": True,
                "nrf_connected": True,
                "cmt_configured": False,
                "cmt_connected": False,
            }
        )

    # --- POST ---------------------------------------------------------------------------------

    async def _data(
        self, request: web.Request, required: tuple[str, ...], any_of: tuple[str, ...]
    ) -> dict[str, Any] | web.Response:
        form = await request.post()
        raw = form.get("data")
        if not isinstance(raw, str):
            return _message("warning", "No values found!", 1002)
        if len(raw) > 1024:
            return _message("warning", "Data too large!", 1003)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _message("warning", "Failed to parse data!", 1004)
        if any(k not in data for k in required) or not any(k in data for k in any_of):
            return _message("warning", "Values are missing!", 1005)
        return data

    def _find(self, serial: int) -> str | None:
        for inv in self.bank.inverters():
            if _hex_serial(inv.serial) == serial:
                return inv.serial
        return None

    async def _limit_config(self, request: web.Request) -> web.StreamResponse:
        data = await self._data(request, ("serial", "limit_value"), ("limit_type",))
        if isinstance(data, web.Response):
            return data
        serial = _hex_serial(data["serial"])
        if serial == 0:
            return _message("warning", "Serial must be a number > 0!", 5001)
        value = data["limit_value"]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 <= value <= MAX_INVERTER_LIMIT
        ):
            return _message(
                "warning",
                f"Limit must between 0 and {MAX_INVERTER_LIMIT}!",
                5002,
                param={"max": MAX_INVERTER_LIMIT},
            )
        kind = data["limit_type"]
        if isinstance(kind, bool) or kind not in (0, 1, 2, 3):
            return _message("warning", "Invalid type specified!", 5003)
        target = self._find(serial)
        if target is None:
            return _message("warning", "Invalid inverter specified!", 5004)
        self.bank.command_limit(
            target, float(int(value)), relative=kind in (1, 3), persistent=kind in (2, 3)
        )
        return _message("success", "Settings saved!", 1001)

    async def _power_config(self, request: web.Request) -> web.StreamResponse:
        data = await self._data(request, ("serial",), ("power", "restart"))
        if isinstance(data, web.Response):
            return data
        serial = _hex_serial(data["serial"])
        if serial == 0:
            return _message("warning", "Serial must be a number > 0!", 11001)
        target = self._find(serial)
        if target is None:
            return _message("warning", "Invalid inverter specified!", 11002)
        if "power" in data:
            self.bank.command_power(target, bool(data["power"]))
        elif data["restart"] is True:
            self.bank.command_restart(target)
        return _message("success", "Settings saved!", 1001)

"""Shelly gen1 emulator: EM (``SHEM``), 3EM (``SHEM-3``), Plug S (``SHPLG-S``), 1PM (``SHSW-PM``).

Endpoints (all GET):

* ``/shelly`` - identity (``type, mac, auth, fw, ...``); never protected.
* ``/status`` - full status, shaped like the captured firmware (EM: fw 1.12.1; 3EM and plugs:
  fw 1.14.0).
* ``/relay/0`` - the relay object; ``?turn=on|off|toggle`` switches it through the
  ``SwitchSource`` (``source: "http"``), ``&timer=<s>`` flips it back after that many clock
  seconds. A bad ``turn``/``timer`` gives 400 with a text body, another relay index 404.
* ``/emeter/<i>`` (EM, 3EM) - one ``emeters[i]`` object; ``/meter/0`` (plugs) - ``meters[0]``.

Values come from the protocol objects at request time. Signs and units as the real devices:
``emeters[].power`` W signed (+ = forward/import, pf passed through), 3EM ``current`` unsigned,
``total``/``total_returned`` Wh; plug ``power`` W unsigned, ``total`` and ``counters`` (the last
three whole minutes, newest first) in watt-minutes, ``timestamp`` = local time as unix seconds.

Auth: with ``credentials=(user, password)`` every endpoint but ``/shelly`` needs HTTP Basic and
answers 401 otherwise. Fault modes: see ``faults``; ``http500`` answers a text body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from aiohttp import web

from ...clock import Clock
from ...errors import ConfigError
from .auth import basic_credentials_ok
from .counters import MinuteEnergy
from .faults import EmulatorServer
from .relay import RelayControl
from .sources import MemorySwitch, MeterSource, PhaseReading, SwitchSource

__all__ = ["Gen1Identity", "Gen1Model", "ShellyGen1Emulator"]

Gen1Model = Literal["SHEM", "SHEM-3", "SHPLG-S", "SHSW-PM"]

_FW = {
    "SHEM": "20221027-105518/v1.12.1-ga9117d3",
    "SHEM-3": "20230913-114244/v1.14.0-gcb84623",
    "SHPLG-S": "20230913-113421/v1.14.0-gcb84623",
    "SHSW-PM": "20230913-112003/v1.14.0-gcb84623",
}
_BETA = "20231107-165007/v1.14.1-rc1-g0617c15"
_HOST = {
    "SHEM": "shellyem",
    "SHEM-3": "shellyem3",
    "SHPLG-S": "shellyplug-s",
    "SHSW-PM": "shelly1pm",
}
_CHANNELS = {"SHEM": 2, "SHEM-3": 3}


@dataclass(frozen=True)
class Gen1Identity:
    """What ``/shelly`` reports; ``fw`` None = the captured firmware of the model."""

    mac: str = "C45BBE6A1F20"
    name: str | None = None
    fw: str | None = None
    utc_offset_s: int = 3600
    serial: int = 1


def _r(value: float, digits: int) -> float:
    return round(value, digits) + 0.0


class ShellyGen1Emulator(EmulatorServer):
    """One gen1 device on loopback: a meter (EM, 3EM) or a metered relay (Plug S, 1PM)."""

    open_paths = frozenset({"/shelly"})

    def __init__(
        self,
        model: Gen1Model,
        *,
        meter: MeterSource | None = None,
        switch: SwitchSource | None = None,
        identity: Gen1Identity | None = None,
        credentials: tuple[str, str] | None = None,
        clock: Clock | None = None,
        port: int = 0,
    ) -> None:
        """EM/3EM need a 2/3-channel ``meter``; plugs a ``switch``; ConfigError otherwise."""
        super().__init__(clock=clock, port=port)
        if model not in _FW:
            raise ConfigError(f"unknown Shelly gen1 model {model!r}; one of {', '.join(_FW)}")
        self.model = model
        self.identity = identity if identity is not None else Gen1Identity()
        self.credentials = credentials
        if model in _CHANNELS:
            if meter is None or len(meter.read()) != _CHANNELS[model]:
                raise ConfigError(f"Shelly {model} needs a meter with {_CHANNELS[model]} channels")
            self.meter: MeterSource | None = meter
            relay_source: SwitchSource = switch if switch is not None else MemorySwitch()
        else:
            if switch is None:
                raise ConfigError(f"Shelly {model} needs a switch source")
            self.meter = None
            relay_source = switch
        self.relay = RelayControl(relay_source, self.clock, self.spawn)
        self._minutes = MinuteEnergy()
        self._boot = self.clock.monotonic()
        if self.meter is None:
            self._plug_meter()

    @property
    def hostname(self) -> str:
        """Device hostname, e.g. ``shellyem-BE6A1F20`` (also the Basic realm)."""
        return f"{_HOST[self.model]}-{self.identity.mac[-6:]}"

    # --- aiohttp ------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Register ``/shelly``, ``/status``, ``/relay/<i>``, ``/emeter/<i>`` or ``/meter/<i>``."""
        app.router.add_get("/shelly", self._shelly)
        app.router.add_get("/status", self._status)
        app.router.add_get("/relay/{index}", self._relay)
        app.router.add_get("/emeter/{index}" if self.meter else "/meter/{index}", self._one_meter)

    async def check_auth(self, request: web.Request) -> web.StreamResponse | None:
        """Basic auth when credentials are configured."""
        if self.credentials is None:
            return None
        user, password = self.credentials
        if basic_credentials_ok(request.headers.get("Authorization"), user, password):
            return None
        return await self.challenge(request)

    async def challenge(self, request: web.Request) -> web.StreamResponse:
        """401 with a Basic challenge for the device's hostname."""
        return web.Response(
            status=401,
            text="401 Unauthorized",
            headers={"WWW-Authenticate": f'Basic realm="{self.hostname}"'},
        )

    async def _shelly(self, request: web.Request) -> web.StreamResponse:
        ident = self.identity
        body: dict[str, Any] = {
            "type": self.model,
            "mac": ident.mac,
            "auth": self.credentials is not None,
            "fw": ident.fw or _FW[self.model],
            "discoverable": True,
            "name": ident.name,
            "num_outputs": 1,
            "num_meters": 0 if self.meter else 1,
        }
        if self.meter is not None:
            body["num_emeters"] = _CHANNELS[self.model]
        return web.json_response(body)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.status())

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["index"] != "0":
            return web.Response(status=404, text="Not Found")
        turn = request.query.get("turn")
        timer_text = request.query.get("timer")
        timer: float | None = None
        if timer_text is not None:
            try:
                timer = float(timer_text)
            except ValueError:
                return web.Response(status=400, text="Bad timer!")
            if not timer >= 0:
                return web.Response(status=400, text="Bad timer!")
        if turn is not None:
            if turn not in ("on", "off", "toggle"):
                return web.Response(status=400, text="Bad turn!")
            on = (not self.relay.switch.read().output) if turn == "toggle" else turn == "on"
            self.relay.turn(on, source="http", flip_after_s=timer)
        return web.json_response(self._relay_obj())

    async def _one_meter(self, request: web.Request) -> web.StreamResponse:
        meters = self._emeters() if self.meter is not None else [self._plug_meter()]
        try:
            index = int(request.match_info["index"])
            if index < 0:
                raise IndexError(index)
            return web.json_response(meters[index])
        except (ValueError, IndexError):
            return web.Response(status=404, text="Not Found")

    # --- payloads -----------------------------------------------------------------------------

    def _unix(self) -> float:
        return self.clock.now().timestamp()

    def _relay_obj(self) -> dict[str, Any]:
        timer = self.relay.timer()
        obj: dict[str, Any] = {
            "ison": self.relay.switch.read().output,
            "has_timer": timer is not None,
            "timer_started": int(timer[0]) if timer else 0,
            "timer_duration": _r(timer[1], 0) if timer else 0,
            "timer_remaining": _r(timer[2], 0) if timer else 0,
            "overpower": False,
        }
        if self.meter is not None:
            obj["is_valid"] = True
        obj["source"] = self.relay.source
        return obj

    def _emeters(self) -> list[dict[str, Any]]:
        assert self.meter is not None
        channels: list[PhaseReading] = list(self.meter.read())
        out = []
        for ch in channels:
            obj: dict[str, Any] = {"power": _r(ch.power_w, 2)}
            if self.model == "SHEM":
                obj["reactive"] = _r(ch.reactive_var, 2)
            obj["pf"] = _r(ch.power_factor, 2)
            if self.model == "SHEM-3":
                obj["current"] = _r(ch.current_a, 2)
            obj.update(
                voltage=_r(ch.voltage_v, 2),
                is_valid=True,
                total=_r(ch.energy_forward_wh, 1),
                total_returned=_r(ch.energy_reverse_wh, 1),
            )
            out.append(obj)
        return out

    def _plug_meter(self) -> dict[str, Any]:
        reading = self.relay.switch.read()
        unix = self._unix()
        total_wh = reading.energy_wh + reading.returned_energy_wh
        self._minutes.sample(unix, total_wh)
        counters = [_r(wh * 60.0, 3) for wh in self._minutes.last_minutes_wh(unix)]
        return {
            "power": _r(abs(reading.power_w), 2),
            "overpower": 0.0,
            "is_valid": True,
            "timestamp": int(unix) + self.identity.utc_offset_s,
            "counters": counters,
            "total": round(total_wh * 60.0),
        }

    def status(self) -> dict[str, Any]:
        """The ``/status`` document as of now."""
        now = self.clock.now()
        local = now + timedelta(seconds=self.identity.utc_offset_s)
        fw = self.identity.fw or _FW[self.model]
        body: dict[str, Any] = {
            "wifi_sta": {
                "connected": True,
                "ssid": "venus-ems-sim",
                "ip": "127.0.0.1",
                "rssi": -55,
            },
            "cloud": {"enabled": False, "connected": False},
            "mqtt": {"connected": False},
            "time": local.strftime("%H:%M"),
            "unixtime": int(now.timestamp()),
            "serial": self.identity.serial,
            "has_update": False,
            "mac": self.identity.mac,
            "cfg_changed_cnt": 0,
            "actions_stats": {"skipped": 0},
            "relays": [self._relay_obj()],
        }
        if self.meter is not None:
            emeters = self._emeters()
            body["emeters"] = emeters
            if self.model == "SHEM-3":
                body["total_power"] = _r(sum(e["power"] for e in emeters), 2)
                body["emeter_n"] = {
                    "current": 0,
                    "ixsum": _r(sum(e["current"] for e in emeters), 2),
                    "mismatch": False,
                    "is_valid": False,
                }
                body.update(fs_mounted=True, v_data=1, ct_calst=0)
        else:
            reading = self.relay.switch.read()
            body["meters"] = [self._plug_meter()]
            temp = reading.temperature_c
            body.update(
                temperature=_r(temp, 2),
                overtemperature=False,
                tmp={"tC": _r(temp, 2), "tF": _r(temp * 9 / 5 + 32, 2), "is_valid": True},
            )
            if self.model == "SHSW-PM":
                body["inputs"] = [{"input": 0, "event": "", "event_cnt": 0}]
                body["temperature_status"] = "Normal"
        update: dict[str, Any] = {
            "status": "idle",
            "has_update": False,
            "new_version": fw,
            "old_version": fw,
        }
        if self.model != "SHEM":
            update["beta_version"] = _BETA
        body["update"] = update
        body.update(
            ram_total=51072,
            ram_free=35660,
            fs_size=233681,
            fs_free=156373,
            uptime=int(self.clock.monotonic() - self._boot),
        )
        return body

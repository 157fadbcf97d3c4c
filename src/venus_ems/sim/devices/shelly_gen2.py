"""Shelly gen2+ emulator: RPC over HTTP, device info and digest auth, built from components.

Endpoints:

* ``GET /shelly`` - device info (``id, mac, model, gen, fw_id, ver, app, auth_en, auth_domain``,
  ``profile`` on meters); never protected. Same object as ``Shelly.GetDeviceInfo``.
* ``GET /rpc/<Method>?k=v`` - values are JSON literals (``id=0``, ``on=true``, ``"text"``) or
  plain text. ``POST /rpc/<Method>`` takes the params as a JSON body. Both answer the bare
  result (status 200), or on error the bare ``{"code", "message"}`` with status 404 for code 404
  and 500 otherwise (as Mongoose OS does).
* ``POST /rpc`` - a JSON-RPC frame ``{id, src?, method, params?, auth?}``; the answer is
  ``{id, src: <device id>, dst: <your src>, result | error}`` with status 200 (401 if auth is
  refused); ``dst`` only if you sent ``src``. A body that is not a JSON object with a
  ``method`` gets 400 "Invalid request".

Devices are assembled from components by the factories in ``shelly_models`` (Pro 3EM, Pro EM,
EM gen3, Plus 1PM, 1PM Mini gen3, PM Mini gen3).

Methods: ``Shelly.GetStatus``, ``Shelly.GetDeviceInfo``, ``Shelly.ListMethods``,
``Shelly.Reboot`` (result null; resets uptime), ``Sys.GetStatus`` and per component
``<Type>.GetStatus`` plus ``Switch.Set``/``Switch.Toggle`` (see ``shelly_components``).
Errors: unknown method 404 "No handler for <Method>", missing/ill-typed parameter -103,
unknown component id -105 "Bad id=<n>".

Auth (``password=`` set): everything except ``/shelly`` and ``Shelly.GetDeviceInfo`` needs
Digest SHA-256 (``auth``); a refused request gets 401 with ``WWW-Authenticate: Digest ...``.
For ``POST /rpc`` frames the 401 body also carries the JSON-RPC error frame (code 401, the
challenge JSON-encoded in ``message``, as the device sends it over WebSocket); real devices
send that 401 over HTTP with an empty body, so clients must rely on the status and header.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from ...clock import Clock
from .auth import DigestSha256
from .faults import EmulatorServer
from .shelly_components import Component, check_action
from .shelly_rpc import RpcError, bad_id, no_handler, param_int, parse_query

__all__ = ["Gen2Identity", "ShellyGen2Emulator"]

_OPEN_METHODS = frozenset({"shelly.getdeviceinfo"})
_INVALID = "Invalid request"


@dataclass(frozen=True)
class Gen2Identity:
    """Device info: ``id`` is ``<id_prefix>-<mac lower case>`` (also the digest realm)."""

    model: str
    app: str
    id_prefix: str
    mac: str
    gen: int = 2
    name: str | None = None
    fw_id: str = "20231219-134001/1.1.0-g34b5d4f"
    ver: str = "1.1.0"
    profile: str | None = None

    @property
    def device_id(self) -> str:
        """E.g. ``shellypro3em-aabbccddeeff``."""
        return f"{self.id_prefix}-{self.mac.lower()}"


class ShellyGen2Emulator(EmulatorServer):
    """One gen2+ device; components are added by the factory functions below."""

    open_paths = frozenset({"/shelly", "/rpc/Shelly.GetDeviceInfo"})

    def __init__(
        self,
        identity: Gen2Identity,
        *,
        password: str | None = None,
        clock: Clock | None = None,
        port: int = 0,
    ) -> None:
        """A device without components yet; ``password`` enables digest auth."""
        super().__init__(clock=clock, port=port)
        self.identity = identity
        self.components: list[Component] = []
        self.digest = (
            None
            if password is None
            else DigestSha256(identity.device_id, password, clock=self.clock)
        )
        self._boot = self.clock.monotonic()
        self._methods: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "Shelly.GetStatus": lambda p: self.full_status(),
            "Shelly.GetDeviceInfo": lambda p: self.device_info(),
            "Shelly.ListMethods": lambda p: {"methods": self.method_names()},
            "Shelly.Reboot": self._reboot,
            "Sys.GetStatus": lambda p: self.sys_status(),
        }

    def add(self, component: Component) -> Component:
        """Add a component; ValueError if ``type:id`` already exists."""
        if any(c.key == component.key for c in self.components):
            raise ValueError(f"component {component.key} already exists")
        self.components.append(component)
        return component

    # --- RPC ----------------------------------------------------------------------------------

    def method_names(self) -> list[str]:
        """Every method this device answers (``Shelly.ListMethods``)."""
        names = set(self._methods)
        for c in self.components:
            names.update(f"{c.type_name}.{a}" for a in c.actions)
        return sorted(names)

    def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """Run one RPC method; RpcError as the device would answer."""
        for name, fn in self._methods.items():
            if name.lower() == method.lower():
                return fn(params)
        type_name, _, action = method.partition(".")
        same_type = [c for c in self.components if c.type_name.lower() == type_name.lower()]
        if not same_type:
            raise no_handler(method)
        action = check_action(same_type[0], action)
        wanted = param_int(params, "id")
        for c in same_type:
            if c.id == wanted:
                return c.call(action, params)
        raise bad_id(wanted)

    def _reboot(self, params: Mapping[str, Any]) -> None:
        self._boot = self.clock.monotonic()

    def device_info(self) -> dict[str, Any]:
        """``/shelly`` and ``Shelly.GetDeviceInfo``."""
        ident = self.identity
        info: dict[str, Any] = {
            "name": ident.name,
            "id": ident.device_id,
            "mac": ident.mac,
            "slot": 0,
            "model": ident.model,
            "gen": ident.gen,
            "fw_id": ident.fw_id,
            "ver": ident.ver,
            "app": ident.app,
            "auth_en": self.digest is not None,
            "auth_domain": None if self.digest is None else ident.device_id,
        }
        if ident.profile is not None:
            info["profile"] = ident.profile
        return info

    def sys_status(self) -> dict[str, Any]:
        """``Sys.GetStatus``: time, unix time, uptime (s) and housekeeping values."""
        now = self.clock.now()
        return {
            "mac": self.identity.mac,
            "restart_required": False,
            "time": (now + timedelta(hours=1)).strftime("%H:%M"),
            "unixtime": int(now.timestamp()),
            "uptime": int(self.clock.monotonic() - self._boot),
            "ram_size": 246284,
            "ram_free": 118712,
            "fs_size": 524288,
            "fs_free": 188416,
            "cfg_rev": 12,
            "kvs_rev": 0,
            "schedule_rev": 0,
            "webhook_rev": 0,
            "available_updates": {},
        }

    def full_status(self) -> dict[str, Any]:
        """``Shelly.GetStatus``: every component under ``type:id`` plus system sections."""
        status: dict[str, Any] = {
            "ble": {},
            "cloud": {"connected": False},
            "mqtt": {"connected": False},
            "sys": self.sys_status(),
            "wifi": {
                "sta_ip": "127.0.0.1",
                "status": "got ip",
                "ssid": "venus-ems-sim",
                "rssi": -55,
            },
            "ws": {"connected": False},
        }
        for c in self.components:
            status[c.key] = c.status()
        return dict(sorted(status.items()))

    # --- HTTP ---------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """``/shelly``, ``/rpc`` and ``/rpc/<Method>``."""
        app.router.add_get("/shelly", self._shelly)
        app.router.add_post("/rpc", self._frame)
        app.router.add_route("GET", "/rpc/{method}", self._rest)
        app.router.add_route("POST", "/rpc/{method}", self._rest)

    async def _shelly(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.device_info())

    async def _read_frame(self, request: web.Request) -> dict[str, Any] | None:
        try:
            frame = json.loads(await request.read())  # aiohttp caches the body
        except ValueError:
            return None
        if isinstance(frame, dict) and isinstance(frame.get("method"), str):
            return frame
        return None

    async def is_protected(self, request: web.Request) -> bool:
        """Everything but ``/shelly`` and ``Shelly.GetDeviceInfo`` (also inside a frame)."""
        if request.path == "/rpc" and request.method == "POST":
            frame = await self._read_frame(request)
            return frame is None or frame["method"].lower() not in _OPEN_METHODS
        if request.path.startswith("/rpc/"):
            return request.path[5:].lower() not in _OPEN_METHODS
        return request.path not in self.open_paths

    async def check_auth(self, request: web.Request) -> web.StreamResponse | None:
        """Digest header, or a valid ``auth`` object in a ``POST /rpc`` frame."""
        if self.digest is None:
            return None
        header = request.headers.get("Authorization")
        if self.digest.check_header(header, request.method, request.path_qs, request.path):
            return None
        if request.path == "/rpc":
            frame = await self._read_frame(request)
            if frame is not None and self.digest.check_frame(frame.get("auth")):
                return None
        return await self.challenge(request)

    async def challenge(self, request: web.Request) -> web.StreamResponse:
        """401 with the digest challenge (and the JSON-RPC error frame for ``POST /rpc``)."""
        digest = self.digest or DigestSha256(self.identity.device_id, "", clock=self.clock)
        headers = {"WWW-Authenticate": digest.www_authenticate()}
        frame = await self._read_frame(request) if request.path == "/rpc" else None
        if frame is None:
            return web.Response(status=401, headers=headers)
        error = RpcError(401, json.dumps(digest.challenge()))
        return web.json_response(self._reply(frame, error=error), status=401, headers=headers)

    def _reply(
        self, frame: Mapping[str, Any], *, result: Any = None, error: RpcError | None = None
    ) -> dict[str, Any]:
        reply: dict[str, Any] = {"id": frame.get("id"), "src": self.identity.device_id}
        if "src" in frame:
            reply["dst"] = frame["src"]
        if error is not None:
            reply["error"] = error.as_dict()
        else:
            reply["result"] = result
        return reply

    async def _frame(self, request: web.Request) -> web.StreamResponse:
        frame = await self._read_frame(request)
        if frame is None:
            return web.Response(status=400, text=_INVALID)
        params = frame.get("params") or {}
        if not isinstance(params, dict):
            error = RpcError(-103, "Invalid argument 'params'")
            return web.json_response(self._reply(frame, error=error))
        try:
            result = self.call(frame["method"], params)
        except RpcError as err:
            return web.json_response(self._reply(frame, error=err))
        return web.json_response(self._reply(frame, result=result))

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.method == "POST":
            raw = await request.read()
            try:
                params = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return web.Response(status=400, text=_INVALID)
            if not isinstance(params, dict):
                return web.Response(status=400, text=_INVALID)
        else:
            params = parse_query(request.query.items())
        try:
            result = self.call(method, params)
        except RpcError as err:
            return web.json_response(err.as_dict(), status=404 if err.code == 404 else 500)
        return web.json_response(result)

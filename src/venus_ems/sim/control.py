"""Fault control of a running simulation over HTTP, and the client ``venus-ems sim-fault`` uses.

``venus-ems sim`` and ``demo`` serve it on ``127.0.0.1`` (``--control-port``, a free port by
default; the address is printed at start). It lives on its own port so that a device can be
taken ``offline`` and brought back::

    GET  /faults                 every device: URL, mode, parameters, requests seen; the modes
    GET  /faults/<device>        one device
    PUT  /faults/<device>        set it: JSON {"mode": "chunked_flood", "flood_bytes": 1e9}
                                 or a query string ?mode=slow&slow_s=5 (POST works too)

Answers are JSON; a bad device is 404, a bad mode or parameter 400 with ``{"error": ...}``.
Fault modes and parameters are those of :mod:`venus_ems.sim.devices.faults` for the HTTP
emulators (the top-level ``modes``/``params``); a device with others (the Modbus heater,
:mod:`venus_ems.sim.devices.heizstab`; the Wattpilot websocket,
:mod:`venus_ems.sim.devices.wattpilot_faults`) lists its own under ``devices.<name>.modes``/
``params``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from ..errors import ConfigError
from .devices.faults import FAULT_MODES, FAULT_PARAMS

__all__ = ["FaultControl", "FaultSettings", "FaultTarget", "fault_request"]

_MAX_REQUEST = 4096


class FaultSettings(Protocol):
    """An emulator's fault mode and parameters (``Faults``, ``ModbusFaults``)."""

    def configure(self, mode: str | None = None, /, **params: object) -> None:
        """Set parameters, then the mode; ConfigError names a bad one."""
        ...

    def describe(self) -> dict[str, object]:
        """Mode, parameters and request count, as JSON-ready values."""
        ...


class FaultTarget(Protocol):
    """An emulator the control can drive: its URL, its faults, ``set_fault``."""

    @property
    def url(self) -> str:
        """Where the emulator serves."""
        ...

    @property
    def faults(self) -> FaultSettings:
        """Its fault settings."""
        ...

    async def set_fault(self, mode: str) -> None:
        """Switch to ``mode`` and act on it; ConfigError if unknown."""
        ...


class FaultControl:
    """The HTTP fault control of named emulators (an async context manager)."""

    def __init__(self, devices: Mapping[str, FaultTarget], *, port: int = 0) -> None:
        """Serve ``devices`` (name -> emulator) on 127.0.0.1:``port`` (0 = a free port)."""
        self.devices = dict(devices)
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (valid once started)."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultControl:
        """Start serving; OSError if the port is taken."""
        app = web.Application(client_max_size=_MAX_REQUEST)
        app.router.add_get("/faults", self._list)
        app.router.add_get("/faults/{device}", self._show)
        app.router.add_route("PUT", "/faults/{device}", self._set)
        app.router.add_route("POST", "/faults/{device}", self._set)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        if self.port == 0:
            self.port = int(runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def state(self) -> dict[str, Any]:
        """Every device's URL and faults, plus the modes and parameters there are."""
        return {
            "modes": list(FAULT_MODES),
            "params": list(FAULT_PARAMS),
            "devices": {name: self._one(name) for name in self.devices},
        }

    def _one(self, name: str) -> dict[str, Any]:
        emu = self.devices[name]
        out: dict[str, Any] = {"url": emu.url, **emu.faults.describe()}
        modes = getattr(emu.faults, "modes", None)
        if modes is not None:  # a device with its own fault modes says which
            out["modes"] = list(modes)
            out["params"] = list(getattr(emu.faults, "params", ()))
        return out

    async def _list(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state())

    async def _show(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["device"]
        if name not in self.devices:
            return _error(404, f"no device {name!r}; devices: {', '.join(self.devices)}")
        return web.json_response(self._one(name))

    async def _set(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["device"]
        if name not in self.devices:
            return _error(404, f"no device {name!r}; devices: {', '.join(self.devices)}")
        try:
            emu = self.devices[name]
            wanted = await _wanted(request, getattr(emu.faults, "params", FAULT_PARAMS))
            mode = wanted.pop("mode", None)
            if mode is not None and not isinstance(mode, str):
                raise ConfigError(f"mode must be a string, got {mode!r}")
            emu.faults.configure(None, **wanted)
            if mode is not None:
                await emu.set_fault(mode)
        except ConfigError as err:
            return _error(400, str(err))
        return web.json_response(self._one(name))


async def _wanted(request: web.Request, params: Collection[str]) -> dict[str, Any]:
    """Mode and parameters from the JSON body, or from the query string; ConfigError if bad."""
    raw = await request.read()
    if raw.strip():
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise ConfigError(f"the body is not JSON: {err}") from None
        if not isinstance(doc, dict):
            raise ConfigError("the body must be a JSON object")
        return doc
    out: dict[str, Any] = {}
    for key, text in request.query.items():
        if key == "mode":
            out[key] = text
            continue
        try:
            out[key] = float(text) if key in params else text
        except ValueError:
            raise ConfigError(f"fault parameter {key} must be a number, got {text!r}") from None
    return out


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


async def fault_request(
    control: str,
    device: str | None = None,
    mode: str | None = None,
    params: Mapping[str, float] | None = None,
    *,
    timeout_s: float = 10.0,
) -> tuple[int, dict[str, Any]]:
    """Ask a running simulation's control (list, show, or set) -> (HTTP status, answer).

    Raises ConnectionError when the control cannot be reached or does not answer JSON.
    """
    base = control.rstrip("/")
    url = f"{base}/faults" if device is None else f"{base}/faults/{device}"
    body: dict[str, Any] = dict(params or {})
    if mode is not None:
        body["mode"] = mode
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            send = device is not None and body
            request = http.put(url, json=body) if send else http.get(url)
            async with request as resp:
                answer = await resp.json(content_type=None)
                return resp.status, answer if isinstance(answer, dict) else {"answer": answer}
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise ConnectionError(f"{type(err).__name__}: {err}") from err

"""Fault injection and the loopback HTTP server every device emulator is built on.

``emulator.faults.mode`` may be set at any time (or ``await emulator.set_fault(mode)``, which also
waits until the listening socket matches). What a real client then sees:

============= ===========================================================================
mode          observable effect
============= ===========================================================================
ok            normal answers
offline       the listening socket is closed: new connections are refused; requests on a
              kept-alive connection are reset. Back to any other mode re-opens the same port
slow          the answer comes after ``faults.slow_s`` seconds of real time (default 30 s,
              beyond any sane client timeout); real time because client timeouts are real
garbage       status 200, ``application/json``, a body that is not JSON
truncated     status 200, the real JSON body cut in half (Content-Length matches the cut)
http500       status 500 with the device's own error body
auth          401 with the device's challenge on every protected endpoint, whatever the
              credentials (endpoints the real device never protects stay open)
oversized     status 200, ``Content-Length: flood_bytes`` (default 200 MiB), then the bytes
chunked_flood status 200, chunked, no length: ``flood_bytes`` of never-ending JSON text
gzip_bomb     status 200, ``Content-Encoding: gzip``: little on the wire, ``flood_bytes``
              inflated
deep_json     status 200, valid JSON nested ``depth`` (default 200 000) arrays deep
huge_numbers  the real answer, every number replaced by a ``digits``-digit (400) integer
trickle       the real answer: headers at once, then one body byte every ``trickle_s`` (0.5) s
============= ===========================================================================

The hostile modes (``oversized`` to ``trickle``, see :mod:`.hostile`) skip authentication, as
anything answering for the device's IP would. Parameters: :data:`FAULT_PARAMS`.

Faults can be set from outside the process too: :mod:`venus_ems.sim.control` serves them over
HTTP and ``venus-ems sim-fault`` sets them (docs/simulation.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal, TypeVar, get_args

import anyio
import anyio.abc
from aiohttp import web

from ...clock import Clock, RealClock
from ...errors import ConfigError
from . import hostile

__all__ = ["FAULT_MODES", "FAULT_PARAMS", "EmulatorServer", "FaultMode", "Faults"]

FaultMode = Literal[
    "ok",
    "offline",
    "slow",
    "garbage",
    "truncated",
    "http500",
    "auth",
    "oversized",
    "chunked_flood",
    "gzip_bomb",
    "deep_json",
    "huge_numbers",
    "trickle",
]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)

FAULT_PARAMS: dict[str, tuple[type, float, float]] = {
    "slow_s": (float, 0.0, 3600.0),
    "trickle_s": (float, 0.0, 60.0),
    "flood_bytes": (int, 1.0, float(1 << 40)),
    "depth": (int, 1.0, 10_000_000.0),
    "digits": (int, 1.0, 100_000.0),
}
"""Fault parameters a person may set: name -> (type, lowest, highest)."""

_GARBAGE = b"<!DOCTYPE html><p>\x07 ERR 0x3f ~~ {not json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Server = TypeVar("_Server", bound="EmulatorServer")


class Faults:
    """The fault mode of one emulator plus its parameters; ``requests`` counts requests seen."""

    def __init__(self, *, slow_s: float = 30.0) -> None:
        """Start in mode ``ok``; ``slow_s`` is the delay of mode ``slow`` in seconds."""
        self._mode: FaultMode = "ok"
        self.slow_s = slow_s
        self.trickle_s = 0.5
        self.flood_bytes = 200 * 1024 * 1024
        self.depth = 200_000
        self.digits = 400
        self.requests = 0
        self._listeners: list[Callable[[], None]] = []

    def configure(self, mode: str | None = None, /, **params: object) -> None:
        """Set parameters (see FAULT_PARAMS), then the mode; ConfigError names a bad one."""
        checked: dict[str, float] = {}
        for name, raw in params.items():
            if name not in FAULT_PARAMS:
                raise ConfigError(
                    f"fault parameter {name!r} is not one of {', '.join(FAULT_PARAMS)}"
                )
            kind, lo, hi = FAULT_PARAMS[name]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ConfigError(f"fault parameter {name} must be a number, got {raw!r}")
            if not lo <= raw <= hi or (kind is int and raw != int(raw)):
                raise ConfigError(f"fault parameter {name} = {raw!r} is outside {lo:g}..{hi:g}")
            checked[name] = kind(raw)
        if mode is not None and mode not in FAULT_MODES:
            raise ConfigError(f"fault mode {mode!r} is not one of {', '.join(FAULT_MODES)}")
        for name, value in checked.items():
            setattr(self, name, value)
        if mode is not None:
            self.mode = mode

    def describe(self) -> dict[str, object]:
        """Mode, parameters and request count, as JSON-ready values."""
        out: dict[str, object] = {"mode": self._mode, "requests": self.requests}
        out.update({name: getattr(self, name) for name in FAULT_PARAMS})
        return out

    @property
    def mode(self) -> FaultMode:
        """The current fault mode (see the module docstring)."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in FAULT_MODES:
            raise ConfigError(f"fault mode {value!r} is not one of {', '.join(FAULT_MODES)}")
        self._mode = value  # type: ignore[assignment]
        for listener in self._listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every mode change."""
        self._listeners.append(listener)


class EmulatorServer:
    """An aiohttp app on 127.0.0.1 with fault middleware; subclasses add routes and auth."""

    #: paths the real device answers without credentials
    open_paths: frozenset[str] = frozenset()

    def __init__(self, *, clock: Clock | None = None, port: int = 0, slow_s: float = 30.0) -> None:
        """Configure (not start); ``port`` 0 picks a free port at start."""
        self.clock: Clock = clock if clock is not None else RealClock()
        self.faults = Faults(slow_s=slow_s)
        self.port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._wake: anyio.Event | None = None
        self._lock: anyio.Lock | None = None
        self.faults.on_change(self._fault_changed)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (valid once started)."""
        return f"http://127.0.0.1:{self.port}"

    # --- subclass hooks -----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Register the device's endpoints."""
        raise NotImplementedError

    async def is_protected(self, request: web.Request) -> bool:
        """Whether the real device asks for credentials here (when auth is enabled)."""
        return request.path not in self.open_paths

    async def check_auth(self, request: web.Request) -> web.StreamResponse | None:
        """None if the request may proceed, else the device's 401 answer."""
        return None

    async def challenge(self, request: web.Request) -> web.StreamResponse:
        """The device's 401 answer (used by fault mode ``auth``)."""
        return web.Response(status=401, text="401 Unauthorized")

    def error_500(self) -> web.StreamResponse:
        """The device's answer to an internal error (fault mode ``http500``)."""
        return web.Response(status=500, text="500 Internal Server Error")

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``fn`` in the emulator's task group (timers); RuntimeError if not started."""
        if self._tg is None:
            raise RuntimeError("emulator is not running")
        self._tg.start_soon(fn)

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self: _Server) -> _Server:
        """Start serving (the port is bound even when starting offline); OSError if taken."""
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.2,
            handler_cancellation=True,
        )
        await runner.setup()
        self._runner = runner
        self._lock = anyio.Lock()
        self._wake = anyio.Event()
        stack = AsyncExitStack()
        try:
            stack.push_async_callback(runner.cleanup)
            await self._open()
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._tg.start_soon(self._follow_faults)
            await self._sync_site()
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving and close every connection."""
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
        self._tg = self._site = self._runner = None

    async def set_fault(self, mode: str) -> None:
        """Set ``faults.mode``, wait until the listening socket matches; ConfigError if bad."""
        self.faults.mode = mode
        await self._sync_site()

    async def _open(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self._site = site
        if self.port == 0:
            addresses = self._runner.addresses
            self.port = int(addresses[0][1])

    def _fault_changed(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _follow_faults(self) -> None:
        while True:
            assert self._wake is not None
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._sync_site()

    async def _sync_site(self) -> None:
        if self._lock is None:
            return
        async with self._lock:
            offline = self.faults.mode == "offline"
            if offline and self._site is not None:
                site, self._site = self._site, None
                await site.stop()
            elif not offline and self._site is None and self._runner is not None:
                await self._open()

    # --- middleware ---------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.faults.requests += 1
        mode = self.faults.mode
        if mode == "offline":
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        if mode == "slow":
            await anyio.sleep(self.faults.slow_s)
        flood = await self._hostile(request, mode)  # whatever answers for the IP: no auth
        if flood is not None:
            return flood
        protected = await self.is_protected(request)
        if mode == "auth" and protected:
            return await self.challenge(request)
        if mode == "http500":
            return self.error_500()
        if protected:
            refused = await self.check_auth(request)
            if refused is not None:
                return refused
        response = await handler(request)
        if mode == "huge_numbers":
            return hostile.huge_numbers(response, self.faults.digits)
        if mode == "trickle":
            return await hostile.trickle(request, response, self.faults.trickle_s)
        if mode == "garbage":
            return web.Response(body=_GARBAGE, content_type="application/json")
        if mode == "truncated" and isinstance(response, web.Response):
            body = response.body if isinstance(response.body, bytes) else b"{"
            return web.Response(
                body=body[: max(len(body) // 2, 1)],
                status=response.status,
                content_type="application/json",
            )
        return response

    async def _hostile(self, request: web.Request, mode: str) -> web.StreamResponse | None:
        """The reply of a mode that ignores what was asked, else None."""
        f = self.faults
        if mode == "chunked_flood":
            return await hostile.chunked_flood(request, f.flood_bytes)
        if mode == "oversized":
            return await hostile.oversized(request, f.flood_bytes)
        if mode == "gzip_bomb":
            return await hostile.gzip_bomb(request, f.flood_bytes)
        if mode == "deep_json":
            return hostile.deep_json(f.depth)
        return None

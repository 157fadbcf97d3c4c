"""Fronius Wattpilot emulator: the websocket ``ws://127.0.0.1:<port>/ws`` over a :class:`Wallbox`.

What it does, from the shared vectors (``wattpilot-handshake.md``, ``wattpilot-deltastatus.json``)
and ``devices.md`` §4, never from the driver:

* **Login.** ``hello`` (serial, devicetype, version, ``secured``), ``authRequired`` with two
  random tokens (fixed ones with ``tokens=``) and, from firmware 42 on, ``hash``: ``pbkdf2`` for
  a classic Wattpilot, ``bcrypt`` for a ``wattpilot_flex`` (a Flex may also stay silent:
  ``announce_hash=False``). The client's ``auth`` hash is checked against the secret derived from
  ``password``; ``authSuccess`` or ``authError`` "Wrong password" (then the socket closes).
* **Status.** A ``fullStatus`` in three frames (``partial`` true, true, false), then every
  ``push_period_s`` (clock time) a ``deltaStatus`` with the keys that changed (``nrg``, ``rbt``,
  ``utc``, ``loc`` at least). ``nrg`` is ints before firmware 40, floats after.
* **Writes.** ``securedMsg`` when secured (HMAC-SHA256 of ``data`` checked; a plain ``setValue``
  is refused then), else ``setValue``. ``amp`` (``mca``..``ama``), ``ama``, ``frc`` 0/1/2,
  ``psm`` 0/1/2, ``lmo`` 3/4/5, ``fna`` are accepted with their JSON types, answered
  ``response`` {requestId as a string, success, status} or {success false, message}, and drive
  the wallbox: ``amp`` its current, ``psm`` its phases (auto = 3), ``frc`` 1 stops it.
* **Faults**: :mod:`.wattpilot_faults` (also through the HTTP fault control).
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import WSMsgType, web

from ...clock import Clock, RealClock
from .wallbox import Wallbox
from .wattpilot_auth import device_secret, expected_auth_hash, hmac_ok
from .wattpilot_faults import HOSTILE_MODES, WattpilotFaults
from .wattpilot_frames import (
    CLASSIC,
    CLASSIC_42,
    FLEX,
    FLEX_SILENT,
    WattpilotIdentity,
    check_write,
    full_status_parts,
    hostile_frame,
    status_keys,
)

__all__ = ["CLASSIC", "CLASSIC_42", "FLEX", "FLEX_SILENT", "WattpilotEmulator", "WattpilotIdentity"]


_AUTH_WAIT_S = 30.0


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    secret: bytes
    tg: anyio.abc.TaskGroup
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    sent: dict[str, Any] = field(default_factory=dict)
    full_sent: bool = False

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        async with self.lock:
            if self.ws.closed:
                return
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
            except (ConnectionError, RuntimeError):
                pass  # the client went away: the receive loop ends the session


class WattpilotEmulator:
    """A Wattpilot on loopback in front of a :class:`Wallbox` (an async context manager)."""

    def __init__(
        self,
        wallbox: Wallbox,
        *,
        password: str = "testpassword",  # noqa: S107 - the vectors' fixture value
        identity: WattpilotIdentity = CLASSIC,
        clock: Clock | None = None,
        port: int = 0,
        push_period_s: float = 1.0,
        tokens: Callable[[], tuple[str, str]] | None = None,
        string_request_ids: bool = True,
    ) -> None:
        """Configure (not start); ``port`` 0 picks a free port at start."""
        self.wallbox = wallbox
        self.password = password
        self.identity = identity
        self.clock: Clock = clock if clock is not None else RealClock()
        self.port = port
        self.push_period_s = push_period_s
        self.tokens = tokens or (lambda: (secrets.token_hex(16), secrets.token_hex(16)))
        self.string_request_ids = string_request_ids
        self.faults = WattpilotFaults()
        self.faults.on_change(self._fault_changed)
        self.settings: dict[str, Any] = {
            "frc": 0,
            "psm": 0,
            "lmo": 3,
            "fna": identity.friendly_name,
        }
        state = wallbox.state()
        self.settings.update(amp=int(state.current_setpoint_a), ama=int(state.max_current_a))
        self.auth_frames: deque[dict[str, Any]] = deque(maxlen=32)
        self.client_frames: deque[dict[str, Any]] = deque(maxlen=256)
        self.writes: deque[tuple[str, Any]] = deque(maxlen=256)
        self.logins = 0
        self._booted = self.clock.monotonic()
        self._conns: set[_Conn] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._wake: anyio.Event | None = None
        self._fault_lock = anyio.Lock()

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/ws`` (valid once started)."""
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: what a driver's config names."""
        return f"127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Logged-in websockets open now."""
        return len(self._conns)

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> WattpilotEmulator:
        """Start serving (the port is bound even when starting offline); OSError if taken."""
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        self._runner = runner
        self._wake = anyio.Event()
        try:
            await self._sync_site()
            self._tg = anyio.create_task_group()
            await self._tg.__aenter__()
            self._tg.start_soon(self._follow_faults)
        except BaseException:
            await runner.cleanup()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Drop every websocket and stop serving."""
        await self._drop_all()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    async def set_fault(self, mode: str) -> None:
        """Set ``faults.mode`` and apply it now (sockets dropped, port closed or opened)."""
        self.faults.mode = mode
        await self._apply_fault()

    def _fault_changed(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _follow_faults(self) -> None:
        while True:
            assert self._wake is not None
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._apply_fault()

    async def _apply_fault(self) -> None:
        async with self._fault_lock:
            if self.faults.mode in ("offline", "drop"):
                await self._drop_all()
            await self._sync_site()

    async def _sync_site(self) -> None:
        offline = self.faults.mode == "offline"
        if offline and self._site is not None:
            site, self._site = self._site, None
            await site.stop()
        elif not offline and self._site is None and self._runner is not None:
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()
            self._site = site
            if self.port == 0:
                self.port = int(self._runner.addresses[0][1])

    async def _drop_all(self) -> None:
        for conn in list(self._conns):
            with anyio.move_on_after(1.0, shield=True):
                await conn.ws.close()

    # --- one websocket ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.faults.requests += 1
        if self.faults.mode == "offline":
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse(max_msg_size=1 << 16)
        await ws.prepare(request)
        try:
            await self._session(ws)
        finally:
            with anyio.move_on_after(1.0, shield=True):
                await ws.close()
        return ws

    async def _session(self, ws: web.WebSocketResponse) -> None:
        ident = self.identity
        hello = {
            "type": "hello",
            "serial": ident.serial,
            "hostname": f"Wattpilot_{ident.serial}",
            "friendly_name": self.settings["fna"],
            "manufacturer": "fronius",
            "devicetype": ident.devicetype,
            "version": ident.firmware,
            "protocol": 2,
            "secured": ident.secured,
        }
        await ws.send_str(json.dumps(hello))
        token1, token2 = self.tokens()
        challenge = {"type": "authRequired", "token1": token1, "token2": token2}
        if ident.announces:
            challenge["hash"] = ident.scheme
        await ws.send_str(json.dumps(challenge))
        secret = await anyio.to_thread.run_sync(
            device_secret, ident.scheme, ident.serial, self.password
        )
        try:
            auth = await _receive_json(ws, _AUTH_WAIT_S)
        except _ClosedError:
            return
        if auth is None or auth.get("type") != "auth":
            return
        self.auth_frames.append(auth)
        token3, given = auth.get("token3"), auth.get("hash")
        echo = {"token3": token3, "hash": given}
        good = isinstance(token3, str) and given == expected_auth_hash(
            token1, token2, token3, secret
        )
        if not good or self.faults.mode == "wrong_password":
            await ws.send_str(
                json.dumps({"type": "authError", **echo, "message": "Wrong password"})
            )
            return
        await ws.send_str(json.dumps({"type": "authSuccess", **echo}))
        self.logins += 1
        async with anyio.create_task_group() as tg:
            conn = _Conn(ws, secret, tg)
            self._conns.add(conn)
            try:
                if self.faults.mode not in ("no_full_status", "silent"):
                    await self._send_full(conn)
                if self.faults.mode in HOSTILE_MODES:
                    await conn.send(hostile_frame(self.faults))
                tg.start_soon(self._push_loop, conn)
                if self.faults.mode == "drop":
                    tg.start_soon(self._drop_later, conn)
                await self._receive_loop(conn)
            finally:
                self._conns.discard(conn)
                tg.cancel_scope.cancel()

    async def _drop_later(self, conn: _Conn) -> None:
        await anyio.sleep(self.faults.drop_after_s)
        await conn.ws.close()

    def values(self) -> dict[str, Any]:
        """Every status key the charger reports now."""
        return status_keys(self.identity, self.settings, self.wallbox.state(), self._clock_info())

    def _clock_info(self) -> tuple[float, Any]:
        return (self.clock.monotonic() - self._booted, self.clock.now())

    async def _send_full(self, conn: _Conn) -> None:
        values = self.values()
        for part in full_status_parts(values):
            await conn.send(part)
        conn.sent = values
        conn.full_sent = True

    async def _push_loop(self, conn: _Conn) -> None:
        while True:
            await self.clock.sleep(self.push_period_s)
            mode = self.faults.mode
            if mode == "silent" or not conn.full_sent:
                continue
            if mode in HOSTILE_MODES:
                await conn.send(hostile_frame(self.faults))
                continue
            await self._push(conn)

    async def _push(self, conn: _Conn) -> None:
        values = self.values()
        changed = {k: v for k, v in values.items() if conn.sent.get(k) != v}
        if changed:
            conn.sent.update(changed)
            await conn.send({"type": "deltaStatus", "status": changed})

    async def _receive_loop(self, conn: _Conn) -> None:
        while True:
            try:
                frame = await _receive_json(conn.ws, None)
            except _ClosedError:
                return
            if frame is None:
                continue
            self.client_frames.append(frame)
            kind = frame.get("type")
            if self.faults.mode == "silent":
                continue
            if kind == "requestFullStatus":
                await self._send_full(conn)
            elif kind == "securedMsg":
                await self._secured(conn, frame)
            elif kind == "setValue":
                if self.identity.secured:
                    await self._respond(conn, frame.get("requestId"), False, "must be secured")
                else:
                    await self._write(conn, frame)

    async def _secured(self, conn: _Conn, frame: dict[str, Any]) -> None:
        outer_id = str(frame.get("requestId", "")).removesuffix("sm")
        data = frame.get("data")
        if not isinstance(data, str) or not hmac_ok(conn.secret, data, frame.get("hmac")):
            await self._respond(conn, outer_id, False, "invalid hmac")
            return
        try:
            inner = json.loads(data)
        except ValueError:
            inner = None
        if not isinstance(inner, dict) or inner.get("type") != "setValue":
            await self._respond(conn, outer_id, False, "data is not a setValue")
            return
        await self._write(conn, inner)

    async def _write(self, conn: _Conn, frame: dict[str, Any]) -> None:
        request_id, key, value = frame.get("requestId"), frame.get("key"), frame.get("value")
        mode = self.faults.mode
        problem = "refused" if mode == "refuse" else self._apply(key, value)
        if mode == "no_ack":
            return  # applied, never answered
        if problem is None and mode == "slow_ack":

            async def later() -> None:
                await anyio.sleep(self.faults.ack_delay_s)
                await self._respond(conn, request_id, True, status={str(key): value})

            conn.tg.start_soon(later)
            return
        if problem is None:
            await self._respond(conn, request_id, True, status={str(key): value})
        else:
            await self._respond(conn, request_id, False, problem)

    def _apply(self, key: object, value: object) -> str | None:
        """Check and apply one write; the device's message when it refuses, else None."""
        problem = check_write(key, value, self.settings, self.identity.variant)
        if problem is not None or not isinstance(key, str):
            return problem
        self.settings[key] = value
        self.writes.append((key, value))
        if key == "amp" and isinstance(value, int):
            self.wallbox.set_current(float(value))
        elif key == "psm":
            self.wallbox.set_phases(1 if value == 1 else 3)
        elif key == "frc":
            self.wallbox.set_enabled(value != 1)
        elif key == "ama" and isinstance(value, int) and self.settings["amp"] > value:
            self.settings["amp"] = value
            self.wallbox.set_current(float(value))
        return None

    async def _respond(
        self,
        conn: _Conn,
        request_id: object,
        success: bool,
        message: str = "",
        status: dict[str, Any] | None = None,
    ) -> None:
        rid = str(request_id) if self.string_request_ids else request_id
        frame: dict[str, Any] = {"type": "response", "requestId": rid, "success": success}
        if success:
            frame["status"] = status or {}
        else:
            frame["message"] = message
        await conn.send(frame)


class _ClosedError(Exception):
    """The client closed the websocket (or it broke)."""


async def _receive_json(
    ws: web.WebSocketResponse, timeout_s: float | None
) -> dict[str, Any] | None:
    """The next text frame as a JSON object, None for another frame; _ClosedError at the end."""
    try:
        msg = await ws.receive(timeout=timeout_s)
    except TimeoutError as err:
        raise _ClosedError from err
    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        raise _ClosedError
    if msg.type != WSMsgType.TEXT:
        return None
    try:
        doc = json.loads(msg.data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None

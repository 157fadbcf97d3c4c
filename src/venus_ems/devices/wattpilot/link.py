"""One authenticated websocket to a Wattpilot: connect, log in, read the full status.

:func:`connect` opens ``ws://<host>/ws`` through the caller's aiohttp session and runs the
handshake: ``hello`` -> ``authRequired`` -> our ``auth`` -> ``authSuccess`` (or ``authError``:
DeviceAuthError) -> ``fullStatus`` frames until ``partial`` is false. If no full status comes
within the timeout, it asks once with ``requestFullStatus`` (some firmware no longer sends it
unasked: joscha82/wattpilot#37). Every step waits at most ``timeout_s`` (real time, like every
device request); errors are mapped into the DeviceError tree at this boundary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio

from ...errors import (
    DeviceAuthError,
    DeviceConnectionError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from .auth import auth_hash, derive_secret
from .frames import (
    MAX_FRAME_BYTES,
    Hello,
    choose_scheme,
    decode_frame,
    parse_auth_required,
    parse_hello,
)
from .status import merge_status, status_values

__all__ = ["Link", "connect"]

_CLOSE_S = 1.0


@dataclass
class Link:
    """An open, logged-in websocket: the charger's hello, the secret, the first full status."""

    ws: aiohttp.ClientWebSocketResponse[bool]
    url: str
    hello: Hello
    secret: bytes
    values: dict[str, Any] = field(default_factory=dict)

    async def receive(self, timeout_s: float | None) -> Mapping[str, Any]:
        """The next frame; DeviceError when the socket closes, stays silent or sends junk."""
        return await _receive(self.ws, self.url, timeout_s)

    async def send(self, frame: str) -> None:
        """Send one text frame; DeviceConnectionError if the socket is gone."""
        try:
            await self.ws.send_str(frame)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as err:
            raise DeviceConnectionError(f"{self.url}: cannot send: {err}") from err

    async def close(self) -> None:
        """Close the socket (bounded in time, also when cancelled)."""
        with anyio.move_on_after(_CLOSE_S, shield=True):
            await self.ws.close()


async def _receive(
    ws: aiohttp.ClientWebSocketResponse[bool], url: str, timeout_s: float | None
) -> Mapping[str, Any]:
    try:
        msg = await ws.receive(timeout=timeout_s)
    except (TimeoutError, asyncio.TimeoutError) as err:
        raise DeviceTimeoutError(f"{url}: nothing received for {timeout_s:g} s") from err
    except (aiohttp.ClientError, ConnectionError) as err:
        raise DeviceConnectionError(f"{url}: {type(err).__name__}: {err}") from err
    if msg.type == aiohttp.WSMsgType.TEXT:
        return decode_frame(msg.data, f"{url} frame")
    if msg.type == aiohttp.WSMsgType.BINARY:
        raise DeviceProtocolError(f"{url}: binary frame of {len(msg.data)} bytes")
    if msg.type == aiohttp.WSMsgType.ERROR:
        # e.g. a frame above max_msg_size (close code 1009) or a broken frame
        raise DeviceProtocolError(f"{url}: websocket error: {ws.exception()}")
    raise DeviceConnectionError(f"{url}: the charger closed the connection ({ws.close_code})")


async def _expect(
    ws: aiohttp.ClientWebSocketResponse[bool], url: str, kind: str, timeout_s: float
) -> Mapping[str, Any]:
    frame = await _receive(ws, url, timeout_s)
    if frame["type"] != kind:
        raise DeviceProtocolError(f"{url}: expected {kind}, got {str(frame['type'])!r}")
    return frame


async def connect(
    session: aiohttp.ClientSession,
    host: str,
    password: str,
    *,
    timeout_s: float,
    scheme: str = "auto",
    token3: Callable[[], str],
) -> Link:
    """Open and log in; DeviceAuthError for a refused password, other DeviceErrors else."""
    url = f"ws://{host}/ws"
    try:
        with anyio.fail_after(timeout_s):
            ws = await session.ws_connect(
                url,
                max_msg_size=MAX_FRAME_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=_CLOSE_S),
                autoping=True,
            )
    except TimeoutError as err:
        raise DeviceTimeoutError(f"{url}: no websocket within {timeout_s:g} s") from err
    except aiohttp.WSServerHandshakeError as err:
        raise DeviceProtocolError(f"{url}: not a Wattpilot websocket (HTTP {err.status})") from err
    except (aiohttp.ClientError, OSError) as err:
        raise DeviceConnectionError(f"{url}: {type(err).__name__}: {err}") from err
    try:
        return await _login(ws, url, password, timeout_s, scheme, token3)
    except BaseException:
        with anyio.move_on_after(_CLOSE_S, shield=True):
            await ws.close()
        raise


async def _login(
    ws: aiohttp.ClientWebSocketResponse[bool],
    url: str,
    password: str,
    timeout_s: float,
    scheme: str,
    token3: Callable[[], str],
) -> Link:
    hello = parse_hello(await _expect(ws, url, "hello", timeout_s))
    challenge = parse_auth_required(await _expect(ws, url, "authRequired", timeout_s))
    chosen = choose_scheme(hello, challenge, scheme)
    secret = await derive_secret(chosen, hello.serial, password)
    mine = token3()
    answer = auth_hash(challenge.token1, challenge.token2, mine, secret)
    link = Link(ws, url, hello, secret)
    await link.send(json.dumps({"type": "auth", "token3": mine, "hash": answer}))
    result = await _receive(ws, url, timeout_s)
    if result["type"] == "authError":
        message = result.get("message")
        said = message[:80] if isinstance(message, str) else "no reason given"
        raise DeviceAuthError(f"{url}: the Wattpilot refused the password ({chosen}): {said}")
    if result["type"] != "authSuccess":
        raise DeviceProtocolError(f"{url}: expected authSuccess, got {str(result['type'])!r}")
    await _full_status(link, timeout_s)
    return link


async def _full_status(link: Link, timeout_s: float) -> None:
    """Merge ``fullStatus`` (and early ``deltaStatus``) frames until ``partial`` is false."""
    asked = False
    while True:
        try:
            frame = await link.receive(timeout_s)
        except DeviceTimeoutError:
            if asked:
                raise DeviceTimeoutError(f"{link.url}: no fullStatus, even when asked") from None
            asked = True
            await link.send(json.dumps({"type": "requestFullStatus", "requestId": 0}))
            continue
        kind = frame["type"]
        if kind in ("fullStatus", "deltaStatus"):
            values = status_values(frame, f"{link.url} {kind}")
            link.values = merge_status(link.values, values)
            if kind == "fullStatus" and frame.get("partial") is not True:
                return
        elif kind == "authError":
            raise DeviceProtocolError(f"{link.url}: authError after authSuccess")

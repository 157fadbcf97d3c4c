"""Hostile replies for the emulators' fault modes: floods, bombs, deep JSON, huge numbers, trickle.

Each builder answers one request the way a broken or malicious device (or anything on the LAN
answering for its IP) would. They stream: the emulator never holds a flood in memory, so a test
process can serve hundreds of megabytes. A client that drops the connection early (as it
should) ends the stream quietly.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import anyio
import anyio.lowlevel
from aiohttp import web

__all__ = [
    "chunked_flood",
    "deep_json",
    "gzip_bomb",
    "huge_numbers",
    "oversized",
    "trickle",
]

_CHUNK = 64 * 1024
# Valid JSON text as far as it goes: an object whose string value never ends.
_FLOOD_HEAD = b'{"emeters":[{"power":"'
_FLOOD_FILL = b"9" * _CHUNK


async def _stream(
    request: web.Request, response: web.StreamResponse, total: int, head: bytes = _FLOOD_HEAD
) -> web.StreamResponse:
    """Write ``head`` then filler until ``total`` bytes went out or the client hung up."""
    await response.prepare(request)
    sent = 0
    try:
        await response.write(head)
        sent = len(head)
        while sent < total:
            piece = _FLOOD_FILL[: min(_CHUNK, total - sent)]
            await response.write(piece)
            sent += len(piece)
            await anyio.lowlevel.checkpoint()
        await response.write_eof()
    except (ConnectionError, RuntimeError):  # the client dropped us: that is the point
        pass
    return response


async def chunked_flood(request: web.Request, total: int) -> web.StreamResponse:
    """Status 200, ``Transfer-Encoding: chunked`` (no length), ``total`` bytes as fast as TCP."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    return await _stream(request, response, total)


async def oversized(request: web.Request, total: int) -> web.StreamResponse:
    """Status 200 with an honest ``Content-Length`` of ``total`` bytes, then the bytes."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = total
    return await _stream(request, response, total)


async def gzip_bomb(request: web.Request, total: int) -> web.StreamResponse:
    """``Content-Encoding: gzip``: a few hundred KB on the wire that inflate to ``total`` bytes."""
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    try:
        await response.write(packer.compress(_FLOOD_HEAD))
        inflated = len(_FLOOD_HEAD)
        while inflated < total:
            piece = _FLOOD_FILL[: min(_CHUNK, total - inflated)]
            out = packer.compress(piece) + packer.flush(zlib.Z_SYNC_FLUSH)  # stream it now
            inflated += len(piece)
            await response.write(out)
            await anyio.lowlevel.checkpoint()  # tiny writes never block: let a client run
        await response.write(packer.flush())
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    return response


def deep_json(depth: int) -> web.Response:
    """Status 200, valid JSON nested ``depth`` arrays deep (``[[[…]]]``, 2 bytes per level)."""
    return web.Response(
        body=b"[" * depth + b"]" * depth, status=200, content_type="application/json"
    )


def _enlarge(doc: Any, digits: int) -> Any:
    if isinstance(doc, bool) or doc is None or isinstance(doc, str):
        return doc
    if isinstance(doc, (int, float)):
        return int("9" * digits) * (-1 if doc < 0 else 1)
    if isinstance(doc, list):
        return [_enlarge(v, digits) for v in doc]
    if isinstance(doc, dict):
        return {k: _enlarge(v, digits) for k, v in doc.items()}
    return doc


def huge_numbers(response: web.StreamResponse, digits: int) -> web.StreamResponse:
    """The real answer with every number replaced by a ``digits``-digit integer (sign kept)."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    try:
        doc = json.loads(response.body)
    except ValueError:
        return response
    text = json.dumps(_enlarge(doc, digits))
    return web.Response(text=text, status=response.status, content_type="application/json")


async def trickle(
    request: web.Request, response: web.StreamResponse, interval_s: float
) -> web.StreamResponse:
    """The real answer, headers at once, then its body one byte every ``interval_s`` (real) s."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):
        return response
    out = web.StreamResponse(status=response.status, headers={"Content-Type": "application/json"})
    out.content_length = len(body)
    await out.prepare(request)
    try:
        for i in range(len(body)):
            await out.write(body[i : i + 1])
            await anyio.sleep(interval_s)
        await out.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    return out
